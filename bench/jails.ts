// Jail benchmark: the API against fail2ban-client in the same run, with 0, 1k and 10k bans in the jail.
// Run by `npm run bench` after the others; prints a table and writes bench/results/jails.json. Last: the seed's attack
// flow, from the fifth log line to the Ban event and to the attacker's packets being dropped.
import { execFileSync, spawn } from "node:child_process";
import { Agent, request as httpsRequest } from "node:https";
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { dovecotFailures, Fail2banServer } from "../test/harness/fail2ban.js";
import { startJailHosts } from "../test/harness/jail-hosts.js";
import { VictimAttacker } from "../test/harness/netns.js";
import { PortcullisProcess } from "../test/harness/server.js";
import { EventTestClient, JailTestClient } from "../test/harness/grpc-clients.js";
import { EventType } from "../server/src/gen/portcullis/v1/events.js";
import { JailView } from "../server/src/gen/portcullis/v1/jail.js";
import { Fail2banClient } from "../server/src/drivers/fail2ban-client.js";
import { createLogger } from "../server/src/logger.js";
import { percentile } from "./report.js";

const progress = (message: string): void => void process.stderr.write(`[jail bench] ${message}\n`);
const address = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

// Jails: `bulk` (no-op action: fail2ban's own cost), `pc` (the Portcullis action) and `stock` (fail2ban's stock ipset
// action, a shell and ipset per ban; its bans reach Portcullis through the watcher). All inside the bench's namespace.
let actionSocket = "";
const fail2ban = new Fail2banServer({
  expectedJails: "bulk, pc, single, stock",
  jails: ({ dir, mailLog }) => {
    actionSocket = join(dir, "action.sock");
    return [
      "[DEFAULT]", "backend = polling", `logpath = ${mailLog}`, "filter = dovecot", "maxretry = 3", "findtime = 600", "bantime = 3600",
      "[bulk]", "enabled = true", "action = noop",
      "[pc]", "enabled = true", `action = portcullis.py[socket="${actionSocket}"]`,
      "[single]", "enabled = true", "action = noop",
      "[stock]", "enabled = true", "action = iptables-ipset-proto6-allports[name=stock]", "",
    ].join("\n");
  },
});
let server: PortcullisProcess | undefined;
let client: JailTestClient | undefined;
const direct = new Fail2banClient(fail2ban.socket, createLogger("silent"));
const rows: string[][] = [];
const results: Record<string, unknown> = {};
const add = (name: string, api: number[], raw: number[], target: string, pass?: boolean): void => {
  const [a50, a99, r50, r99] = [percentile(api, 50), percentile(api, 99), percentile(raw, 50), percentile(raw, 99)];
  results[name] = { apiP50Ms: a50, apiP99Ms: a99, rawP50Ms: r50, rawP99Ms: r99, speedup: r50 / a50 };
  rows.push([name, `${a50.toFixed(2)} / ${a99.toFixed(2)} ms`, `${r50.toFixed(1)} / ${r99.toFixed(1)} ms`, `${(r50 / a50).toFixed(0)}× faster`, target, pass === undefined ? "" : pass ? "PASS" : "FAIL"]);
};
/**
 * Reads as a running server answers them: after WARM_UP untimed calls, so that the first calls' JIT compilation (of
 * this path in the server and in this client) is not what the percentiles measure (the first 100 ListAllowlist calls
 * after a start: p50 ≈ 1.4 ms; calls 1,300–2,300: ≈ 0.8–0.9 ms).
 */
const WARM_UP = 300;
const TIMED_READS = 500;
async function steady(call: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < WARM_UP; i++) await call();
  const times: number[] = [];
  for (let i = 0; i < TIMED_READS; i++) times.push(await timed(call));
  return times;
}
const rawClient = (...args: string[]): number => {
  const started = performance.now();
  execFileSync("fail2ban-client", ["-s", fail2ban.socket, ...args], { stdio: "ignore" });
  return performance.now() - started;
};

/** In the attacker's namespace: connects every ~2 ms until one gets no answer; prints when that attempt started. */
const PROBE = `
const net = require("node:net");
const [host, port] = [process.argv[1], Number(process.argv[2])];
const attempt = () => {
  const started = Date.now();
  const socket = net.connect({ host, port });
  socket.setTimeout(100);
  socket.on("connect", () => { socket.destroy(); setTimeout(attempt, 2); });
  socket.on("timeout", () => { process.stdout.write(String(started)); process.exit(0); });
  socket.on("error", () => setTimeout(attempt, 2));
};
attempt();
`;
const ATTACK_SAMPLES = 20;

