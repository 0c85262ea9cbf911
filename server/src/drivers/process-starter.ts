import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, type Readable, type Writable } from "node:stream";
import type { Logger } from "../logger.js";
import { entryFile } from "../code-files.js";
import type { HelperReply, HelperRequest } from "./process-helper-protocol.js";

/** How a started program ended. */
export interface ProcessEnd {
  readonly exitCode?: number;
  readonly signal?: string;
  /** It could not be started at all (not installed, not executable). */
  readonly notStarted: boolean;
}

/** A running program: its standard streams, its end, and a way to stop it. */
export interface StartedProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Resolves (never rejects) once the program has ended and all of its output is in stdout and stderr. */
  readonly ended: Promise<ProcessEnd>;
  kill(signal?: NodeJS.Signals): void;
}

/** Starts programs from argument arrays (never through a shell). */
export interface ProcessStarter {
  /** The network namespace its programs already run in (they need no `ip netns exec`); undefined: the caller's. */
  readonly netns?: string;
  start(file: string, args: readonly string[]): StartedProcess;
  close(): void;
}

/** `<token: 32 hex><id: 8 hex><stream: 1 digit>` at the start of each stdio connection. */
const TOKEN_LENGTH = 32;
const HEADER_LENGTH = TOKEN_LENGTH + 8 + 1;
/** How long a program whose helper ended before starting it waits before it goes to a new helper. */
const HELPER_RETRY_MS = 100;

/** Sends the helper a request (typed: ChildProcess.send takes anything). */
function ask(helper: ChildProcess, message: HelperRequest): void {
  helper.send(message);
}

interface Entry {
  readonly file: string;
  readonly args: readonly string[];
  /** The helper that was asked to start it. */
  helper?: ChildProcess;
  /** Sent again to a new helper once already (the first was in a namespace that is gone). */
  resent?: boolean;
  /** Sent again once already because its helper ended before it reached the program. */
  retried?: boolean;
  readonly stdin: PassThrough;
  /** stdout and stderr, as given to the caller. */
  readonly outputs: readonly [PassThrough, PassThrough];
  /** The connections from the helper: stdin, stdout, stderr. */
  readonly sockets: Array<Socket | undefined>;
  started: boolean;
  exit?: ProcessEnd;
  readonly exited: (end: ProcessEnd) => void;
  pendingKill?: NodeJS.Signals;
}

/**
 * Starts programs from a small helper process instead of from the server itself.
 *
 * Node starts a program with fork(), which write-protects every page of the calling process: each page the server
 * writes afterwards then takes a page fault. For a server of a few hundred MB that is thousands of faults after every
 * program started, and on the virtual machines this runs on a fault costs ≈ 16 µs: 50-100 ms per `iptables-save`,
 * more than the program itself takes. The helper is small and does nothing else, so its forks are cheap, and the
 * server forks once, at startup.
 *
 * A program's stdin, stdout and stderr are Unix sockets connected straight to this process (through a socket in a
 * private directory, each connection proven by a random token), so its data never passes through the helper.
 *
 * With a network namespace, the helper itself is started in it (`ip netns exec`, once), so its programs run there
 * without an `ip` process each: that one cost as much CPU as the `ipset restore` it started.
 */
export class HelperStarter implements ProcessStarter {
  readonly netns: string | undefined;
  readonly #log: Logger;
  readonly #dir: string;
  readonly #path: string;
  readonly #token = randomBytes(TOKEN_LENGTH / 2).toString("hex");
  readonly #server: Server;
  readonly #entries = new Map<number, Entry>();
  #helper: ChildProcess | undefined;
  /** Helpers whose namespace is gone, until their programs have ended. */
  readonly #retired = new Set<ChildProcess>();
  #nextId = 1;
  #closed = false;

