import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { EventLog } from "../events/event-log.js";
import type { ApiCall } from "../events/api-call.js";
import { chainName, ruleName, tableName } from "../names.js";
import type { IptablesDriver } from "../drivers/iptables-driver.js";
import type { IpsetDriver } from "../drivers/ipset-driver.js";
import { renderRuleLine } from "../drivers/iptables-render.js";
import { validateRuleSpec } from "./rule-validation.js";
import type { FirewallStore, RuleChange } from "../store/firewall-store.js";
import { LockoutGuard, viewOf, type ApiEndpoint, type ChangeOptions, type Safeguards } from "./lockout-guard.js";
import { PanicMode, type PanicStatus } from "./panic-mode.js";
import { checkReferences } from "./rule-references.js";
import { newRuleIds } from "./rule-identity.js";
import { RulesetApply, type ApplyOptions, type ApplyOutcome, type RuleSource } from "./ruleset-apply.js";
import { SafeMode } from "./safe-mode.js";
import { restoreManagedState } from "./firewall-reconcile.js";
import { finishInterruptedChanges } from "./interrupted-changes.js";
import { expandServices, GROUPS, SERVICES, type NamedService } from "./services-catalog.js";
import { chainNotFound, TableAccess, validateChainName, writable, type TableSnapshot } from "./table-access.js";
import type { ChainView, RuleView } from "./table-reader.js";
import type { Family, Policy, RuleSpec, Table } from "./rule-model.js";

export type { ChainView, RuleView } from "./table-reader.js";
export type { TableSnapshot } from "./table-access.js";

/** A page of a chain's rules (see rulesPage). */
export interface RulePage {
  readonly rules: readonly RuleView[];
  readonly totalSize: number;
  /** Where the next page starts, when there is one. */
  readonly nextAfter?: string;
}

/**
 * The firewall domain: chains, policies and rules of iptables/ip6tables, single changes through a long-lived
 * `iptables-restore --noflush` (one atomic COMMIT each) and the services catalogue. The rest has a file of its own
 * that this service hands over to: whole rulesets (ruleset-apply.ts), safe mode (safe-mode.ts), panic mode
 * (panic-mode.ts), the anti-lockout check (lockout-guard.ts) and the repair of managed state (firewall-reconcile.ts).
 * Each change asked for through the API records its event with the ApiCall it was made for.
 */
export class FirewallService {
  readonly #iptables: IptablesDriver;
  readonly #ipsets: IpsetDriver;
  readonly #store: FirewallStore;
  readonly #log: Logger;
  readonly #events: EventLog;
  readonly #tables: TableAccess;
  readonly #lockout: LockoutGuard;
  readonly #safeMode: SafeMode;
  readonly #panic: PanicMode;
  readonly #ruleset: RulesetApply;

  constructor(deps: { iptables: IptablesDriver; ipsets: IpsetDriver; store: FirewallStore; events: EventLog; log: Logger; api: ApiEndpoint; managementAddresses: readonly string[] }) {
    this.#events = deps.events;
    this.#iptables = deps.iptables;
    this.#ipsets = deps.ipsets;
    this.#store = deps.store;
    this.#log = deps.log;
    this.#tables = new TableAccess(deps.iptables, deps.store);
    this.#lockout = new LockoutGuard({ ipsets: deps.ipsets, api: deps.api, log: deps.log });
    this.#safeMode = new SafeMode({ iptables: deps.iptables, store: deps.store, tables: this.#tables, events: deps.events, log: deps.log });
    this.#panic = new PanicMode({ iptables: deps.iptables, store: deps.store, tables: this.#tables, log: deps.log, api: deps.api, managementAddresses: deps.managementAddresses });
    this.#ruleset = new RulesetApply({ iptables: deps.iptables, ipsets: deps.ipsets, store: deps.store, tables: this.#tables, lockout: this.#lockout, safeMode: this.#safeMode, panic: this.#panic });
  }

  close(): void {
    this.#safeMode.close();
  }

  // ---- reads ---------------------------------------------------------------------------------------------------

