// Jail benchmark: the API against fail2ban-client in the same run, with 0, 1k and 10k bans in the jail.
// Run by `npm run bench` after the others; prints a table and writes bench/results/jails.json.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { Fail2banServer } from "../test/harness/fail2ban.js";
import { PortcullisProcess } from "../test/harness/server.js";
import { JailTestClient } from "../test/harness/grpc-clients.js";
import { JailView } from "@portcullis/sdk/gen/portcullis/v1/jail.js";
import { Fail2banClient } from "../server/src/drivers/fail2ban-client.js";
import { createLogger } from "../server/src/logger.js";

const percentile = (values: readonly number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};
const progress = (message: string): void => void process.stderr.write(`[jail bench] ${message}\n`);
const address = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

const fail2ban = new Fail2banServer();
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
const rawClient = (...args: string[]): number => {
  const started = performance.now();
  execFileSync("fail2ban-client", ["-s", fail2ban.socket, ...args], { stdio: "ignore" });
  return performance.now() - started;
};

try {
  await fail2ban.start();
  server = await PortcullisProcess.start(fail2ban.netns.name, { env: { PORTCULLIS_FAIL2BAN_SOCKET: fail2ban.socket } });
  client = new JailTestClient(server.address, server.credentials());
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
    const api: number[] = [];
    for (let i = 0; i < 100; i++) api.push(await timed(() => c.call("getJail", { name: "jails/bulk", view: JailView.JAIL_VIEW_BASIC })));
    const raw = Array.from({ length: 10 }, () => rawClient("status", "bulk"));
    add(`jail status (GetJail), ${target} bans`, api, raw, target === 1_000 ? "p50 ≤ 2 ms, ≥ 20×" : "", target === 1_000 ? percentile(api, 50) <= 2 && percentile(raw, 50) / percentile(api, 50) >= 20 : undefined);
  }
  progress("single bans (API BanIp vs fail2ban-client set bulk banip)");
  const banApi: number[] = [];
  for (let i = 0; i < 200; i++) banApi.push(await timed(() => c.call("banIp", { jail: "jails/bulk", address: address(100_000 + i) })));
  const banRaw = Array.from({ length: 10 }, (_, i) => rawClient("set", "bulk", "banip", address(200_000 + i)));
  add("single ban, 10k bans present", banApi, banRaw, "p50 ≤ 5 ms, ≥ 10×", percentile(banApi, 50) <= 5 && percentile(banRaw, 50) / percentile(banApi, 50) >= 10);

  const header = ["benchmark", "API p50 / p99", "fail2ban-client p50 / p99", "speed-up", "target", "verdict"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(`\nPortcullis jail benchmark — ${new Date().toISOString()} (fail2ban 1.0.2, jail "bulk" with a no-op action)\n`);
  console.log([line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n"));
  mkdirSync(resolve(import.meta.dirname, "results"), { recursive: true });
  writeFileSync(resolve(import.meta.dirname, "results", "jails.json"), JSON.stringify(results, null, 2));
} finally {
  client?.close();
  direct.close();
  await server?.stop();
  await fail2ban.destroy();
}
