import { createConnection, type Socket } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import { decodeReply, encodeCommand, F2B_CLOSE, F2B_END, isPickleException, PickleError, type PickleException, type PickleValue } from "./parse/pickle-codec.js";

const DEFAULT_TIMEOUT_MS = 10_000;
/** A ban list of a million addresses pickles to about 30 MB; anything far beyond that is not a fail2ban reply. */
const MAX_REPLY_BYTES = 64 * 1024 * 1024;

/** Write errors meaning the bytes never reached the server: it had closed before reading, or we had. */
const NOT_DELIVERED = new Set(["EPIPE", "ECONNRESET", "ERR_STREAM_WRITE_AFTER_END", "ERR_STREAM_DESTROYED"]);

interface Pending {
  readonly args: readonly string[];
  readonly payload: Buffer;
  readonly deadline: number;
  readonly resolve: (value: PickleValue) => void;
  readonly reject: (error: Error) => void;
  settled: boolean;
  timer?: NodeJS.Timeout;
}

/** Receives what arrives on `socket` while one reply is awaited. */
interface Reader {
  readonly socket: Socket;
  data(chunk: Buffer): void;
  lost(code: string | undefined): void;
}

/** The connection ended before a reply; `delivered` is false when the command provably never reached the server. */
class ConnectionLost extends Error {
  constructor(readonly code: string | undefined, readonly delivered: boolean) {
    super(`connection lost${code === undefined ? "" : ` (${code})`}`);
  }
}

/**
 * Talks to fail2ban-server over its unix socket, as fail2ban-client does (client/csocket.py), without a Python process
 * per call: each command is a pickled list of str followed by `<F2B_END_COMMAND>`; the reply is a pickled
 * `(code, value)` followed by the same terminator. The server keeps a connection open for any number of commands
 * (server/asyncserver.py), so one persistent connection is used and reopened whenever the server has closed it.
 * The server answers one request at a time, so commands queue here and one is in flight.
 */
export class Fail2banClient {
  readonly #socketPath: string;
  readonly #log: Logger;
  readonly #queue: Pending[] = [];
  #socket: Socket | undefined;
  #reader: Reader | undefined;
  #inFlight: Pending | undefined;
  #closed = false;
  #connections = 0;

  constructor(socketPath: string, log: Logger) {
    this.#socketPath = socketPath;
    this.#log = log;
  }

  /**
   * Sends one command (e.g. `["status", "sshd"]`) and resolves with fail2ban's value for it. The timeout covers the
   * wait in the queue too. Rejects with ServerError: JAIL_NOT_FOUND, JAIL_ALREADY_EXISTS, FAIL2BAN_REJECTED (any
   * other exception fail2ban answered), FAIL2BAN_UNAVAILABLE (no server, server gone, no answer in time),
   * FAIL2BAN_BAD_REPLY; with PickleError when `args` cannot be sent (a string with NUL, …: a validation bug upstream).
   */
  /** Connections opened so far: a new one may be to a restarted fail2ban, so what was read before may be stale. */
  get connections(): number {
    return this.#connections;
  }

