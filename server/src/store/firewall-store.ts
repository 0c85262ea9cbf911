import { type Db, writeTransaction } from "./database.js";
import type { Family, ManagedLines, Policy, RuleSpec } from "../firewall/rule-model.js";
import { generationWriter, type GenerationWriter } from "./generation-writer.js";

/** The canonical rule line of a spec (renderRuleLine): what the managed rules of a table are recognised by. */
export type RenderLine = (chain: string, spec: RuleSpec) => string;
/** The inverse (parseRuleLine): the spec of a stored canonical line. */
export type ParseLine = (line: string) => { spec: RuleSpec };

/** A rule's row: its spec as JSON, or its canonical line (rules staged by ApplyRuleset). */
interface RuleRow {
  readonly id: string;
  readonly chain: string;
  readonly seq: number;
  readonly spec: string | null;
  readonly line: string | null;
}

/** How long the rows of a replaced generation are kept before they are deleted (off the request's path). */
const OLD_GENERATION_GRACE_MS = 2000;

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

/**
 * A new version of a table's managed rules being written (ApplyRuleset): rows added to it stay invisible until
 * `publish`, which switches the table to them in one small transaction; `discard` drops them instead.
 */
export interface TableStage {
  /**
   * Writes rules of the new generation (in their order; `line` is the canonical line when the caller has it). The
   * rows are written in the background: `stored` says when they all are.
   */
  add(rules: ReadonlyArray<ManagedRule & { readonly line?: string }>): void;
  /** Resolves when every added rule is stored; rejects with the first failure. */
  stored(): Promise<void>;
  /**
   * Builds the in-memory index of the staged rules (≈ 15 ms for 10k) and gives their lines, as managedLines will
   * once they are published. Call it while waiting for the kernel to commit, when this thread has nothing else to
   * do; publish builds it otherwise.
   */
  index(): ManagedLines;
  /**
   * After `stored`, just before the kernel's commit: records what publish will make the table's managed state — these
   * chains, the staged rules but `dropped` — so that a server stopped before publish can finish it at its next start
   * if the kernel took the change (see sealedStages).
   */
  seal(chains: readonly ManagedChain[], dropped: readonly string[]): void;
  /** After `seal` and the kernel's commit: makes the staged rules, with the sealed chains, the table's managed state. */
  publish(): void;
  /** Instead of publishing: drops the staged rows (once the writes under way have ended) and the seal. */
  discard(): Promise<void>;
  /** After publish: the previous generation is no longer needed (deleted a little later). */
  release(): void;
}

/** A staged generation sealed before the kernel's commit and neither published nor discarded (a stop in between). */
export interface SealedStage {
  readonly family: Family;
  readonly table: string;
  readonly generation: number;
  readonly chains: ManagedChain[];
  readonly dropped: string[];
}

/**
 * A change of single managed rules, sealed before the kernel's commit and applied to the store after it: new rules
 * (after their chain's managed rules, or before them all), a rule replaced in place (it keeps its place among them),
 * or a rule deleted.
 */
