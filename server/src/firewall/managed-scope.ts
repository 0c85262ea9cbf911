import { diffManagedRules, linesByChain, type RulesetDiff } from "./ruleset-diff.js";
import { isForeignChain, type DeclaredChains, type ForeignLoss } from "./foreign-rules.js";
import type { TableView } from "./lockout.js";
import type { Policy, RuleSpec, Table } from "./rule-model.js";
import type { ChainView, RuleView, TableViews } from "./table-reader.js";

/** A managed rule of the new state: its chain, spec and canonical line. */
export interface ManagedRuleLine {
  readonly chain: string;
  readonly spec: RuleSpec;
  readonly line: string;
}

/** The rest of a managed-scope change, once the table as it is now is known, and what the change does. */
export interface ManagedPlan {
  /** Restore lines that follow the new rules (no COMMIT): foreign rules put back, managed chains deleted. */
  readonly epilogue: string;
  /** Foreign rules the change removes (only those in, or jumping to, a managed chain it deletes). */
  readonly loss: ForeignLoss;
  /** The table after the change, for the anti-lockout check (INPUT and the chains it reaches). */
  readonly view: TableView;
  /** The chains after the change (for the answer: computed when asked for, after the COMMIT). */
  readonly chains: () => ChainView[];
  /** User chains Portcullis owns after the change (created by it, now or before). */
  readonly owned: readonly string[];
  /** What the change does (computed when asked for). */
  readonly diff: () => RulesetDiff;
  /** The table after the change as restore text without counters, which splits as iptables-save's would. */
  readonly text: () => string;
}

/** A rule of the table after the change: a new managed one, or another tool's as read. */
type LaidRule = { readonly spec: RuleSpec; readonly modeled: boolean; readonly line: string } | RuleView;

/**
 * A managed-scope ApplyRuleset as one `iptables-restore --noflush --counters` transaction: the managed rules and the
 * user chains Portcullis created are replaced, everything of other tools stays as it was and where it was.
 *
 * Every chain that holds managed rules before or after is emptied and written again, in the same transaction (so no
 * packet sees it half-written): its foreign rules are put back with their counters, those that came before the
 * chain's first managed rule before the new managed rules, the others after them; in a chain without managed rules
 * the new ones follow the foreign ones, which tools like Docker and fail2ban insert at the top. Chains without
 * managed rules are not touched. Rewriting a chain costs what appending its rules costs, where deleting 10k rules one
 * by one would cost five times that.
 *
 * The text is produced in three parts, so that the new rules can be fed to the tool while the current table is still
 * being read: `prologue()` (declared user chains created or emptied, policies), `beforeRule(chain)` before each new
 * rule (a built-in chain is emptied before its first one), and `plan(current)` for the rest.
 */
export class ManagedScopeChange {
  readonly #table: Table;
  readonly #declared: DeclaredChains;
  /** Chains the text has emptied (or created) so far. */
  readonly #emptied = new Set<string>();

  constructor(table: Table, declared: DeclaredChains) {
    this.#table = table;
    this.#declared = declared;
  }

  prologue(): string {
    const lines = [`*${this.#table}`];
    for (const [name, chain] of this.#declared) {
      if (chain.builtin) {
        if (chain.policy !== undefined) lines.push(`-P ${name} ${chain.policy}`);
      } else {
        // With --noflush, declaring a user chain creates it, or empties it when it exists.
        lines.push(`:${name} - [0:0]`);
        this.#emptied.add(name);
      }
    }
    return `${lines.join("\n")}\n`;
  }

