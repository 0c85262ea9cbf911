/**
 * Feed benchmark (`npm run bench`; not part of the tests): the refresh of a 1M-entry feed against the raw tool.
 *
 * Everything runs inside one fresh network namespace made here (`pc-<random>`), with a real `portcullis serve` managing
 * it, removed at the end (also on failure and on SIGINT/SIGTERM). The feed's list is served over HTTP on loopback by
 * this process. Only processes started here are killed, by PID.
 *
 * In the same run, alternately:
 *   - API: RefreshFeed (force) of a feed whose sets hold a 1M-entry list, with another 1M-entry list served (half of
 *     the entries new): HTTP download on loopback, parsing, checks, `ipset restore` into a temporary set, `ipset swap`,
 *     the old set destroyed, the list stored — timed around the call;
 *   - raw: `ipset restore` of the same 1M `add` lines (one `create` line first: the set the feed builds its list in)
 *     into a fresh set, plus one `ipset swap` with a live set of 1M entries, timed inside the namespace
 *     (bench/raw-ipset.mjs).
 * And, for reference, a refresh the server answers 304 to. Prints a table; writes bench/results/feeds.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { FeedFormat } from "../server/src/gen/portcullis/v1/feed.js";
import { Netns, sh } from "../test/harness/netns.js";
import { PortcullisProcess } from "../test/harness/server.js";
import { FeedTestClient } from "../test/harness/grpc-clients.js";
import { FeedServer } from "../test/harness/feed-server.js";
import { median, table } from "./report.js";
import { RawIpsetRunner } from "./raw-ipset-runner.js";

const HERE = import.meta.dirname;
const ENTRIES = 1_000_000;
const RUNS = 5;
const TARGET_RATIO = 1.5;
/** The definition the feed's temporary sets get (server/src/feeds/feed-sets.ts). */
const CREATE = "create %s hash:net family inet maxelem 16777216";

const t0 = performance.now();
const progress = (message: string): void => void process.stderr.write(`[feed bench +${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${message}\n`);

