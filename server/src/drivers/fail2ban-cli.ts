import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { Executor } from "./exec.js";

/**
 * `fail2ban-client`, for the rare admin commands that need fail2ban's own configuration reader: starting a stopped
 * jail and reloading send the whole parsed configuration of the jail(s) to the server, which only the client can
 * build faithfully. Everything frequent goes over the socket (Fail2banClient). Arguments are validated by the caller.
 */
export class Fail2banCli {
  readonly #exec: Executor;
  readonly #log: Logger;
  readonly #socket: string;
  readonly #configDir: string;

  constructor(exec: Executor, log: Logger, socket: string, configDir: string) {
    this.#exec = exec;
    this.#log = log;
    this.#socket = socket;
    this.#configDir = configDir;
  }

  async run(args: readonly string[]): Promise<void> {
    const result = await this.#exec.run("fail2ban-client", ["-c", this.#configDir, "-s", this.#socket, ...args], { timeoutMs: 120_000 });
    if (result.exitCode === 0) return;
    const output = `${result.stderr}\n${result.stdout}`;
    this.#log.warn({ args, exitCode: result.exitCode, output: output.slice(0, 2000) }, "fail2ban-client failed");
    if (/Failed to access socket|Is fail2ban running/i.test(output)) throw new ServerError("FAIL2BAN_UNAVAILABLE", `fail2ban-server is not answering on ${this.#socket}`);
    const jail = args[args.length - 1] ?? "";
    if (/does not exist|No section|not found in config|UnknownJail/i.test(output)) {
      throw new ServerError("JAIL_NOT_FOUND", `fail2ban's configuration in ${this.#configDir} has no jail "${jail}"`, { jail });
    }
    const reason = output.split("\n").map((line) => line.trim()).filter((line) => /ERROR/.test(line)).pop() ?? `exit code ${result.exitCode}`;
    throw new ServerError("FAIL2BAN_REJECTED", `fail2ban-client ${args.join(" ")} failed: ${reason.slice(0, 300)}`, {});
  }
}
