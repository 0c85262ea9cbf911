import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { Executor } from "./exec.js";
import { AnswerQueue, type Waiter } from "./answer-queue.js";

interface Pending extends Waiter<string> {
  /** One command line, or several (a batch), without the trailing newline. */
  readonly line: string;
}

/** One `ipset -` process and the commands written to it that it has not answered yet, oldest first. */
interface SessionProcess {
  readonly child: ReturnType<Executor["spawn"]>;
  readonly unanswered: AnswerQueue<Pending, string>;
  /** Commands waiting to be written together (see #write). */
  outgoing: Pending[];
  /** stderr not yet attributed to a command (it ends with no sentinel answer yet). */
  stderr: string;
}

const COMMAND_TIMEOUT_MS = 10_000;
/**
 * Written after each command: ipset refuses it in its own parser (no kernel call) with a fixed message on stderr. That
 * message ends the command's stderr: everything on stderr since the previous sentinel's answer belongs to it.
 */
const SENTINEL = "add portcullis-sync";
const SENTINEL_ANSWER = /^ipset v[^:]*: Missing second mandatory argument to command add\nTry `ipset help' for more information\.\n/m;

/**
 * A long-lived `ipset -exist -` process (interactive mode) that applies command lines as it reads them, so a single
 * add costs a netlink round trip instead of a fork and exec (≈1 ms).
 *
 * ipset reads its commands one line after the other and reports errors and test results on stderr, so every command
 * is followed by SENTINEL and its stderr is what came before the sentinel's answer: each caller gets exactly its own
 * command's answer, however many are written at once. Commands are not held back until the one before is answered:
 * those made while the event loop runs the same phase go out in one write (single adds from many clients share a
 * pipe write and ipset's wake-up), and answers come back in order. stdout carries only prompts, left buffered: read
 * only to keep the pipe open. `stdbuf -eL` writes stderr a line at a time instead of piece by piece (a sentinel's
 * answer was four writes, each waking the server).
 * `-exist` makes adds of present entries refresh them and deletes of absent entries succeed: both idempotent.
 * A batch is written at once as one command of several lines: no process to start for a few hundred entries.
 */
export class IpsetSession {
  readonly #exec: Executor;
  readonly #log: Logger;
  #process: SessionProcess | undefined;
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
    return this.#exec.timed("ipset session", () => this.#runOnce(line));
  }

  /**
   * Runs command lines one after the other as one command, and returns everything ipset wrote on stderr for any of
   * them ("" = all succeeded; otherwise which line failed is not known). Retried like `run`.
   */
  async runBatch(lines: readonly string[]): Promise<string> {
    if (lines.length === 0) return "";
    if (lines.some((line) => line.includes("\n"))) throw new Error("ipset session lines must not contain newlines");
    return this.#exec.timed("ipset session", () => this.#runOnce(lines.join("\n")));
  }

  async #runOnce(line: string): Promise<string> {
    try {
      return await this.#enqueue(line);
    } catch (error) {
      if (error instanceof SessionDied && !this.#closed) {
        this.#log.warn({ line: line.slice(0, 200) }, "ipset session died; retrying on a new session");
        return await this.#enqueue(line);
      }
      throw error;
    }
  }

  /**
   * Lets the current process end once the commands written to it are answered; the next command starts a fresh one.
   * For an answer nothing explains: whatever state the line left in the process (ipset keeps options between lines)
   * goes with it.
   */
  recycle(): void {
    const current = this.#process;
    if (current === undefined) return;
    this.#process = undefined;
    this.#flush(current);
    current.child.stdin.end();
  }

  close(): void {
    this.#closed = true;
    this.recycle();
  }

  #enqueue(line: string): Promise<string> {
    if (this.#closed) return Promise.reject(new ServerError("SHUTTING_DOWN", "the server is shutting down"));
    return new Promise<string>((resolve, reject) => {
      const session = (this.#process ??= this.#start());
      session.outgoing.push({ line, resolve, reject });
      // Written once the current event-loop phase has queued what it will (the pipe holds it until ipset reads).
      if (session.outgoing.length === 1) setImmediate(() => this.#flush(session));
    });
  }

  /** Writes the commands waiting for a process in one write, each followed by the sentinel. */
  #flush(session: SessionProcess): void {
    const batch = session.outgoing;
    if (batch.length === 0) return;
    session.outgoing = [];
    let text = "";
    for (const pending of batch) {
      text += `${pending.line}\n${SENTINEL}\n`;
      session.unanswered.written(pending);
    }
    session.child.stdin.write(text);
  }

  #start(): SessionProcess {
    const child = this.#exec.spawn("stdbuf", ["-eL", "ipset", "-exist", "-"]);
    let started = false;
    const timedOut = (): void => this.#kill(session, new SessionDied(`ipset did not answer within ${COMMAND_TIMEOUT_MS} ms`));
    const session: SessionProcess = { child, unanswered: new AnswerQueue(COMMAND_TIMEOUT_MS, timedOut), outgoing: [], stderr: "" };
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.resume();
    child.stderr.on("data", (chunk: string) => {
      session.stderr += chunk;
      for (let sentinel = SENTINEL_ANSWER.exec(session.stderr); sentinel !== null; sentinel = SENTINEL_ANSWER.exec(session.stderr)) {
        const stderr = session.stderr.slice(0, sentinel.index);
        session.stderr = session.stderr.slice(sentinel.index + sentinel[0].length);
        started = true;
        if (!session.unanswered.answer(stderr)) this.#log.warn({ stderr }, "ipset session answered a command it was not given");
      }
    });
    void child.ended.then((result) => {
      if (this.#process === session) this.#process = undefined;
      const unanswered = session.unanswered.length + session.outgoing.length;
      if (unanswered > 0 && !this.#closed) this.#log.warn({ exitCode: result.exitCode, signal: result.signal, stderr: session.stderr.slice(0, 500), unanswered }, "ipset session exited");
      // stdbuf exits 126 or 127 when it cannot run ipset (not installed, not executable).
      const missing = result.notStarted || (!started && (result.exitCode === 126 || result.exitCode === 127));
      const error = missing ? new ServerError("KERNEL_UNAVAILABLE", "cannot start ipset; is the ipset package installed?") : new SessionDied(`ipset session exited (${result.exitCode ?? result.signal ?? "unknown"})`);
      this.#refuseAll(session, error);
    });
    return session;
  }

  #kill(session: SessionProcess, error: Error): void {
    if (this.#process === session) this.#process = undefined;
    session.child.kill("SIGKILL");
    this.#refuseAll(session, error);
  }

  /** Refuses the commands written to the process and those still waiting to be written, oldest first. */
  #refuseAll(session: SessionProcess, error: Error): void {
    const outgoing = session.outgoing;
    session.outgoing = [];
    session.unanswered.rejectAll(error);
    for (const pending of outgoing) pending.reject(error);
  }
}

class SessionDied extends Error {}
