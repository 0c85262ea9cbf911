import { CHAIN_LINE, parseIptablesSave, parseRuleLine, unmanagedRuleId } from "../drivers/parse/iptables-save.js";
import type { Counter } from "../drivers/ruleset-generation.js";
import type { ManagedLines } from "./rule-model.js";
import type { Family, ParsedChain, RuleSpec } from "./rule-model.js";
import type { ChainView, RuleView, TableViews } from "./table-reader.js";

/**
 * A table read for a change that must know which rules are Portcullis's and which are other tools' (an
 * ApplyRuleset), when the managed ones are nearly all there is: a 10k-rule table beside Docker's 2k.
 *
 * A rule Portcullis rendered is printed back by iptables-save as the very line it was rendered to, so a rule whose
 * line is a managed line (up to as many copies as are managed) is managed without being parsed. Of the other rules,
 * those in chains that hold managed rules are parsed and identified by content as TableReader does (another
 * spelling of a managed rule is still that rule); in any other chain no managed rule can be, so they are other
 * tools' at once. Specs and ids are computed only when asked for (an apply asks for the few the anti-lockout check
 * walks through). Chain rule counts and references are not computed (an apply needs neither).
 */
export function splitTable(family: Family, table: string, text: string, managed: ManagedLines): TableViews {
  const managedChains = new Set<string>();
  for (const line of managed.keys()) managedChains.add(line.slice(3, line.indexOf(" ", 3)));
  const chains: ParsedChain[] = [];
  const chainLines: string[] = [];
  const rules: RuleView[] = [];
  const toParse: Array<{ index: number; line: string }> = [];
  const taken = new Map<string, number>();
  const positions = new Map<string, number>();
  const occurrences = new Map<string, number>();
  const context: SplitContext = { family, table, chainLines };
  let inTable = false;
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line.startsWith("*")) {
      inTable = line.slice(1) === table;
      continue;
    }
    if (!inTable || line === "" || line.startsWith("#") || line === "COMMIT") continue;
    if (line.startsWith(":")) {
      const match = CHAIN_LINE.exec(line);
      if (match === null) continue; // a full parse reports a broken dump
      const [, name = "", policy = "", packets = "0", bytes = "0"] = match;
      chains.push({ name, builtin: policy !== "-", ...(policy === "ACCEPT" || policy === "DROP" ? { policy } : {}), packets: Number(packets), bytes: Number(bytes) });
      chainLines.push(line);
      continue;
    }
    let body = line;
    let packets = 0;
    let bytes = 0;
    if (line.startsWith("[")) {
      const colon = line.indexOf(":");
      const close = line.indexOf("] ");
      packets = Number(line.slice(1, colon));
      bytes = Number(line.slice(colon + 1, close));
      body = line.slice(close + 2);
    }
    const chain = body.slice(3, body.indexOf(" ", 3));
    const position = (positions.get(chain) ?? 0) + 1;
    positions.set(chain, position);
    const ids = managed.get(body);
    const used = taken.get(body) ?? 0;
    if (ids !== undefined && used < ids.length) {
      taken.set(body, used + 1);
      rules.push(new SplitRule(context, chain, position, body, packets, bytes, ids[used]!, 0));
    } else {
      if (managedChains.has(chain)) toParse.push({ index: rules.length, line: body });
      const key = `${chain}\n${body}`;
      const occurrence = occurrences.get(key) ?? 0;
      occurrences.set(key, occurrence + 1);
      rules.push(new SplitRule(context, chain, position, body, packets, bytes, undefined, occurrence));
    }
  }
  if (toParse.length > 0) {
    // Lines in chains with managed rules that are no managed line: parsed in their chains' context (a jump needs its
    // chain declared); one whose content is a managed rule not yet found is that rule.
    const parsed = parseIptablesSave([`*${table}`, ...chainLines, ...toParse.map((other) => other.line), "COMMIT", ""].join("\n"))[0]!.rules;
    toParse.forEach(({ index }, i) => {
      const rule = parsed[i]!;
      const ids = rule.modeled ? managed.get(rule.key) : undefined;
      const used = taken.get(rule.key) ?? 0;
      const old = rules[index]!;
      if (ids !== undefined && used < ids.length) {
        taken.set(rule.key, used + 1);
        rules[index] = { ...rule, position: old.position, packets: old.packets, bytes: old.bytes, id: ids[used]!, managed: true };
      } else {
        rules[index] = { ...rule, position: old.position, packets: old.packets, bytes: old.bytes, id: old.id, managed: false };
      }
    });
  }
  return { chains: chains.map((chain): ChainView => ({ ...chain, ruleCount: 0, references: 0 })), rules };
}

