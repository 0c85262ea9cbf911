import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { PATIENCE_MS } from "./wait.js";

/** A loopback port free right now (for a receiver or a server that must come back on the same address). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const LISTENER = `
const net = require("node:net");
const server = net.createServer((socket) => { socket.on("error", () => {}); socket.end("ok\\n"); });
server.listen({ port: Number(process.argv[1]), host: "::", ipv6Only: false }, () => console.log("ready"));
`;

const CONNECT = `
const net = require("node:net");
const socket = net.connect({ host: process.argv[1], port: Number(process.argv[2]) });
socket.setTimeout(Number(process.argv[3]));
socket.on("connect", () => { socket.destroy(); process.exit(0); });
// Not connected in time, unless the answer is already here: a starved process may run its timer before reading it.
socket.on("timeout", () => setImmediate(() => process.exit(3)));
socket.on("error", () => process.exit(4));
`;

/** A TCP listener inside a namespace (both families), until stopped. */
export async function listen(netns: string, port: number): Promise<{ stop(): void }> {
  const child: ChildProcess = spawn("ip", ["netns", "exec", netns, process.execPath, "-e", LISTENER, String(port)], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("ready") && resolve());
    child.once("exit", (code) => reject(new Error(`listener exited with ${code}`)));
  });
  return { stop: () => child.kill("SIGKILL") };
}

/** Whether a TCP connect from the namespace to host:port succeeds within timeoutMs. */
export async function canConnect(netns: string, host: string, port: number, timeoutMs = 500): Promise<boolean> {
  const child = spawn("ip", ["netns", "exec", netns, process.execPath, "-e", CONNECT, host, String(port), String(timeoutMs)], { stdio: "ignore" });
  const [code] = (await once(child, "exit")) as [number | null];
  return code === 0;
}

/**
 * Whether connects from `netns` start failing within `withinMs`: after fail2ban lists a ban, its stock action (a shell
 * running iptables) can still be at work for a moment. Returns false if the connect still succeeds at the end.
 */
export async function becomesUnreachable(netns: string, host: string, port: number, withinMs = PATIENCE_MS): Promise<boolean> {
  for (const deadline = Date.now() + withinMs; ; ) {
    if (!(await canConnect(netns, host, port))) return true;
    if (Date.now() > deadline) return false;
  }
}
