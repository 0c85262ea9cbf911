// The process starter's helper (see HelperStarter in process-starter.ts): a program of its own, built beside the
// bundle. For each program it connects three Unix sockets to the server (stdin, stdout, stderr, each announced by a
// header), starts the program on them, closes its own copies and reports how the program ends. It never reads or
// writes the program's data, and dies with the server (its IPC channel closes), ending its programs. Node's own spawn
// (argument arrays, no shell) and no imports but Node's: the helper stays small, so its forks stay cheap.
import { spawn, type ChildProcess } from "node:child_process";
import { connect, type Socket } from "node:net";
import { statSync } from "node:fs";
import type { HelperReply, HelperRequest } from "./process-helper-protocol.js";

const { PC_SPAWNER_SOCKET: path, PC_SPAWNER_TOKEN: token, PC_SPAWNER_NETNS: netns } = process.env;
delete process.env.PC_SPAWNER_SOCKET;
delete process.env.PC_SPAWNER_TOKEN;
delete process.env.PC_SPAWNER_NETNS;
if (path === undefined || token === undefined) throw new Error("the process helper is started by the server only");

const children = new Map<number, ChildProcess>();
const send = (message: HelperReply): void => {
  if (process.connected) process.send!(message);
};

/** Started in a named network namespace: is it still the one of that name (not deleted, or deleted and made again)? */
function sameNetns(): boolean {
  try {
    return statSync(`/run/netns/${netns}`).ino === statSync("/proc/self/ns/net").ino;
  } catch {
    return false;
  }
}

let stale = false;
const retire = (): void => {
  if (stale && children.size === 0) process.exit(0);
};

const open = (id: number, stream: number): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const socket = connect({ path, allowHalfOpen: true });
    socket.once("error", reject);
    socket.once("connect", () => socket.write(token + id.toString(16).padStart(8, "0") + stream, () => resolve(socket)));
  });

const why = (error: unknown): string => String(error instanceof Error ? error.message : error);

async function start(message: Extract<HelperRequest, { op: "start" }>): Promise<void> {
  // A helper in a namespace that is gone starts nothing more (the server starts a new helper for it) and ends once
  // its programs have.
  if (stale || (netns !== undefined && !sameNetns())) {
    stale = true;
    send({ op: "stale", id: message.id });
    retire();
    return;
  }
  let sockets: Socket[] = [];
  try {
    sockets = await Promise.all([0, 1, 2].map((stream) => open(message.id, stream)));
    for (const socket of sockets) socket.pause();
    const child = spawn(message.file, message.args, { stdio: sockets });
    // The program has its own copies now; ours would steal its input and keep its output open.
    for (const socket of sockets) socket.destroy();
    children.set(message.id, child);
    let ended = false;
    const end = (fields: { exitCode?: number; signal?: string; notStarted?: boolean; message?: string }): void => {
      if (ended) return;
      ended = true;
      children.delete(message.id);
      send({ op: "ended", id: message.id, ...fields });
      retire();
    };
    child.once("error", (error) => end({ notStarted: child.pid === undefined, message: why(error) }));
    child.once("exit", (code, signal) => end(code === null ? { signal: signal ?? undefined } : { exitCode: code }));
    send({ op: "started", id: message.id });
  } catch (error) {
    for (const socket of sockets) socket.destroy();
    send({ op: "ended", id: message.id, notStarted: true, message: why(error) });
  }
}

process.on("message", (message: HelperRequest) => {
  if (message.op === "start") void start(message);
  else if (message.op === "kill") children.get(message.id)?.kill(message.signal);
});
// The server is gone: its programs go too, so that a restore it was feeding stops where it is instead of reading on
// to the end of a line cut short (the server's next start repairs whatever it had applied).
process.on("disconnect", () => {
  for (const child of children.values()) child.kill("SIGKILL");
  process.exit(0);
});