  send(args: readonly string[], timeoutMs = DEFAULT_TIMEOUT_MS): Promise<PickleValue> {
    if (this.#closed) return Promise.reject(new ServerError("SHUTTING_DOWN", "the server is shutting down"));
    let payload: Buffer;
    try {
      payload = Buffer.concat([encodeCommand(args), F2B_END]);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<PickleValue>((resolve, reject) => {
      const pending: Pending = { args: [...args], payload, deadline: Date.now() + timeoutMs, resolve, reject, settled: false };
      pending.timer = setTimeout(() => this.#timedOut(pending, timeoutMs), timeoutMs);
      this.#queue.push(pending);
      void this.#pump();
    });
  }

  /** Says goodbye to the server (`<F2B_CLOSE_COMMAND>`) and fails every command not answered yet. */
  close(): void {
    this.#closed = true;
    const error = new ServerError("SHUTTING_DOWN", "the server is shutting down");
    for (const pending of this.#queue.splice(0)) settle(pending, () => pending.reject(error));
    if (this.#inFlight !== undefined) settle(this.#inFlight, () => this.#inFlight!.reject(error));
    const socket = this.#socket;
    this.#socket = undefined;
    socket?.end(Buffer.concat([F2B_CLOSE, F2B_END]));
    socket?.destroySoon();
  }

  async #pump(): Promise<void> {
    if (this.#inFlight !== undefined) return;
    const pending = this.#queue.shift();
    if (pending === undefined) return;
    this.#inFlight = pending;
    const started = performance.now();
    try {
      const reply = await this.#exchange(pending);
      this.#log.debug({ command: pending.args.slice(0, 3), ms: performance.now() - started }, "fail2ban command answered");
      const value = this.#unwrap(pending.args, reply);
      settle(pending, () => pending.resolve(value));
    } catch (error) {
      settle(pending, () => pending.reject(error instanceof Error ? error : new Error(String(error))));
    } finally {
      this.#inFlight = undefined;
      void this.#pump();
    }
  }

  #timedOut(pending: Pending, timeoutMs: number): void {
    if (pending.settled) return;
    const queued = this.#queue.indexOf(pending);
    if (queued >= 0) this.#queue.splice(queued, 1);
    // A late answer would be taken for the next command's: drop the connection rather than stay out of step.
    if (this.#inFlight === pending) this.#socket?.destroy();
    this.#log.warn({ command: pending.args.slice(0, 3), timeoutMs, queued: queued >= 0 }, "fail2ban did not answer in time");
    settle(pending, () => pending.reject(new ServerError("FAIL2BAN_UNAVAILABLE", `fail2ban did not answer within ${timeoutMs} ms; it may be busy or stuck`)));
  }

  async #exchange(pending: Pending): Promise<PickleValue> {
    for (let attempt = 0; ; attempt++) {
      const socket = await this.#connect(pending.deadline);
      // Timed out (or closed) while connecting: the caller has its answer, so the command must not run behind its back.
      if (pending.settled) throw new Error("command settled before it was sent");
      try {
        return await this.#roundTrip(socket, pending);
      } catch (error) {
        if (!(error instanceof ConnectionLost)) throw error;
        // An idle connection the server closed (it restarted, say) is noticed only when writing to it. The write then
        // fails before the server read a byte, so the command is sent again, once, on a fresh connection.
        if (!error.delivered && attempt === 0 && !pending.settled) {
          this.#log.debug({ command: pending.args.slice(0, 3), code: error.code }, "fail2ban had closed the connection; sending again");
          continue;
        }
        this.#log.warn({ command: pending.args.slice(0, 3), code: error.code }, "fail2ban closed the connection before answering");
        throw new ServerError("FAIL2BAN_UNAVAILABLE", "fail2ban-server closed the connection before answering; it may have stopped");
      }
    }
  }

  async #connect(deadline: number): Promise<Socket> {
    for (;;) {
      const current = this.#socket;
      if (current !== undefined && current.writable && !current.readableEnded) return current;
      current?.destroy();
      this.#socket = undefined;
      try {
        return await this.#open();
      } catch (error) {
        if (error instanceof ServerError) throw error;
        const code = (error as NodeJS.ErrnoException).code;
        // fail2ban listens with a backlog of 1 and serves from one thread: while it is busy, a second connect is
        // refused at once with EAGAIN instead of waiting in the backlog.
        if (code === "EAGAIN" && Date.now() + 20 < deadline) {
          await delay(20);
          continue;
        }
        // Debug only: callers (the ban watcher, RPCs) decide how loudly a down fail2ban is reported.
        this.#log.debug({ socket: this.#socketPath, code }, "cannot connect to fail2ban-server");
        throw new ServerError(
          "FAIL2BAN_UNAVAILABLE",
          `cannot reach fail2ban-server at ${this.#socketPath}${code === undefined ? "" : ` (${code})`}: fail2ban is not running, or the socket path is wrong`,
        );
      }
    }
  }

  #open(): Promise<Socket> {
    return new Promise<Socket>((resolve, reject) => {
      const socket = createConnection(this.#socketPath);
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        if (this.#closed) {
          socket.destroy();
          return reject(new ServerError("SHUTTING_DOWN", "the server is shutting down"));
        }
        this.#attach(socket);
        resolve(socket);
      });
    });
  }

  #attach(socket: Socket): void {
    this.#socket = socket;
    this.#connections++;
    // An idle connection must not keep the process alive; a command in flight does, through its timer.
    socket.unref();
    let lastError: string | undefined;
    socket.on("data", (chunk: Buffer) => {
      if (this.#reader?.socket === socket) return this.#reader.data(chunk);
      this.#log.warn({ bytes: chunk.length }, "fail2ban sent data nobody asked for; reconnecting");
      socket.destroy();
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      lastError = error.code ?? error.message;
    });
    socket.on("close", () => {
      if (this.#socket === socket) this.#socket = undefined;
      const reader = this.#reader;
      if (reader?.socket !== socket) return;
      this.#reader = undefined;
      reader.lost(lastError);
    });
  }

  /** Writes one command and reads its reply: everything up to a terminator that ends a complete pickle. */
  #roundTrip(socket: Socket, pending: Pending): Promise<PickleValue> {
    return new Promise<PickleValue>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let received = 0;
      const fail = (error: Error): void => {
        this.#reader = undefined;
        socket.destroy();
        reject(error);
      };
      this.#reader = {
        socket,
        data: (chunk) => {
          chunks.push(chunk);
          received += chunk.length;
          if (received > MAX_REPLY_BYTES) {
            this.#log.error({ command: pending.args.slice(0, 3), bytes: received }, "fail2ban reply too large");
            return fail(new ServerError("FAIL2BAN_BAD_REPLY", `fail2ban's reply exceeded ${MAX_REPLY_BYTES} bytes`));
          }
          if (!endsWith(chunks, F2B_END)) return;
          let value: PickleValue;
          try {
            value = decodeReply(Buffer.concat(chunks, received).subarray(0, received - F2B_END.length));
          } catch (error) {
            // The terminator was text inside a string of the reply (a log line, say): the real end is still coming.
            if (error instanceof PickleError && error.truncated) return;
            this.#log.error({ command: pending.args.slice(0, 3), err: error }, "undecodable reply from fail2ban");
            return fail(new ServerError("FAIL2BAN_BAD_REPLY", "fail2ban's reply could not be decoded; see the server log"));
          }
          this.#reader = undefined;
          resolve(value);
        },
        lost: (code) => reject(new ConnectionLost(code, received > 0 || !NOT_DELIVERED.has(code ?? ""))),
      };
      socket.write(pending.payload);
    });
  }

  /** fail2ban's `(0, value)` → value; `(1, exception)` → a ServerError; anything else is not a reply we understand. */
  #unwrap(args: readonly string[], reply: PickleValue): PickleValue {
    if (Array.isArray(reply) && reply.length === 2 && typeof reply[0] === "number") {
      const [code, value] = reply;
      if (code === 0) return value!;
      if (isPickleException(value)) throw this.#rejection(args, value);
    }
    // RequestHandler answers ['SHUTDOWN'] once the server has begun to stop.
    if (Array.isArray(reply) && reply.length === 1 && reply[0] === "SHUTDOWN") {
      throw new ServerError("FAIL2BAN_UNAVAILABLE", "fail2ban-server is shutting down");
    }
    // "ERROR: …" strings come from RequestHandler when it could not unpickle the command or pickle the answer.
    this.#log.error({ command: args.slice(0, 3), reply: describe(reply) }, "unexpected reply from fail2ban");
    throw new ServerError("FAIL2BAN_BAD_REPLY", "fail2ban answered something unexpected; see the server log");
  }

  #rejection(args: readonly string[], exception: PickleException): ServerError {
    const first = exception.args[0];
    const jail = typeof first === "string" ? first : describe(first ?? null);
    switch (exception.exception) {
      case "UnknownJailException":
        return new ServerError("JAIL_NOT_FOUND", `jail "${jail}" does not exist in fail2ban`, { jail });
      case "DuplicateJailException":
        return new ServerError("JAIL_ALREADY_EXISTS", `jail "${jail}" already exists in fail2ban`, { jail });
      default: {
        const detail = exception.args.map(describe).join(", ");
        this.#log.warn({ command: args.slice(0, 3), exception: exception.exception, detail }, "fail2ban rejected a command");
        const command = clip(args.join(" "), 200);
        return new ServerError("FAIL2BAN_REJECTED", `fail2ban rejected "${command}": ${clip(detail || exception.exception, 500)}`, { exception: exception.exception });
      }
    }
  }
}