  snapshot(family: Family, table: Table): Promise<TableSnapshot> {
    return this.#tables.snapshot(family, table);
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

  /**
   * A page of a chain's rules after the one `after` names (`id@position`, as `nextAfter` gives it; "" for the first
   * page). If that rule moved or went, the page continues from its old position.
   */
  async rulesPage(family: Family, table: Table, chain: string, after: string, size: number): Promise<RulePage> {
    const rules = await this.rules(family, table, chain);
    const [afterId, afterPosition] = after === "" ? ["", 0] : (after.split("@") as [string, string]);
    const found = afterId === "" ? -1 : rules.findIndex((rule) => rule.id === afterId);
    const start = afterId === "" ? 0 : found >= 0 ? found + 1 : Math.min(rules.length, Number(afterPosition));
    const page = rules.slice(start, start + size);
    const last = page[page.length - 1];
    return { rules: page, totalSize: rules.length, ...(start + size < rules.length && last !== undefined ? { nextAfter: `${last.id}@${last.position}` } : {}) };
  }

  async rule(family: Family, table: Table, chain: string, id: string): Promise<RuleView> {
    const rule = (await this.rules(family, table, chain)).find((candidate) => candidate.id === id);
    if (rule === undefined) throw ruleNotFound(chain, id);
    return rule;
  }

  // ---- chains --------------------------------------------------------------------------------------------------

  async createChain(family: Family, table: Table, name: string, call: ApiCall): Promise<ChainView> {
    writable(table);
    validateChainName(name);
    const chain = await this.#tables.locked(family, table, async () => {
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
    call.record({ type: "CHAIN_CREATED", resource: chainName({ family, table }, chain.name) });
    return chain;
  }

  async deleteChain(family: Family, table: Table, name: string, call: ApiCall): Promise<void> {
    writable(table);
    await this.#tables.locked(family, table, async () => {
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
    call.record({ type: "CHAIN_DELETED", resource: chainName({ family, table }, name) });
  }

  async setPolicy(family: Family, table: Table, name: string, policy: Policy, call: ApiCall, safeguards: Safeguards): Promise<{ chain: ChainView; rollbackAt?: number }> {
    writable(table);
    const options: ChangeOptions = { ...safeguards, caller: call };
    const changed = await this.#tables.locked(family, table, async () => {
      this.#panic.refuseChanges();
      const snapshot = await this.snapshot(family, table);
      const chain = snapshot.chains.find((candidate) => candidate.name === name);
      if (chain === undefined) throw chainNotFound(family, table, name);
      if (!chain.builtin) throw new ServerError("CHAIN_BUILTIN", `${name} is a user chain; only built-in chains have a policy`, { chain: name });
      if (policy === "DROP") await this.#lockout.check(family, table, viewOf(snapshot, { policy: [name, policy] }), options);
      const rollbackAt = await this.#safeMode.run(family, table, options.confirmWithin, async () => {
        await this.#iptables.command(family, ["-t", table, "-P", name, policy]);
        this.#store.putChain(family, table, { chain: name, policy });
      });
      return { chain: await this.chain(family, table, name), ...(rollbackAt === undefined ? {} : { rollbackAt }) };
    });
    call.record({ type: "POLICY_SET", resource: chainName({ family, table }, name), attributes: { policy: changed.chain.policy === "DROP" ? "DROP" : "ACCEPT", ...safeModeAttributes(safeguards) } });
    return changed;
  }

  // ---- rules ---------------------------------------------------------------------------------------------------

  /** Appends (position 0) or inserts a managed rule. A plain ACCEPT/LOG append touches the kernel once, no read. */
  async createRule(family: Family, table: Table, chain: string, input: RuleSpec, position: number, call: ApiCall, safeguards: Safeguards): Promise<{ rule: RuleView; rollbackAt?: number }> {
    const { rules, rollbackAt } = await this.#createRules(family, table, chain, [input], position, { ...safeguards, caller: call });
    const rule = rules[0]!;
    call.record({ type: "RULE_CREATED", resource: ruleName({ family, table }, rule.chain, rule.id), attributes: { rule: rule.text, ...safeModeAttributes(safeguards) } });
    return { rule, ...(rollbackAt === undefined ? {} : { rollbackAt }) };
  }

  /**
   * Makes sure a managed rule with this spec is in the chain (at `position` when it has to be created); for rules
   * Portcullis needs for itself, such as a jail set's DROP rule. Returns the rule when it created one.
   */
  async ensureRule(family: Family, table: Table, chain: string, input: RuleSpec, position: number): Promise<RuleView | undefined> {
    const line = renderRuleLine(chain, validateRuleSpec(family, input));
    if ((this.#store.managedLines(family, table).get(line)?.length ?? 0) > 0) return undefined;
    return (await this.#createRules(family, table, chain, [input], position, { caller: {} })).rules[0];
  }

  /**
   * Adds several managed rules in one atomic COMMIT, in order, appended or starting at `position`. Rules that cannot
   * affect the caller's access to the API (ACCEPT, LOG) need no read of the table. Positions in the answer are 0 for
   * appends made without that read.
   */
  async #createRules(family: Family, table: Table, chain: string, inputs: readonly RuleSpec[], position: number, options: ChangeOptions): Promise<{ rules: RuleView[]; rollbackAt?: number }> {
    writable(table);
    const specs = inputs.map((input) => validateRuleSpec(family, input));
    for (const spec of specs) await checkReferences(this.#tables, this.#ipsets, family, table, spec);
    return this.#tables.locked(family, table, async () => {
      this.#panic.refuseChanges();
      let mayLockOut = false;
      for (const spec of specs) mayLockOut ||= await this.#lockout.mayLockOut(family, table, spec, "add", options.caller);
      if (position > 0 || mayLockOut) {
        const snapshot = await this.snapshot(family, table);
        const length = snapshot.rules.filter((rule) => rule.chain === chain).length;
        if (!snapshot.chains.some((candidate) => candidate.name === chain)) throw chainNotFound(family, table, chain);
        if (position > length + 1) {
          throw new ServerError("INVALID_POSITION", `position ${position} is past the end of chain ${chain} (${length} rules); use 1 to ${length + 1}, or 0 to append`, { field: "position" });
        }
        const start = position === 0 ? length + 1 : position;
        await this.#lockout.check(family, table, viewOf(snapshot, { insert: [chain, start, specs] }), options);
      }
      const ids = newRuleIds(specs.length);
      const lines = specs.map((spec) => renderRuleLine(chain, spec));
      const commands = position > 0 ? lines.map((line, i) => line.replace(/^-A (\S+) /, `-I $1 ${position + i} `)) : lines;
      const rollbackAt = await this.#safeMode.run(family, table, options.confirmWithin, async () => {
        await this.#sealed(family, table, { kind: "add", rules: specs.map((spec, i) => ({ id: ids[i]!, chain, spec, first: position === 1 })) }, async () => {
          try {
            await this.#iptables.change(family, `*${table}\n${commands.join("\n")}\nCOMMIT\n`);
          } catch (error) {
            throw await this.#explain(error, family, table, chain);
          }
        });
      });
      const rules = specs.map((spec, i): RuleView => ({
        chain, position: position === 0 ? 0 : position + i, spec, key: lines[i]!, id: ids[i]!, managed: true, modeled: true, text: lines[i]!, packets: 0, bytes: 0,
      }));
      return { rules, ...(rollbackAt === undefined ? {} : { rollbackAt }) };
    });
  }

  async replaceRule(family: Family, table: Table, chain: string, id: string, input: RuleSpec, call: ApiCall, safeguards: Safeguards): Promise<{ rule: RuleView; rollbackAt?: number }> {
    writable(table);
    const options: ChangeOptions = { ...safeguards, caller: call };
    const spec = validateRuleSpec(family, input);
    await checkReferences(this.#tables, this.#ipsets, family, table, spec);
    const replaced = await this.#tables.locked(family, table, async () => {
      this.#panic.refuseChanges();
      const snapshot = await this.snapshot(family, table);
      const old = snapshot.rules.find((rule) => rule.chain === chain && rule.id === id);
      if (old === undefined) throw ruleNotFound(chain, id);
      await this.#lockout.check(family, table, viewOf(snapshot, { replace: [chain, old.position, spec] }), options);
      const newId = newRuleIds(1)[0]!;
      const line = renderRuleLine(chain, spec);
      const rollbackAt = await this.#safeMode.run(family, table, options.confirmWithin, async () => {
        const change: RuleChange = old.managed ? { kind: "replace", id, newId, spec } : { kind: "add", rules: [{ id: newId, chain, spec, first: false }] };
        // Delete by position and insert at the same place in one COMMIT: the chain never lacks the rule.
        await this.#sealed(family, table, change, () => this.#iptables.change(family, `*${table}\n-D ${chain} ${old.position}\n${line.replace(/^-A (\S+) /, `-I $1 ${old.position} `)}\nCOMMIT\n`));
      });
      return { rule: { ...old, spec, id: newId, key: line, managed: true, modeled: true, text: line, packets: 0, bytes: 0 }, ...(rollbackAt === undefined ? {} : { rollbackAt }) };
    });
    call.record({ type: "RULE_REPLACED", resource: ruleName({ family, table }, chain, id), attributes: { new_id: replaced.rule.id, rule: replaced.rule.text, ...safeModeAttributes(safeguards) } });
    return replaced;
  }

  /**
   * Deletes a rule by id, by its content (`-D CHAIN <rule>`; identical rules are interchangeable): a managed one's
   * from the store without reading the table unless it may matter for the caller's access.
   */
  async deleteRule(family: Family, table: Table, chain: string, id: string, call: ApiCall, safeguards: Safeguards): Promise<{ rollbackAt?: number }> {
    writable(table);
    const options: ChangeOptions = { ...safeguards, caller: call };
    const deleted = await this.#tables.locked(family, table, async () => {
      this.#panic.refuseChanges();
      const managed = this.#store.rule(id);
      let command: string;
      if (managed !== undefined && managed.family === family && managed.table === table && managed.chain === chain && !(await this.#lockout.mayLockOut(family, table, managed.spec, "delete", options.caller))) {
        command = renderRuleLine(chain, managed.spec).replace(/^-A /, "-D ");
      } else {
        const snapshot = await this.snapshot(family, table);
        const rule = snapshot.rules.find((candidate) => candidate.chain === chain && candidate.id === id);
        if (rule === undefined) throw ruleNotFound(chain, id);
        await this.#lockout.check(family, table, viewOf(snapshot, { remove: [chain, rule.position] }), options);
        command = rule.text.replace(/^-A /, "-D ");
      }
      const rollbackAt = await this.#safeMode.run(family, table, options.confirmWithin, async () => {
        const change = async (): Promise<void> => {
          try {
            await this.#iptables.change(family, `*${table}\n${command}\nCOMMIT\n`);
          } catch (error) {
            // The managed rule is gone from the kernel already (e.g. flushed by hand): forget it.
            if (managed === undefined || (await this.snapshot(family, table)).rules.some((rule) => rule.id === id)) throw error;
          }
        };
        if (managed === undefined) await change();
        else await this.#sealed(family, table, { kind: "delete", id }, change);
      });
      return rollbackAt === undefined ? {} : { rollbackAt };
    });
    call.record({ type: "RULE_DELETED", resource: ruleName({ family, table }, chain, id), attributes: safeModeAttributes(safeguards) });
    return deleted;
  }

  // ---- whole tables ----------------------------------------------------------------------------------------------

  /** Applies a ruleset (see RulesetApply.apply); RULESET_APPLIED unless it was a dry run. */
  async apply(family: Family, table: Table, chains: ReadonlyArray<{ name: string; policy?: Policy }>, rules: RuleSource, call: ApiCall, options: Omit<ApplyOptions, "caller">): Promise<ApplyOutcome> {
    const outcome = await this.#ruleset.apply(family, table, chains, rules, { ...options, caller: call });
    if (options.dryRun === true) return outcome;
    call.record({
      type: "RULESET_APPLIED",
      resource: tableName({ family, table }),
      attributes: {
        rule_count: String(outcome.ruleCount),
        ...(options.scope === "MANAGED" ? { scope: "MANAGED" } : {}),
        ...(options.replaceForeign === true ? { replace_foreign: "true" } : {}),
        ...(outcome.rollbackAt === undefined ? {} : { rollback_time: new Date(outcome.rollbackAt).toISOString() }),
      },
    });
    return outcome;
  }

  /** Keeps what safe mode applied: the pending rollback is dropped. */
  async confirm(family: Family, table: Table, call: ApiCall): Promise<void> {
    await this.#safeMode.confirm(family, table);
    call.record({ type: "RULESET_CONFIRMED", resource: tableName({ family, table }) });
  }

  // ---- services ------------------------------------------------------------------------------------------------

  services(): { services: readonly NamedService[]; groups: Readonly<Record<string, readonly string[]>> } {
    return { services: SERVICES, groups: GROUPS };
  }

  /** One ACCEPT per port of the services named (or groups), in the filter table: RULE_CREATED each. */
  async allowService(family: Family, chain: string, names: readonly string[], source: { address: string; negate: boolean } | undefined, call: ApiCall): Promise<RuleView[]> {
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
    const { rules } = await this.#createRules(family, "filter", chain, specs, 0, { caller: call });
    for (const rule of rules) call.record({ type: "RULE_CREATED", resource: ruleName({ family, table: "filter" }, rule.chain, rule.id), attributes: { rule: rule.text, services: names.join(",") } });
    return rules;
  }

  // ---- panic mode ----------------------------------------------------------------------------------------------

  panicStatus(): PanicStatus {
    return this.#panic.status();
  }

  async enablePanic(call: ApiCall): Promise<PanicStatus> {
    const status = await this.#panic.enable();
    call.record({ type: "PANIC_ENABLED", resource: "firewall" });
    return status;
  }

  async disablePanic(call: ApiCall): Promise<PanicStatus> {
    const status = await this.#panic.disable();
    call.record({ type: "PANIC_DISABLED", resource: "firewall" });
    return status;
  }

  // ---- reconciliation ------------------------------------------------------------------------------------------

  /**
   * After a start (and periodically): a change cut short is finished or dropped (interrupted-changes.ts); due safe-mode
   * rollbacks happen now, pending ones are re-armed; then managed state the kernel lost comes back
   * (firewall-reconcile.ts), which is skipped during panic mode.
   */
  async reconcile(): Promise<{ rulesRestored: number }> {
    await this.finishInterruptedChanges();
    this.#safeMode.resume();
    if (this.#panic.enabled) return { rulesRestored: 0 };
    return restoreManagedState({ iptables: this.#iptables, store: this.#store, tables: this.#tables, events: this.#events, log: this.#log });
  }

  /** Records or drops the changes a stop cut short (interrupted-changes.ts); at start, before requests come. */
  finishInterruptedChanges(): Promise<void> {
    return finishInterruptedChanges({ iptables: this.#iptables, store: this.#store, tables: this.#tables, events: this.#events, log: this.#log });
  }

  // ---- helpers -------------------------------------------------------------------------------------------------

  /**
   * Makes a change of single managed rules: sealed in the store, made in the kernel, then applied to the store. A stop
   * between the kernel's commit and the store leaves the seal, which the next start finishes or drops by what the
   * kernel holds (interrupted-changes.ts); a refused kernel change drops it.
   */
  async #sealed(family: Family, table: Table, change: RuleChange, kernel: () => Promise<void>): Promise<void> {
    this.#store.sealRuleChange(family, table, change);
    try {
      await kernel();
    } catch (error) {
      this.#store.dropRuleChange(family, table);
      throw error;
    }
    this.#store.commitRuleChange(family, table, change);
  }

  /** A refused restore, explained: a missing chain is the usual cause. */
  async #explain(error: unknown, family: Family, table: Table, chain: string): Promise<unknown> {
    if (!(error instanceof ServerError) || error.reason !== "RULESET_REJECTED") return error;
    const snapshot = await this.snapshot(family, table).catch(() => undefined);
    if (snapshot !== undefined && !snapshot.chains.some((candidate) => candidate.name === chain)) return chainNotFound(family, table, chain);
    return error;
  }
}

/** Event attributes saying that a change is waiting for ConfirmRuleset. */
function safeModeAttributes(safeguards: Safeguards): Record<string, string> {
  return safeguards.confirmWithin ? { confirm_within: String(safeguards.confirmWithin) } : {};
}

function ruleNotFound(chain: string, id: string): ServerError {
  return new ServerError("RULE_NOT_FOUND", `chain ${chain} has no rule with id ${id} (ListRules shows the ids)`, { chain, rule: id });
}
