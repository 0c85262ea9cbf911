import { ServerError, underField, withField } from "../errors.js";
import type { IptablesDriver } from "../drivers/iptables-driver.js";
import type { IpsetDriver } from "../drivers/ipset-driver.js";
import { BUILTIN_CHAINS } from "../drivers/iptables-vocabulary.js";
import { renderRuleLine, renderTable } from "../drivers/iptables-render.js";
import { validateRuleSpec } from "./rule-validation.js";
import type { RestoreFeed } from "../drivers/restore-feed.js";
import type { FirewallStore, ManagedChain, TableStage } from "../store/firewall-store.js";
import { foreignRulesError, hasLoss, wholeTableDiff, wholeTableForeign, type DeclaredChain, type DeclaredChains, type WholeTableForeign } from "./foreign-rules.js";
import { wholeTableView, type ChangeOptions, type LockoutGuard } from "./lockout-guard.js";
import { ManagedScopeChange } from "./managed-scope.js";
import type { PanicMode } from "./panic-mode.js";
import { checkSet } from "./rule-references.js";
import { newRuleIds } from "./rule-identity.js";
import type { Family, Policy, RuleSpec, Table } from "./rule-model.js";
import type { RulesetDiff } from "./ruleset-diff.js";
import type { SafeMode } from "./safe-mode.js";
import { validateChainName, writable, type TableAccess } from "./table-access.js";
import type { ChainView, TableViews } from "./table-reader.js";
import { splitTable, TableSplits, withCounters } from "./table-split.js";

/** Options of ApplyRuleset. */
export interface ApplyOptions extends ChangeOptions {
  /** TABLE (default): the ruleset is the whole table; MANAGED: it replaces only what Portcullis manages. */
  readonly scope?: "TABLE" | "MANAGED";
  /** Scope TABLE: replace rules and chains of other tools too, instead of refusing with FOREIGN_RULES. */
  readonly replaceForeign?: boolean;
  /** Only compute the diff. */
  readonly dryRun?: boolean;
}

export interface ApplyOutcome {
  readonly chains: ChainView[];
  readonly ruleCount: number;
  readonly rollbackAt?: number;
  /** With dryRun: what the apply would change. */
  readonly diff?: RulesetDiff;
}

/**
 * The rules of an ApplyRuleset, read in order as they are fed to the kernel: an array, or a view that converts each
 * wire rule when it is reached (so that converting overlaps with iptables-restore's parsing too).
 */
export interface RuleSource {
  readonly length: number;
  at(index: number): { readonly chain: string; readonly spec: RuleSpec } | undefined;
}

interface PreparedRule {
  readonly id: string;
  readonly chain: string;
  /** Position in the ruleset. */
  readonly seq: number;
  readonly spec: RuleSpec;
  readonly line: string;
}

/** Rules validated and rendered between two writes to a restore: small enough for the tool to start parsing early. */
const FEED_CHUNK = 500;

/**
 * ApplyRuleset: a whole ruleset for a table, either as the whole table or as what Portcullis manages in it, or only
 * the diff it would make (dry run). Kept apart from single changes because it is built for 10k-rule rulesets: rules
 * stream into the restore while they are validated, stored and the table is read.
 */
export class RulesetApply {
  readonly #iptables: IptablesDriver;
  readonly #ipsets: IpsetDriver;
  readonly #store: FirewallStore;
  readonly #tables: TableAccess;
  readonly #lockout: LockoutGuard;
  readonly #safeMode: SafeMode;
  readonly #panic: PanicMode;
  readonly #splits = new TableSplits();

  constructor(deps: { iptables: IptablesDriver; ipsets: IpsetDriver; store: FirewallStore; tables: TableAccess; lockout: LockoutGuard; safeMode: SafeMode; panic: PanicMode }) {
    this.#iptables = deps.iptables;
    this.#ipsets = deps.ipsets;
    this.#store = deps.store;
    this.#tables = deps.tables;
    this.#lockout = deps.lockout;
    this.#safeMode = deps.safeMode;
    this.#panic = deps.panic;
  }

