import { CHAIN_LINE, parseIptablesSave } from "../drivers/parse/iptables-save.js";
import { identifyRules } from "./rule-identity.js";
import type { ManagedLines } from "./rule-model.js";
import type { Family, ParsedChain, ParsedRule } from "./rule-model.js";

/** A chain as clients see it. */
export interface ChainView extends ParsedChain {
  readonly ruleCount: number;
  readonly references: number;
}

/** A rule as clients see it: parsed, with its stable id and whether Portcullis manages it. */
export interface RuleView extends ParsedRule {
  readonly id: string;
  readonly managed: boolean;
}

/** A table's views. Their rule views are shared with later reads (see TableReader): read-only to every holder. */
export interface TableViews {
  readonly chains: readonly ChainView[];
  readonly rules: readonly RuleView[];
}

/** What the previous read of a table left for the next one. */
interface LastRead {
  readonly rules: readonly RuleView[];
  /** The chain lines without their counters, in order (`:INPUT ACCEPT`). */
  readonly chainHeads: readonly string[];
  readonly counts: ReadonlyMap<string, number>;
  readonly references: ReadonlyMap<string, number>;
  /** The store's revision of the managed rules the ids were assigned from. */
  readonly managedRevision: number;
}

/**
 * Turns `iptables-save -c` dumps of a table into the views clients see: rules with their ids (rule-identity.ts),
 * chains with their rule counts and references.
 *
 * A table is listed far more often than it changes, and between two listings usually only counters move. So each
 * read remembers its result, and the next one first checks, line by line and without copying, whether the dump says
 * the same apart from counters (and the managed rules are unchanged): then the previous views are kept, a rule whose
 * counters did not move keeps its very object (and whatever was derived from it, e.g. its wire form), and nothing is
 * parsed or identified again. Any other difference takes the full path: parse, identify, build.
 */
export class TableReader {
  readonly #last = new Map<string, LastRead>();

  read(family: Family, table: string, text: string, managed: ManagedLines, managedRevision: number): TableViews {
    const key = `${family}/${table}`;
    const last = this.#last.get(key);
    const reused = last !== undefined && last.managedRevision === managedRevision ? sameLines(last, text, table) : undefined;
    if (reused !== undefined) {
      this.#last.set(key, { ...last!, rules: reused.rules });
      return { chains: chainViews(reused.chains, last!.counts, last!.references), rules: reused.rules };
    }
    const parsed = parseIptablesSave(text).find((candidate) => candidate.name === table) ?? { name: table, chains: [], rules: [] };
    const identities = identifyRules(family, table, parsed.rules, managed);
    const counts = new Map<string, number>();
    const references = new Map<string, number>();
    // One shape for every view object (no spreads): listing 10k rules is dominated by property access otherwise.
    const rules = parsed.rules.map((rule, i): RuleView => {
      counts.set(rule.chain, (counts.get(rule.chain) ?? 0) + 1);
      const target = rule.spec.target;
      if (target.kind === "JUMP") references.set(target.chain, (references.get(target.chain) ?? 0) + 1);
      const identity = identities[i]!;
      return view(rule, identity.id, identity.managed, rule.packets, rule.bytes);
    });
    this.#last.set(key, { rules, chainHeads: parsed.chains.map(chainHead), counts, references, managedRevision });
    return { chains: chainViews(parsed.chains, counts, references), rules };
  }
}

function view(rule: ParsedRule, id: string, managed: boolean, packets: number, bytes: number): RuleView {
  return { chain: rule.chain, position: rule.position, spec: rule.spec, key: rule.key, text: rule.text, modeled: rule.modeled, packets, bytes, id, managed };
}

function chainHead(chain: ParsedChain): string {
  return `:${chain.name} ${chain.policy ?? "-"}`;
}

function chainViews(chains: readonly ParsedChain[], counts: ReadonlyMap<string, number>, references: ReadonlyMap<string, number>): readonly ChainView[] {
  return chains.map((chain): ChainView => ({ ...chain, ruleCount: counts.get(chain.name) ?? 0, references: references.get(chain.name) ?? 0 }));
}

/**
 * The previous read's rules with this dump's counters, when the dump holds exactly the previous lines otherwise (same
 * table, same chains and policies, same rule lines in the same order); undefined at the first difference.
 */
function sameLines(last: LastRead, text: string, table: string): { rules: RuleView[]; chains: ParsedChain[] } | undefined {
  const previous = last.rules;
  const rules = new Array<RuleView>(previous.length);
  const chains: ParsedChain[] = [];
  let r = 0;
  let tables = 0;
  let committed = false;
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const first = text.charCodeAt(start);
    if (first === 0x5b /* [ */) {
      // `[packets:bytes] -A CHAIN …`
      const counters = readCounters(text, start, end);
      const old = previous[r];
      if (counters === undefined || old === undefined || committed) return undefined;
      const body = counters.next;
      if (end - body !== old.text.length || !text.startsWith(old.text, body)) return undefined;
      rules[r++] = old.packets === counters.packets && old.bytes === counters.bytes ? old : view(old, old.id, old.managed, counters.packets, counters.bytes);
    } else if (first === 0x3a /* : */) {
      const match = CHAIN_LINE.exec(text.slice(start, end));
      if (match === null) return undefined;
      const [, name = "", policy = "", packets = "0", bytes = "0"] = match;
      const chain: ParsedChain = { name, builtin: policy !== "-", ...(policy === "-" ? {} : { policy: policy as "ACCEPT" | "DROP" }), packets: Number(packets), bytes: Number(bytes) };
      if (last.chainHeads[chains.length] !== chainHead(chain)) return undefined;
      chains.push(chain);
    } else if (first === 0x2a /* * */) {
      if (text.slice(start + 1, end).trim() !== table || ++tables > 1) return undefined;
    } else if (end - start === 6 && text.startsWith("COMMIT", start)) {
      committed = true;
    } else if (end > start && first !== 0x23 /* # */) {
      return undefined; // anything else (a rule without counters, stray text): the parser decides
    }
    start = end + 1;
  }
  if (r !== previous.length || chains.length !== last.chainHeads.length || !committed) return undefined;
  return { rules, chains };
}

/** `[packets:bytes] ` at `start`: the two numbers and where the rest of the line begins; undefined if malformed. */
function readCounters(text: string, start: number, end: number): { packets: number; bytes: number; next: number } | undefined {
  const colon = text.indexOf(":", start);
  const close = text.indexOf("] ", start);
  if (colon < 0 || close < 0 || colon > close || close + 2 > end) return undefined;
  const packets = digits(text, start + 1, colon);
  const bytes = digits(text, colon + 1, close);
  return packets === undefined || bytes === undefined ? undefined : { packets, bytes, next: close + 2 };
}

/** The decimal number text[from, to) as Number() reads it; undefined unless all digits. */
function digits(text: string, from: number, to: number): number | undefined {
  if (to <= from) return undefined;
  let value = 0;
  for (let i = from; i < to; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return undefined;
    value = value * 10 + digit;
  }
  // Exact up to 2^53; beyond, the same rounding as the full parser's Number().
  return to - from > 15 ? Number(text.slice(from, to)) : value;
}
