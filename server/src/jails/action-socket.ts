import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";
import type { ActionItem, JailEnforcement } from "./jail-enforcement.js";
import { JAIL_NAME } from "../names.js";

/** A request line longer than this is not from the action: the connection is closed. */
const MAX_LINE = 1024 * 1024;
/** Items per batch request. */
const MAX_ITEMS = 1000;

/**
 * The local socket the Portcullis fail2ban action (fail2ban/action.d/portcullis.py) talks to: one JSON object per line
 * each way, `{"id":1,"op":"batch","jail":"dovecot","items":[{"op":"ban","ip":"192.0.2.100","bantime":600,"failures":5,
 * "ipv6_prefix":64},{"op":"unban",…}]}` → `{"id":1,"ok":true,"refused":[{"ip":…,"error":…}]}` or
 * `{"id":1,"ok":false,"reason":"…","error":"…"}`; also `start`, `stop` and `ping`. Requests on one connection are
 * handled in order (a ban before its unban). Only root can connect (socket 0600 in a 0700 directory), and every request is
 * validated like any other input.
 */
export class ActionSocket {
  readonly #server: Server;
  readonly #path: string;
  readonly #connections = new Set<Socket>();

  private constructor(server: Server, path: string) {
    this.#server = server;
    this.#path = path;
  }

  static async listen(path: string, enforcement: JailEnforcement, log: Logger): Promise<ActionSocket> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    rmSync(path, { force: true }); // a socket left by a process that died
    const server = createServer();
    const socket = new ActionSocket(server, path);
    server.on("connection", (connection) => socket.#serve(connection, enforcement, log));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => resolve());
    });
    chmodSync(path, 0o600);
    log.info({ path }, "fail2ban action socket listening");
    return socket;
  }

  async close(): Promise<void> {
    for (const connection of this.#connections) connection.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.#path, { force: true });
  }

  #serve(connection: Socket, enforcement: JailEnforcement, log: Logger): void {
    this.#connections.add(connection);
    connection.on("close", () => this.#connections.delete(connection));
    connection.on("error", () => undefined);
    connection.setEncoding("utf8");
    let buffered = "";
    let queue = Promise.resolve();
    connection.on("data", (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        queue = queue.then(async () => {
          const reply = await handle(line, enforcement, log);
          if (!connection.destroyed) connection.write(`${JSON.stringify(reply)}\n`);
        });
      }
      if (buffered.length > MAX_LINE) {
        log.warn("fail2ban action socket: request line too long; closing the connection");
        connection.destroy();
      }
    });
  }
}

async function handle(line: string, enforcement: JailEnforcement, log: Logger): Promise<Record<string, unknown>> {
  let id: unknown;
  try {
    const request = parse(line);
    id = request.id;
    const { op, jail } = request;
    switch (op) {
      case "ping":
      case "stop": // the jail's bans were unbanned before; its sets and rule stay for the next start
        break;
      case "start":
        await enforcement.start(jail);
        break;
      case "batch":
        return { id, ok: true, refused: await enforcement.apply(jail, request.items) };
    }
    return { id, ok: true };
  } catch (error) {
    const known = error instanceof ServerError;
    if (!known) log.error({ err: error }, "fail2ban action request failed");
    return { id, ok: false, reason: known ? error.reason : "INTERNAL", error: known ? error.message : "internal error; see the Portcullis log" };
  }
}

interface ActionRequest {
  readonly id: unknown;
  readonly op: "ping" | "start" | "stop" | "batch";
  readonly jail: string;
  readonly items: ActionItem[];
}

function parse(line: string): ActionRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw bad("a request must be one JSON object per line");
  }
  if (!isObject(value)) throw bad("a request must be a JSON object");
  const op = value.op;
  if (op !== "ping" && op !== "start" && op !== "stop" && op !== "batch") throw bad(`unknown op ${JSON.stringify(op)}`);
  const jail = value.jail;
  if (op !== "ping" && (typeof jail !== "string" || !JAIL_NAME.test(jail))) throw bad("jail must be a jail name");
  const items = value.items ?? [];
  if (!Array.isArray(items) || items.length > MAX_ITEMS) throw bad(`items must be a list of at most ${MAX_ITEMS}`);
  return { id: value.id, op, jail: typeof jail === "string" ? jail : "", items: items.map(parseItem) };
}

function parseItem(value: unknown, i: number): ActionItem {
  if (!isObject(value) || (value.op !== "ban" && value.op !== "unban")) throw bad(`items[${i}].op must be ban or unban`);
  if (typeof value.ip !== "string" || value.ip === "" || value.ip.length > 100) throw bad(`items[${i}].ip must be an address`);
  const number = (name: string, fallback: number, min: number, max: number): number => {
    const field = value[name] ?? fallback;
    if (typeof field !== "number" || !Number.isFinite(field) || field < min || field > max) throw bad(`items[${i}].${name} must be a number from ${min} to ${max}`);
    return field;
  };
  return {
    op: value.op,
    ip: value.ip,
    bantime: number("bantime", -1, -1, 1e10),
    failures: number("failures", 0, 0, 1e9),
    ipv6Prefix: Math.floor(number("ipv6_prefix", 128, 1, 128)),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function bad(message: string): ServerError {
  return new ServerError("INVALID_ACTION_REQUEST", message, {});
}