  constructor(log: Logger, netns?: string) {
    this.#log = log;
    this.netns = netns;
    this.#dir = mkdtempSync(join(tmpdir(), "portcullis-"));
    this.#path = join(this.#dir, "spawn.sock");
    // Not half-open: a connection whose program has closed its end is closed here too (no descriptor left behind).
    this.#server = createServer((socket) => this.#accept(socket));
    // Without it no program can start: each start then reports "not started" (KERNEL_UNAVAILABLE) instead of hanging.
    this.#server.on("error", (error) => {
      this.#log.error({ err: error, path: this.#path }, "the process starter cannot listen; no program can be started");
      this.close();
    });
    this.#server.listen(this.#path);
    this.#server.unref();
  }

  start(file: string, args: readonly string[]): StartedProcess {
    const id = this.#nextId++;
    const stdin = new PassThrough();
    const outputs = [new PassThrough(), new PassThrough()] as const;
    let exited!: (end: ProcessEnd) => void;
    const exit = new Promise<ProcessEnd>((resolve) => (exited = resolve));
    const entry: Entry = { file, args: [...args], stdin, outputs, sockets: [undefined, undefined, undefined], started: false, exited: (end) => {
      if (entry.exit !== undefined) return;
      entry.exit = end;
      exited(end);
    } };
    stdin.on("error", () => undefined);
    // Ended means exited and all of the output handed to the streams (whether the caller reads it or not).
    const outputRead = Promise.all(outputs.map((stream) => new Promise<void>((resolve) => stream.once("finish", resolve).once("close", resolve))));
    const ended = exit.then(async (end) => {
      await outputRead;
      this.#entries.delete(id);
      if (this.#entries.size === 0) this.#helper?.channel?.unref();
      return end;
    });
    this.#entries.set(id, entry);
    this.#send(id, entry);
    return {
      stdin,
      stdout: outputs[0],
      stderr: outputs[1],
      ended,
      kill: (signal = "SIGTERM") => {
        if (entry.exit !== undefined) return;
        if (entry.started) if (entry.helper !== undefined) ask(entry.helper, { op: "kill", id, signal });
        else entry.pendingKill = signal;
      },
    };
  }

  close(): void {
    this.#closed = true;
    for (const helper of [this.#helper, ...this.#retired]) helper?.kill("SIGKILL");
    this.#helper = undefined;
    this.#retired.clear();
    for (const entry of this.#entries.values()) this.#abandon(entry, { notStarted: !entry.started, signal: "SIGKILL" });
    this.#server.close();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  /** A stdio connection from the helper: its header says which program and which stream it is. */
  #accept(socket: Socket): void {
    socket.on("error", () => undefined);
    let received: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      if (received.length < HEADER_LENGTH) return;
      socket.off("data", onData);
      socket.pause();
      if (received.length > HEADER_LENGTH) socket.unshift(received.subarray(HEADER_LENGTH));
      const header = received.subarray(0, HEADER_LENGTH).toString("latin1");
      const entry = header.slice(0, TOKEN_LENGTH) === this.#token ? this.#entries.get(Number.parseInt(header.slice(TOKEN_LENGTH, TOKEN_LENGTH + 8), 16)) : undefined;
      const stream = Number(header.slice(TOKEN_LENGTH + 8));
      if (entry === undefined || !(stream >= 0 && stream <= 2) || entry.sockets[stream] !== undefined || entry.exit?.notStarted === true) {
        socket.destroy();
        return;
      }
      entry.sockets[stream] = socket;
      if (stream === 0) {
        socket.resume(); // nothing comes this way; reading is how the program's exit (its end closing) is noticed
        this.#connectInput(entry);
        return;
      }
      const output = entry.outputs[stream - 1]!;
      socket.pipe(output);
      // Ended or not (a helper that died), the output is over when the connection is.
      socket.once("close", () => void (output.writableEnded || output.end()));
    };
    socket.on("data", onData);
  }

  /** Input flows once the program runs: before, the helper's copy of the socket could take some of it. */
  #connectInput(entry: Entry): void {
    const socket = entry.sockets[0];
    if (socket === undefined || !entry.started) return;
    socket.once("close", () => entry.stdin.destroy());
    entry.stdin.pipe(socket);
  }

  /** Asks the helper (started if need be) to start a program. */
  #send(id: number, entry: Entry): void {
    const helper = this.#started();
    // While programs run, the process waits for them (as for a child of its own); an idle helper keeps nothing alive.
    helper?.channel?.ref();
    entry.helper = helper;
    if (helper === undefined) this.#abandon(entry, { notStarted: true });
    else ask(helper, { op: "start", id, file: entry.file, args: entry.args });
  }

  /** Ends what is left of a program that did not start, or whose helper is gone. */
  #abandon(entry: Entry, end: ProcessEnd): void {
    for (const socket of entry.sockets) socket?.destroy();
    for (const [i, output] of entry.outputs.entries()) if (entry.sockets[i + 1] === undefined && !output.writableEnded) output.end();
    entry.exited(end);
  }

  #started(): ChildProcess | undefined {
    if (this.#closed) return undefined;
    if (this.#helper !== undefined) return this.#helper;
    const program = entryFile("drivers/process-helper");
    const node = [process.execPath, ...program.execArgv, program.file];
    const [file, args] = this.netns === undefined ? [node[0]!, node.slice(1)] : ["ip", ["netns", "exec", this.netns, ...node]];
    const helper = spawn(file, args, {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      // Not the server's NODE_OPTIONS (a preloaded loader or profiler would only make the helper bigger).
      env: { ...process.env, NODE_OPTIONS: "", PC_SPAWNER_SOCKET: this.#path, PC_SPAWNER_TOKEN: this.#token, ...(this.netns === undefined ? {} : { PC_SPAWNER_NETNS: this.netns }) },
    });
    helper.on("message", (message: HelperReply) => {
      const entry = this.#entries.get(message.id);
      if (entry === undefined) return;
      if (message.op === "stale") {
        // Its namespace was deleted (or made again): a new helper, started in the namespace of that name now, runs it.
        if (this.#helper === helper) {
          this.#helper = undefined;
          this.#retired.add(helper);
        }
        if (entry.resent === true) this.#abandon(entry, { notStarted: true });
        else {
          entry.resent = true;
          this.#log.warn({ netns: this.netns }, "network namespace was deleted or made again; starting programs in the one of that name now");
          this.#send(message.id, entry);
        }
      } else if (message.op === "started") {
        entry.started = true;
        this.#connectInput(entry);
        if (entry.pendingKill !== undefined) ask(helper, { op: "kill", id: message.id, signal: entry.pendingKill });
      } else if (message.op === "ended") {
        if (message.notStarted === true) {
          this.#log.debug({ err: message.message }, "program could not start");
          this.#abandon(entry, { notStarted: true });
        } else {
          entry.exited({ ...(message.exitCode === undefined ? {} : { exitCode: message.exitCode }), ...(message.signal === undefined ? {} : { signal: message.signal }), notStarted: false });
        }
      }
    });
    helper.on("error", (error) => this.#log.error({ err: error }, "cannot start the process starter helper"));
    helper.on("exit", (code, signal) => {
      const current = this.#helper === helper;
      if (current) this.#helper = undefined;
      this.#retired.delete(helper);
      // A retired helper (its namespace gone) ends by itself once its programs have.
      if (!this.#closed && current) this.#log.warn({ code, signal }, "process starter helper exited; the next command starts a new one");
      // Its programs are not ours to wait for any more: their sockets close, so they see the end of their input.
      for (const [id, entry] of this.#entries) {
        if (entry.helper !== helper || entry.exit !== undefined) continue;
        // A helper that ended before it reached the program (`ip netns exec` fails with EINVAL while a namespace of
        // that name is being made again): the program goes once more to a new helper, a moment later.
        if (!this.#closed && !entry.started && entry.retried !== true && entry.sockets.every((socket) => socket === undefined)) {
          entry.retried = true;
          setTimeout(() => void (entry.exit === undefined && this.#send(id, entry)), HELPER_RETRY_MS);
          continue;
        }
        this.#abandon(entry, { notStarted: !entry.started, signal: "SIGKILL" });
      }
    });
    helper.unref();
    helper.channel?.unref();
    this.#helper = helper;
    return helper;
  }
}