  beforeRule(chain: string): string {
    if (this.#emptied.has(chain)) return "";
    this.#emptied.add(chain);
    return `-F ${chain}\n`;
  }

  plan(current: TableViews, owned: ReadonlySet<string>, rules: readonly ManagedRuleLine[]): ManagedPlan {
    const existing = new Map(current.chains.map((chain) => [chain.name, chain]));
    const deleted = new Set([...owned].filter((name) => existing.has(name) && !this.#declared.has(name)));
    const rulesOf = groupByChain(current.rules);
    // Foreign rules in a deleted chain or jumping to one go with it (the only foreign rules a managed scope can lose).
    const lost = deleted.size === 0 ? [] : current.rules.filter((rule) => !rule.managed && (deleted.has(rule.chain) || deleted.has(jumpOf(rule) ?? "")));
    const lostSet = new Set(lost);
    const lines: string[] = [];
    // Chains with managed rules now are written again too (their managed rules go), unless deleted.
    for (const rule of current.rules) {
      if (rule.managed && !deleted.has(rule.chain) && !this.#emptied.has(rule.chain)) {
        this.#emptied.add(rule.chain);
        lines.push(`-F ${rule.chain}`);
      }
    }
    const newRules = groupByChain(rules);
    const layout = new Map<string, LaidRule[]>();
    for (const chain of current.chains) {
      if (deleted.has(chain.name)) continue;
      const now = rulesOf.get(chain.name) ?? [];
      if (!this.#emptied.has(chain.name)) {
        layout.set(chain.name, lostSet.size === 0 ? now : now.filter((rule) => !lostSet.has(rule)));
        continue;
      }
      const firstManaged = now.findIndex((rule) => rule.managed);
      const foreign = now.filter((rule) => !rule.managed && !lostSet.has(rule));
      const before = firstManaged < 0 ? foreign : foreign.filter((rule) => rule.position <= firstManaged);
      const after = firstManaged < 0 ? [] : foreign.filter((rule) => rule.position > firstManaged);
      before.forEach((rule, i) => lines.push(`[${rule.packets}:${rule.bytes}] -I ${chain.name} ${i + 1} ${body(rule)}`));
      for (const rule of after) lines.push(`[${rule.packets}:${rule.bytes}] ${rule.text}`);
      layout.set(chain.name, [...before, ...(newRules.get(chain.name) ?? []).map(laidManaged), ...after]);
    }
    // Lost foreign rules outside the rewritten chains (jumps to a deleted chain) go by their content.
    for (const rule of lost) if (!deleted.has(rule.chain) && !this.#emptied.has(rule.chain)) lines.push(`-D ${rule.chain} ${body(rule)}`);
    for (const name of deleted) lines.push(`-F ${name}`);
    for (const name of deleted) lines.push(`-X ${name}`);
    const created = [...this.#declared].filter(([name, chain]) => !chain.builtin && !existing.has(name)).map(([name]) => name);
    for (const name of created) layout.set(name, (newRules.get(name) ?? []).map(laidManaged));

    const policies = new Map<string, Policy>();
    for (const chain of current.chains) if (chain.policy !== undefined) policies.set(chain.name, this.#declared.get(chain.name)?.policy ?? chain.policy);
    return {
      epilogue: lines.length === 0 ? "" : `${lines.join("\n")}\n`,
      loss: { chains: [], rules: lost },
      view: reachableView(layout, policies),
      chains: () => chainViews(current.chains.filter((chain) => !deleted.has(chain.name)), created, layout, policies),
      owned: [...this.#declared].filter(([name, chain]) => !chain.builtin && (!existing.has(name) || !isForeignChain(existing.get(name)!, owned))).map(([name]) => name),
      // Only a dry run asks for it: comparing 10k rules is not worth doing for every apply.
      diff: () => ({
        ...diffManagedRules(linesByChain(current.rules.filter((rule) => rule.managed).map((rule) => ({ chain: rule.chain, line: rule.key }))), linesByChain(rules)),
        foreignKept: current.rules.filter((rule) => !rule.managed && !lostSet.has(rule)).map((rule) => rule.text),
        foreignRemoved: lost.map((rule) => rule.text),
        chainsCreated: created,
        chainsDeleted: [...deleted],
      }),
      text: () => {
        const names = [...current.chains.filter((chain) => !deleted.has(chain.name)).map((chain) => chain.name), ...created];
        const lines = [`*${this.#table}`, ...names.map((name) => `:${name} ${policies.get(name) ?? "-"} [0:0]`)];
        for (const name of names) for (const rule of layout.get(name) ?? []) lines.push("text" in rule ? rule.text : rule.line);
        return `${lines.join("\n")}\nCOMMIT\n`;
      },
    };
  }
}

/**
 * The chain a rule jumps or goes to. A foreign rule without quoted text has one `-j`/`-g` word, read from its text so
 * that rules of chains nobody evaluates are never parsed (it may also be a target such as DNAT, which names no chain).
 */
function jumpOf(rule: LaidRule): string | undefined {
  if ("text" in rule && !rule.text.includes('"')) return / -[jg] (\S+)/.exec(rule.text)?.[1];
  return rule.spec.target.kind === "JUMP" ? rule.spec.target.chain : undefined;
}

/** The table after the change as the anti-lockout check walks it: INPUT and the chains it reaches. */
function reachableView(layout: ReadonlyMap<string, readonly LaidRule[]>, policies: ReadonlyMap<string, Policy>): TableView {
  const rules = new Map<string, readonly LaidRule[]>();
  const queue = ["INPUT"];
  for (let chain = queue.pop(); chain !== undefined; chain = queue.pop()) {
    const laid = layout.get(chain);
    if (laid === undefined || rules.has(chain)) continue;
    rules.set(chain, laid);
    for (const rule of laid) if (rule.spec.target.kind === "JUMP") queue.push(rule.spec.target.chain);
  }
  return { rules, policies };
}

/** A rule line without its `-A CHAIN `: what follows `-I CHAIN N` or `-D CHAIN`. */
function body(rule: RuleView): string {
  return rule.text.slice(`-A ${rule.chain} `.length);
}

function laidManaged(rule: ManagedRuleLine): LaidRule {
  return { spec: rule.spec, modeled: true, line: rule.line };
}

function groupByChain<T extends { readonly chain: string }>(rules: readonly T[]): Map<string, T[]> {
  const grouped = new Map<string, T[]>();
  for (const rule of rules) {
    let list = grouped.get(rule.chain);
    if (list === undefined) grouped.set(rule.chain, (list = []));
    list.push(rule);
  }
  return grouped;
}

function chainViews(kept: readonly ChainView[], created: readonly string[], layout: ReadonlyMap<string, readonly LaidRule[]>, policies: ReadonlyMap<string, Policy>): ChainView[] {
  const references = new Map<string, number>();
  for (const rules of layout.values()) {
    for (const rule of rules) {
      const target = jumpOf(rule);
      if (target !== undefined) references.set(target, (references.get(target) ?? 0) + 1);
    }
  }
  const view = (name: string, builtin: boolean, packets: number, bytes: number): ChainView => {
    const policy = policies.get(name);
    return { name, builtin, ...(policy === undefined ? {} : { policy }), packets, bytes, ruleCount: layout.get(name)?.length ?? 0, references: references.get(name) ?? 0 };
  };
  return [...kept.map((chain) => view(chain.name, chain.builtin, chain.packets, chain.bytes)), ...created.map((name) => view(name, false, 0, 0))];
}
