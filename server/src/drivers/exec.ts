import { finished } from "node:stream/promises";
import { execa } from "execa";
import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { ProcessStarter, StartedProcess } from "./process-starter.js";

/** How much stdin text may wait in memory for a slow consumer before the producer pauses. */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

/** What the executor reports of each command it ran (the metrics). */
export interface CommandObserver {
  commandFinished(command: string, seconds: number, ok: boolean): void;
}

/** Outcome of one finished command. Drivers interpret stderr; it is logged, never sent to clients. */
export interface CommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Text written to the command's stdin (e.g. `ipset restore` lines), or an iterable of chunks. */
  readonly input?: string | AsyncIterable<string> | Iterable<string>;
  readonly timeoutMs?: number;
}

/**
 * The only place that starts programs. Arguments are always arrays (no shell, so user text can never become shell
 * syntax); with a network namespace configured, every command runs inside it (through `ip netns exec`, unless the
 * starter's programs run there already). How programs are started is the starter's business: the server's starts
 * them from a small helper process (process-starter.ts).
 */
export class Executor {
  readonly #netns: string | undefined;
  readonly #log: Logger;
  readonly #observer: CommandObserver | undefined;
  readonly #starter: ProcessStarter;

  constructor(log: Logger, netns?: string, observer?: CommandObserver, starter: ProcessStarter = new DirectStarter()) {
    this.#log = log;
    this.#netns = netns;
    this.#observer = observer;
    this.#starter = starter;
  }

  get netns(): string | undefined {
    return this.#netns;
  }

  /** Runs a command to completion. A non-zero exit is returned, not thrown; failing to start at all is thrown. */
  async run(file: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    const started = performance.now();
    const child = this.spawn(file, args);
    const stdout: string[] = [];
    const stderr: string[] = [];
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => stdout.push(chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => stderr.push(chunk));
    const timer = setTimeout(() => child.kill("SIGTERM"), options.timeoutMs ?? 120_000);
    const input = options.input;
    if (input === undefined) child.stdin.end();
    else if (typeof input === "string") child.stdin.end(input);
    else void this.#feed(child, input);
    const end = await child.ended;
    await Promise.all([finished(child.stdout), finished(child.stderr)]); // read to the end
    clearTimeout(timer);
    const ms = performance.now() - started;
    this.#observer?.commandFinished(file, ms / 1000, end.exitCode === 0);
    if (end.notStarted) {
      this.#log.error({ command: file, args: args.slice(0, 8) }, "command could not run");
      throw new ServerError("KERNEL_UNAVAILABLE", `could not run ${file}; is it installed${this.#netns === undefined ? "" : `, and does network namespace ${this.#netns} exist`}?`, { command: file });
    }
    const exitCode = end.exitCode ?? -1;
    const result = { exitCode, stdout: stdout.join(""), stderr: stderr.join("") };
    if (exitCode !== 0) {
      this.#log.debug({ command: file, args: args.slice(0, 8), exitCode, signal: end.signal, stderr: result.stderr.slice(0, 2000), ms }, "command failed");
    } else {
      this.#log.debug({ command: file, args: args.slice(0, 8), ms }, "command ran");
    }
    return result;
  }

  /**
   * Times work done by a long-lived process (a request to an `ipset -` or `iptables-restore` session) like a command:
   * resolves or rejects as `work` does.
   */
  async timed<T>(command: string, work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    let ok = false;
    try {
      const result = await work();
      ok = true;
      return result;
    } finally {
      this.#observer?.commandFinished(command, (performance.now() - started) / 1000, ok);
    }
  }

  /** Starts a long-lived process (e.g. an `ipset -` session) with piped stdio. */
  spawn(file: string, args: readonly string[]): StartedProcess {
    const [command, fullArgs] = this.#wrap(file, args);
    return this.#starter.start(command, fullArgs);
  }

  /** Stops starting programs (the server's helper ends). */
  close(): void {
    this.#starter.close();
  }

  #wrap(file: string, args: readonly string[]): [string, string[]] {
    return this.#netns === undefined || this.#starter.netns === this.#netns ? [file, [...args]] : ["ip", ["netns", "exec", this.#netns, file, ...args]];
  }

  async #feed(child: StartedProcess, input: AsyncIterable<string> | Iterable<string>): Promise<void> {
    const stdin = child.stdin;
    try {
      for await (const chunk of input) {
        stdin.write(chunk);
        // A pipe holds only 64 KB. Yielding to the event loop after each chunk lets it move queued bytes into the pipe
        // while the producer prepares the next chunk, so the consumer never starves; past MAX_QUEUED we wait.
        if (stdin.writableLength > MAX_QUEUED_BYTES) {
          await new Promise<void>((resolve, reject) => {
            stdin.once("drain", resolve);
            stdin.once("error", reject);
          });
        } else {
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
    } catch (error) {
      this.#log.warn({ err: error }, "writing to command stdin failed");
    } finally {
      stdin.end();
    }
  }
}

/** Starts programs from this process, with execa: for short-lived processes such as the CLI's `doctor`. */
export class DirectStarter implements ProcessStarter {
  start(file: string, args: readonly string[]): StartedProcess {
    const child = execa(file, [...args], { reject: false, buffer: false, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    return {
      stdin: child.stdin,
      stdout: child.stdout,
      stderr: child.stderr,
      ended: child.then((result) => ({
        ...(result.exitCode === undefined ? {} : { exitCode: result.exitCode }),
        ...(result.signal === undefined ? {} : { signal: result.signal }),
        notStarted: result.failed && result.exitCode === undefined && result.signal === undefined,
      })),
      kill: (signal) => void child.kill(signal),
    };
  }

  close(): void {}
}

/** A namespace the server was told to work in must exist: without it, no program starts at all. */
export async function checkNetns(exec: Executor, netns: string): Promise<void> {
  const usable = await exec.run("true", []).then((result) => result.exitCode === 0, () => false);
  if (!usable) throw new ServerError("KERNEL_UNAVAILABLE", `network namespace "${netns}" is not usable (ip netns add ${netns} creates it)`);
}