  /**
   * Applies a ruleset (see ApplyOptions.scope). Either way one transaction, which the kernel applies whole or not at
   * all; the tool starts at once and parses the rules while the next ones are validated and rendered here, and the
   * table is read meanwhile for the rules of other tools. Anything invalid, a missing set, a lockout or a refused
   * loss of foreign rules stops it before its COMMIT, so nothing changes. (A separate `--test` run would double the
   * cost of a big ruleset and could not make the transaction more atomic.)
   */
  async apply(family: Family, table: Table, chains: ReadonlyArray<{ name: string; policy?: Policy }>, rules: RuleSource, options: ApplyOptions): Promise<ApplyOutcome> {
    writable(table);
    const managedScope = options.scope === "MANAGED";
    const declared = declareChains(table, chains, managedScope);
    return this.#tables.locked(family, table, async () => {
      this.#panic.refuseChanges();
      if (options.dryRun === true) return this.#dryRun(family, table, declared, rules, options);
      let outcome: ApplyOutcome = { chains: [], ruleCount: 0 };
      const rollbackAt = await this.#safeMode.run(family, table, options.confirmWithin, async () => {
        outcome = managedScope ? await this.#applyManaged(family, table, declared, rules, options) : await this.#applyTable(family, table, declared, rules, options);
      });
      return { ...outcome, ...(rollbackAt === undefined ? {} : { rollbackAt }) };
    });
  }

  /** Replaces the whole table (iptables-restore); every rule becomes managed but the kept rules of other tools. */
  async #applyTable(family: Family, table: Table, declared: DeclaredChains, rules: RuleSource, options: ApplyOptions): Promise<ApplyOutcome> {
    // Rules of other tools matter only when they may not be replaced: then the table is read while the rules are fed.
    const current = options.replaceForeign === true ? undefined : this.#readQuietly(family, table);
    const feed = this.#iptables.restoreFeed(family);
    // The new managed rules are stored as a new generation, invisible until the kernel has them.
    const stage = this.#store.stageTable(family, table);
    let prepared: PreparedRule[] = [];
    let foreign: WholeTableForeign | undefined;
    let committed = false;
    try {
      // The table's chain lines without its COMMIT: the rules follow as they are ready.
      const head = renderTable(table, [...declared].map(([name, chain]) => ({ name, ...(chain.policy === undefined ? {} : { policy: chain.policy }) })), []);
      await feed.write(head.slice(0, head.lastIndexOf("COMMIT\n")));
      prepared = await this.#prepareRules(family, declared, rules, { feed, stage });
      await this.#checkSets(prepared);
      if (current !== undefined) {
        foreign = wholeTableForeign(await current, this.#tables.ownedChains(family, table), declared, prepared);
        if (hasLoss(foreign.loss)) throw foreignRulesError(foreign.loss, family, table, "Apply with scope MANAGED to replace only what Portcullis manages, or set replace_foreign to replace them too.");
      }
      await this.#lockout.check(family, table, wholeTableView(declared, prepared), options);
      await stage.stored(); // the new rules are on disk before the kernel has them
      const keptChains = new Set(foreign?.keptChains ?? []);
      // Rules of other tools the ruleset repeats stay theirs: recorded as managed, reconcile would bring them back.
      const dropped = (foreign?.keptIndices ?? []).map((i) => prepared[i]!.id);
      stage.seal([...declared].filter(([name]) => !keptChains.has(name)).map(([chain, { policy }]) => ({ chain, ...(policy === undefined ? {} : { policy }) })), dropped);
      const generation = await this.#iptables.generation();
      await feed.commit("COMMIT\n");
      // While the kernel commits: the new table split for the next apply.
      const text = feed.text;
      const split = splitTable(family, table, text, stage.index());
      await feed.done();
      committed = true;
      await this.#iptables.replaced(family, table, text, generation);
      stage.publish();
      this.#splits.remember(family, table, text, this.#store.managedRevision, split);
    } catch (error) {
      await abandon(feed, stage, committed);
      throw error;
    }
    stage.release();
    // The answer is built from what was applied: re-reading a 10k-rule table would cost as much as applying it.
    return { chains: appliedChains(declared, prepared), ruleCount: prepared.length };
  }

  /** Replaces only what Portcullis manages (ManagedScopeChange), in one `iptables-restore --noflush` transaction. */
  async #applyManaged(family: Family, table: Table, declared: DeclaredChains, rules: RuleSource, options: ApplyOptions): Promise<ApplyOutcome> {
    const feed = this.#iptables.changeFeed(family);
    const current = this.#readForManagedScope(family, table, declared);
    const change = new ManagedScopeChange(table, declared);
    const stage = this.#store.stageTable(family, table);
    let prepared: PreparedRule[] = [];
    let chains: ChainView[] = [];
    let committed = false;
    try {
      await feed.write(change.prologue());
      prepared = await this.#prepareRules(family, declared, rules, { feed, stage, beforeRule: (chain) => change.beforeRule(chain) });
      await this.#checkSets(prepared);
      const plan = change.plan(await current, this.#tables.ownedChains(family, table), prepared);
      if (hasLoss(plan.loss) && options.replaceForeign !== true) {
        throw foreignRulesError(plan.loss, family, table, "They are in or jump to chains Portcullis created that the ruleset leaves out: name those chains in chains to keep them, or set replace_foreign to remove these rules too.");
      }
      await this.#lockout.check(family, table, plan.view, options);
      await feed.write(plan.epilogue);
      await stage.stored();
      stage.seal(this.#chainRecords(family, table, declared, plan.owned), []);
      const generation = await this.#iptables.generation();
      await feed.commit("COMMIT\n");
      // While the kernel commits: the new table's text and split (for the next apply) and the answer's chains.
      const text = plan.text();
      const split = splitTable(family, table, text, stage.index());
      chains = plan.chains();
      await feed.done();
      committed = true;
      await this.#iptables.replaced(family, table, text, generation);
      stage.publish();
      this.#splits.remember(family, table, text, this.#store.managedRevision, split);
    } catch (error) {
      await abandon(feed, stage, committed);
      throw error;
    }
    stage.release();
    return { chains, ruleCount: prepared.length };
  }

  /** What an apply would change, computed like the apply itself (validation, sets, lockout), without applying. */
  async #dryRun(family: Family, table: Table, declared: DeclaredChains, rules: RuleSource, options: ApplyOptions): Promise<ApplyOutcome> {
    const current = this.#readQuietly(family, table);
    const prepared = await this.#prepareRules(family, declared, rules, {});
    await this.#checkSets(prepared);
    const owned = this.#tables.ownedChains(family, table);
    if (options.scope === "MANAGED") {
      const change = new ManagedScopeChange(table, declared);
      change.prologue();
      for (const rule of prepared) change.beforeRule(rule.chain);
      const plan = change.plan(await current, owned, prepared);
      await this.#lockout.check(family, table, plan.view, options);
      return { chains: plan.chains(), ruleCount: prepared.length, diff: plan.diff() };
    }
    const snapshot = await current;
    const foreign = wholeTableForeign(snapshot, owned, declared, prepared);
    await this.#lockout.check(family, table, wholeTableView(declared, prepared), options);
    return { chains: appliedChains(declared, prepared), ruleCount: prepared.length, diff: wholeTableDiff(snapshot, declared, prepared, foreign) };
  }

  /**
   * The table split into managed and foreign rules (table-split.ts), read in the background while rules are fed (an
   * unawaited failure is reported where it is awaited). Without counters, the text of an unchanged table is known
   * (IptablesDriver.saveRules).
   */
  #readQuietly(family: Family, table: Table): Promise<TableViews> {
    const read = this.#iptables.saveRules(family, table).then((text) => this.#split(family, table, text));
    read.catch(() => undefined);
    return read;
  }

  /**
   * The table for a managed-scope apply, in the background like #readQuietly, with the counters of the chains and of
   * the foreign rules it may put back: those in the declared chains and in chains holding managed rules, the only ones
   * it rewrites. When nothing was committed since the table was last read or written here, its remembered text and
   * those few counters (IptablesDriver.counters: one request, which also says whether the generation moved) stand for
   * an `iptables-save -c`, which is the slowest part of the apply. The text is split at once, while the tool starts.
   */
  #readForManagedScope(family: Family, table: Table, declared: DeclaredChains): Promise<TableViews> {
    const read = (async () => {
      const known = this.#iptables.remembered(family, table);
      if (known !== undefined) {
        const views = this.#split(family, table, known.text);
        const rewritten = new Set(declared.keys());
        for (const rule of views.rules) if (rule.managed) rewritten.add(rule.chain);
        const wanted = new Map<string, number[]>();
        for (const rule of views.rules) {
          if (rule.managed || !rewritten.has(rule.chain)) continue;
          const positions = wanted.get(rule.chain);
          if (positions === undefined) wanted.set(rule.chain, [rule.position]);
          else positions.push(rule.position);
        }
        const counters = await this.#iptables.counters(family, table, known.generation, wanted);
        if (counters !== undefined) {
          const byPosition = new Map([...counters.rules].map(([chain, list]) => [chain, new Map(list.map((counter, i) => [wanted.get(chain)![i]!, counter]))]));
          return withCounters(views, byPosition, counters.chains);
        }
      }
      return splitTable(family, table, await this.#iptables.save(family, table, true), this.#store.managedLines(family, table));
    })();
    read.catch(() => undefined);
    return read;
  }

  #split(family: Family, table: Table, text: string): TableViews {
    return this.#splits.split(family, table, text, this.#store.managedLines(family, table), this.#store.managedRevision);
  }

  /** The chains a managed-scope apply records: the owned user chains, declared policies, other policies as recorded. */
  #chainRecords(family: Family, table: Table, declared: DeclaredChains, owned: readonly string[]): ManagedChain[] {
    const policies = this.#store.chains(family, table).filter((chain) => chain.policy !== undefined && declared.get(chain.chain)?.policy === undefined);
    const declaredPolicies = [...declared].flatMap(([chain, { policy }]) => (policy === undefined ? [] : [{ chain, policy }]));
    return [...owned.map((chain) => ({ chain })), ...policies, ...declaredPolicies];
  }

  /**
   * Validates and renders the rules in chunks; with a feed, writes each chunk to the restore as soon as it is ready,
   * then stages it in the store (invisible until published) while the tool parses it: the store's writes overlap the
   * kernel's work instead of following it. `beforeRule` gives text to write before a rule (a managed-scope change
   * empties a chain before its first new rule).
   */
  async #prepareRules(family: Family, declared: DeclaredChains, rules: RuleSource, sinks: { feed?: RestoreFeed; stage?: TableStage; beforeRule?: (chain: string) => string }): Promise<PreparedRule[]> {
    const ids = newRuleIds(rules.length);
    const prepared: PreparedRule[] = [];
    for (let from = 0; from < rules.length; from += FEED_CHUNK) {
      let text = "";
      for (let i = from; i < Math.min(rules.length, from + FEED_CHUNK); i++) {
        const rule = rules.at(i)!;
        if (!declared.has(rule.chain)) throw new ServerError("UNKNOWN_REFERENCE", `rules[${i}].chain: chain ${rule.chain} is not among the ruleset's chains; declare it in chains`, { field: `rules[${i}].chain` });
        const spec = withField(() => validateRuleSpec(family, rule.spec), `rules[${i}]`);
        if (spec.target.kind === "JUMP" && !declared.has(spec.target.chain)) {
          throw new ServerError("UNKNOWN_REFERENCE", `rules[${i}].target.chain: chain ${spec.target.chain} is not among the ruleset's chains`, { field: `rules[${i}].target.chain` });
        }
        const line = withField(() => renderRuleLine(rule.chain, spec), `rules[${i}]`);
        prepared.push({ id: ids[i]!, chain: rule.chain, seq: i, spec, line });
        if (sinks.beforeRule !== undefined) text += sinks.beforeRule(rule.chain);
        text += `${line}\n`;
      }
      await sinks.feed?.write(text);
      sinks.stage?.add(prepared.slice(from));
    }
    return prepared;
  }

  async #checkSets(prepared: readonly PreparedRule[]): Promise<void> {
    for (let i = 0; i < prepared.length; i++) {
      const spec = prepared[i]!.spec;
      if (spec.matchSet !== undefined) await withFieldAsync(() => checkSet(this.#ipsets, spec), `rules[${i}]`);
    }
  }
}

