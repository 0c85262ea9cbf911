import { ServerError } from "../errors.js";
import type { Policy } from "./rule-model.js";
import { diffManagedRules, linesByChain, type RulesetDiff } from "./ruleset-diff.js";
import type { ChainView, RuleView, TableViews } from "./table-reader.js";

/**
 * Rules and chains of other tools ("foreign"): a rule is foreign when no managed rule has its content (see
 * rule-identity.ts), a user chain when Portcullis did not create it (Docker's DOCKER and DOCKER-USER, fail2ban's
 * f2b-*, Kubernetes' KUBE-* and cali-*). Built-in chains belong to nobody: their policies are Portcullis's to set,
 * their rules may be of either kind.
 */

/** A chain of an ApplyRuleset: built-in, with a policy (scope MANAGED: undefined keeps the current one), or a user chain. */
export interface DeclaredChain {
  readonly builtin: boolean;
  readonly policy?: Policy;
}

export type DeclaredChains = ReadonlyMap<string, DeclaredChain>;

/** A new rule of an ApplyRuleset: its chain and canonical line (renderRuleLine). */
export interface NewRuleLine {
  readonly chain: string;
  readonly line: string;
}

/** Foreign rules and chains a change removes (or, replacing a whole table, changes). */
export interface ForeignLoss {
  /** Foreign user chains the change deletes. */
  readonly chains: readonly string[];
  /** The foreign rules it removes, as they are now. */
  readonly rules: readonly RuleView[];
}

export function isForeignChain(chain: ChainView, owned: ReadonlySet<string>): boolean {
  return !chain.builtin && !owned.has(chain.name);
}

export function hasLoss(loss: ForeignLoss): boolean {
  return loss.chains.length > 0 || loss.rules.length > 0;
}

/** What replacing a whole table does to the rules of other tools. */
export interface WholeTableForeign {
  readonly loss: ForeignLoss;
  readonly kept: readonly RuleView[];
  /** Indices of the new rules that are kept foreign rules: they stay foreign instead of becoming managed. */
  readonly keptIndices: readonly number[];
  /** Foreign user chains the new table declares and keeps: they stay foreign (not recorded as created by Portcullis). */
  readonly keptChains: readonly string[];
}

/**
 * Replacing the whole table with `rules` in `declared` chains keeps a foreign rule only when the new table has the
 * same rule line in the same chain, the foreign rules of a chain in their order; a foreign chain the new table does not
 * declare is deleted. Everything else of other tools is lost.
 */
export function wholeTableForeign(current: TableViews, owned: ReadonlySet<string>, declared: DeclaredChains, rules: readonly NewRuleLine[]): WholeTableForeign {
  const byChain = new Map<string, number[]>();
  for (let i = 0; i < rules.length; i++) {
    const chain = rules[i]!.chain;
    let indices = byChain.get(chain);
    if (indices === undefined) byChain.set(chain, (indices = []));
    indices.push(i);
  }
  const lostChains = new Set(current.chains.filter((chain) => isForeignChain(chain, owned) && !declared.has(chain.name)).map((chain) => chain.name));
  const next = new Map<string, number>(); // per chain: how far into its new rules the foreign ones were found
  const lost: RuleView[] = [];
  const kept: RuleView[] = [];
  const keptIndices: number[] = [];
  for (const rule of current.rules) {
    if (rule.managed) continue;
    const candidates = lostChains.has(rule.chain) ? [] : byChain.get(rule.chain) ?? [];
    let at = next.get(rule.chain) ?? 0;
    // Kept means the same line: a rule written in another spelling would be printed differently afterwards.
    while (at < candidates.length && rules[candidates[at]!]!.line !== rule.text) at++;
    if (at < candidates.length) {
      kept.push(rule);
      keptIndices.push(candidates[at]!);
      next.set(rule.chain, at + 1);
    } else {
      lost.push(rule);
    }
  }
  const keptChains = current.chains.filter((chain) => isForeignChain(chain, owned) && declared.has(chain.name)).map((chain) => chain.name);
  return { loss: { chains: [...lostChains], rules: lost }, kept, keptIndices, keptChains };
}

/** FAILED_PRECONDITION / FOREIGN_RULES naming the chains and how many rules, with what to do instead. */
export function foreignRulesError(loss: ForeignLoss, family: string, table: string, instead: string): ServerError {
  const counts = new Map<string, number>();
  for (const chain of loss.chains) counts.set(chain, 0);
  for (const rule of loss.rules) counts.set(rule.chain, (counts.get(rule.chain) ?? 0) + 1);
  const deleted = new Set(loss.chains);
  const parts = [...counts].map(([chain, count]) => `${chain} (${deleted.has(chain) ? "chain deleted, " : ""}${count} rule${count === 1 ? "" : "s"})`);
  const shown = parts.length > 12 ? [...parts.slice(0, 12), `and ${parts.length - 12} more chains`] : parts;
  return new ServerError(
    "FOREIGN_RULES",
    `this apply would remove or change ${loss.rules.length} rule(s) of other tools (Docker, fail2ban, …) in the ${family} ${table} table: ${shown.join(", ")}. ${instead}`,
    { chains: [...counts.keys()].join(",").slice(0, 1000), rules: String(loss.rules.length) },
  );
}

/** What replacing the whole table does: managed rules compared chain by chain, foreign ones kept or lost. */
export function wholeTableDiff(current: TableViews, declared: DeclaredChains, rules: readonly NewRuleLine[], foreign: WholeTableForeign): RulesetDiff {
  const keptIndices = new Set(foreign.keptIndices);
  const existing = new Set(current.chains.map((chain) => chain.name));
  return {
    ...diffManagedRules(
      linesByChain(current.rules.filter((rule) => rule.managed).map((rule) => ({ chain: rule.chain, line: rule.key }))),
      linesByChain(rules.filter((_, i) => !keptIndices.has(i))),
    ),
    foreignKept: foreign.kept.map((rule) => rule.text),
    foreignRemoved: foreign.loss.rules.map((rule) => rule.text),
    chainsCreated: [...declared].filter(([name, chain]) => !chain.builtin && !existing.has(name)).map(([name]) => name),
    chainsDeleted: current.chains.filter((chain) => !chain.builtin && !declared.has(chain.name)).map((chain) => chain.name),
  };
}