/** List `version`: 1M entries (mostly addresses, every 20th a /28), half of them shared with the version before. */
function list(version: number): string[] {
  const lines: string[] = new Array<string>(ENTRIES);
  const offset = version * (ENTRIES / 2);
  for (let i = 0; i < ENTRIES; i++) {
    const n = offset + i;
    const j = n / 20;
    lines[i] = n % 20 === 0 ? `172.${16 + (j >> 12)}.${(j >> 4) & 255}.${(j & 15) << 4}/28` : `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  }
  return lines;
}

let netns: Netns | undefined;
let server: PortcullisProcess | undefined;
let client: FeedTestClient | undefined;
let source: FeedServer | undefined;
const rawIpset = new RawIpsetRunner();
let scratch: string | undefined;
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    rawIpset.kill();
    client?.close();
    await source?.close().catch(() => undefined);
    await server?.stop().catch((error: unknown) => progress(`server stop failed: ${String(error)}`));
    netns?.destroy();
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  })();
  return cleaning;
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    progress(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const load = loadavg()[0]!.toFixed(1);
  netns = new Netns();
  scratch = mkdtempSync(join(tmpdir(), "pc-feed-bench-"));
  progress(`namespace ${netns.name}; starting the server`);
  server = await PortcullisProcess.start(netns.name, { logToFile: true });
  client = new FeedTestClient(server.address, server.credentials());

  const versions = Array.from({ length: RUNS + 1 }, (_, version) => list(version));
  source = await FeedServer.start(`${versions[0]!.join("\n")}\n`);
  await client.call("createFeed", {
    feedId: "bench",
    feed: { name: "", source: source.url, format: FeedFormat.FEED_FORMAT_PLAIN, ipset: "ipsets/bench", ipsetV6: "", intervalSeconds: 604_800, timeoutSeconds: 600, maxBytes: 0, ca: "", maxShrink: 1, apiKey: "", apiKeyFile: "", clientCertificate: "", clientKey: "", pollIntervalMs: 0, credentialsSet: false },
    requestId: "",
  });
  progress("first refresh (untimed, the one a new feed starts by itself): the feed's set gets its first 1M entries");
  while ((await client.call("getFeed", { name: "feeds/bench" })).status?.lastAttemptTime === undefined) await sleep(100);
  if (netns!.setEntries("bench") !== ENTRIES) throw new Error(`set bench holds ${netns!.setEntries("bench")} entries, expected ${ENTRIES}`);
  // The raw side's live set, holding 1M entries like the feed's.
  netns.exec("ipset", ["restore"], `${CREATE.replace("%s", "rawlive")}\n${versions[0]!.map((line) => `add rawlive ${line}`).join("\n")}\n`);

  const api: number[] = [];
  const raw: number[] = [];
  for (let run = 1; run <= RUNS; run++) {
    const lines = versions[run]!;
    source.setText(`${lines.join("\n")}\n`);
    progress(`run ${run}/${RUNS}: RefreshFeed of a new 1M-entry list`);
    const started = performance.now();
    const answer = await client.call("refreshFeed", { name: "feeds/bench", force: true });
    api.push((performance.now() - started) / 1000);
    if (!answer.changed || netns!.setEntries("bench") !== ENTRIES) throw new Error(`run ${run}: the refresh left ${netns!.setEntries("bench")} entries`);
    progress(`run ${run}/${RUNS}: API ${api[api.length - 1]!.toFixed(2)} s (added ${answer.addedCount}, removed ${answer.removedCount}, kept ${answer.keptCount}); raw restore + swap`);
    const file = join(scratch, "raw.restore");
    writeFileSync(file, `${CREATE.replace("%s", "rawnew")}\n${lines.map((line) => `add rawnew ${line}`).join("\n")}\n`);
    raw.push((await rawIpset.run<{ seconds: number }>(netns!.name, ["restore-swap", file, "rawnew", "rawlive"])).seconds);
    netns.exec("ipset", ["destroy", "rawnew"]);
    progress(`run ${run}/${RUNS}: raw ${raw[raw.length - 1]!.toFixed(2)} s; server: ${server.output.split("\n").filter((line) => line.includes('"feed refreshed"')).pop()?.replace(/.*"added"/, '"added"') ?? ""}`);
  }

  progress("refreshes answered 304 (10, after 3 warm-up)");
  const notModified: number[] = [];
  for (let i = 0; i < 13; i++) {
    const started = performance.now();
    const answer = await client.call("refreshFeed", { name: "feeds/bench", force: false });
    if (answer.changed) throw new Error("a refresh of an unchanged list applied it");
    if (i >= 3) notModified.push(performance.now() - started);
  }

  const ratio = median(api) / median(raw);
  const rows = [
    ["Row", "API (median)", "Raw (median)", "Ratio", "Target", "Result"],
    [`Refresh of a ${ENTRIES.toLocaleString("en")}-entry feed (download, parse, restore, swap), ${RUNS} runs`, `${median(api).toFixed(2)} s`, `${median(raw).toFixed(2)} s`, `${ratio.toFixed(2)}×`, `≤ ${TARGET_RATIO}×`, ratio <= TARGET_RATIO ? "PASS" : "FAIL"],
    ["Refresh answered 304 (nothing parsed or swapped), p50", `${median(notModified).toFixed(1)} ms`, "", "", "", ""],
  ];
  const report = `Feed benchmark — ${new Date().toISOString()}, ${cpus().length} CPUs, load ${load} at start\n\n${table(rows)}\n\nAPI runs: ${api.map((s) => s.toFixed(2)).join(", ")} s; raw runs: ${raw.map((s) => s.toFixed(2)).join(", ")} s\n`;
  process.stdout.write(report);
  mkdirSync(resolve(HERE, "results"), { recursive: true });
  writeFileSync(resolve(HERE, "results", "feeds.json"), `${JSON.stringify({ time: new Date().toISOString(), load: Number(load), entries: ENTRIES, apiSeconds: api, rawSeconds: raw, ratio, notModifiedMs: notModified }, null, 2)}\n`);
}

try {
  await main();
} catch (error) {
  progress(`FAILED: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
  const left = netns === undefined ? false : sh("ip", ["netns", "list"]).split("\n").some((line) => line.split(" ")[0] === netns!.name);
  if (left) progress(`WARNING: namespace ${netns!.name} still exists`);
}