/**
 * The chains of an ApplyRuleset: the given ones plus the built-ins left out. Replacing the whole table, a built-in
 * chain without a policy gets ACCEPT; in managed scope it keeps the one it has.
 */
function declareChains(table: Table, chains: ReadonlyArray<{ name: string; policy?: Policy }>, keepPolicies: boolean): DeclaredChains {
  const builtins = BUILTIN_CHAINS[table];
  const declared = new Map<string, DeclaredChain>();
  for (const [i, chain] of chains.entries()) {
    const builtin = builtins.includes(chain.name);
    if (!builtin) validateChainName(chain.name, `chains[${i}].name`);
    if (!builtin && chain.policy !== undefined) throw new ServerError("CHAIN_BUILTIN", `chains[${i}]: ${chain.name} is a user chain; only built-in chains have a policy`, { field: `chains[${i}].policy` });
    const policy = builtin ? chain.policy ?? (keepPolicies ? undefined : "ACCEPT") : undefined;
    declared.set(chain.name, { builtin, ...(policy === undefined ? {} : { policy }) });
  }
  for (const name of builtins) if (!declared.has(name)) declared.set(name, keepPolicies ? { builtin: true } : { builtin: true, policy: "ACCEPT" });
  return declared;
}

/** The chains exactly as ApplyRuleset wrote them: fresh counters, rule counts and references from the rules. */
function appliedChains(declared: DeclaredChains, rules: ReadonlyArray<{ chain: string; spec: RuleSpec }>): ChainView[] {
  const counts = new Map<string, number>();
  const references = new Map<string, number>();
  for (const rule of rules) {
    counts.set(rule.chain, (counts.get(rule.chain) ?? 0) + 1);
    if (rule.spec.target.kind === "JUMP") references.set(rule.spec.target.chain, (references.get(rule.spec.target.chain) ?? 0) + 1);
  }
  return [...declared].map(([name, { builtin, policy }]) => ({
    name,
    builtin,
    ...(policy === undefined ? {} : { policy }),
    packets: 0,
    bytes: 0,
    ruleCount: counts.get(name) ?? 0,
    references: references.get(name) ?? 0,
  }));
}

/**
 * After a failed apply: the tool is stopped (nothing reaches the kernel before its COMMIT) and the staged rules are
 * dropped — unless the kernel already took the change, when the seal stays for reconcile to publish it (see
 * interrupted-changes.ts): dropping it would leave the kernel's new rules to look like another tool's.
 */
async function abandon(feed: RestoreFeed, stage: TableStage, committed: boolean): Promise<void> {
  feed.abort();
  if (!committed) await stage.discard();
}

async function withFieldAsync<T>(work: () => Promise<T>, prefix: string): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw underField(error, prefix);
  }
}
