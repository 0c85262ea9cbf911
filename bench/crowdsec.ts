/**
 * CrowdSec benchmark (`npx tsx bench/crowdsec.ts`; not part of the tests): a CrowdSec decision → the address dropped in
 * the kernel, for a Portcullis crowdsec feed (250 ms poll) and, beside it from the same run, Debian's stock
 * `crowdsec-firewall-bouncer` (ipset mode, 1 s poll).
 *
 * Everything runs in namespaces made here and removed at the end (also on failure and SIGINT/SIGTERM): a real
 * `portcullis serve` manages namespace A; the stock bouncer runs inside namespace B with its own config (its ipset
 * and iptables work happens in B only, never on the host). The CrowdSec Local API (Debian's `crowdsec -no-cs`, its own
 * config dir and SQLite db) listens on host loopback, where Portcullis reads it; the bouncer in B reaches it through a
 * relay of this process (B's 127.0.0.1:8080 → a Unix socket → the LAPI's port), which adds well under a millisecond.
 *
 * Each sample: `cscli decisions add --ip <address> --duration 1h`; from when cscli returns (the decision is in the
 * Local API's db), `ipset test` is run in each namespace every few ms until it succeeds. A random pause (up to a
 * second) before each decision spreads them over the poll phases. Prints a table; writes bench/results/crowdsec.json.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createConnection, createServer, type Server } from "node:net";
import { cpus, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { FeedFormat } from "../server/src/gen/portcullis/v1/feed.js";
import { Netns } from "../test/harness/netns.js";
import { PortcullisProcess } from "../test/harness/server.js";
import { FeedTestClient } from "../test/harness/grpc-clients.js";
import { CrowdsecLapi } from "../test/harness/crowdsec.js";
import { percentile, table } from "./report.js";

const HERE = import.meta.dirname;
const SAMPLES = Number(process.env.SAMPLES ?? 20);
const POLL_MS = 250;
const TARGET_MS = 300;
const BOUNCER_SET = "crowdsec-blacklists";

const t0 = performance.now();
const progress = (message: string): void => void process.stderr.write(`[crowdsec bench +${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${message}\n`);

let nsA: Netns | undefined;
let nsB: Netns | undefined;
let server: PortcullisProcess | undefined;
let client: FeedTestClient | undefined;
let lapi: CrowdsecLapi | undefined;
let relay: Server | undefined;
let relayChild: ChildProcess | undefined;
let bouncer: ChildProcess | undefined;
let cleaning: Promise<void> | undefined;

function stop(child: ChildProcess | undefined): void {
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
}

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    stop(bouncer);
    stop(relayChild);
    relay?.close();
    client?.close();
    await server?.stop().catch((error: unknown) => progress(`server stop failed: ${String(error)}`));
    await lapi?.close().catch(() => undefined);
    nsA?.destroy();
    nsB?.destroy();
  })();
  return cleaning;
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    progress(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

/** Whether `ipset test` in a namespace finds the address (exit 0). */
function inSet(netns: string, set: string, address: string): Promise<boolean> {
  return new Promise((resolvePromise) => execFile("ip", ["netns", "exec", netns, "ipset", "test", set, address], (error) => resolvePromise(error === null)));
}

/** Ms from `since` until `ipset test` succeeds, polled back to back; undefined after `limitMs`. */
async function dropLatency(netns: string, set: string, address: string, since: number, limitMs: number): Promise<number | undefined> {
  for (;;) {
    if (await inSet(netns, set, address)) return performance.now() - since;
    if (performance.now() - since > limitMs) return undefined;
    await sleep(2);
  }
}

/** Relays namespace B's 127.0.0.1:8080 to the Local API on host loopback, through a Unix socket. */
async function startRelay(netns: string, lapiPort: number, dir: string): Promise<void> {
  const socket = join(dir, "relay.sock");
  relay = createServer((inbound) => {
    const outbound = createConnection({ host: "127.0.0.1", port: lapiPort });
    inbound.pipe(outbound).pipe(inbound);
    inbound.on("error", () => outbound.destroy());
    outbound.on("error", () => inbound.destroy());
  });
  await new Promise<void>((resolvePromise) => relay!.listen(socket, resolvePromise));
  const script = `const net=require("node:net");net.createServer((c)=>{const u=net.connect(${JSON.stringify(socket)});c.pipe(u).pipe(c);c.on("error",()=>u.destroy());u.on("error",()=>c.destroy());}).listen(8080,"127.0.0.1",()=>process.stdout.write("up\\n"));`;
  relayChild = spawn("ip", ["netns", "exec", netns, process.execPath, "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolvePromise, reject) => {
    relayChild!.stdout!.once("data", () => resolvePromise());
    relayChild!.once("exit", (code) => reject(new Error(`the relay in ${netns} exited ${code}`)));
  });
}

