import type { Logger } from "../logger.js";
import type { Executor } from "./exec.js";
import { findSetReferences, type SetReference } from "./parse/set-references.js";

/** Reads iptables and ip6tables state. (Rule management arrives with the Firewall service.) */
export class IptablesDriver {
  readonly #exec: Executor;
  readonly #log: Logger;

  constructor(exec: Executor, log: Logger) {
    this.#exec = exec;
    this.#log = log;
  }

  /** Rules in either family that match the set; an unreadable family (tool missing) is logged and skipped. */
  async setReferences(set: string): Promise<SetReference[]> {
    const dumps = await Promise.all([
      this.#save("iptables-save").then((dump) => findSetReferences(dump, "inet", set)),
      this.#save("ip6tables-save").then((dump) => findSetReferences(dump, "inet6", set)),
    ]);
    return dumps.flat();
  }

  async #save(tool: string): Promise<string> {
    try {
      const result = await this.#exec.run(tool, []);
      if (result.exitCode === 0) return result.stdout;
      this.#log.warn({ tool, stderr: result.stderr.slice(0, 500) }, "cannot read rules");
    } catch (error) {
      this.#log.warn({ tool, err: error }, "cannot read rules");
    }
    return "";
  }
}