/**
 * The seed's flow, timed from the moment the fifth failure is written to the watched log (jail dovecot, maxretry 5,
 * pyinotify backend as on a Debian host, the Portcullis action): to the Ban event at a WatchEvents subscriber, and to
 * the first TCP connect from the attacker's namespace that gets no answer (a prober connects every ~2 ms). Between
 * samples the address is unbanned through the API and fail2ban's failure count starts again.
 */
async function attackFlow(samples: number): Promise<{ event: number[]; dropped: number[]; decided: number[] }> {
  const { victimV4, attackerV4 } = VictimAttacker;
  const setup = await startJailHosts(["maxretry = 5", "findtime = 600", "bantime = 600", "backend = pyinotify"], (socket) => `portcullis.py[socket="${socket}"]`);
  const jails = new JailTestClient(setup.f.server.address, setup.f.server.credentials());
  const events = new EventTestClient(setup.f.server.address, setup.f.server.credentials());
  const banEvents: number[] = [];
  const watch = events.stream("watchEvents", { afterSequence: 0, types: [EventType.EVENT_TYPE_BAN], resourcePrefix: "jails/dovecot", principal: "", jail: "", address: "" }, () => void banEvents.push(Date.now()));
  const result = { event: [] as number[], dropped: [] as number[], decided: [] as number[] };
  const writtenAt: number[] = [];
  try {
    await sleep(500);
    for (let i = 0; i < samples; i++) {
      const probe = spawn("ip", ["netns", "exec", setup.hosts.attacker.name, process.execPath, "-e", PROBE, victimV4, "143"], { stdio: ["ignore", "pipe", "inherit"] });
      let out = "";
      probe.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
      const probed = new Promise<void>((resolve) => probe.once("exit", () => resolve()));
      await sleep(300); // the prober is connecting
      const seen = banEvents.length;
      appendFileSync(setup.fail2ban.mailLog, dovecotFailures(attackerV4, victimV4, 4));
      await sleep(100);
      const written = Date.now();
      appendFileSync(setup.fail2ban.mailLog, dovecotFailures(attackerV4, victimV4, 1));
      for (const deadline = Date.now() + 10_000; banEvents.length === seen && Date.now() < deadline; ) await sleep(2);
      await Promise.race([probed, sleep(10_000)]);
      probe.kill();
      if (banEvents.length === seen || out === "") throw new Error(`sample ${i}: no ban within 10 s`);
      writtenAt.push(written);
      result.event.push(banEvents[seen]! - written);
      result.dropped.push(Number(out) - written);
      await jails.call("unbanIp", { jail: "jails/dovecot", address: attackerV4 });
    }
    // fail2ban's own "Ban" lines for the same samples (its log has millisecond times): how much is fail2ban's part.
    const bans = readFileSync(join(setup.fail2ban.dir, "fail2ban.log"), "utf8").split("\n").filter((line) => / Ban 192\.0\.2\.100$/.test(line));
    result.decided = writtenAt.map((written, i) => {
      const match = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d),(\d{3})/.exec(bans[i] ?? "");
      return match === null ? NaN : new Date(+match[1]!, +match[2]! - 1, +match[3]!, +match[4]!, +match[5]!, +match[6]!, +match[7]!).getTime() - written;
    });
    return result;
  } finally {
    watch.cancel();
    events.close();
    jails.close();
    await setup.close();
  }
}