export type RuleChange =
  | { readonly kind: "add"; readonly rules: ReadonlyArray<{ readonly id: string; readonly chain: string; readonly spec: RuleSpec; readonly first: boolean }> }
  | { readonly kind: "replace"; readonly id: string; readonly newId: string; readonly spec: RuleSpec }
  | { readonly kind: "delete"; readonly id: string };

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
  readonly #parse: ParseLine;
  readonly #indexes = new Map<string, LineIndex>();
  readonly #generations = new Map<string, number>();
  /** Counts changes of the managed rules (any table): views built from an older revision need new ids. */
  #revision = 0;
  /** The bulk writes of staged generations, off this thread when the database is a file. */
  readonly #writer: GenerationWriter;

  constructor(db: Db, render: RenderLine, parse: ParseLine) {
    this.#db = db;
    this.#render = render;
    this.#parse = parse;
    this.#writer = generationWriter(db);
    this.#sql = {
      chains: db.prepare<[string, string], { chain: string; policy: string | null }>("SELECT chain, policy FROM firewall_chains WHERE family = ? AND table_name = ? ORDER BY chain"),
      putChain: db.prepare("INSERT OR REPLACE INTO firewall_chains (family, table_name, chain, policy) VALUES (?, ?, ?, ?)"),
      deleteChain: db.prepare("DELETE FROM firewall_chains WHERE family = ? AND table_name = ? AND chain = ?"),
      deleteChains: db.prepare("DELETE FROM firewall_chains WHERE family = ? AND table_name = ?"),
      rules: db.prepare<[string, string, number], RuleRow>("SELECT id, chain, seq, spec, line FROM firewall_rules WHERE family = ? AND table_name = ? AND generation = ? ORDER BY chain, seq"),
      rule: db.prepare<[string], RuleRow & { family: string; table_name: string; generation: number }>("SELECT id, chain, seq, spec, line, family, table_name, generation FROM firewall_rules WHERE id = ?"),
      maxSeq: db.prepare<[string, string, string, number], { seq: number | null }>("SELECT max(seq) AS seq FROM firewall_rules WHERE family = ? AND table_name = ? AND chain = ? AND generation = ?"),
      putRule: db.prepare("INSERT OR REPLACE INTO firewall_rules (id, family, table_name, chain, seq, spec, created_at, generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
      // Plain INSERT: an id already taken fails loudly instead of replacing another rule.
      insertRule: db.prepare("INSERT INTO firewall_rules (id, family, table_name, chain, seq, spec, created_at, generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
      deleteRule: db.prepare("DELETE FROM firewall_rules WHERE id = ?"),
      deleteGeneration: db.prepare("DELETE FROM firewall_rules WHERE family = ? AND table_name = ? AND generation = ?"),
      deleteTableRules: db.prepare("DELETE FROM firewall_rules WHERE family = ? AND table_name = ?"),
      ruleCount: db.prepare<[], number>("SELECT count(*) FROM firewall_rules WHERE generation = coalesce((SELECT generation FROM firewall_generations g WHERE g.family = firewall_rules.family AND g.table_name = firewall_rules.table_name), 0)").pluck(),
      deleteOtherGenerations: db.prepare(
        "DELETE FROM firewall_rules WHERE generation <> coalesce((SELECT generation FROM firewall_generations g WHERE g.family = firewall_rules.family AND g.table_name = firewall_rules.table_name), 0) " +
          "AND generation NOT IN (SELECT generation FROM firewall_sealed s WHERE s.family = firewall_rules.family AND s.table_name = firewall_rules.table_name)",
      ),
      sealed: db.prepare<[], { family: string; table_name: string; generation: number; chains: string; dropped: string }>("SELECT * FROM firewall_sealed"),
      sealedRules: db.prepare<[], { family: string; table_name: string; change: string }>("SELECT * FROM firewall_sealed_rules"),
      putSealedRules: db.prepare("INSERT OR REPLACE INTO firewall_sealed_rules (family, table_name, change) VALUES (?, ?, ?)"),
      deleteSealedRules: db.prepare("DELETE FROM firewall_sealed_rules WHERE family = ? AND table_name = ?"),
      putSealed: db.prepare("INSERT OR REPLACE INTO firewall_sealed (family, table_name, generation, chains, dropped) VALUES (?, ?, ?, ?, ?)"),
      deleteSealed: db.prepare("DELETE FROM firewall_sealed WHERE family = ? AND table_name = ?"),
      generation: db.prepare<[string, string], { generation: number }>("SELECT generation FROM firewall_generations WHERE family = ? AND table_name = ?"),
      putGeneration: db.prepare("INSERT OR REPLACE INTO firewall_generations (family, table_name, generation) VALUES (?, ?, ?)"),
      rollbacks: db.prepare<[], { family: string; table_name: string; deadline: number; kernel: string; managed: string }>("SELECT * FROM firewall_rollbacks"),
      putRollback: db.prepare("INSERT INTO firewall_rollbacks (family, table_name, deadline, kernel, managed) VALUES (?, ?, ?, ?, ?)"),
      deleteRollback: db.prepare("DELETE FROM firewall_rollbacks WHERE family = ? AND table_name = ?"),
      panic: db.prepare<[], { family: string; kernel: string }>("SELECT family, kernel FROM firewall_panic"),
      putPanic: db.prepare("INSERT OR REPLACE INTO firewall_panic (family, kernel) VALUES (?, ?)"),
      clearPanic: db.prepare("DELETE FROM firewall_panic"),
    };
    // Generations left behind by a stop in the middle of an ApplyRuleset, or before their deferred delete; a sealed
    // one waits for interrupted-changes.ts to tell whether the kernel took it.
    this.#sql.deleteOtherGenerations.run();
  }

  table(family: Family, table: string): ManagedTable {
    return {
      chains: this.chains(family, table),
      rules: this.#sql.rules.all(family, table, this.#generation(family, table)).map((row) => ({ id: row.id, chain: row.chain, seq: row.seq, spec: this.#specOf(row) })),
    };
  }

  /** How many managed rules the current generations of all tables hold. */
  ruleCount(): number {
    return this.#sql.ruleCount.get() ?? 0;
  }

  /** The chains of a table Portcullis created (no policy) and the built-in chains whose policy it set. */
  chains(family: Family, table: string): ManagedChain[] {
    return this.#sql.chains.all(family, table).map((row) => ({ chain: row.chain, ...(row.policy === null ? {} : { policy: row.policy as Policy }) }));
  }

  /** The managed rules of a table by canonical line (see rule-identity.ts); loaded once, then kept up to date. */
  managedLines(family: Family, table: string): ManagedLines {
    return this.#index(family, table).byLine;
  }

  /** Changes whenever the managed rules of any table change (see managedLines). */
  get managedRevision(): number {
    return this.#revision;
  }

  /**
   * Replaces the managed state of a table at once (a safe-mode rollback). Unlike a stage, it first drops every row of
   * the table: the snapshot's ids are still taken by the current generation (a rolled-back single rule change keeps
   * the others) or by a replaced one not yet deleted (a rollback within seconds of an apply).
   */
  replaceTable(family: Family, table: string, managed: ManagedTable): void {
    const next = this.#generation(family, table) + 1;
    const index: LineIndex = { byLine: new Map(), lineOf: new Map() };
    const now = Date.now();
    writeTransaction(this.#db, () => {
      this.#sql.deleteTableRules.run(family, table);
      for (const rule of managed.rules) this.#sql.insertRule.run(rule.id, family, table, rule.chain, rule.seq, JSON.stringify(rule.spec), now, next);
      this.#sql.deleteChains.run(family, table);
      for (const chain of managed.chains) this.#sql.putChain.run(family, table, chain.chain, chain.policy ?? null);
      this.#sql.putGeneration.run(family, table, next);
    });
    for (const rule of managed.rules) indexRule(index, rule.id, this.#render(rule.chain, rule.spec), false);
    const key = `${family}/${table}`;
    this.#generations.set(key, next);
    this.#indexes.set(key, index);
    this.#revision++;
  }

  /** Starts a new generation of a table's managed rules (see TableStage). */
  stageTable(family: Family, table: string): TableStage {
    const key = `${family}/${table}`;
    const current = this.#generation(family, table);
    // Generations only grow, so a deferred delete of an old one never touches a live one; rows of `next` can only be
    // left over from an abandoned stage.
    const next = current + 1;
    this.#sql.deleteGeneration.run(family, table, next);
    // The staged rules' ids and canonical lines, for the index.
    const addedIds: string[] = [];
    const addedLines: string[] = [];
    let staged: LineIndex | undefined;
    let sealed: { chains: readonly ManagedChain[]; dropped: readonly string[] } | undefined;
    const writes: Array<Promise<void>> = [];
    const settled = (): Promise<unknown> => Promise.allSettled(writes);
    const indexed = (): LineIndex => {
      if (staged === undefined) {
        staged = { byLine: new Map(), lineOf: new Map() };
        for (let i = 0; i < addedIds.length; i++) indexRule(staged, addedIds[i]!, addedLines[i]!, false);
      }
      // Rules of other tools the ruleset repeats are theirs, not managed (see seal).
      for (const id of sealed?.dropped ?? []) unindexRule(staged, id);
      return staged;
    };
    return {
      add: (rules) => {
        // Stored by their lines, which the caller has already: no JSON of 10k specs on this thread.
        const lines = rules.map((rule) => rule.line ?? this.#render(rule.chain, rule.spec));
        const ids = rules.map((rule) => rule.id);
        const write = this.#writer.insert({ family, table, generation: next, now: Date.now(), ids, chains: rules.map((rule) => rule.chain), seqs: rules.map((rule) => rule.seq), lines });
        write.catch(() => undefined); // reported by stored()
        writes.push(write);
        addedIds.push(...ids);
        addedLines.push(...lines);
      },
      stored: async () => {
        await Promise.all(writes);
      },
      index: () => indexed().byLine,
      seal: (chains, dropped) => {
        this.#sql.putSealed.run(family, table, next, JSON.stringify(chains), JSON.stringify(dropped));
        sealed = { chains, dropped };
      },
      publish: () => {
        if (sealed === undefined) throw new Error("a stage is sealed before it is published");
        this.#publish(family, table, next, sealed.chains, sealed.dropped);
        this.#indexes.set(key, indexed());
      },
      discard: async () => {
        await settled();
        this.#dropStaged(family, table, next);
      },
      release: () => {
        // A stop meanwhile leaves rows the next start deletes.
        const deleteOld = (): void => void this.#writer.deleteGeneration(family, table, current).catch(() => undefined);
        setTimeout(deleteOld, OLD_GENERATION_GRACE_MS).unref();
      },
    };
  }

  /** Stages sealed and never published: a stop came between the seal and the publish (see TableStage.seal). */
  sealedStages(): SealedStage[] {
    return this.#sql.sealed.all().map((row) => ({ family: row.family as Family, table: row.table_name, generation: row.generation, chains: JSON.parse(row.chains) as ManagedChain[], dropped: JSON.parse(row.dropped) as string[] }));
  }

  /** The canonical lines of a sealed stage's rules, as managedLines gives the current ones: line → ids. */
  sealedLines(stage: SealedStage): ManagedLines {
    const index: LineIndex = { byLine: new Map(), lineOf: new Map() };
    for (const row of this.#sql.rules.all(stage.family, stage.table, stage.generation)) indexRule(index, row.id, row.line ?? this.#render(row.chain, this.#specOf(row)), false);
    return index.byLine;
  }

  /** Finishes a sealed stage the kernel took: what its publish would have done. */
  publishSealed(stage: SealedStage): void {
    this.#publish(stage.family, stage.table, stage.generation, stage.chains, stage.dropped);
    this.#indexes.delete(`${stage.family}/${stage.table}`); // rebuilt from the published rows when next needed
  }

  /** Drops a sealed stage the kernel never took. */
  dropSealed(stage: SealedStage): void {
    this.#dropStaged(stage.family, stage.table, stage.generation);
  }

  /** Records a change of single rules before the kernel's commit (see RuleChange); one per table at a time. */
  sealRuleChange(family: Family, table: string, change: RuleChange): void {
    this.#sql.putSealedRules.run(family, table, JSON.stringify(change));
  }

  /** After the kernel's commit: applies the sealed change to the managed rules, and forgets the seal. */
  commitRuleChange(family: Family, table: string, change: RuleChange): void {
    writeTransaction(this.#db, () => {
      if (change.kind === "add") for (const rule of change.rules) this.addRule(family, table, rule.id, rule.chain, rule.spec, rule.first);
      else if (change.kind === "replace") this.replaceRule(change.id, change.newId, change.spec);
      else this.deleteRule(change.id);
      this.#sql.deleteSealedRules.run(family, table);
    });
  }

  /** Forgets a sealed change the kernel did not take. */
  dropRuleChange(family: Family, table: string): void {
    this.#sql.deleteSealedRules.run(family, table);
  }

  /** Changes of single rules sealed and neither committed nor dropped: a stop came in between. */
  sealedRuleChanges(): Array<{ family: Family; table: string; change: RuleChange }> {
    return this.#sql.sealedRules.all().map((row) => ({ family: row.family as Family, table: row.table_name, change: JSON.parse(row.change) as RuleChange }));
  }

  /** Stops the thread that writes staged rows (before the database closes). */
  async close(): Promise<void> {
    await this.#writer.close();
  }

  putChain(family: Family, table: string, chain: ManagedChain): void {
    this.#sql.putChain.run(family, table, chain.chain, chain.policy ?? null);
  }

  deleteChain(family: Family, table: string, chain: string): void {
    this.#sql.deleteChain.run(family, table, chain);
  }

  rule(id: string): (ManagedRule & { family: Family; table: string }) | undefined {
    const row = this.#liveRow(id);
    return row === undefined ? undefined : { id: row.id, chain: row.chain, seq: row.seq, spec: this.#specOf(row), family: row.family as Family, table: row.table_name };
  }

  /** Records a new managed rule after the chain's existing ones (or before them all, for an insert at the top). */
  addRule(family: Family, table: string, id: string, chain: string, spec: RuleSpec, first = false): void {
    const index = this.#index(family, table);
    const generation = this.#generation(family, table);
    const max = this.#sql.maxSeq.get(family, table, chain, generation)?.seq ?? 0;
    this.#sql.putRule.run(id, family, table, chain, first ? -Date.now() : max + 1, JSON.stringify(spec), Date.now(), generation);
    indexRule(index, id, this.#render(chain, spec), first);
    this.#revision++;
  }

  replaceRule(oldId: string, newId: string, spec: RuleSpec): void {
    const old = this.rule(oldId);
    if (old === undefined) return;
    const index = this.#index(old.family, old.table);
    writeTransaction(this.#db, () => {
      this.#sql.deleteRule.run(oldId);
      this.#sql.putRule.run(newId, old.family, old.table, old.chain, old.seq, JSON.stringify(spec), Date.now(), this.#generation(old.family, old.table));
    });
    unindexRule(index, oldId);
    indexRule(index, newId, this.#render(old.chain, spec), false);
    this.#revision++;
  }

  deleteRule(id: string): void {
    const row = this.#liveRow(id);
    if (row === undefined) return;
    this.#sql.deleteRule.run(id);
    unindexRule(this.#index(row.family as Family, row.table_name), id);
    this.#revision++;
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

  /** Drops a staged generation that is not to be published, and its seal if it has one. */
  #dropStaged(family: Family, table: string, generation: number): void {
    writeTransaction(this.#db, () => {
      this.#sql.deleteGeneration.run(family, table, generation);
      this.#sql.deleteSealed.run(family, table);
    });
  }

  /** Makes a staged generation the table's managed state, with these chains and without the `dropped` rules. */
  #publish(family: Family, table: string, generation: number, chains: readonly ManagedChain[], dropped: readonly string[]): void {
    writeTransaction(this.#db, () => {
      this.#sql.deleteChains.run(family, table);
      for (const chain of chains) this.#sql.putChain.run(family, table, chain.chain, chain.policy ?? null);
      for (const id of dropped) this.#sql.deleteRule.run(id);
      this.#sql.putGeneration.run(family, table, generation);
      this.#sql.deleteSealed.run(family, table);
    });
    this.#generations.set(`${family}/${table}`, generation);
    this.#revision++;
  }

  #specOf(row: RuleRow): RuleSpec {
    return row.spec !== null ? (JSON.parse(row.spec) as RuleSpec) : this.#parse(row.line!).spec;
  }

  /** A rule's row if it belongs to its table's current generation (a staged or replaced one is not a rule yet/any more). */
  #liveRow(id: string): (RuleRow & { family: string; table_name: string }) | undefined {
    const row = this.#sql.rule.get(id);
    return row === undefined || row.generation !== this.#generation(row.family as Family, row.table_name) ? undefined : row;
  }

  #generation(family: Family, table: string): number {
    const key = `${family}/${table}`;
    let generation = this.#generations.get(key);
    if (generation === undefined) this.#generations.set(key, (generation = this.#sql.generation.get(family, table)?.generation ?? 0));
    return generation;
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
