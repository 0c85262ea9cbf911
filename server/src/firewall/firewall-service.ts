import { randomBytes } from "node:crypto";
import ipaddr from "ipaddr.js";
import type { Logger } from "../logger.js";
import { ServerError, underField, withField } from "../errors.js";
import { KeyedLock } from "../keyed-lock.js";
import type { EventLog } from "../events/event-log.js";
import { tableName } from "../names.js";
import type { IptablesDriver } from "../drivers/iptables-driver.js";
import type { IpsetDriver } from "../drivers/ipset-driver.js";
import { BUILTIN_CHAINS, renderRuleLine, renderTable, validateRuleSpec } from "../drivers/parse/iptables-save.js";
import type { RestoreFeed } from "../drivers/restore-feed.js";
import { TableReader, type ChainView, type RuleView, type TableViews } from "./table-reader.js";
import type { FirewallStore, ManagedChain, TableStage } from "../store/firewall-store.js";
import { findLockout, matches, type ApiPacket, type TableView } from "./lockout.js";
import { foreignRulesError, hasLoss, wholeTableDiff, wholeTableForeign, type DeclaredChain, type DeclaredChains, type WholeTableForeign } from "./foreign-rules.js";
import { ManagedScopeChange, type ManagedPlan } from "./managed-scope.js";
import { panicOffText, panicOnText, panicRules, panicRulesOnTop } from "./panic-rules.js";
import { rollbackPlan } from "./rollback-plan.js";
import { splitTable, withCounters } from "./table-split.js";
import type { RulesetDiff } from "./ruleset-diff.js";
import { expandServices, GROUPS, SERVICES, type NamedService } from "./services-catalog.js";
import { WRITABLE_TABLES, type Family, type Policy, type RuleSpec, type Table } from "./rule-model.js";

export type { ChainView, RuleView } from "./table-reader.js";

export interface TableSnapshot extends TableViews {
  readonly text: string;
}

/** Who asks, for the anti-lockout check: their address as the API sees it. */
export interface Caller {
  readonly address?: string;
}

/** Options of every change that could cut the caller off. */
export interface ChangeOptions {
  readonly caller: Caller;
  readonly allowLockout?: boolean;
  /** Safe mode: seconds until the table rolls back unless confirmed (0 = apply for good). */
  readonly confirmWithin?: number;
}

export interface ApiEndpoint {
  /** undefined when listening on every address. */
  readonly address?: string;
  readonly port: number;
}

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

const MAX_CONFIRM_SECONDS = 3600;
/** Rules validated and rendered between two writes to a restore: small enough for the tool to start parsing early. */
const FEED_CHUNK = 500;

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

/**
 * The firewall domain: chains, policies and rules of iptables/ip6tables, single changes through a long-lived
 * `iptables-restore --noflush` (one atomic COMMIT each), whole tables through one `iptables-restore` transaction,
 * safe-mode rollbacks that survive restarts, the anti-lockout check, and panic mode.
 */
export class FirewallService {
  readonly #iptables: IptablesDriver;
  readonly #ipsets: IpsetDriver;
  readonly #store: FirewallStore;
  readonly #log: Logger;
  readonly #api: ApiEndpoint;
  readonly #management: readonly string[];
  readonly #events: EventLog;
  readonly #lock = new KeyedLock();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #reader = new TableReader();

  constructor(deps: { iptables: IptablesDriver; ipsets: IpsetDriver; store: FirewallStore; events: EventLog; log: Logger; api: ApiEndpoint; managementAddresses: readonly string[] }) {
    this.#events = deps.events;
    this.#iptables = deps.iptables;
    this.#ipsets = deps.ipsets;
    this.#store = deps.store;
    this.#log = deps.log;
    this.#api = deps.api;
    this.#management = deps.managementAddresses;
  }

