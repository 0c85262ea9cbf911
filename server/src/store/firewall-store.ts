import type { Db } from "./database.js";
import type { Family, Policy, RuleSpec } from "../firewall/rule-model.js";
import type { ManagedLines } from "../firewall/rule-identity.js";

/** The canonical rule line of a spec (renderRuleLine): what the managed rules of a table are recognised by. */
export type RenderLine = (chain: string, spec: RuleSpec) => string;

/** In-memory view of one table's managed rules by content, kept in step with every write. */
interface LineIndex {
  readonly byLine: Map<string, string[]>;
  readonly lineOf: Map<string, string>;
}

/** A rule Portcullis created: restored after a reboot, in its order among the managed rules of its chain. */
export interface ManagedRule {
  readonly id: string;
  readonly chain: string;
  readonly seq: number;
  readonly spec: RuleSpec;
}

/** A chain Portcullis created (policy undefined) or a built-in chain whose policy it set. */
export interface ManagedChain {
  readonly chain: string;
  readonly policy?: Policy;
}

/** The managed state of one table, as saved for a safe-mode rollback. */
export interface ManagedTable {
  readonly chains: ManagedChain[];
  readonly rules: ManagedRule[];
}

export interface PendingRollback {
  readonly family: Family;
  readonly table: string;
  readonly deadline: number;
  readonly kernel: string;
  readonly managed: ManagedTable;
}

/** Desired firewall state (managed chains, policies and rules), pending safe-mode rollbacks and panic snapshots. */
export class FirewallStore {
  readonly #db: Db;
  readonly #sql;
  readonly #render: RenderLine;
  readonly #indexes = new Map<string, LineIndex>();

