import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { credentials as grpcCredentials, type ChannelCredentials } from "@grpc/grpc-js";

// PC_SERVER_BIN: another entry point (a benchmark diagnosing a given build).
const BIN = process.env.PC_SERVER_BIN ?? resolve(import.meta.dirname, "../../server/bin/portcullis");

export interface ClientBundle {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

/**
 * A real `portcullis serve` process bound to an ephemeral loopback port, with every kernel command inside the
 * test's namespace. Restartable (same data dir) and killable with any signal, for durability tests.
 */
export class PortcullisProcess {
  readonly dataDir: string;
  readonly netns: string;
  address = "";
  /** The REST gateway's host:port. */
  restAddress = "";
  #child: ChildProcess | undefined;
  #output = "";
  readonly #extraArgs: string[];
  readonly #env: Record<string, string>;
  #logToFile = false;

  private constructor(netns: string, dataDir: string, extraArgs: string[], env: Record<string, string>) {
    this.netns = netns;
    this.dataDir = dataDir;
    this.#extraArgs = extraArgs;
    this.#env = env;
  }

  /**
   * `logToFile`: the server writes its log to <dataDir>/server.log (as to journald) instead of a pipe into this
   * process, so that a benchmark's client does not also pay for reading a log line per call.
   */
  static async start(netns: string, options: { extraArgs?: string[]; env?: Record<string, string>; logToFile?: boolean } = {}): Promise<PortcullisProcess> {
    // Feeds read the lists and key files tests write in their temporary folders.
    const env = { PORTCULLIS_FEEDS_FILE_ROOTS: tmpdir(), ...options.env };
    const server = new PortcullisProcess(netns, mkdtempSync(join(tmpdir(), "pc-data-")), options.extraArgs ?? [], env);
    server.#logToFile = options.logToFile ?? false;
    await server.restart();
    return server;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Everything the server printed (JSON log lines). */
  get output(): string {
    return this.#logToFile ? readFileSync(join(this.dataDir, "server.log"), "utf8") : this.#output;
  }

  /** The server's "rpc" log lines (one per call, with its handler time `ms`) for `method`, e.g. "CreateRule". */
  rpcLogLines(method: string): string[] {
    return this.output.split("\n").filter((line) => line.includes(`/${method}"`) && line.includes('"msg":"rpc"'));
  }

  /** Starts (again) on the same data dir and a new port; resolves when it logs "listening". */
  async restart(): Promise<void> {
    this.#output = "";
    // An empty netns runs the server in the current namespace (as deployed: no `ip netns exec` per command).
    const netnsArgs = this.netns === "" ? [] : ["--netns", this.netns];
    // PC_SERVER_NODE_ARGS passes flags to the server's node (e.g. --cpu-prof for profiling a benchmark).
    const nodeArgs = process.env.PC_SERVER_NODE_ARGS?.split(" ").filter((arg) => arg !== "") ?? [];
    const logFile = this.#logToFile ? openSync(join(this.dataDir, "server.log"), "a") : undefined;
    const child = spawn(process.execPath, [...nodeArgs, BIN, "serve", "--data-dir", this.dataDir, ...netnsArgs, "--grpc-address", "127.0.0.1:0", "--rest-address", "127.0.0.1:0", "--log-level", "info", ...this.#extraArgs], {
      stdio: ["ignore", logFile ?? "pipe", logFile ?? "pipe"],
      env: { ...process.env, ...this.#env },
    });
    if (logFile !== undefined) closeSync(logFile);
    this.#child = child;
    this.address = await new Promise<string>((resolvePromise, reject) => {
      let poll: NodeJS.Timeout | undefined;
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${this.output}`)), 20_000);
      let started = false;
      const check = (text: string): void => {
        if (started) return;
        const match = /"grpc":"([^"]+)","rest":"([^"]+)".*"msg":"listening"/.exec(text);
        if (match === null) return;
        started = true;
        clearTimeout(timer);
        clearInterval(poll);
        this.restAddress = match[2]!;
        resolvePromise(match[1]!);
      };
      if (logFile === undefined) {
        const onData = (chunk: Buffer): void => {
          this.#output += chunk.toString();
          check(this.#output);
        };
        child.stdout!.on("data", onData);
        child.stderr!.on("data", onData);
      } else {
        poll = setInterval(() => check(this.output), 50);
      }
      child.once("exit", (code) => {
        clearTimeout(timer);
        clearInterval(poll);
        reject(new Error(`server exited with ${code}:\n${this.output}`));
      });
    });
  }

  /** Sends a signal to the process we started and waits for it to exit. */
  async kill(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolvePromise) => child.once("exit", () => resolvePromise()));
    child.kill(signal);
    await exited;
    this.#child = undefined;
  }

  /**
   * Runs `work` with the server stopped (SIGSTOP, then SIGCONT): nothing the server does by itself (a safe-mode
   * rollback's timer) can happen meanwhile, while the kernel keeps enforcing what the server put there. So a check of
   * the state before such a deadline holds on any machine, however slow.
   */
  async whilePaused<T>(work: () => Promise<T>): Promise<T> {
    const pid = this.#child?.pid;
    if (pid === undefined) throw new Error("the server is not running");
    process.kill(pid, "SIGSTOP");
    try {
      return await work();
    } finally {
      process.kill(pid, "SIGCONT");
    }
  }

  bundle(name = "admin"): ClientBundle {
    const dir = join(this.dataDir, "pki", "clients", name);
    return { ca: readFileSync(join(dir, "ca.crt")), cert: readFileSync(join(dir, "client.crt")), key: readFileSync(join(dir, "client.key")) };
  }

  credentials(name = "admin"): ChannelCredentials {
    const bundle = this.bundle(name);
    return grpcCredentials.createSsl(bundle.ca, bundle.key, bundle.cert);
  }

  /** Runs `portcullis <args>` against this server's data dir (e.g. certs issue/revoke). */
  cli(args: readonly string[]): Promise<string> {
    return new Promise((resolvePromise, reject) => {
      const child = spawn(process.execPath, [BIN, ...args, "--data-dir", this.dataDir], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
      child.once("exit", (code) => (code === 0 ? resolvePromise(out) : reject(new Error(`portcullis ${args.join(" ")} exited ${code}: ${out}`))));
    });
  }

  async stop(): Promise<void> {
    await this.kill("SIGTERM");
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