  close(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  // ---- reads ---------------------------------------------------------------------------------------------------

  async snapshot(family: Family, table: Table): Promise<TableSnapshot> {
    const text = await this.#iptables.save(family, table);
    const { chains, rules } = this.#reader.read(family, table, text, this.#store.managedLines(family, table), this.#store.managedRevision);
    // The text without counters is only for ExportRuleset: computed when asked for (a regex over 1 MB otherwise).
    return { get text() { return stripCounters(text); }, chains, rules };
  }

  /** How many managed rules there are, in every table (no kernel call). */
  managedRuleCount(): number {
    return this.#store.ruleCount();
  }

  async chain(family: Family, table: Table, name: string): Promise<ChainView> {
    const chain = (await this.snapshot(family, table)).chains.find((candidate) => candidate.name === name);
    if (chain === undefined) throw chainNotFound(family, table, name);
    return chain;
  }

  async rules(family: Family, table: Table, chain: string): Promise<RuleView[]> {
    const snapshot = await this.snapshot(family, table);
    if (!snapshot.chains.some((candidate) => candidate.name === chain)) throw chainNotFound(family, table, chain);
    return snapshot.rules.filter((rule) => rule.chain === chain);
  }

  async rule(family: Family, table: Table, chain: string, id: string): Promise<RuleView> {
    const rule = (await this.rules(family, table, chain)).find((candidate) => candidate.id === id);
    if (rule === undefined) throw ruleNotFound(chain, id);
    return rule;
  }

  // ---- chains --------------------------------------------------------------------------------------------------

  async createChain(family: Family, table: Table, name: string): Promise<ChainView> {
    writable(table);
    validateChainName(name);
    return this.#locked(family, table, async () => {
      const snapshot = await this.snapshot(family, table);
      if (snapshot.chains.some((chain) => chain.name === name)) {
        throw new ServerError("CHAIN_ALREADY_EXISTS", `chain ${name} already exists in the ${family} ${table} table`, { chain: name });
      }
      this.#store.putChain(family, table, { chain: name });
      try {
        await this.#iptables.command(family, ["-t", table, "-N", name]);
      } catch (error) {
        this.#store.deleteChain(family, table, name);
        throw error;
      }
      return this.chain(family, table, name);
    });
  }

  async deleteChain(family: Family, table: Table, name: string): Promise<void> {
    writable(table);
    await this.#locked(family, table, async () => {
      const snapshot = await this.snapshot(family, table);
      const chain = snapshot.chains.find((candidate) => candidate.name === name);
      if (chain === undefined) throw chainNotFound(family, table, name);
      if (chain.builtin) throw new ServerError("CHAIN_BUILTIN", `${name} is a built-in chain and cannot be deleted`, { chain: name });
      const reference = snapshot.rules.find((rule) => rule.spec.target.kind === "JUMP" && rule.spec.target.chain === name);
      if (reference !== undefined) {
        throw new ServerError("CHAIN_IN_USE", `chain ${name} cannot be deleted: rule "${reference.text}" (id ${reference.id}) jumps to it; delete that rule first`, { chain: name, rule: reference.id });
      }
      if (chain.ruleCount > 0) {
        throw new ServerError("CHAIN_NOT_EMPTY", `chain ${name} still holds ${chain.ruleCount} rule(s); delete them first`, { chain: name });
      }
      await this.#iptables.command(family, ["-t", table, "-X", name]);
      this.#store.deleteChain(family, table, name);
    });
  }

  async setPolicy(family: Family, table: Table, name: string, policy: Policy, options: ChangeOptions): Promise<{ chain: ChainView; rollbackAt?: number }> {
    writable(table);
    return this.#locked(family, table, async () => {
      this.#refuseDuringPanic();
      const snapshot = await this.snapshot(family, table);
      const chain = snapshot.chains.find((candidate) => candidate.name === name);
      if (chain === undefined) throw chainNotFound(family, table, name);
      if (!chain.builtin) throw new ServerError("CHAIN_BUILTIN", `${name} is a user chain; only built-in chains have a policy`, { chain: name });
      if (policy === "DROP") await this.#checkLockout(family, table, viewOf(snapshot, { policy: [name, policy] }), options);
      const rollbackAt = await this.#safeMode(family, table, options.confirmWithin, async () => {
        await this.#iptables.command(family, ["-t", table, "-P", name, policy]);
        this.#store.putChain(family, table, { chain: name, policy });
      });
      return { chain: await this.chain(family, table, name), ...(rollbackAt === undefined ? {} : { rollbackAt }) };
    });
  }

  // ---- rules ---------------------------------------------------------------------------------------------------

  /** Appends (position 0) or inserts a managed rule. A plain ACCEPT/LOG append touches the kernel once, no read. */
  async createRule(family: Family, table: Table, chain: string, input: RuleSpec, position: number, options: ChangeOptions): Promise<{ rule: RuleView; rollbackAt?: number }> {
    const { rules, rollbackAt } = await this.createRules(family, table, chain, [input], position, options);
    return { rule: rules[0]!, ...(rollbackAt === undefined ? {} : { rollbackAt }) };
  }

  /**
   * Makes sure a managed rule with this spec is in the chain (at `position` when it has to be created); for rules
   * Portcullis needs for itself, such as a jail set's DROP rule. Returns the rule when it created one.
   */
  async ensureRule(family: Family, table: Table, chain: string, input: RuleSpec, position: number): Promise<RuleView | undefined> {
    const line = renderRuleLine(chain, validateRuleSpec(family, input));
    if ((this.#store.managedLines(family, table).get(line)?.length ?? 0) > 0) return undefined;
    return (await this.createRule(family, table, chain, input, position, { caller: {} })).rule;
  }

  /**
   * Adds several managed rules in one atomic COMMIT, in order, appended or starting at `position`. Rules that cannot
   * affect the caller's access to the API (ACCEPT, LOG) need no read of the table. Positions in the answer are 0 for
   * appends made without that read.
   */
  async createRules(family: Family, table: Table, chain: string, inputs: readonly RuleSpec[], position: number, options: ChangeOptions): Promise<{ rules: RuleView[]; rollbackAt?: number }> {
    writable(table);
    const specs = inputs.map((input) => validateRuleSpec(family, input));
    for (const spec of specs) await this.#checkReferences(family, table, spec);
    return this.#locked(family, table, async () => {
      this.#refuseDuringPanic();
      let mayLockOut = false;
      for (const spec of specs) mayLockOut ||= await this.#mayLockOut(family, table, spec, "add", options.caller);
      if (position > 0 || mayLockOut) {
        const snapshot = await this.snapshot(family, table);
        const length = snapshot.rules.filter((rule) => rule.chain === chain).length;
        if (!snapshot.chains.some((candidate) => candidate.name === chain)) throw chainNotFound(family, table, chain);
        if (position > length + 1) {
          throw new ServerError("INVALID_POSITION", `position ${position} is past the end of chain ${chain} (${length} rules); use 1 to ${length + 1}, or 0 to append`, { field: "position" });
        }
        const start = position === 0 ? length + 1 : position;
        await this.#checkLockout(family, table, viewOf(snapshot, { insert: [chain, start, specs] }), options);
      }
      const ids = newRuleIds(specs.length);
      const lines = specs.map((spec) => renderRuleLine(chain, spec));
      const commands = position > 0 ? lines.map((line, i) => line.replace(/^-A (\S+) /, `-I $1 ${position + i} `)) : lines;
      const rollbackAt = await this.#safeMode(family, table, options.confirmWithin, async () => {
        specs.forEach((spec, i) => this.#store.addRule(family, table, ids[i]!, chain, spec, position === 1));
        try {
          await this.#iptables.change(family, `*${table}\n${commands.join("\n")}\nCOMMIT\n`);
        } catch (error) {
          for (const id of ids) this.#store.deleteRule(id);
          throw await this.#explain(error, family, table, chain);
        }
      });
      const rules = specs.map((spec, i): RuleView => ({
        chain, position: position === 0 ? 0 : position + i, spec, key: lines[i]!, id: ids[i]!, managed: true, modeled: true, text: lines[i]!, packets: 0, bytes: 0,
      }));
      return { rules, ...(rollbackAt === undefined ? {} : { rollbackAt }) };
    });
  }

  async replaceRule(family: Family, table: Table, chain: string, id: string, input: RuleSpec, options: ChangeOptions): Promise<{ rule: RuleView; rollbackAt?: number }> {
    writable(table);
    const spec = validateRuleSpec(family, input);
    await this.#checkReferences(family, table, spec);
    return this.#locked(family, table, async () => {
      this.#refuseDuringPanic();
      const snapshot = await this.snapshot(family, table);
      const old = snapshot.rules.find((rule) => rule.chain === chain && rule.id === id);
      if (old === undefined) throw ruleNotFound(chain, id);
      await this.#checkLockout(family, table, viewOf(snapshot, { replace: [chain, old.position, spec] }), options);
      const newId = newRuleId();
      const line = renderRuleLine(chain, spec);
      const rollbackAt = await this.#safeMode(family, table, options.confirmWithin, async () => {
        // Delete by position and insert at the same place in one COMMIT: the chain never lacks the rule.
        await this.#iptables.change(family, `*${table}\n-D ${chain} ${old.position}\n${line.replace(/^-A (\S+) /, `-I $1 ${old.position} `)}\nCOMMIT\n`);
        if (old.managed) this.#store.replaceRule(id, newId, spec);
        else this.#store.addRule(family, table, newId, chain, spec);
      });
      return { rule: { ...old, spec, id: newId, key: line, managed: true, modeled: true, text: line, packets: 0, bytes: 0 }, ...(rollbackAt === undefined ? {} : { rollbackAt }) };
    });
  }

  /**
   * Deletes a rule by id, by its content (`-D CHAIN <rule>`; identical rules are interchangeable): a managed one's
   * from the store without reading the table unless it may matter for the caller's access.
   */
  async deleteRule(family: Family, table: Table, chain: string, id: string, options: ChangeOptions): Promise<{ rollbackAt?: number }> {
    writable(table);
    return this.#locked(family, table, async () => {
      this.#refuseDuringPanic();
      const managed = this.#store.rule(id);
      let command: string;
      if (managed !== undefined && managed.family === family && managed.table === table && managed.chain === chain && !(await this.#mayLockOut(family, table, managed.spec, "delete", options.caller))) {
        command = renderRuleLine(chain, managed.spec).replace(/^-A /, "-D ");
      } else {
        const snapshot = await this.snapshot(family, table);
        const rule = snapshot.rules.find((candidate) => candidate.chain === chain && candidate.id === id);
        if (rule === undefined) throw ruleNotFound(chain, id);
        await this.#checkLockout(family, table, viewOf(snapshot, { remove: [chain, rule.position] }), options);
        command = rule.text.replace(/^-A /, "-D ");
      }
      const rollbackAt = await this.#safeMode(family, table, options.confirmWithin, async () => {
        try {
          await this.#iptables.change(family, `*${table}\n${command}\nCOMMIT\n`);
        } catch (error) {
          // The managed rule is gone from the kernel already (e.g. flushed by hand): forget it.
          if (managed === undefined || (await this.snapshot(family, table)).rules.some((rule) => rule.id === id)) throw error;
        }
        this.#store.deleteRule(id);
      });
      return rollbackAt === undefined ? {} : { rollbackAt };
    });
  }

  // ---- whole tables ----------------------------------------------------------------------------------------------

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
    return this.#locked(family, table, async () => {
      this.#refuseDuringPanic();
      if (options.dryRun === true) return this.#dryRun(family, table, declared, rules, options);
      let outcome: ApplyOutcome = { chains: [], ruleCount: 0 };
      const rollbackAt = await this.#safeMode(family, table, options.confirmWithin, async () => {
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
    try {
      // The table's chain lines without its COMMIT: the rules follow as they are ready.
      const head = renderTable(table, [...declared].map(([name, chain]) => ({ name, ...(chain.policy === undefined ? {} : { policy: chain.policy }) })), []);
      await feed.write(head.slice(0, head.lastIndexOf("COMMIT\n")));
      prepared = await this.#prepareRules(family, declared, rules, { feed, stage });
      await this.#checkSets(prepared);
      if (current !== undefined) {
        foreign = wholeTableForeign(await current, this.#ownedChains(family, table), declared, prepared);
        if (hasLoss(foreign.loss)) throw foreignRulesError(foreign.loss, family, table, "Apply with scope MANAGED to replace only what Portcullis manages, or set replace_foreign to replace them too.");
      }
      await this.#checkLockout(family, table, wholeTableView(declared, prepared), options);
      await stage.stored(); // the new rules are on disk before the kernel has them
      const generation = await this.#iptables.generation();
      await feed.commit("COMMIT\n");
      stage.index(); // while the kernel commits
      await feed.done();
      await this.#iptables.replaced(family, table, feed.text, generation);
      const keptChains = new Set(foreign?.keptChains ?? []);
      stage.publish([...declared].filter(([name]) => !keptChains.has(name)).map(([chain, { policy }]) => ({ chain, ...(policy === undefined ? {} : { policy }) })));
    } catch (error) {
      feed.abort();
      await stage.discard();
      throw error;
    }
    stage.release();
    // Rules of other tools the ruleset repeats stay theirs: recorded as managed, reconcile would bring them back.
    for (const i of foreign?.keptIndices ?? []) this.#store.deleteRule(prepared[i]!.id);
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
    let plan: ManagedPlan;
    try {
      await feed.write(change.prologue());
      prepared = await this.#prepareRules(family, declared, rules, { feed, stage, beforeRule: (chain) => change.beforeRule(chain) });
      await this.#checkSets(prepared);
      plan = change.plan(await current, this.#ownedChains(family, table), prepared);
      if (hasLoss(plan.loss) && options.replaceForeign !== true) {
        throw foreignRulesError(plan.loss, family, table, "They are in or jump to chains Portcullis created that the ruleset leaves out: name those chains in chains to keep them, or set replace_foreign to remove these rules too.");
      }
      await this.#checkLockout(family, table, plan.view, options);
      await feed.write(plan.epilogue);
      await stage.stored();
      const generation = await this.#iptables.generation();
      await feed.commit("COMMIT\n");
      stage.index();
      const text = plan.text(); // while the kernel commits
      await feed.done();
      await this.#iptables.replaced(family, table, text, generation);
      stage.publish(this.#chainRecords(family, table, declared, plan.owned));
    } catch (error) {
      feed.abort();
      await stage.discard();
      throw error;
    }
    stage.release();
    return { chains: plan.chains, ruleCount: prepared.length };
  }

  /** What an apply would change, computed like the apply itself (validation, sets, lockout), without applying. */
  async #dryRun(family: Family, table: Table, declared: DeclaredChains, rules: RuleSource, options: ApplyOptions): Promise<ApplyOutcome> {
    const current = this.#readQuietly(family, table);
    const prepared = await this.#prepareRules(family, declared, rules, {});
    await this.#checkSets(prepared);
    const owned = this.#ownedChains(family, table);
    if (options.scope === "MANAGED") {
      const change = new ManagedScopeChange(table, declared);
      change.prologue();
      for (const rule of prepared) change.beforeRule(rule.chain);
      const plan = change.plan(await current, owned, prepared);
      await this.#checkLockout(family, table, plan.view, options);
      return { chains: plan.chains, ruleCount: prepared.length, diff: plan.diff() };
    }
    const snapshot = await current;
    const foreign = wholeTableForeign(snapshot, owned, declared, prepared);
    await this.#checkLockout(family, table, wholeTableView(declared, prepared), options);
    return { chains: appliedChains(declared, prepared), ruleCount: prepared.length, diff: wholeTableDiff(snapshot, declared, prepared, foreign) };
  }

  /**
   * The table split into managed and foreign rules (table-split.ts), read in the background while rules are fed (an
   * unawaited failure is reported where it is awaited). Without counters, the text of an unchanged table is known
   * (IptablesDriver.saveRules).
   */
  #readQuietly(family: Family, table: Table): Promise<TableViews> {
    const read = this.#iptables.saveRules(family, table).then((text) => splitTable(family, table, text, this.#store.managedLines(family, table)));
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
      const managed = this.#store.managedLines(family, table);
      const known = this.#iptables.remembered(family, table);
      if (known !== undefined) {
        const views = splitTable(family, table, known.text, managed);
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
      return splitTable(family, table, await this.#iptables.save(family, table, true), managed);
    })();
    read.catch(() => undefined);
    return read;
  }

  /** User chains Portcullis created in this table. */
  #ownedChains(family: Family, table: Table): Set<string> {
    return new Set(this.#store.chains(family, table).filter((chain) => chain.policy === undefined).map((chain) => chain.chain));
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
    for (const [i, rule] of prepared.entries()) if (rule.spec.matchSet !== undefined) await withFieldAsync(() => this.#checkSet(rule.spec), `rules[${i}]`);
  }

  /** Keeps what safe mode applied: the pending rollback is dropped. */
  async confirm(family: Family, table: Table): Promise<void> {
    return this.#locked(family, table, async () => {
      if (!this.#store.rollbacks().some((rollback) => rollback.family === family && rollback.table === table)) {
        throw new ServerError("NO_PENDING_ROLLBACK", `no safe-mode change of the ${family} ${table} table is waiting for confirmation`, { family, table });
      }
      this.#store.deleteRollback(family, table);
      clearTimeout(this.#timers.get(`${family}/${table}`));
      this.#timers.delete(`${family}/${table}`);
      this.#log.info({ family, table }, "safe-mode change confirmed");
    });
  }

  // ---- services ------------------------------------------------------------------------------------------------

  services(): { services: readonly NamedService[]; groups: Readonly<Record<string, readonly string[]>> } {
    return { services: SERVICES, groups: GROUPS };
  }

  async allowService(family: Family, chain: string, names: readonly string[], source: { address: string; negate: boolean } | undefined, options: ChangeOptions): Promise<RuleView[]> {
    const { services, unknown } = expandServices(names);
    if (unknown !== undefined || services.length === 0) {
      throw new ServerError("UNKNOWN_SERVICE", `unknown service "${unknown ?? ""}"; known: ${[...Object.keys(GROUPS), ...SERVICES.map((service) => service.name)].join(", ")}`, { field: "services" });
    }
    // One ACCEPT per port, as the seed writes them, all in one COMMIT: the service opens whole or not at all.
    const specs = services.flatMap((service) => service.ports.map((port): RuleSpec => ({
      protocol: service.protocol,
      ...(source === undefined ? {} : { source }),
      destinationPort: { ports: [{ first: port, last: port }], negate: false },
      comment: service.name,
      target: { kind: "ACCEPT" },
    })));
    return (await this.createRules(family, "filter", chain, specs, 0, options)).rules;
  }

  // ---- panic mode ----------------------------------------------------------------------------------------------

  panicStatus(): { enabled: boolean; managementAddresses: readonly string[] } {
    return { enabled: this.#store.panicSnapshots().length > 0, managementAddresses: this.#management };
  }

  /**
   * Drops everything but the API port from the management addresses, in both families: rules on top of the built-in
   * chains and DROP policies (see panic-rules.ts), so that every other rule, of Portcullis or of other tools, stays
   * where it is. Saves the policies it replaces.
   */
  async enablePanic(): Promise<{ enabled: boolean; managementAddresses: readonly string[] }> {
    return this.#lock.with(["ipv4/filter", "ipv6/filter"], async () => {
      if (this.#store.panicSnapshots().length > 0) throw new ServerError("PANIC_MODE", "panic mode is already on; disable it first");
      for (const family of ["ipv4", "ipv6"] as const) {
        const rules = panicRules(family, this.#management.filter((address) => familyOfAddress(address) === family), this.#api.port);
        this.#store.putPanicSnapshot(family, await this.#iptables.save(family, "filter", false));
        await this.#iptables.change(family, panicOnText(rules));
      }
      this.#log.warn({ managementAddresses: this.#management, port: this.#api.port }, "panic mode enabled: all traffic but the API from management addresses is dropped");
      return this.panicStatus();
    });
  }

  /** Removes panic mode's rules and puts the saved policies back; nothing else changes. */
  async disablePanic(): Promise<{ enabled: boolean; managementAddresses: readonly string[] }> {
    return this.#lock.with(["ipv4/filter", "ipv6/filter"], async () => {
      const snapshots = this.#store.panicSnapshots();
      if (snapshots.length === 0) throw new ServerError("PANIC_MODE", "panic mode is not on");
      for (const snapshot of snapshots) {
        const current = await this.snapshot(snapshot.family, "filter");
        if (panicRulesOnTop(current.rules)) await this.#iptables.change(snapshot.family, panicOffText(current.rules, snapshot.kernel));
        else await this.#iptables.restore(snapshot.family, snapshot.kernel);
      }
      this.#store.clearPanic();
      this.#log.warn("panic mode disabled: the previous rulesets are back");
      return this.panicStatus();
    });
  }

  // ---- reconciliation ------------------------------------------------------------------------------------------

  /**
   * After a start: due safe-mode rollbacks happen now, pending ones are re-armed; managed chains, policies and
   * rules the kernel lost (reboot) come back, rules appended in their recorded order. Skipped during panic mode.
   */
  async reconcile(): Promise<{ rulesRestored: number }> {
    for (const rollback of this.#store.rollbacks()) {
      if (!this.#timers.has(`${rollback.family}/${rollback.table}`)) this.#arm(rollback.family, rollback.table as Table, rollback.deadline);
    }
    if (this.#store.panicSnapshots().length > 0) return { rulesRestored: 0 };
    let rulesRestored = 0;
    for (const family of ["ipv4", "ipv6"] as const) {
      for (const table of WRITABLE_TABLES) {
        const managed = this.#store.table(family, table);
        if (managed.chains.length === 0 && managed.rules.length === 0) continue;
        await this.#locked(family, table, async () => {
          const snapshot = await this.snapshot(family, table);
          const lines: string[] = [];
          for (const chain of managed.chains) {
            const present = snapshot.chains.find((candidate) => candidate.name === chain.chain);
            if (present === undefined && chain.policy === undefined) lines.push(`:${chain.chain} - [0:0]`);
            if (present !== undefined && chain.policy !== undefined && present.policy !== chain.policy) lines.push(`:${chain.chain} ${chain.policy} [0:0]`);
          }
          const ids = new Set(snapshot.rules.map((rule) => rule.id));
          for (const rule of managed.rules) {
            if (ids.has(rule.id)) continue;
            lines.push(renderRuleLine(rule.chain, rule.spec));
            rulesRestored++;
          }
          if (lines.length === 0) return;
          await this.#iptables.change(family, `*${table}\n${lines.join("\n")}\nCOMMIT\n`);
          this.#log.warn({ family, table, lines: lines.length }, "managed firewall state restored in the kernel");
          this.#events.append({ type: "STATE_REPAIRED", resource: tableName({ family, table }), attributes: { count: String(lines.length) } }, "system", "system");
        });
      }
    }
    return { rulesRestored };
  }

  // ---- helpers -------------------------------------------------------------------------------------------------

  #locked<T>(family: Family, table: Table, work: () => Promise<T>): Promise<T> {
    return this.#lock.with([`${family}/${table}`], work);
  }

  #refuseDuringPanic(): void {
    if (this.#store.panicSnapshots().length > 0) throw new ServerError("PANIC_MODE", "panic mode is on; disable it before changing rules");
  }

  /** Snapshots the table before a safe-mode change and arms the rollback; returns its deadline. */
  async #safeMode(family: Family, table: Table, confirmWithin: number | undefined, change: () => Promise<void>): Promise<number | undefined> {
    if (confirmWithin === undefined || confirmWithin === 0) {
      await change();
      return undefined;
    }
    if (!Number.isInteger(confirmWithin) || confirmWithin < 1 || confirmWithin > MAX_CONFIRM_SECONDS) {
      throw new ServerError("INVALID_TIMEOUT", `confirm_within must be from 1 to ${MAX_CONFIRM_SECONDS} seconds`, { field: "confirm_within" });
    }
    const existing = this.#store.rollbacks().find((rollback) => rollback.family === family && rollback.table === table);
    // A second change while one is pending keeps the first snapshot: a rollback returns to the last confirmed state.
    const deadline = existing?.deadline ?? Date.now() + confirmWithin * 1000;
    if (existing === undefined) {
      const kernel = await this.#iptables.save(family, table, false);
      this.#store.putRollback({ family, table, deadline, kernel, managed: this.#store.table(family, table) });
    }
    try {
      await change();
    } catch (error) {
      if (existing === undefined) this.#store.deleteRollback(family, table);
      throw error;
    }
    this.#arm(family, table, deadline);
    return deadline;
  }

  #arm(family: Family, table: Table, deadline: number): void {
    const key = `${family}/${table}`;
    clearTimeout(this.#timers.get(key));
    const timer = setTimeout(() => void this.#rollBack(family, table), Math.max(0, deadline - Date.now()));
    timer.unref();
    this.#timers.set(key, timer);
  }

  async #rollBack(family: Family, table: Table): Promise<void> {
    this.#timers.delete(`${family}/${table}`);
    try {
      await this.#locked(family, table, async () => {
        const rollback = this.#store.rollbacks().find((candidate) => candidate.family === family && candidate.table === table);
        if (rollback === undefined) return;
        const plan = rollbackPlan(family, table, rollback.kernel, rollback.managed, await this.snapshot(family, table), this.#ownedChains(family, table));
        if (plan.whole) {
          await this.#iptables.restore(family, rollback.kernel);
        } else {
          const feed = this.#iptables.changeFeed(family);
          await feed.commit(plan.text);
          await feed.done();
        }
        this.#store.replaceTable(family, table, rollback.managed);
        this.#store.deleteRollback(family, table);
        this.#log.warn({ family, table }, "safe-mode change not confirmed in time: previous ruleset restored");
        this.#events.append({ type: "RULESET_ROLLED_BACK", resource: tableName({ family, table }) }, "system", "system");
      });
    } catch (error) {
      this.#log.error({ err: error, family, table }, "safe-mode rollback failed; retrying in 5 s");
      this.#arm(family, table, Date.now() + 5000);
    }
  }

  /** Whether a rule, added or deleted, could change the caller's access: otherwise no table read is needed. */
  async #mayLockOut(family: Family, table: Table, spec: RuleSpec, change: "add" | "delete", caller: Caller): Promise<boolean> {
    if (table !== "filter") return false;
    const kind = spec.target.kind;
    // Adding an ACCEPT or LOG can only let more in; deleting a DROP or REJECT likewise.
    if (change === "add" ? kind === "ACCEPT" || kind === "LOG" : kind === "DROP" || kind === "REJECT" || kind === "LOG") return false;
    const packets = this.#apiPackets(family, caller);
    for (const packet of packets) {
      if ((await matches(spec, packet, (set, address) => this.#inSet(set, address))) !== "no") return true;
    }
    return false;
  }

  async #checkLockout(family: Family, table: Table, view: TableView, options: ChangeOptions): Promise<void> {
    if (table !== "filter") return;
    for (const packet of this.#apiPackets(family, options.caller)) {
      const reason = await findLockout(view, packet, (set, address) => this.#inSet(set, address));
      if (reason === undefined) continue;
      if (options.allowLockout === true && (options.confirmWithin ?? 0) > 0) {
        this.#log.warn({ family, reason, caller: packet.source }, "change may cut the caller off the API; allowed in safe mode");
        return;
      }
      throw new ServerError(
        "LOCKOUT",
        `this change would cut ${packet.source} off the API (tcp port ${packet.destinationPort}): ${reason}. Add a rule that accepts the API first, or repeat with allow_lockout and confirm_within so that it rolls back unless confirmed`,
        { family, caller: packet.source },
      );
    }
  }

  /** The API connections to protect: the caller's, if of this family (a loopback caller enters through lo). */
  #apiPackets(family: Family, caller?: Caller): ApiPacket[] {
    const source = caller?.address;
    if (source === undefined || familyOfAddress(source) !== family) return [];
    const loopback = ipaddr.parse(source).range() === "loopback";
    const destination = this.#api.address !== undefined && familyOfAddress(this.#api.address) === family ? this.#api.address : undefined;
    return [{ source, destinationPort: this.#api.port, ...(destination === undefined ? {} : { destination }), ...(loopback ? { inInterface: "lo" } : {}) }];
  }

  async #inSet(set: string, address: string): Promise<boolean> {
    try {
      return await this.#ipsets.test(set, address);
    } catch {
      return true; // unknown: assume the worst for a drop
    }
  }

  /** A rule may only name sets and chains that exist, so that nothing half-valid reaches the kernel. */
  async #checkReferences(family: Family, table: Table, spec: RuleSpec): Promise<void> {
    await this.#checkSet(spec);
    if (spec.target.kind === "JUMP") {
      const target = spec.target.chain;
      const snapshot = await this.snapshot(family, table);
      if (!snapshot.chains.some((chain) => chain.name === target && !chain.builtin)) {
        throw new ServerError("UNKNOWN_REFERENCE", `rule.target.chain: there is no user chain ${target} in the ${family} ${table} table; create it first`, { field: "rule.target.chain", chain: target });
      }
    }
  }

  async #checkSet(spec: RuleSpec): Promise<void> {
    if (spec.matchSet === undefined) return;
    if ((await this.#ipsets.get(spec.matchSet.set)) === undefined) {
      throw new ServerError("UNKNOWN_REFERENCE", `rule.match_set.set: set "${spec.matchSet.set}" does not exist; create it first`, { field: "rule.match_set.set", ipset: spec.matchSet.set });
    }
  }

  /** A refused restore, explained: a missing chain is the usual cause. */
  async #explain(error: unknown, family: Family, table: Table, chain: string): Promise<unknown> {
    if (!(error instanceof ServerError) || error.reason !== "RULESET_REJECTED") return error;
    const snapshot = await this.snapshot(family, table).catch(() => undefined);
    if (snapshot !== undefined && !snapshot.chains.some((candidate) => candidate.name === chain)) return chainNotFound(family, table, chain);
    return error;
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

function writable(table: Table): void {
  if (!WRITABLE_TABLES.includes(table)) throw new ServerError("TABLE_READ_ONLY", `the ${table} table is read-only through Portcullis; only filter can be changed`, { table });
}

function validateChainName(name: string, field = "chain_id"): void {
  if (!/^[A-Za-z0-9_.-]{1,28}$/.test(name) || name.startsWith("-")) {
    throw new ServerError("INVALID_CHAIN_NAME", `${field} must be 1 to 28 characters of letters, digits, _ . - (not starting with -), got "${name.slice(0, 40)}"`, { field, value: name.slice(0, 40) });
  }
}

/**
 * Fresh rule ids (12 hex digits). Many at once (ApplyRuleset) share a random prefix and count up: ids in order make
 * the store's id index grow at its end instead of at 10k random places.
 */
function newRuleIds(count: number): string[] {
  if (count <= 1) return [randomBytes(6).toString("hex")];
  const prefix = randomBytes(3).toString("hex");
  return Array.from({ length: count }, (_, i) => `${prefix}${i.toString(16).padStart(6, "0")}`);
}

function newRuleId(): string {
  return randomBytes(6).toString("hex");
}

function stripCounters(text: string): string {
  return text.replace(/^\[\d+:\d+\] /gm, "");
}

function familyOfAddress(address: string): Family {
  return ipaddr.parse(address.split("/")[0]!).kind() === "ipv4" ? "ipv4" : "ipv6";
}

function chainNotFound(family: Family, table: string, chain: string): ServerError {
  return new ServerError("CHAIN_NOT_FOUND", `there is no chain ${chain} in the ${family} ${table} table`, { chain });
}

function ruleNotFound(chain: string, id: string): ServerError {
  return new ServerError("RULE_NOT_FOUND", `chain ${chain} has no rule with id ${id} (ListRules shows the ids)`, { chain, rule: id });
}

function groupRules(rules: ReadonlyArray<{ chain: string; spec: RuleSpec; modeled: boolean }>): Map<string, Array<{ spec: RuleSpec; modeled: boolean }>> {
  const grouped = new Map<string, Array<{ spec: RuleSpec; modeled: boolean }>>();
  for (const rule of rules) {
    let list = grouped.get(rule.chain);
    if (list === undefined) grouped.set(rule.chain, (list = []));
    list.push({ spec: rule.spec, modeled: rule.modeled });
  }
  return grouped;
}

/** The table as it would be after one change, for the lockout check. */
function viewOf(snapshot: TableSnapshot, change: { policy?: [string, Policy]; insert?: [string, number, readonly RuleSpec[]]; replace?: [string, number, RuleSpec]; remove?: [string, number] }): TableView {
  const rules = groupRules(snapshot.rules);
  const policies = new Map(snapshot.chains.filter((chain) => chain.policy !== undefined).map((chain) => [chain.name, chain.policy!]));
  if (change.policy !== undefined) policies.set(change.policy[0], change.policy[1]);
  const edit = (chain: string): Array<{ spec: RuleSpec; modeled: boolean }> => {
    let list = rules.get(chain);
    if (list === undefined) rules.set(chain, (list = []));
    return list;
  };
  if (change.insert !== undefined) edit(change.insert[0]).splice(change.insert[1] - 1, 0, ...change.insert[2].map((spec) => ({ spec, modeled: true })));
  if (change.replace !== undefined) edit(change.replace[0]).splice(change.replace[1] - 1, 1, { spec: change.replace[2], modeled: true });
  if (change.remove !== undefined) edit(change.remove[0]).splice(change.remove[1] - 1, 1);
  return { rules, policies };
}

/** A whole table as ApplyRuleset writes it, for the lockout check. */
function wholeTableView(declared: DeclaredChains, rules: readonly PreparedRule[]): TableView {
  return {
    rules: groupRules(rules.map((rule) => ({ chain: rule.chain, spec: rule.spec, modeled: true }))),
    policies: new Map([...declared].flatMap(([name, { policy }]) => (policy === undefined ? [] : [[name, policy] as const]))),
  };
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

async function withFieldAsync<T>(work: () => Promise<T>, prefix: string): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw underField(error, prefix);
  }
}