/** The stock bouncer in namespace B: ipset mode, 1 s poll, its config and logs in the LAPI's temp dir. */
async function startBouncer(netns: string, key: string, dir: string): Promise<void> {
  const config = join(dir, "crowdsec-firewall-bouncer.yaml");
  writeFileSync(config, [
    "mode: ipset", `pid_dir: ${dir}/`, "update_frequency: 1s", "daemonize: false", "log_mode: stdout", "log_level: warning",
    "api_url: http://127.0.0.1:8080/", `api_key: ${key}`, "insecure_skip_verify: false", "disable_ipv6: false",
    "deny_action: DROP", "deny_log: false", "supported_decisions_types:", "  - ban",
    `blacklists_ipv4: ${BOUNCER_SET}`, "blacklists_ipv6: crowdsec6-blacklists", "ipset_type: nethash", "iptables_chains:", "  - INPUT",
    "prometheus:", "  enabled: false", "",
  ].join("\n"));
  // In ipset mode the bouncer fills sets it expects to exist (rules that use them are the admin's).
  nsB!.exec("ipset", ["create", BOUNCER_SET, "hash:net", "timeout", "0"]);
  nsB!.exec("ipset", ["create", "crowdsec6-blacklists", "hash:net", "family", "inet6", "timeout", "0"]);
  bouncer = spawn("ip", ["netns", "exec", netns, "crowdsec-firewall-bouncer", "-c", config], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  bouncer.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  await sleep(2000);
  if (bouncer.exitCode !== null) throw new Error(`crowdsec-firewall-bouncer exited ${bouncer.exitCode}: ${stderr.slice(-1000)}`);
}

async function main(): Promise<void> {
  nsA = new Netns();
  nsB = new Netns();
  progress(`namespaces ${nsA.name} (Portcullis) and ${nsB.name} (stock bouncer); starting the Local API`);
  lapi = await CrowdsecLapi.start();
  progress("starting the server");
  server = await PortcullisProcess.start(nsA.name, { logToFile: true });
  client = new FeedTestClient(server.address, server.credentials());
  await client.call("createFeed", {
    feedId: "crowdsec",
    feed: { name: "", source: lapi.url, format: FeedFormat.FEED_FORMAT_CROWDSEC, ipset: "ipsets/crowdsec", ipsetV6: "", intervalSeconds: 0, timeoutSeconds: 5, maxBytes: 0, ca: "", apiKey: lapi.bouncerKey("portcullis"), apiKeyFile: "", clientCertificate: "", clientKey: "", pollIntervalMs: POLL_MS, credentialsSet: false },
    requestId: "",
  });
  let bouncerNote = "";
  try {
    await startRelay(nsB.name, lapi.port, lapi.dir);
    await startBouncer(nsB.name, lapi.bouncerKey("stock-firewall-bouncer"), lapi.dir);
  } catch (error) {
    bouncerNote = `stock bouncer not measured: ${String(error).slice(0, 300)}`;
    progress(bouncerNote);
    stop(bouncer);
    bouncer = undefined;
  }

  const ours: number[] = [];
  const stock: number[] = [];
  let missed = 0;
  for (let i = 0; i < SAMPLES; i++) {
    await sleep(Math.random() * 1000);
    const address = `198.51.100.${i + 10}`;
    lapi.addDecision(address, "1h");
    const since = performance.now();
    const [a, b] = await Promise.all([
      dropLatency(nsA.name, "crowdsec", address, since, 10_000),
      bouncer === undefined ? Promise.resolve(undefined) : dropLatency(nsB.name, BOUNCER_SET, address, since, 10_000),
    ]);
    if (a === undefined) missed++;
    else ours.push(a);
    if (b !== undefined) stock.push(b);
    progress(`${address}: Portcullis ${a?.toFixed(0) ?? "—"} ms, stock bouncer ${b?.toFixed(0) ?? "—"} ms`);
  }

  const row = (name: string, poll: string, values: number[]): string[] => values.length === 0
    ? [name, poll, "—", "—", "—", "—", "0"]
    : [name, poll, percentile(values, 50).toFixed(0), percentile(values, 90).toFixed(0), Math.min(...values).toFixed(0), Math.max(...values).toFixed(0), String(values.length)];
  const load = loadavg()[0]!.toFixed(2);
  const p50 = ours.length === 0 ? NaN : percentile(ours, 50);
  process.stdout.write(`\nA CrowdSec decision → the address dropped in the kernel (ms from \`cscli decisions add\` returning to \`ipset test\` succeeding), ${SAMPLES} decisions; ${cpus().length} CPUs, load ${load}\n\n`);
  process.stdout.write(`${table([
    ["enforcer", "poll", "p50", "p90", "min", "max", "n"],
    row("Portcullis crowdsec feed", `${POLL_MS} ms`, ours),
    row("crowdsec-firewall-bouncer (ipset mode)", "1 s", stock),
  ])}\n\n`);
  process.stdout.write(`Portcullis p50 ${p50.toFixed(0)} ms: ${p50 <= TARGET_MS ? "meets" : "MISSES"} the target of ≤ ${TARGET_MS} ms${missed > 0 ? ` (${missed} decisions not seen within 10 s)` : ""}\n`);
  if (bouncerNote !== "") process.stdout.write(`${bouncerNote}\n`);
  mkdirSync(resolve(HERE, "results"), { recursive: true });
  writeFileSync(resolve(HERE, "results", "crowdsec.json"), `${JSON.stringify({ time: new Date().toISOString(), load: Number(load), pollMs: POLL_MS, portcullisMs: ours, stockBouncerMs: stock, p50, missed, bouncerNote }, null, 2)}\n`);
}

try {
  await main();
} finally {
  await cleanup();
}

