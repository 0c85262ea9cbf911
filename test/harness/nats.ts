import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./tcp.js";

const NATS_SERVER = "/usr/sbin/nats-server";

/** Certificate files for the servers' client port: clients must present a certificate from `ca` (mTLS). */
export interface NatsTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/**
 * One nats-server of a test cluster: client, route and monitoring ports on 127.0.0.1 only, its own JetStream store;
 * `config` lines are added to its configuration (e.g. an operator's for JWT authentication, see nats-operator.ts).
 */
export class NatsNode {
  readonly name: string;
  readonly port: number;
  readonly routePort: number;
  readonly monitorPort: number;
  readonly #config: string;
  readonly #tls: boolean;
  #child: ChildProcess | undefined;
  #output = "";

  constructor(name: string, dir: string, ports: { port: number; routePort: number; monitorPort: number }, routes: readonly number[], tls?: NatsTls, config: readonly string[] = []) {
    this.name = name;
    this.#tls = tls !== undefined;
    this.port = ports.port;
    this.routePort = ports.routePort;
    this.monitorPort = ports.monitorPort;
    this.#config = join(dir, `${name}.conf`);
    writeFileSync(this.#config, [
      `server_name: ${name}`,
      `listen: 127.0.0.1:${ports.port}`,
      `http: 127.0.0.1:${ports.monitorPort}`,
      `jetstream { store_dir: "${join(dir, name)}", max_memory_store: 67108864, max_file_store: 8589934592 }`,
      // A single server runs JetStream standalone; a cluster's servers route to each other.
      ...(routes.length === 0 ? [] : [`cluster { name: pc-test, listen: 127.0.0.1:${ports.routePort}, routes: [${routes.map((port) => `"nats-route://127.0.0.1:${port}"`).join(", ")}] }`]),
      ...(tls === undefined ? [] : [`tls { cert_file: "${tls.cert}", key_file: "${tls.key}", ca_file: "${tls.ca}", verify: true }`]),
      ...config,
      "",
    ].join("\n"));
  }

  get url(): string {
    return `${this.#tls ? "tls" : "nats"}://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  /** Starts the server; resolves once it accepts clients (the cluster may still be electing its leaders). */
  async start(): Promise<void> {
    if (this.#child !== undefined) return;
    this.#output = "";
    const child = spawn(NATS_SERVER, ["-c", this.#config], { stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    child.stdout!.on("data", (chunk: Buffer) => (this.#output += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (this.#output += chunk.toString()));
    child.once("exit", () => {
      if (this.#child === child) this.#child = undefined;
    });
    for (const deadline = Date.now() + 15_000; ; ) {
      if (this.#output.includes("Server is ready")) return;
      if (this.#child !== child) throw new Error(`nats-server ${this.name} exited:\n${this.#output}`);
      if (Date.now() > deadline) throw new Error(`nats-server ${this.name} did not start:\n${this.#output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Sends a signal to the process we started (by its PID) and waits for it to exit. */
  async kill(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    process.kill(child.pid!, signal);
    await exited;
    this.#child = undefined;
  }

  /**
   * Stops the process (SIGSTOP) without ending it: it keeps its clients' connections open and answers nothing, as a
   * hung server does. `kill` ends it from there.
   */
  pause(): void {
    if (this.#child !== undefined) process.kill(this.#child.pid!, "SIGSTOP");
  }

  /** Whether JetStream on this server reports healthy (its /healthz, which includes the meta group). */
  async healthy(): Promise<boolean> {
    try {
      const response = await fetch(`http://127.0.0.1:${this.monitorPort}/healthz`);
      return response.ok;
    } catch {
      return false;
    }
  }
}

/**
 * A JetStream cluster of `size` nats-servers on loopback ports, each with its own store under one temp dir. `stop`
 * kills every server still running and removes the dir; call it in an `after` hook.
 */
export class NatsCluster {
  readonly nodes: NatsNode[];
  readonly #dir: string;

  private constructor(dir: string, nodes: NatsNode[]) {
    this.#dir = dir;
    this.nodes = nodes;
  }

  static async start(size = 3, tls?: NatsTls, config: readonly string[] = []): Promise<NatsCluster> {
    const dir = mkdtempSync(join(tmpdir(), "pc-nats-"));
    const ports: Array<{ port: number; routePort: number; monitorPort: number }> = [];
    for (let i = 0; i < size; i++) ports.push({ port: await freePort(), routePort: await freePort(), monitorPort: await freePort() });
    const nodes = ports.map((own, i) => new NatsNode(`n${i + 1}`, dir, own, ports.filter((_, j) => j !== i).map((other) => other.routePort), tls, config));
    const cluster = new NatsCluster(dir, nodes);
    try {
      await Promise.all(nodes.map((node) => node.start()));
      await cluster.waitHealthy();
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /** Every server's URL, for a client's server list. */
  get urls(): string[] {
    return this.nodes.map((node) => node.url);
  }

  /** Waits until every running server reports JetStream healthy (a meta leader is elected). */
  async waitHealthy(withinMs = 20_000): Promise<void> {
    for (const deadline = Date.now() + withinMs; ; ) {
      const running = this.nodes.filter((node) => node.running);
      if ((await Promise.all(running.map((node) => node.healthy()))).every(Boolean)) return;
      if (Date.now() > deadline) throw new Error("the NATS cluster did not become healthy");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.kill("SIGKILL")));
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
