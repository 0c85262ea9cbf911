import { once } from "node:events";
import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { Executor } from "./exec.js";
import { restoreRefusal } from "./restore-refusal.js";

/**
 * An `iptables-restore` (tables replaced whole, or changed with `--noflush`) fed through a pipe while the input is still being produced, so that
 * the tool parses the first rules of a big ruleset while the caller validates and renders the next ones.
 *
 * Nothing reaches the kernel before the COMMIT line: `abort()` before `commit()` kills the process and leaves every
 * table as it was. With the nf_tables backend the COMMIT itself is one kernel transaction, applied whole or not at all.
 */
export class RestoreFeed {
  readonly #tool: string;
  readonly #log: Logger;
  readonly #child: ReturnType<Executor["spawn"]>;
  readonly #written: string[] = [];
  readonly #outcome: Promise<{ exitCode: number | undefined; stderr: string; started: boolean }>;
  #aborted = false;
  #exited = false;
  #inputEnded!: () => void;
  readonly #released = new Promise<void>((resolve) => (this.#inputEnded = resolve));

  constructor(exec: Executor, log: Logger, tool: string, args: readonly string[] = []) {
    this.#tool = tool;
    this.#log = log;
    const child = exec.spawn(tool, args);
    this.#child = child;
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => (stderr += chunk));
    child.stdout.resume();
    child.stdin.on("error", () => undefined); // a process that died early is reported by its exit status
    this.#outcome = child.ended.then((result) => {
      this.#exited = true;
      return { exitCode: result.exitCode, stderr, started: !result.notStarted };
    });
  }

  /** Whether the process is still there to take input (a spare may have been killed while it waited). */
  get alive(): boolean {
    return !this.#exited && !this.#aborted;
  }

  /** Everything written so far. */
  get text(): string {
    return this.#written.join("");
  }

  /** Resolves when the process has ended, however it ended. */
  get settled(): Promise<void> {
    return this.#outcome.then(() => undefined);
  }

  /**
   * Resolves when this feed takes no more input: its COMMIT is in the pipe (the tool is applying it) or the process
   * ended. From then on this process usually only waits for the kernel.
   */
  get released(): Promise<void> {
    return Promise.race([this.#released, this.settled]);
  }

  /** Queues text for the tool; resolves when the pipe can take more (the tool keeps up with what it was given). */
  async write(text: string): Promise<void> {
    if (this.#aborted) return;
    this.#written.push(text);
    const stdin = this.#child.stdin;
    if (!stdin.write(text)) await Promise.race([once(stdin, "drain"), this.#outcome]);
  }

  /**
   * Writes the last text (ending with COMMIT) and closes the input. Resolves once all of it is in the pipe, before the
   * tool has finished: `done()` gives the outcome. Until it resolves, this process must keep its event loop free.
   */
  async commit(last: string): Promise<void> {
    this.#written.push(last);
    const stdin = this.#child.stdin;
    await new Promise<void>((resolve) => {
      stdin.end(last, () => resolve());
      void this.#outcome.then(() => resolve());
    });
    this.#inputEnded();
  }

  /** Waits for the tool: resolves when the tables were replaced, rejects when nothing was applied. */
  async done(): Promise<void> {
    const { exitCode, stderr, started } = await this.#outcome;
    if (exitCode === 0) return;
    if (!started) throw new ServerError("KERNEL_UNAVAILABLE", `could not run ${this.#tool}; is iptables installed?`, { command: this.#tool });
    this.#log.warn({ tool: this.#tool, exitCode, stderr: stderr.slice(0, 2000) }, "iptables-restore refused the input");
    const lines = this.text.split("\n");
    throw restoreRefusal(this.#tool, stderr, (number) => lines[number - 1])
      ?? new ServerError("RULESET_REJECTED", `${this.#tool} refused the change; nothing was applied`, {});
  }

  /** Stops the tool before its COMMIT: nothing is applied. Harmless after the end. */
  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#child.kill("SIGKILL");
    void this.#outcome.catch(() => undefined);
  }
}