  constructor(db: Db, render: RenderLine) {
    this.#db = db;
    this.#render = render;
    this.#sql = {
      chains: db.prepare<[string, string], { chain: string; policy: string | null }>("SELECT chain, policy FROM firewall_chains WHERE family = ? AND table_name = ? ORDER BY chain"),
      putChain: db.prepare("INSERT OR REPLACE INTO firewall_chains (family, table_name, chain, policy) VALUES (?, ?, ?, ?)"),
      deleteChain: db.prepare("DELETE FROM firewall_chains WHERE family = ? AND table_name = ? AND chain = ?"),
      deleteChains: db.prepare("DELETE FROM firewall_chains WHERE family = ? AND table_name = ?"),
      rules: db.prepare<[string, string], { id: string; chain: string; seq: number; spec: string }>("SELECT id, chain, seq, spec FROM firewall_rules WHERE family = ? AND table_name = ? ORDER BY chain, seq"),
      rule: db.prepare<[string], { id: string; chain: string; seq: number; spec: string; family: string; table_name: string }>("SELECT id, chain, seq, spec, family, table_name FROM firewall_rules WHERE id = ?"),
      maxSeq: db.prepare<[string, string, string], { seq: number | null }>("SELECT max(seq) AS seq FROM firewall_rules WHERE family = ? AND table_name = ? AND chain = ?"),
      putRule: db.prepare("INSERT OR REPLACE INTO firewall_rules (id, family, table_name, chain, seq, spec, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"),
      deleteRule: db.prepare("DELETE FROM firewall_rules WHERE id = ?"),
      deleteRules: db.prepare("DELETE FROM firewall_rules WHERE family = ? AND table_name = ?"),
      rollbacks: db.prepare<[], { family: string; table_name: string; deadline: number; kernel: string; managed: string }>("SELECT * FROM firewall_rollbacks"),
      putRollback: db.prepare("INSERT INTO firewall_rollbacks (family, table_name, deadline, kernel, managed) VALUES (?, ?, ?, ?, ?)"),
      deleteRollback: db.prepare("DELETE FROM firewall_rollbacks WHERE family = ? AND table_name = ?"),
      panic: db.prepare<[], { family: string; kernel: string }>("SELECT family, kernel FROM firewall_panic"),
      putPanic: db.prepare("INSERT OR REPLACE INTO firewall_panic (family, kernel) VALUES (?, ?)"),
      clearPanic: db.prepare("DELETE FROM firewall_panic"),
    };
  }

  table(family: Family, table: string): ManagedTable {
    return {
      chains: this.#sql.chains.all(family, table).map((row) => ({ chain: row.chain, ...(row.policy === null ? {} : { policy: row.policy as Policy }) })),
      rules: this.#sql.rules.all(family, table).map((row) => ({ id: row.id, chain: row.chain, seq: row.seq, spec: JSON.parse(row.spec) as RuleSpec })),
    };
  }

  /** The managed rules of a table by canonical line (see rule-identity.ts); loaded once, then kept up to date. */
  managedLines(family: Family, table: string): ManagedLines {
    return this.#index(family, table).byLine;
  }

  /**
   * Replaces the managed state of a table (ApplyRuleset, rollback) in one transaction. `lines` are the rules'
   * canonical lines when the caller has them already (ApplyRuleset rendered them).
   */
  replaceTable(family: Family, table: string, managed: ManagedTable, lines?: readonly string[]): void {
    const now = Date.now();
    this.#db.transaction(() => {
      this.#sql.deleteChains.run(family, table);
      this.#sql.deleteRules.run(family, table);
      for (const chain of managed.chains) this.#sql.putChain.run(family, table, chain.chain, chain.policy ?? null);
      for (const rule of managed.rules) this.#sql.putRule.run(rule.id, family, table, rule.chain, rule.seq, JSON.stringify(rule.spec), now);
    })();
    const index: LineIndex = { byLine: new Map(), lineOf: new Map() };
    managed.rules.forEach((rule, i) => indexRule(index, rule.id, lines?.[i] ?? this.#render(rule.chain, rule.spec), false));
    this.#indexes.set(`${family}/${table}`, index);
  }

  putChain(family: Family, table: string, chain: ManagedChain): void {
    this.#sql.putChain.run(family, table, chain.chain, chain.policy ?? null);
  }

  deleteChain(family: Family, table: string, chain: string): void {
    this.#sql.deleteChain.run(family, table, chain);
  }

  rule(id: string): (ManagedRule & { family: Family; table: string }) | undefined {
    const row = this.#sql.rule.get(id);
    return row === undefined ? undefined : { id: row.id, chain: row.chain, seq: row.seq, spec: JSON.parse(row.spec) as RuleSpec, family: row.family as Family, table: row.table_name };
  }

  /** Records a new managed rule after the chain's existing ones (or before them all, for an insert at the top). */
  addRule(family: Family, table: string, id: string, chain: string, spec: RuleSpec, first = false): void {
    const index = this.#index(family, table);
    const max = this.#sql.maxSeq.get(family, table, chain)?.seq ?? 0;
    this.#sql.putRule.run(id, family, table, chain, first ? -Date.now() : max + 1, JSON.stringify(spec), Date.now());
    indexRule(index, id, this.#render(chain, spec), first);
  }

  replaceRule(oldId: string, newId: string, spec: RuleSpec): void {
    const old = this.rule(oldId);
    if (old === undefined) return;
    const index = this.#index(old.family, old.table);
    this.#db.transaction(() => {
      this.#sql.deleteRule.run(oldId);
      this.#sql.putRule.run(newId, old.family, old.table, old.chain, old.seq, JSON.stringify(spec), Date.now());
    })();
    unindexRule(index, oldId);
    indexRule(index, newId, this.#render(old.chain, spec), false);
  }

  deleteRule(id: string): void {
    const row = this.#sql.rule.get(id);
    if (row === undefined) return;
    this.#sql.deleteRule.run(id);
    unindexRule(this.#index(row.family as Family, row.table_name), id);
  }

  rollbacks(): PendingRollback[] {
    return this.#sql.rollbacks.all().map((row) => ({ family: row.family as Family, table: row.table_name, deadline: row.deadline, kernel: row.kernel, managed: JSON.parse(row.managed) as ManagedTable }));
  }

  putRollback(rollback: PendingRollback): void {
    this.#sql.putRollback.run(rollback.family, rollback.table, rollback.deadline, rollback.kernel, JSON.stringify(rollback.managed));
  }

  deleteRollback(family: Family, table: string): void {
    this.#sql.deleteRollback.run(family, table);
  }

  panicSnapshots(): Array<{ family: Family; kernel: string }> {
    return this.#sql.panic.all().map((row) => ({ family: row.family as Family, kernel: row.kernel }));
  }

  putPanicSnapshot(family: Family, kernel: string): void {
    this.#sql.putPanic.run(family, kernel);
  }

  clearPanic(): void {
    this.#sql.clearPanic.run();
  }

  #index(family: Family, table: string): LineIndex {
    const key = `${family}/${table}`;
    let index = this.#indexes.get(key);
    if (index === undefined) {
      index = { byLine: new Map(), lineOf: new Map() };
      for (const rule of this.table(family, table).rules) indexRule(index, rule.id, this.#render(rule.chain, rule.spec), false);
      this.#indexes.set(key, index);
    }
    return index;
  }
}

function indexRule(index: LineIndex, id: string, line: string, first: boolean): void {
  let ids = index.byLine.get(line);
  if (ids === undefined) index.byLine.set(line, (ids = []));
  if (first) ids.unshift(id);
  else ids.push(id);
  index.lineOf.set(id, line);
}

function unindexRule(index: LineIndex, id: string): void {
  const line = index.lineOf.get(id);
  if (line === undefined) return;
  index.lineOf.delete(id);
  const ids = index.byLine.get(line) ?? [];
  const at = ids.indexOf(id);
  if (at >= 0) ids.splice(at, 1);
  if (ids.length === 0) index.byLine.delete(line);
}
