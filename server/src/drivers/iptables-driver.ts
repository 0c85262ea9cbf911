import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { Family } from "../firewall/rule-model.js";
import type { Executor } from "./exec.js";
import { IptablesSession } from "./iptables-session.js";
import { RestoreFeed } from "./restore-feed.js";
import { RulesetGeneration, type Counter } from "./ruleset-generation.js";
import { findSetReferences, type SetReference } from "./parse/set-references.js";

const TOOLS: Record<Family, { save: string; restore: string; cli: string }> = {
  ipv4: { save: "iptables-save", restore: "iptables-restore", cli: "iptables" },
  ipv6: { save: "ip6tables-save", restore: "ip6tables-restore", cli: "ip6tables" },
};

/**
 * Runs iptables/ip6tables: reads with `-save`; small changes through a long-lived `-restore --noflush` session per
 * family, whole tables through a `-restore` process of their own (atomic per COMMIT either way); chains and policies
 * through the CLI.
 */
export class IptablesDriver {
  readonly #exec: Executor;
  readonly #log: Logger;
  readonly #sessions = new Map<Family, IptablesSession>();
  readonly #spares = new Map<Family, RestoreFeed>();
  readonly #generation: RulesetGeneration;
  /** Per family and table: its text as last read or written, and the ruleset generation it is the table of. */
  readonly #known = new Map<string, { generation: number; text: string }>();
  #closed = false;

  constructor(exec: Executor, log: Logger) {
    this.#exec = exec;
    this.#log = log;
    this.#generation = new RulesetGeneration(exec, log);
  }

  /** Applies a change to the named table(s) without flushing anything else: one atomic COMMIT per table block. */
  change(family: Family, text: string): Promise<void> {
    let session = this.#sessions.get(family);
    if (session === undefined) this.#sessions.set(family, (session = new IptablesSession(this.#exec, this.#log, TOOLS[family].restore)));
    return session.apply(text);
  }

