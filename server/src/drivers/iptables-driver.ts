import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { Family } from "../firewall/rule-model.js";
import type { Executor } from "./exec.js";
import { findSetReferences, type SetReference } from "./parse/set-references.js";

const TOOLS: Record<Family, { save: string; restore: string; cli: string }> = {
  ipv4: { save: "iptables-save", restore: "iptables-restore", cli: "iptables" },
  ipv6: { save: "ip6tables-save", restore: "ip6tables-restore", cli: "ip6tables" },
};

/** Runs iptables/ip6tables: reads with `-save`, changes through `-restore` (atomic per COMMIT) or the CLI. */
export class IptablesDriver {
  readonly #exec: Executor;
  readonly #log: Logger;

  constructor(exec: Executor, log: Logger) {
    this.#exec = exec;
    this.#log = log;
  }

  /** `iptables-save` of one table (or all tables), with rule counters unless asked not to. */
  async save(family: Family, table?: string, counters = true): Promise<string> {
    const result = await this.#exec.run(TOOLS[family].save, [...(counters ? ["-c"] : []), ...(table === undefined ? [] : ["-t", table])]);
    if (result.exitCode !== 0) throw this.#failure(family, "save", result.stderr);
    return result.stdout;
  }

  /**
   * Feeds `iptables-restore` text. `noflush` changes only what the text names (single-rule edits); without it the
   * tables in the text are replaced whole. Either way a COMMIT is all or nothing. `test` only checks the text.
   */
  async restore(family: Family, text: string, options: { noflush?: boolean; test?: boolean } = {}): Promise<void> {
    const args = [...(options.noflush === true ? ["--noflush"] : []), ...(options.test === true ? ["--test"] : [])];
    const result = await this.#exec.run(TOOLS[family].restore, args, { input: text });
    if (result.exitCode === 0) return;
    const line = /line (\d+) failed/.exec(result.stderr)?.[1];
    this.#log.warn({ family, args, stderr: result.stderr.slice(0, 2000) }, "iptables-restore refused the input");
    const offending = line === undefined ? undefined : text.split("\n")[Number(line) - 1];
    throw new ServerError(
      "RULESET_REJECTED",
      `${TOOLS[family].restore} refused the change${offending === undefined ? "" : ` at "${offending.slice(0, 300)}"`}; nothing was applied`,
      offending === undefined ? {} : { line: offending.slice(0, 300) },
    );
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
