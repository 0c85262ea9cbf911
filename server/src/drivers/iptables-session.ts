import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { Executor } from "./exec.js";
import { restoreRefusal } from "./restore-refusal.js";
import { AnswerQueue, type Waiter } from "./answer-queue.js";

interface Pending extends Waiter<void> {
  readonly text: string;
  /** Line number (1-based, counted over the process's whole input) of the text's first line. */
  readonly firstLine: number;
  /** The process it was written to (a killed one may still report). */
  readonly child?: ReturnType<Executor["spawn"]>;
  stderr: string;
}

/**
 * After each change we ask for a listing of the raw table's OUTPUT chain (one `-P OUTPUT …` line, plus that chain's
 * rules, which are rare and ignored). iptables-restore prints nothing when a COMMIT succeeds, and it reads and commits
 * one table block at a time, so that line arriving means the change before it is in the kernel. A table that does not
 * exist is listed without being created.
 */
const SENTINEL = "*raw\n-S OUTPUT\nCOMMIT\n";
const SENTINEL_LINES = 3;
const DONE = /^-P OUTPUT \S+$/;
const CHANGE_TIMEOUT_MS = 60_000;

/**
 * A long-lived `iptables-restore --noflush` (or ip6tables-restore) that applies one change at a time, each its own
 * atomic COMMIT. A single-rule change then costs what the kernel needs for it, not a process start plus loading
 * xtables and its extensions (≈10 ms here, more than the change itself).
 *
 * iptables-restore stops at the first line it cannot apply, printing `line N failed` with N counted over everything
 * it read; the change in flight is then reported as refused (nothing of it was committed) and the next change starts
 * a fresh process. stdout is a pipe, so `stdbuf -o0` makes the sentinel's listing arrive at once.
 */
export class IptablesSession {
  readonly #exec: Executor;
  readonly #log: Logger;
  readonly #restore: string;
  #child: ReturnType<Executor["spawn"]> | undefined;
  #linesSent = 0;
  #stdout = "";
  #queue: Pending[] = [];
  /** The change in flight: one at a time, so that a refusal is the change's alone and the next starts clean. */
  readonly #answers = new AnswerQueue<Pending, void>(CHANGE_TIMEOUT_MS, (pending) => this.#abandon(pending.child!, `${this.#restore} did not answer within ${CHANGE_TIMEOUT_MS} ms`));
  #closed = false;

  constructor(exec: Executor, log: Logger, restore: string) {
    this.#exec = exec;
    this.#log = log;
    this.#restore = restore;
  }

  /** Applies restore text (`*table` … `COMMIT`, no flush): all of it, or nothing and a RULESET_REJECTED error. */
  apply(text: string): Promise<void> {
    if (this.#closed) return Promise.reject(new ServerError("SHUTTING_DOWN", "the server is shutting down"));
    if (!text.endsWith("COMMIT\n")) throw new Error("iptables session input must end with COMMIT");
    return this.#exec.timed(`${this.#restore} session`, () => this.#apply(text));
  }

  #apply(text: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ text, firstLine: 0, resolve, reject, stderr: "" });
      this.#pump();
    });
  }

  close(): void {
    this.#closed = true;
    this.#child?.stdin?.end();
    this.#child = undefined;
  }

  #pump(): void {
    if (this.#answers.length > 0) return;
    const next = this.#queue.shift();
    if (next === undefined) return;
    let child: ReturnType<Executor["spawn"]>;
    try {
      child = this.#child ?? this.#start();
    } catch (error) {
      next.reject(error instanceof Error ? error : new Error(String(error)));
      this.#pump();
      return;
    }
    const pending: Pending = { ...next, firstLine: this.#linesSent + 1, child };
    this.#linesSent += countLines(pending.text) + SENTINEL_LINES;
    this.#answers.written(pending);
    child.stdin.write(pending.text + SENTINEL);
  }

  #start(): ReturnType<Executor["spawn"]> {
    const child = this.#exec.spawn("stdbuf", ["-o0", this.#restore, "--noflush"]);
    this.#child = child;
    this.#linesSent = 0;
    this.#stdout = "";
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      this.#stdout += chunk;
      let end: number;
      while ((end = this.#stdout.indexOf("\n")) >= 0) {
        const line = this.#stdout.slice(0, end);
        this.#stdout = this.#stdout.slice(end + 1);
        if (DONE.test(line) && this.#answers.oldest?.child === child) this.#settle(() => this.#answers.answer());
      }
    });
    child.stderr.on("data", (chunk: string) => {
      const current = this.#answers.oldest;
      if (current?.child === child) current.stderr += chunk;
      else this.#log.warn({ stderr: chunk.slice(0, 2000) }, `${this.#restore} wrote to stderr between changes`);
    });
    child.stdin.on("error", () => undefined); // a dead process is reported through its exit below
    void child.ended.then((result) => {
      if (this.#child === child) this.#child = undefined;
      if (this.#answers.oldest?.child !== child) {
        if (!this.#closed) this.#log.warn({ exitCode: result.exitCode, signal: result.signal }, `${this.#restore} session ended`);
        return;
      }
      this.#settle(() => this.#answers.rejectAll((p) => this.#failure(p, result.exitCode, result.notStarted)));
    });
    return child;
  }

  /** What a process that ended with the change in flight means for that change. */
  #failure(pending: Pending, exitCode: number | undefined, notStarted: boolean): ServerError {
    if (notStarted) return new ServerError("KERNEL_UNAVAILABLE", `could not run ${this.#restore}; is iptables installed?`, { command: this.#restore });
    const lines = pending.text.split("\n");
    this.#log.warn({ exitCode, stderr: pending.stderr.slice(0, 2000) }, `${this.#restore} refused a change`);
    return restoreRefusal(this.#restore, pending.stderr, (number) => lines[number - pending.firstLine])
      ?? new ServerError("KERNEL_COMMAND_FAILED", `${this.#restore} failed; see the server log`);
  }

  #abandon(child: ReturnType<Executor["spawn"]>, message: string): void {
    if (this.#child === child) this.#child = undefined;
    child.kill("SIGKILL");
    if (this.#answers.oldest?.child === child) this.#settle(() => this.#answers.rejectAll(new ServerError("KERNEL_COMMAND_FAILED", message)));
  }

  /** Settles the change in flight, then writes the next. */
  #settle(settle: () => void): void {
    settle();
    this.#pump();
  }
}

function countLines(text: string): number {
  let count = 0;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) count++;
  return count;
}