  close(): void {
    this.#closed = true;
    for (const session of this.#sessions.values()) session.close();
    this.#sessions.clear();
    for (const spare of this.#spares.values()) spare.abort();
    this.#spares.clear();
    this.#generation.close();
  }

  /** `iptables-save` of one table (or all tables), with rule counters unless asked not to. */
  async save(family: Family, table?: string, counters = true): Promise<string> {
    const result = await this.#exec.run(TOOLS[family].save, [...(counters ? ["-c"] : []), ...(table === undefined ? [] : ["-t", table])]);
    if (result.exitCode !== 0) throw this.#failure(family, "save", result.stderr);
    return result.stdout;
  }

  /**
   * The rules of one table as `iptables-save` prints them without counters; without running it when no change of any
   * table has been committed, by any program, since the table was last read or replaced here (the ruleset generation
   * has not moved). Only for speed: saving a 10k-rule table costs ≈50 ms of CPU beside the apply that checks it.
   */
  async saveRules(family: Family, table: string): Promise<string> {
    const key = `${family}/${table}`;
    const generation = await this.#generation.read();
    const known = this.#known.get(key);
    if (generation !== undefined && known?.generation === generation) return known.text;
    const text = await this.save(family, table, false);
    if (generation !== undefined && (await this.#generation.read()) === generation) this.#known.set(key, { generation, text });
    return text;
  }

  /**
   * The text of one table as `saveRules` gives it, as last read or written here, with the ruleset generation it
   * belongs to; it is still the table's only while the generation has not moved (see counters).
   */
  remembered(family: Family, table: string): { readonly text: string; readonly generation: number } | undefined {
    return this.#known.get(`${family}/${table}`);
  }

  /**
   * The counters of chosen rules (by chain: their positions, from 1) and of every chain of a table, when the ruleset
   * generation was `generation` before and after reading them: then they belong to the rules of the table text
   * remembered at that generation. Undefined otherwise. Only for speed: iptables-save gives counters only with every
   * rule of the table.
   */
  async counters(family: Family, table: string, generation: number, wanted: ReadonlyMap<string, readonly number[]>): Promise<{ rules: Map<string, Counter[]>; chains: Map<string, Counter> } | undefined> {
    const read = await this.#generation.counters(family, table, wanted);
    return read !== undefined && read.before === generation && read.after === generation ? read : undefined;
  }

  /** The ruleset generation before a change: given to `replaced` once the change is in the kernel. */
  generation(): Promise<number | undefined> {
    return this.#generation.read();
  }

  /**
   * A table now holds `text` after one COMMIT (replaced whole, or changed in managed scope). When exactly one change
   * was committed since `before`, it was this one, and the next `saveRules` of the table, or managed-scope read (`remembered`), needs no
   * `iptables-save`.
   */
  async replaced(family: Family, table: string, text: string, before: number | undefined): Promise<void> {
    const key = `${family}/${table}`;
    this.#known.delete(key);
    const after = await this.#generation.read();
    if (before !== undefined && after === before + 1) this.#known.set(key, { generation: after, text });
  }

  /**
   * Replaces the tables in the text whole with `iptables-restore`. With the nf_tables backend each table block is one
   * kernel transaction: it is applied entirely or, when any line is refused, not at all.
   */
  async restore(family: Family, text: string): Promise<void> {
    const feed = this.restoreFeed(family);
    await feed.commit(text);
    await feed.done();
  }

  /**
   * An `iptables-restore` that replaces tables, fed while its input is produced (see RestoreFeed). A spare one,
   * started after the previous use, is taken when there is one: forking this (large) process costs 10-20 ms, which
   * then is not on the path of the change. An idle iptables-restore only waits for input.
   */
  restoreFeed(family: Family): RestoreFeed {
    const spare = this.#spares.get(family);
    this.#spares.delete(family);
    const feed = spare !== undefined && spare.alive ? spare : new RestoreFeed(this.#exec, this.#log, TOOLS[family].restore);
    if (spare !== undefined && spare !== feed) spare.abort();
    // The next spare starts once this one has its COMMIT (or ended): the fork then overlaps the kernel's commit,
    // while this process only waits, instead of delaying the reply or the next request.
    void feed.released.then(() => {
      setImmediate(() => {
        if (!this.#closed && !this.#spares.has(family)) this.#spares.set(family, new RestoreFeed(this.#exec, this.#log, TOOLS[family].restore));
      });
    });
    return feed;
  }

  /**
   * An `iptables-restore --noflush --counters` fed while its input is produced: a change of part of a table (chains
   * flushed and rebuilt, rules added or deleted) in one atomic COMMIT, where re-added rules can keep their counters.
   */
  changeFeed(family: Family): RestoreFeed {
    return new RestoreFeed(this.#exec, this.#log, TOOLS[family].restore, ["--noflush", "--counters"]);
  }

  /** Runs one iptables/ip6tables command (chain and policy changes). */
  async command(family: Family, args: readonly string[]): Promise<void> {
    const result = await this.#exec.run(TOOLS[family].cli, ["-w", "5", ...args]);
    if (result.exitCode !== 0) throw this.#failure(family, args[0] ?? "", result.stderr);
  }

  /** Rules in either family that match the set; an unreadable family (tool missing) is logged and skipped. */
  async setReferences(set: string): Promise<SetReference[]> {
    const dumps = await Promise.all(
      (["ipv4", "ipv6"] as const).map(async (family) => {
        try {
          return findSetReferences(await this.save(family, undefined, false), family === "ipv4" ? "inet" : "inet6", set);
        } catch (error) {
          this.#log.warn({ family, err: error }, "cannot read rules");
          return [];
        }
      }),
    );
    return dumps.flat();
  }

  #failure(family: Family, what: string, stderr: string): ServerError {
    this.#log.error({ family, what, stderr: stderr.slice(0, 2000) }, "iptables command failed");
    return new ServerError("KERNEL_COMMAND_FAILED", `${TOOLS[family].cli} ${what} failed; see the server log`);
  }
}