/**
 * The last split of each table, for the next apply. An apply splits the table text it writes while the kernel commits
 * it (when this thread is idle), so the next apply of an unchanged table finds it split. A split holds while the text
 * is the same and the managed rules have not changed (the store's revision).
 */
export class TableSplits {
  readonly #last = new Map<string, { text: string; revision: number; views: TableViews }>();

  /** The table's split, reused when this text was split last with the managed rules of this revision. */
  split(family: Family, table: string, text: string, managed: ManagedLines, revision: number): TableViews {
    const last = this.#last.get(`${family}/${table}`);
    if (last !== undefined && last.revision === revision && last.text === text) return last.views;
    const views = splitTable(family, table, text, managed);
    this.remember(family, table, text, revision, views);
    return views;
  }

  /** Keeps a split made ahead (by `splitTable`) for the managed rules of `revision`. */
  remember(family: Family, table: string, text: string, revision: number, views: TableViews): void {
    this.#last.set(`${family}/${table}`, { text, revision, views });
  }
}

/** A split with the counters of some rules (by chain, in the order of their positions) and of the chains. */
export function withCounters(views: TableViews, rules: ReadonlyMap<string, ReadonlyMap<number, Counter>>, chains: ReadonlyMap<string, Counter>): TableViews {
  return {
    chains: views.chains.map((chain) => {
      const counter = chains.get(chain.name);
      return counter === undefined ? chain : { ...chain, packets: counter.packets, bytes: counter.bytes };
    }),
    rules: views.rules.map((rule) => {
      const counter = rules.get(rule.chain)?.get(rule.position);
      if (counter === undefined) return rule;
      return rule instanceof SplitRule ? rule.counted(counter) : { ...rule, packets: counter.packets, bytes: counter.bytes };
    }),
  };
}

interface SplitContext {
  readonly family: Family;
  readonly table: string;
  /** The table's chain lines, for parsing a rule in context (so that `-j DOCKER` is a jump). */
  readonly chainLines: readonly string[];
}

/**
 * A rule of a split read: its id (the recorded one of a managed rule, a content hash for another's), spec and
 * modeledness are computed when first read. A class, not an object with closures: a read makes 12k of them.
 */
class SplitRule implements RuleView {
  #parsed: { spec: RuleSpec; modeled: boolean } | undefined;
  #id: string | undefined;

  constructor(
    private readonly context: SplitContext,
    readonly chain: string,
    readonly position: number,
    readonly text: string,
    readonly packets: number,
    readonly bytes: number,
    private readonly recordedId: string | undefined,
    private readonly occurrence: number,
  ) {}

  /** The same rule with other counters. */
  counted(counter: Counter): SplitRule {
    return new SplitRule(this.context, this.chain, this.position, this.text, counter.packets, counter.bytes, this.recordedId, this.occurrence);
  }

  get managed(): boolean {
    return this.recordedId !== undefined;
  }

  get key(): string {
    return this.text;
  }

  get id(): string {
    return (this.#id ??= this.recordedId ?? unmanagedRuleId(this.context.family, this.context.table, this.chain, this.text, this.occurrence));
  }

  get spec(): RuleSpec {
    return this.#parse().spec;
  }

  get modeled(): boolean {
    return this.#parse().modeled;
  }

  #parse(): { spec: RuleSpec; modeled: boolean } {
    if (this.#parsed !== undefined) return this.#parsed;
    if (this.managed) return (this.#parsed = { spec: parseRuleLine(this.text).spec, modeled: true });
    const { table, chainLines } = this.context;
    return (this.#parsed = parseIptablesSave([`*${table}`, ...chainLines, this.text, "COMMIT", ""].join("\n"))[0]!.rules[0]!);
  }
}