try {
  await fail2ban.start();
  server = await PortcullisProcess.start(fail2ban.netns.name, { env: { PORTCULLIS_FAIL2BAN_SOCKET: fail2ban.socket, PORTCULLIS_FAIL2BAN_ACTION_SOCKET: actionSocket }, logToFile: true });
  client = new JailTestClient(server.address, server.credentials());
  // Let the server finish meeting the jails (settings, the Portcullis action's sets and rules) before timing anything.
  await sleep(3000);
  const c = client;
  let banned = 0;
  for (const target of [0, 1_000, 10_000]) {
    if (target > banned) {
      progress(`banning up to ${target} addresses in jail bulk (fail2ban, no-op action)`);
      for (let from = banned; from < target; from += 500) {
        await direct.send(["set", "bulk", "banip", ...Array.from({ length: Math.min(500, target - from) }, (_, i) => address(from + i))], 120_000);
      }
      banned = target;
    }
    progress(`jail status with ${target} bans`);
    const api = await steady(() => c.call("getJail", { name: "jails/bulk", view: JailView.JAIL_VIEW_BASIC }));
    const raw = Array.from({ length: 10 }, () => rawClient("status", "bulk"));
    add(`jail status (GetJail), ${target} bans`, api, raw, target === 1_000 ? "p50 ≤ 2 ms, ≥ 20×" : "", target === 1_000 ? percentile(api, 50) <= 2 && percentile(raw, 50) / percentile(api, 50) >= 20 : undefined);
  }
  progress("jail status with 1000 bans in jail pc (the Portcullis action: the list is Portcullis's record)");
  await c.call("batchBanIp", { jail: "jails/pc", addresses: Array.from({ length: 1_000 }, (_, i) => address(700_000 + i)) });
  const pcApi = await steady(() => c.call("getJail", { name: "jails/pc", view: JailView.JAIL_VIEW_BASIC }));
  const pcRaw = Array.from({ length: 10 }, () => rawClient("status", "pc"));
  add("jail status (GetJail), 1000 bans, Portcullis action", pcApi, pcRaw, "p50 ≤ 2 ms, ≥ 20×", percentile(pcApi, 50) <= 2 && percentile(pcRaw, 50) / percentile(pcApi, 50) >= 20);
  await c.call("unbanAll", {});
  progress("the API's own floor: a call that does not reach fail2ban (ListAllowlist)");
  const floor = await steady(() => c.call("listAllowlist", {}));
  const ping = Array.from({ length: 10 }, () => rawClient("ping"));
  add("gRPC + mTLS round trip alone (ListAllowlist)", floor, ping, "(reference; raw: fail2ban-client ping)");
  progress("single bans (API BanIp vs fail2ban-client set bulk banip)");
  const banApi: number[] = [];
  for (let i = 0; i < 200; i++) banApi.push(await timed(() => c.call("banIp", { jail: "jails/bulk", address: address(100_000 + i) })));
  const banRaw = Array.from({ length: 10 }, (_, i) => rawClient("set", "bulk", "banip", address(200_000 + i)));
  add("single ban, 10k bans present", banApi, banRaw, "p50 ≤ 5 ms, ≥ 10×", percentile(banApi, 50) <= 5 && percentile(banRaw, 50) / percentile(banApi, 50) >= 10);

  progress("single bans over REST (HTTPS + mTLS, keep-alive) vs gRPC, jail single (no-op action, few bans)");
  const bundle = server.bundle("admin");
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: bundle.ca, cert: bundle.cert, key: bundle.key, servername: "localhost" });
  const [restHost, restPort] = [server.restAddress.slice(0, server.restAddress.lastIndexOf(":")), Number(server.restAddress.slice(server.restAddress.lastIndexOf(":") + 1))];
  const restBan = (ip: string): Promise<void> =>
    new Promise((resolvePromise, reject) => {
      const body = JSON.stringify({ address: ip });
      const req = httpsRequest({ agent, host: restHost, port: restPort, method: "POST", path: "/v1/jails/single:ban", headers: { "content-type": "application/json", "content-length": String(body.length) } }, (res) => {
        res.resume();
        res.on("end", () => (res.statusCode === 200 ? resolvePromise() : reject(new Error(`REST ban: HTTP ${res.statusCode}`))));
      });
      req.on("error", reject);
      req.end(body);
    });
  for (let i = 0; i < 20; i++) await restBan(address(800_000 + i)); // warm-up: TLS session, JIT
  const banRest: number[] = [];
  const banGrpc: number[] = [];
  for (let i = 0; i < 200; i++) {
    banRest.push(await timed(() => restBan(address(810_000 + i))));
    banGrpc.push(await timed(() => c.call("banIp", { jail: "jails/single", address: address(820_000 + i) })));
  }
  agent.destroy();
  // What fail2ban itself takes for one ban, asked over its socket directly (no Portcullis, no TLS).
  const banDirect: number[] = [];
  for (let i = 0; i < 100; i++) banDirect.push(await timed(() => direct.send(["set", "single", "banip", address(830_000 + i)])));
  add("fail2ban banip over its socket alone (reference)", banDirect, banRaw, "(the floor under any API ban)");
  results["single ban over REST"] = { restP50Ms: percentile(banRest, 50), restP99Ms: percentile(banRest, 99), grpcP50Ms: percentile(banGrpc, 50), grpcP99Ms: percentile(banGrpc, 99) };
  rows.push(["single ban over REST (keep-alive) vs gRPC, ≤ 440 bans", `${percentile(banRest, 50).toFixed(2)} / ${percentile(banRest, 99).toFixed(2)} ms`, `gRPC ${percentile(banGrpc, 50).toFixed(2)} / ${percentile(banGrpc, 99).toFixed(2)} ms`,
    `REST/gRPC ${(percentile(banRest, 50) / percentile(banGrpc, 50)).toFixed(2)}×`, "REST p50 ≤ 3 ms", percentile(banRest, 50) <= 3 ? "PASS" : "FAIL"]);

  progress("bulk bans: 10,000 through BatchBanIp (Portcullis action) vs 200 through fail2ban-client banip (stock ipset action)");
  const bulkApi = await timed(() => c.call("batchBanIp", { jail: "jails/pc", addresses: Array.from({ length: 10_000 }, (_, i) => address(300_000 + i)) }));
  const stockAddresses = Array.from({ length: 200 }, (_, i) => address(400_000 + i));
  const bulkRaw = rawClient("set", "stock", "banip", ...stockAddresses);
  const [apiRate, rawRate] = [10_000 / (bulkApi / 1000), stockAddresses.length / (bulkRaw / 1000)];
  results["bulk jail bans"] = { apiBansPerSecond: apiRate, stockBansPerSecond: rawRate };
  rows.push(["bulk jail bans (BatchBanIp, Portcullis action)", `10,000 in ${(bulkApi / 1000).toFixed(2)} s: ${apiRate.toFixed(0)}/s`, `${stockAddresses.length} in ${(bulkRaw / 1000).toFixed(2)} s: ${rawRate.toFixed(0)}/s (stock ipset action)`,
    `${(apiRate / rawRate).toFixed(0)}× faster`, "≥ 2,000/s, ≥ 10×", apiRate >= 2000 && apiRate / rawRate >= 10 ? "PASS" : "FAIL"]);
  await c.call("unbanAll", {});

  progress("ban event latency: fail2ban's Ban log line → WatchEvents subscriber (Portcullis action, then the watcher for the stock action)");
  const events = new EventTestClient(server.address, server.credentials());
  const received = new Map<string, number>();
  const watch = events.stream("watchEvents", { afterSequence: 0, types: [EventType.EVENT_TYPE_BAN], resourcePrefix: "jails/", principal: "", jail: "", address: "" }, (event) => {
    if (event.attributes.address !== undefined) received.set(event.attributes.address, Date.now());
  });
  try {
    await sleep(500); // the stream has caught up with the past
    const latency = async (jail: string, first: number): Promise<number[]> => {
      const addresses = Array.from({ length: 20 }, (_, i) => address(first + i));
      for (const ip of addresses) {
        for (let k = 0; k < 3; k++) await direct.send(["set", jail, "attempt", ip]);
        for (const deadline = Date.now() + 5000; !received.has(ip) && Date.now() < deadline; ) await sleep(5);
      }
      // fail2ban's log: "2026-11-25 21:00:24,771 fail2ban.actions [pid]: NOTICE  [pc] Ban 10.6.26.160" (local time).
      const decided = new Map<string, number>();
      for (const line of readFileSync(join(fail2ban.dir, "fail2ban.log"), "utf8").split("\n")) {
        const match = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d),(\d{3}) .*\[(\S+)\] Ban (\S+)$/.exec(line);
        if (match === null || match[8] !== jail) continue;
        const [year, month, day, hour, minute, second, ms] = match.slice(1, 8).map(Number) as [number, number, number, number, number, number, number];
        decided.set(match[9]!, new Date(year, month - 1, day, hour, minute, second, ms).getTime());
      }
      return addresses.map((ip) => (received.get(ip) ?? Infinity) - (decided.get(ip) ?? NaN));
    };
    const viaAction = await latency("pc", 500_000);
    const viaWatcher = await latency("stock", 600_000);
    add("Ban event at a subscriber after fail2ban decided", viaAction, viaWatcher, "p50 ≤ 100 ms", percentile(viaAction, 50) <= 100);
    rows[rows.length - 1]![2] = `${percentile(viaWatcher, 50).toFixed(1)} / ${percentile(viaWatcher, 99).toFixed(1)} ms (stock action, watcher)`;
  } finally {
    watch.cancel();
    events.close();
  }

  progress("the seed's attack flow: fifth dovecot log line → Ban event at a subscriber, and → the attacker's packets dropped");
  const flow = await attackFlow(ATTACK_SAMPLES);
  results["attack flow"] = flow;
  const ms = (values: number[]): string => `${percentile(values, 50).toFixed(0)} / ${percentile(values, 99).toFixed(0)} ms`;
  rows.push(["fifth log line → Ban event at a subscriber", ms(flow.event), `(fail2ban decided: ${ms(flow.decided)})`, "", "", ""]);
  rows.push(["fifth log line → attacker's packets dropped", ms(flow.dropped), "", "", "", ""]);

  const header = ["benchmark", "API p50 / p99", "fail2ban-client p50 / p99", "speed-up", "target", "verdict"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(`\nPortcullis jail benchmark — ${new Date().toISOString()} (fail2ban 1.0.2; status and single bans: jail "bulk" with a no-op action)\n`);
  console.log([line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n"));
  mkdirSync(resolve(import.meta.dirname, "results"), { recursive: true });
  writeFileSync(resolve(import.meta.dirname, "results", "jails.json"), JSON.stringify(results, null, 2));
} finally {
  client?.close();
  direct.close();
  await server?.stop();
  await fail2ban.destroy();
}
