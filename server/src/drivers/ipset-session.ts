import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { Executor } from "./exec.js";

interface Pending {
  /** One command line, or several (a batch), without the trailing newline. */
  readonly line: string;
  /** Prompts still to come: one per line. */
  remaining: number;
  readonly resolve: (stderr: string) => void;
  readonly reject: (error: Error) => void;
  stderr: string;
  timer?: NodeJS.Timeout;
}

const PROMPT = "ipset> ";
const COMMAND_TIMEOUT_MS = 10_000;
/**
 * Written after each command: ipset refuses it in its own parser (no kernel call) with a fixed message on stderr. That
 * message ends the command's stderr, which comes through another pipe than the prompts and may arrive after them.
 */
const SENTINEL = "add portcullis-sync";
const SENTINEL_ANSWER = /^ipset v[^:]*: Missing second mandatory argument to command add\nTry `ipset help' for more information\.\n/m;

/**
 * A long-lived `ipset -exist -` process (interactive mode) that applies one command line at a time, so a single add
 * costs a netlink round trip instead of a fork and exec (≈1 ms).
 *
 * ipset prints a prompt on stdout before reading each line and reports errors and test results on stderr. stdout is
 * a pipe, so `stdbuf -o0` makes the prompt arrive at once instead of when glibc's buffer fills. One command is in
 * flight at a time, followed by SENTINEL: its stderr is everything before the sentinel's answer (stdout and stderr
 * are separate pipes, so the prompts alone cannot tell when its stderr is complete).
 * `-exist` makes adds of present entries refresh them and deletes of absent entries succeed: both idempotent.
 * A batch is written at once and answered by as many prompts: no process to start for a few hundred entries.
 */
export class IpsetSession {
  readonly #exec: Executor;
  readonly #log: Logger;
  #child: ReturnType<Executor["spawn"]> | undefined;
  #ready: Promise<void> | undefined;
  #queue: Pending[] = [];
  #current: Pending | undefined;
  #stdout = "";
  #closed = false;

  constructor(exec: Executor, log: Logger) {
    this.#exec = exec;
    this.#log = log;
  }

  /**
   * Runs one command line (without trailing newline) and returns what ipset wrote on stderr for it ("" = success).
   * If the session dies under the command, it is retried once on a fresh session: every command we send is idempotent.
   */
  async run(line: string): Promise<string> {
    if (line.includes("\n")) throw new Error("ipset session lines must not contain newlines");
    // A line ipset refused answers with its stderr, so "ok" in the metrics means the session answered.
    return this.#exec.timed("ipset session", () => this.#runOnce(line, 1));
  }

  /**
   * Runs command lines one after the other without waiting for each prompt, and returns everything ipset wrote on
   * stderr for any of them ("" = all succeeded; otherwise which line failed is not known). Retried like `run`.
   */
  async runBatch(lines: readonly string[]): Promise<string> {
    if (lines.length === 0) return "";
    if (lines.some((line) => line.includes("\n"))) throw new Error("ipset session lines must not contain newlines");
    return this.#exec.timed("ipset session", () => this.#runOnce(lines.join("\n"), lines.length));
  }

  async #runOnce(line: string, count: number): Promise<string> {
    try {
      return await this.#enqueue(line, count);
    } catch (error) {
      if (error instanceof SessionDied && !this.#closed) {
        this.#log.warn({ line: line.slice(0, 200), lines: count }, "ipset session died; retrying on a new session");
        return await this.#enqueue(line, count);
      }
      throw error;
    }
  }

  /**
   * Lets the current process end once its command is answered; the next command starts a fresh one. For an answer
   * nothing explains: whatever state the line left in the process (ipset keeps options between lines) goes with it.
   */
  recycle(): void {
    const child = this.#child;
    if (child === undefined) return;
    this.#child = undefined;
    this.#ready = undefined;
    child.stdin?.end();
  }

  close(): void {
    this.#closed = true;
    this.#child?.stdin?.end();
    this.#child = undefined;
  }

  #enqueue(line: string, count: number): Promise<string> {
    if (this.#closed) return Promise.reject(new ServerError("SHUTTING_DOWN", "the server is shutting down"));
    return new Promise<string>((resolve, reject) => {
      this.#queue.push({ line, remaining: count + 1, resolve, reject, stderr: "" });
      void this.#pump();
    });
  }

  async #pump(): Promise<void> {
    if (this.#current !== undefined) return;
    const next = this.#queue.shift();
    if (next === undefined) return;
    this.#current = next;
    try {
      await this.#start();
      next.timer = setTimeout(() => this.#kill(new SessionDied(`ipset did not answer within ${COMMAND_TIMEOUT_MS} ms`)), COMMAND_TIMEOUT_MS);
      this.#child!.stdin.write(`${next.line}\n${SENTINEL}\n`);
    } catch (error) {
      this.#finish((p) => p.reject(error instanceof Error ? error : new Error(String(error))));
    }
  }

  #start(): Promise<void> {
    if (this.#child !== undefined && this.#ready !== undefined) return this.#ready;
    const child = this.#exec.spawn("stdbuf", ["-o0", "ipset", "-exist", "-"]);
    this.#child = child;
    this.#stdout = "";
    this.#ready = new Promise<void>((resolve, reject) => {
      let started = false;
      child.stdout.setEncoding("utf8");
      child.stderr.setEncoding("utf8");
      child.stdout.on("data", (chunk: string) => {
        this.#stdout += chunk;
        // Each prompt ends the command before it; the first one only says the session is ready.
        while (this.#stdout.includes(PROMPT)) {
          this.#stdout = this.#stdout.slice(this.#stdout.indexOf(PROMPT) + PROMPT.length);
          if (!started) {
            started = true;
            resolve();
          } else if (this.#current !== undefined) {
            this.#current.remaining--;
            this.#settleIfAnswered();
          }
        }
      });
      child.stderr.on("data", (chunk: string) => {
        if (this.#current === undefined) {
          this.#log.warn({ stderr: chunk }, "ipset session wrote to stderr between commands");
          return;
        }
        this.#current.stderr += chunk;
        this.#settleIfAnswered();
      });
      void child.ended.then((result) => {
        if (this.#child !== child) return;
        this.#child = undefined;
        this.#ready = undefined;
        const error = new SessionDied(`ipset session exited (${result.exitCode ?? result.signal ?? "unknown"})`);
        if (!started) reject(new ServerError("KERNEL_UNAVAILABLE", "cannot start ipset; is the ipset package installed?"));
        if (!this.#closed) this.#log.warn({ exitCode: result.exitCode, stderr: this.#current?.stderr }, "ipset session exited");
        this.#finish((p) => p.reject(error));
      });
    });
    return this.#ready;
  }

  /** The current command is answered once every prompt and the sentinel's stderr have come, in whichever order. */
  #settleIfAnswered(): void {
    const current = this.#current;
    if (current === undefined || current.remaining > 0) return;
    const sentinel = SENTINEL_ANSWER.exec(current.stderr);
    if (sentinel === null) return;
    const stderr = current.stderr.slice(0, sentinel.index);
    this.#finish((p) => p.resolve(stderr));
  }

  #kill(error: Error): void {
    const child = this.#child;
    this.#child = undefined;
    this.#ready = undefined;
    child?.kill("SIGKILL");
    this.#finish((p) => p.reject(error));
  }

  #finish(settle: (pending: Pending) => void): void {
    const current = this.#current;
    if (current === undefined) return;
    this.#current = undefined;
    clearTimeout(current.timer);
    settle(current);
    void this.#pump();
  }
}

class SessionDied extends Error {}