function settle(pending: Pending, action: () => void): void {
  if (pending.settled) return;
  pending.settled = true;
  clearTimeout(pending.timer);
  action();
}

function endsWith(chunks: readonly Buffer[], suffix: Buffer): boolean {
  let i = suffix.length;
  for (let c = chunks.length - 1; c >= 0 && i > 0; c--) {
    const chunk = chunks[c]!;
    for (let j = chunk.length - 1; j >= 0 && i > 0; j--) if (chunk[j] !== suffix[--i]) return false;
  }
  return i === 0;
}

/** A short, plain rendering of an exception argument: strings as they are, no Python reprs, long lists cut. */
function describe(value: PickleValue): string {
  const list = (values: PickleValue[], render: (item: PickleValue) => string = describe): string =>
    values.slice(0, 20).map(render).join(", ") + (values.length > 20 ? `, … (${values.length} items)` : "");
  if (typeof value === "string") return clip(value, 1000);
  if (value === null) return "None";
  if (Array.isArray(value)) return `[${list(value)}]`;
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  if (value instanceof Set) return `{${list([...value])}}`;
  if (value instanceof Map) return `{${list([...value.keys()], (key) => `${describe(key)}: ${describe(value.get(key) ?? null)}`)}}`;
  if (isPickleException(value)) return `${value.exception}(${list(value.args)})`;
  return String(value);
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}
