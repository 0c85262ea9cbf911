/** What an ApplyRuleset changes in a table, as rule lines (`-A CHAIN …`), for dry runs. */
export interface RulesetDiff {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: ReadonlyArray<{ readonly before: string; readonly after: string }>;
  /** Managed rules that stay as they are. */
  readonly unchanged: number;
  readonly foreignKept: readonly string[];
  readonly foreignRemoved: readonly string[];
  readonly chainsCreated: readonly string[];
  readonly chainsDeleted: readonly string[];
}

/** The managed part of a diff: rule lines per chain, before and after. */
export type ManagedDiff = Pick<RulesetDiff, "added" | "removed" | "changed" | "unchanged">;

/**
 * Compares the managed rules of each chain, now and after: the lines both start and end with are unchanged; of the
 * runs between, lines at the same place are changed (one replaced by another), the surplus added or removed. A
 * single insert, delete or edit is reported as exactly that, and the cost stays linear for 10k-rule chains (a full
 * edit distance would be quadratic).
 */
export function diffManagedRules(before: ReadonlyMap<string, readonly string[]>, after: ReadonlyMap<string, readonly string[]>): ManagedDiff {
  const added: string[] = [];
  const removed: string[] = [];
  const changed: Array<{ before: string; after: string }> = [];
  let unchanged = 0;
  for (const chain of new Set([...before.keys(), ...after.keys()])) {
    const old = before.get(chain) ?? [];
    const next = after.get(chain) ?? [];
    let prefix = 0;
    while (prefix < old.length && prefix < next.length && old[prefix] === next[prefix]) prefix++;
    let suffix = 0;
    while (suffix < old.length - prefix && suffix < next.length - prefix && old[old.length - 1 - suffix] === next[next.length - 1 - suffix]) suffix++;
    unchanged += prefix + suffix;
    const oldMiddle = old.slice(prefix, old.length - suffix);
    const newMiddle = next.slice(prefix, next.length - suffix);
    const paired = Math.min(oldMiddle.length, newMiddle.length);
    for (let i = 0; i < paired; i++) changed.push({ before: oldMiddle[i]!, after: newMiddle[i]! });
    removed.push(...oldMiddle.slice(paired));
    added.push(...newMiddle.slice(paired));
  }
  return { added, removed, changed, unchanged };
}

/** Lines grouped by chain, in order. */
export function linesByChain(rules: Iterable<{ readonly chain: string; readonly line: string }>): Map<string, string[]> {
  const grouped = new Map<string, string[]>();
  for (const rule of rules) {
    let lines = grouped.get(rule.chain);
    if (lines === undefined) grouped.set(rule.chain, (lines = []));
    lines.push(rule.line);
  }
  return grouped;
}
