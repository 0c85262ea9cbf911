/**
 * Portcullis performance benchmark (`npm run bench`; not part of the tests).
 *
 * Everything happens inside ONE fresh network namespace created here (`pc-<random>`), with a real `portcullis serve`
 * managing it, and is removed at the end — on success, on failure and on SIGINT/SIGTERM. No ipset command ever runs in
 * the host namespace; the only traffic is gRPC over loopback. Only processes started here are killed, by PID (the raw
 * helper runs in its own process group, killed by that group's id).
 *
 * Measures, in the same run, the API against the raw `ipset` tool (timed inside the namespace by bench/raw-ipset.mjs,
 * so the `ip netns exec` wrapper is not in the raw numbers):
 *   1. single adds: 1,000 sequential AddEntry calls vs 1,000 `ipset add` processes (after 100 warm-up calls each);
 *   2. BatchAddEntries of 100k and 1M entries vs `ipset restore` of the same `add` lines (100k: three of each in turn,
 *      medians). The API number sends a request
 *      protobuf-encoded before the clock starts (transfer, server work and reply timed; request building not); the
 *      same batch is then also sent through the generated client's ordinary path (encoding inside the call) into one
 *      more fresh set, and the server's own handler time is read from its log, to show where the time goes;
 *   3. ListEntries of the 100k set, page by page (page_size 1000 and 10000) — `ipset save` of the set for reference;
 *   4. the server's RSS after the 1M batch and after a 2 s quiet period;
 *   5. concurrency: one client doing AddEntry → TestEntry → DeleteEntry of its own addresses on one set, and 16
 *      clients (a connection each) doing the same at once, in turn; total calls/s, latency percentiles, CPU per call;
 *      then the same clients against a no-op grpc-js server with the same mTLS (bench/grpc-floor-server.mjs), for
 *      reference: what the transport alone allows on this machine;
 *   6. growth: a managed set holding 1M entries at its maxelem gets one BatchAddEntries of 100k more, which makes it
 *      grow (a larger copy filled from the store, swapped in), vs `ipset restore` of the same 1.1M lines into a fresh
 *      set of the grown size plus one `ipset swap`.
 * Rows 5 and 6 run last, so the earlier rows measure the same server state as before they existed.
 * BENCH_ONLY=concurrency, growth or batch (the 100k BatchAddEntries) runs only that row (for working on it; not a full report).
 * Prints a table on stdout, progress on stderr, and writes bench/results/latest.json.
 *
 * Diagnosis: BENCH_SERVER_CPU_PROF=/some/dir npm run bench  → the server writes a .cpuprofile there on exit
 * (through the preload bench/cpu-profile.cjs).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Metadata } from "@grpc/grpc-js";
import { AddressFamily } from "../server/src/gen/portcullis/v1/common.js";
import { BatchAddEntriesRequest, IpsetServiceService, IpsetType, type BatchAddEntriesResponse, type Entry, type Ipset, type ListEntriesResponse } from "../server/src/gen/portcullis/v1/ipset.js";
import { Netns, sh } from "../test/harness/netns.js";
import { PortcullisProcess } from "../test/harness/server.js";
import { IpsetTestClient, TestClient } from "../test/harness/grpc-clients.js";
import { table } from "./report.js";
import { RawIpsetRunner } from "./raw-ipset-runner.js";

const HERE = import.meta.dirname;
const RESULTS_DIR = resolve(HERE, "results");

const SINGLE_WARMUP = 100;
const SINGLE_COUNT = 1_000;
const BATCH_SIZES = [100_000, 1_000_000] as const;
/** The 100k row takes the median of this many API calls and raw restores in turn (the 1M row, one of each: its RSS rows). */
const BATCH_100K_ROUNDS = 3;
const PAGE_SIZES = [1_000, 10_000] as const;
const QUIET_MS = 2_000;

const CONCURRENT_CLIENTS = 16;
const CONCURRENCY_SECONDS = 10;
const FLOOR_SECONDS = 6;
const GROWTH_BASE = 1_000_000;
const GROWTH_BATCH = 100_000;

const TARGETS = { singleP50BelowRaw: true, batchRatioMax: 1.5, rssMaxMB: 300, concurrencyRatioMin: 4, concurrencyP99MaxMs: 25, growthRatioMax: 1.5 } as const;

// ---- small utilities -------------------------------------------------------------------------------------------------

const t0 = performance.now();
function progress(message: string): void {
  process.stderr.write(`[bench +${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${message}\n`);
}

/** Index → distinct IPv4 address inside 10.0.0.0/8 (16M addresses: plenty for 1M entries). */
function address(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

interface LatencyStats {
  readonly count: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  /** Sequential calls per second: count / sum of latencies. */
  readonly callsPerSec: number;
}

function median(values: readonly number[]): number {
  return stats(values).p50Ms;
}

function stats(samplesMs: readonly number[]): LatencyStats {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) throw new Error("no samples");
  const rank = (p: number): number => sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!;
  const median = n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  const sum = sorted.reduce((a, b) => a + b, 0);
  return { count: n, p50Ms: median, p90Ms: rank(90), p99Ms: rank(99), meanMs: sum / n, minMs: sorted[0]!, maxMs: sorted[n - 1]!, callsPerSec: (n * 1000) / sum };
}

function ipsetDefinition(options: { defaultTimeout?: number; hashsize?: number; maxelem?: number }): Ipset {
  return {
    name: "",
    type: IpsetType.IPSET_TYPE_HASH_IP,
    typeName: "",
    family: AddressFamily.ADDRESS_FAMILY_INET,
    hashsize: options.hashsize ?? 0,
    maxelem: options.maxelem ?? 0,
    comments: false,
    range: "",
    memoryBytes: 0,
    references: 0,
    entryCount: 0,
    managed: false,
    ...(options.defaultTimeout === undefined ? {} : { defaultTimeout: options.defaultTimeout }),
  };
}

/** hashsize/maxelem per batch size; the API set and the raw set of one size get the same definition. */
function batchGeometry(n: number): { hashsize: number; maxelem: number } {
  return n > 500_000 ? { hashsize: 1_048_576, maxelem: 2_000_000 } : { hashsize: 131_072, maxelem: 262_144 };
}

/** User and system CPU time a process has used so far, all threads, µs (/proc/<pid>/stat counts clock ticks of 10 ms). */
function cpuMicrosOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** VmRSS and VmHWM (peak) of a process, in MB. */
function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rssMB: kb("VmRSS") / 1024, hwmMB: kb("VmHWM") / 1024 };
}

// ---- resources, cleaned up exactly once --------------------------------------------------------------------------------

let netns: Netns | undefined;
let server: PortcullisProcess | undefined;
let client: IpsetTestClient | undefined;
const rawIpset = new RawIpsetRunner();
let scratch: string | undefined;
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    rawIpset.kill();
    try {
      client?.close();
    } catch {
      // ignore
    }
    if (server !== undefined) {
      const pid = server.pid;
      progress(`stopping server (pid ${pid ?? "-"})`);
      const stopped = await Promise.race([server.stop().then(() => true), sleep(10_000).then(() => false)]).catch((error: unknown) => {
        progress(`server stop failed: ${String(error)}`);
        return false;
      });
      if (!stopped && pid !== undefined) {
        try {
          process.kill(pid, "SIGKILL"); // only the server process this run started
          progress(`server pid ${pid} did not stop in time; killed`);
        } catch {
          // already gone
        }
      }
    }
    if (netns !== undefined) {
      netns.destroy();
      const left = sh("ip", ["netns", "list"]).split("\n").some((line) => line.split(" ")[0] === netns!.name);
      progress(left ? `WARNING: namespace ${netns.name} still exists` : `namespace ${netns.name} deleted`);
    }
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

/**
 * The handler time (ms) the server logged for a call of `method` made after `before` such lines had been logged. The
 * log line travels through a pipe and can arrive after the reply, so this waits for it (up to 2 s).
 */
async function serverHandlerMs(method: string, before: number): Promise<number | undefined> {
  for (let waited = 0; waited <= 2_000; waited += 20) {
    const line = server!.rpcLogLines(method)[before];
    if (line !== undefined) {
      try {
        return (JSON.parse(line) as { ms?: number }).ms;
      } catch {
        return undefined;
      }
    }
    await sleep(20);
  }
  return undefined;
}

// ---- the benchmarks ------------------------------------------------------------------------------------------------------

interface SingleResult {
  readonly api: LatencyStats;
  readonly raw: LatencyStats;
  readonly ratioP50: number;
  readonly ratioP99: number;
}

async function benchSingle(): Promise<SingleResult> {
  const c = client!;
  await c.call("createIpset", { ipsetId: "single", ipset: ipsetDefinition({ defaultTimeout: 0 }), requestId: "" });
  // Raw set with the same definition (timeout support, default 0): `ipset add set addr` = what AddEntry applies.
  netns!.exec("ipset", ["create", "rawsingle", "hash:ip", "family", "inet", "timeout", "0"]);

  progress(`single add: ${SINGLE_WARMUP} warm-up AddEntry calls`);
  for (let i = 0; i < SINGLE_WARMUP; i++) {
    await c.call("addEntry", { parent: "ipsets/single", entry: { name: "", element: address(SINGLE_COUNT + i), comment: "" } });
  }
  progress(`single add: ${SINGLE_COUNT} sequential AddEntry calls`);
  const apiMs: number[] = [];
  for (let i = 0; i < SINGLE_COUNT; i++) {
    const request = { parent: "ipsets/single", entry: { name: "", element: address(i), comment: "" } };
    const started = performance.now();
    await c.call("addEntry", request);
    apiMs.push(performance.now() - started);
  }
  const apiCount = netns!.setEntries("single");
  if (apiCount !== SINGLE_COUNT + SINGLE_WARMUP) throw new Error(`kernel set "single" holds ${apiCount} entries, expected ${SINGLE_COUNT + SINGLE_WARMUP}`);

  progress(`single add: ${SINGLE_WARMUP} + ${SINGLE_COUNT} raw \`ipset add\` processes (timed inside the namespace)`);
  const raw = await rawIpset.run<{ timingsMs: number[] }>(netns!.name, ["add", "rawsingle", "0", String(SINGLE_COUNT), String(SINGLE_WARMUP)]);
  const rawCount = netns!.setEntries("rawsingle");
  if (rawCount !== SINGLE_COUNT + SINGLE_WARMUP) throw new Error(`kernel set "rawsingle" holds ${rawCount} entries`);

  const api = stats(apiMs);
  const rawStats = stats(raw.timingsMs);
  return { api, raw: rawStats, ratioP50: api.p50Ms / rawStats.p50Ms, ratioP99: api.p99Ms / rawStats.p99Ms };
}

interface Memory {
  readonly rssMB: number;
  readonly hwmMB: number;
}

interface BatchResult {
  readonly entries: number;
  /** API calls and raw restores taken in turn; the seconds below are their medians. */
  readonly rounds: number;
  readonly hashsize: number;
  readonly maxelem: number;
  /**
   * The measured API number (median of the rounds): one BatchAddEntries call whose request was protobuf-encoded before the clock started
   * (client-side request building excluded), so it covers the gRPC transfer over TLS, the server's decoding,
   * validation, SQLite recording and kernel application, and the reply.
   */
  readonly api: {
    readonly seconds: number;
    readonly entriesPerSec: number;
    readonly requestBytes: number;
    /** The server's own "rpc" log time for the call: after request decoding, before response encoding. */
    readonly serverHandlerSeconds?: number;
  };
  /** The same call through the generated client's ordinary call path (it encodes inside the call), into another fresh set. */
  readonly apiEndToEnd: {
    readonly seconds: number;
    readonly entriesPerSec: number;
    /** Client-side protobuf encoding of the request alone (measured before the pre-encoded run). */
    readonly clientEncodeSeconds: number;
    readonly serverHandlerSeconds?: number;
  };
  readonly raw: { readonly seconds: number; readonly entriesPerSec: number };
  /** api.seconds / raw.seconds — the number the ≤ 1.5× target applies to. */
  readonly ratio: number;
  readonly ratioEndToEnd: number;
  /** Server memory right after the (pre-encoded) API call returned, and after the optional quiet period. */
  readonly memoryAfter: Memory;
  readonly memoryAfterQuiet?: Memory;
}

/** A BatchAddEntries request of `elements` for `set`, protobuf-encoded (before a clock starts). */
function encodedBatch(set: string, elements: string[]): Buffer {
  const encoded = BatchAddEntriesRequest.encode({ parent: `ipsets/${set}`, entries: [], elements, comment: "" }).finish();
  return Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength);
}

/** BatchAddEntries with an already-encoded request: grpc-js's generic unary call with an identity serializer. */
function batchAddPreEncoded(request: Buffer): Promise<BatchAddEntriesResponse> {
  const method = IpsetServiceService.batchAddEntries;
  return new Promise((resolvePromise, reject) => {
    client!.raw.makeUnaryRequest(method.path, (buffer: Buffer) => buffer, method.responseDeserialize, request, new Metadata(), { deadline: Date.now() + 600_000 }, (error, response) =>
      error || response === undefined ? reject(error ?? new Error("no response")) : resolvePromise(response),
    );
  });
}

/**
 * `rounds` API calls and raw restores in turn, each into a fresh set; the row takes the medians (one batch of each is
 * one sample, and this machine's noise moves a single one by a third). The first API set keeps its entries for the
 * list rows; the raw sets are destroyed after each restore.
 */
async function benchBatch(n: number, rounds: number, afterApi?: () => Promise<void>): Promise<BatchResult> {
  const c = client!;
  const { hashsize, maxelem } = batchGeometry(n);
  const label = n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`;
  const apiSetOf = (round: number): string => (round === 0 ? `batch${label}` : `batch${label}r${round}`);
  const e2eSet = `e2ebatch${label}`;
  const rawSet = `rawbatch${label}`;
  const definition = ipsetDefinition({ hashsize, maxelem });

  progress(`batch ${label}: building ${n} entries and the restore file (untimed)`);
  const entries: Entry[] = new Array(n);
  for (let i = 0; i < n; i++) entries[i] = { name: "", element: address(i), comment: "" };
  // The API row uses the compact form (elements sharing timeout/comment); the generated-client row uses Entry messages.
  const elements = entries.map((entry) => entry.element);
  const file = join(scratch!, `${rawSet}.restore`);
  let lines: string[] = new Array(n);
  for (let i = 0; i < n; i++) lines[i] = `add ${rawSet} ${address(i)}\n`;
  writeFileSync(file, lines.join(""));
  lines = [];
  const encodeStarted = performance.now();
  encodedBatch(apiSetOf(0), elements);
  const clientEncodeSeconds = (performance.now() - encodeStarted) / 1000;

  const apiSeconds: number[] = [];
  const handlerMs: number[] = [];
  const rawSeconds: number[] = [];
  let requestBytes = 0;
  let memoryAfter: Memory | undefined;
  let memoryAfterQuiet: Memory | undefined;
  for (let round = 0; round < rounds; round++) {
    const apiSet = apiSetOf(round);
    const request = encodedBatch(apiSet, elements);
    requestBytes = request.length;
    await c.call("createIpset", { ipsetId: apiSet, ipset: definition, requestId: "" });

    // 1. The API, request pre-encoded.
    progress(`batch ${label}, round ${round + 1}/${rounds}: BatchAddEntries, one call, ${(request.length / 1e6).toFixed(1)} MB pre-encoded request`);
    const logged = server!.rpcLogLines("BatchAddEntries").length;
    const started = performance.now();
    const response = await batchAddPreEncoded(request);
    apiSeconds.push((performance.now() - started) / 1000);
    memoryAfter ??= memoryOf(server!.pid!);
    if (Number(response.addedCount) !== n) throw new Error(`BatchAddEntries reported ${response.addedCount} added, expected ${n}`);
    const handler = await serverHandlerMs("BatchAddEntries", logged);
    if (handler !== undefined) handlerMs.push(handler);
    if (round === 0 && afterApi !== undefined) {
      await afterApi();
      memoryAfterQuiet = memoryOf(server!.pid!);
    }
    const apiCount = netns!.setEntries(apiSet);
    if (apiCount !== n) throw new Error(`kernel set ${apiSet} holds ${apiCount} entries, expected ${n}`);

    // 2. The raw tool, into a fresh set of the same geometry.
    netns!.exec("ipset", ["create", rawSet, "hash:ip", "family", "inet", "hashsize", String(hashsize), "maxelem", String(maxelem)]);
    const raw = await rawIpset.run<{ seconds: number }>(netns!.name, ["restore", file]);
    rawSeconds.push(raw.seconds);
    const rawCount = netns!.setEntries(rawSet);
    if (rawCount !== n) throw new Error(`kernel set ${rawSet} holds ${rawCount} entries, expected ${n}`);
    netns!.exec("ipset", ["destroy", rawSet]); // frees its kernel memory
    progress(`batch ${label}, round ${round + 1}/${rounds}: API ${apiSeconds[round]!.toFixed(2)} s, raw \`ipset restore\` ${raw.seconds.toFixed(2)} s`);
  }
  rmSync(file, { force: true });
  const api = median(apiSeconds);
  const rawMedian = median(rawSeconds);
  const handlerMedian = handlerMs.length === 0 ? undefined : median(handlerMs);
  await c.call("createIpset", { ipsetId: e2eSet, ipset: definition, requestId: "" });

  // 3. The API through the generated client's ordinary path (what an SDK user pays: encoding happens in the call).
  progress(`batch ${label}: BatchAddEntries through the generated client (encodes inside the call)`);
  const e2eLogged = server!.rpcLogLines("BatchAddEntries").length;
  const e2eStarted = performance.now();
  // (The harness's call() types resolve to unknown for the overloaded generated methods; hence the cast.)
  const e2eResponse = (await c.call("batchAddEntries", { elements: [], comment: "", parent: `ipsets/${e2eSet}`, entries })) as BatchAddEntriesResponse;
  const e2eSeconds = (performance.now() - e2eStarted) / 1000;
  if (Number(e2eResponse.addedCount) !== n) throw new Error(`BatchAddEntries reported ${e2eResponse.addedCount} added, expected ${n}`);
  const e2eHandlerMs = await serverHandlerMs("BatchAddEntries", e2eLogged);
  progress(`batch ${label}: generated client ${e2eSeconds.toFixed(2)} s`);

  return {
    entries: n,
    rounds,
    hashsize,
    maxelem,
    api: {
      seconds: api,
      entriesPerSec: n / api,
      requestBytes,
      ...(handlerMedian === undefined ? {} : { serverHandlerSeconds: handlerMedian / 1000 }),
    },
    apiEndToEnd: {
      seconds: e2eSeconds,
      entriesPerSec: n / e2eSeconds,
      clientEncodeSeconds,
      ...(e2eHandlerMs === undefined ? {} : { serverHandlerSeconds: e2eHandlerMs / 1000 }),
    },
    raw: { seconds: rawMedian, entriesPerSec: n / rawMedian },
    ratio: api / rawMedian,
    ratioEndToEnd: e2eSeconds / rawMedian,
    memoryAfter: memoryAfter!,
    ...(memoryAfterQuiet === undefined ? {} : { memoryAfterQuiet }),
  };
}

interface ListResult {
  readonly pageSize: number;
  readonly pages: number;
  readonly entries: number;
  readonly seconds: number;
  readonly pagesPerSec: number;
  readonly entriesPerSec: number;
  readonly pageP50Ms: number;
  readonly pageP99Ms: number;
}

async function benchList(set: string, expected: number, pageSize: number): Promise<ListResult> {
  const c = client!;
  progress(`list: ${set} with page_size ${pageSize}`);
  const pageMs: number[] = [];
  let token = "";
  let entries = 0;
  let last = "";
  const started = performance.now();
  do {
    const pageStarted = performance.now();
    const page = (await c.call("listEntries", { parent: `ipsets/${set}`, pageSize, pageToken: token, filter: "" })) as ListEntriesResponse;
    pageMs.push(performance.now() - pageStarted);
    entries += page.entries.length;
    const first = page.entries[0]?.element;
    if (first !== undefined && first <= last) throw new Error("listEntries pages overlap or are out of order");
    last = page.entries[page.entries.length - 1]?.element ?? last;
    token = page.nextPageToken;
  } while (token !== "");
  const seconds = (performance.now() - started) / 1000;
  if (entries !== expected) throw new Error(`listed ${entries} entries of ${set}, expected ${expected}`);
  const s = stats(pageMs);
  return { pageSize, pages: pageMs.length, entries, seconds, pagesPerSec: pageMs.length / seconds, entriesPerSec: entries / seconds, pageP50Ms: s.p50Ms, pageP99Ms: s.p99Ms };
}

interface ConcurrencyRun {
  readonly clients: number;
  readonly calls: number;
  readonly seconds: number;
  readonly callsPerSec: number;
  readonly latency: LatencyStats;
  /** CPU time of the server process (all its threads) and of this process per call, µs: where the machine's time goes. */
  readonly serverCpuPerCallUs: number;
  readonly clientCpuPerCallUs: number;
}

interface ConcurrencyResult {
  readonly one: ConcurrencyRun;
  readonly many: ConcurrencyRun;
  /** many.callsPerSec / one.callsPerSec — the number the ≥ 4× target applies to. */
  readonly ratio: number;
  /** The same clients against a no-op grpc-js server with the same mTLS: what the transport alone allows here. */
  readonly floor: { readonly one: ConcurrencyRun; readonly many: ConcurrencyRun; readonly ratio: number };
}

/** A closed-loop load: a caller per client, and one cycle of calls, each call's latency pushed to `latencies`. */
interface Load<C extends { close(): void }> {
  /** The server process whose CPU time is read. */
  readonly pid: number;
  connect(): Promise<C>;
  cycle(caller: C, client: number, i: number, latencies: number[]): Promise<void>;
}

interface Phase {
  readonly calls: number;
  readonly seconds: number;
  readonly latencies: number[];
  readonly serverCpuUs: number;
  readonly clientCpuUs: number;
}

/** `clients` callers, each on its own connection (connected before the clock starts), repeating the cycle for `seconds`. */
async function closedLoop<C extends { close(): void }>(load: Load<C>, clients: number, seconds: number): Promise<Phase> {
  const callers = await Promise.all(Array.from({ length: clients }, () => load.connect()));
  try {
    const latencies: number[] = [];
    const serverCpuBefore = cpuMicrosOf(load.pid);
    const clientCpuBefore = process.cpuUsage();
    const started = performance.now();
    const until = started + seconds * 1000;
    await Promise.all(callers.map(async (caller, k) => {
      for (let i = 0; performance.now() < until; i++) await load.cycle(caller, k, i, latencies);
    }));
    const elapsed = (performance.now() - started) / 1000;
    const clientCpu = process.cpuUsage(clientCpuBefore);
    return { calls: latencies.length, seconds: elapsed, latencies, serverCpuUs: cpuMicrosOf(load.pid) - serverCpuBefore, clientCpuUs: clientCpu.user + clientCpu.system };
  } finally {
    for (const caller of callers) caller.close();
  }
}

/**
 * One client, then CONCURRENT_CLIENTS, then both again, `seconds` in all for each: taken in turn, so that the ratio
 * compares the two on the same machine (on a shared VM the speed drifts by tens of percent within a minute).
 */
async function oneAndMany<C extends { close(): void }>(load: Load<C>, seconds: number): Promise<{ one: ConcurrencyRun; many: ConcurrencyRun; ratio: number }> {
  const phases = new Map<number, Phase[]>([[1, []], [CONCURRENT_CLIENTS, []]]);
  for (let half = 0; half < 2; half++) for (const [clients, done] of phases) done.push(await closedLoop(load, clients, seconds / 2));
  const run = (clients: number): ConcurrencyRun => {
    const done = phases.get(clients)!;
    const sum = (of: (phase: Phase) => number): number => done.reduce((total, phase) => total + of(phase), 0);
    const calls = sum((phase) => phase.calls);
    const elapsed = sum((phase) => phase.seconds);
    return { clients, calls, seconds: elapsed, callsPerSec: calls / elapsed, latency: stats(done.flatMap((phase) => phase.latencies)), serverCpuPerCallUs: sum((phase) => phase.serverCpuUs) / calls, clientCpuPerCallUs: sum((phase) => phase.clientCpuUs) / calls };
  };
  const one = run(1);
  const many = run(CONCURRENT_CLIENTS);
  return { one, many, ratio: many.callsPerSec / one.callsPerSec };
}

/** AddEntry → TestEntry → DeleteEntry of addresses of each client's own on one set: the set is empty after each cycle. */
function entryMix(set: string): Load<IpsetTestClient> {
  return {
    pid: server!.pid!,
    connect: async () => {
      const caller = new IpsetTestClient(server!.address, server!.credentials(), true);
      await caller.call("testEntry", { parent: `ipsets/${set}`, element: address(0) }); // the TLS handshake
      return caller;
    },
    cycle: async (caller, k, i, latencies) => {
      const element = address(k * 1_000_000 + i);
      let at = performance.now();
      await caller.call("addEntry", { parent: `ipsets/${set}`, entry: { name: "", element, comment: "" } });
      latencies.push(performance.now() - at);
      at = performance.now();
      const tested = (await caller.call("testEntry", { parent: `ipsets/${set}`, element })) as { matched: boolean };
      latencies.push(performance.now() - at);
      if (!tested.matched) throw new Error(`TestEntry of ${element} just added answered not matched`);
      at = performance.now();
      await caller.call("deleteEntry", { name: `ipsets/${set}/entries/${element}` });
      latencies.push(performance.now() - at);
    },
  };
}

/** The floor server (bench/grpc-floor-server.mjs) on loopback, as the Portcullis server is, with its certificates. */
async function startFloorServer(): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, [resolve(HERE, "grpc-floor-server.mjs"), join(server!.dataDir, "pki")], { stdio: ["ignore", "pipe", "inherit"] });
  const address = await new Promise<string>((resolveAddress, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("\n")) resolveAddress(out.trim());
    });
    child.once("exit", (code) => reject(new Error(`the gRPC floor server exited with ${code}`)));
  });
  return { child, address };
}

/** The floor server's one method, called through the tests' client like the Portcullis methods (same options). */
const same = (bytes: Buffer): Buffer => bytes;
const FLOOR_SERVICE = { echo: { path: "/portcullis.bench.Floor/Echo", requestSerialize: same, responseSerialize: same, responseDeserialize: same } };

function floorLoad(pid: number, target: string): Load<TestClient<typeof FLOOR_SERVICE>> {
  const request = IpsetServiceService.testEntry.requestSerialize({ parent: "ipsets/concurrency", element: address(0) });
  return {
    pid,
    connect: async () => {
      const caller = new TestClient(FLOOR_SERVICE, target, server!.credentials(), true);
      await caller.call("echo", request);
      return caller;
    },
    cycle: async (caller, _k, _i, latencies) => {
      const at = performance.now();
      await caller.call("echo", request);
      latencies.push(performance.now() - at);
    },
  };
}

async function benchConcurrency(): Promise<ConcurrencyResult> {
  const set = "concurrency";
  await client!.call("createIpset", { ipsetId: set, ipset: ipsetDefinition({}), requestId: "" });
  progress(`concurrency: 1 and ${CONCURRENT_CLIENTS} clients in turn, AddEntry/TestEntry/DeleteEntry, ${CONCURRENCY_SECONDS} s each`);
  const { one, many, ratio } = await oneAndMany(entryMix(set), CONCURRENCY_SECONDS);
  progress(`concurrency: 1 client ${Math.round(one.callsPerSec)} calls/s, p50 ${ms(one.latency.p50Ms)}; ${CONCURRENT_CLIENTS} clients ${Math.round(many.callsPerSec)} calls/s, p50 ${ms(many.latency.p50Ms)}, p99 ${ms(many.latency.p99Ms)}`);
  const left = netns!.setEntries(set);
  if (left !== 0) throw new Error(`kernel set ${set} holds ${left} entries after the concurrency runs, expected 0`);
  progress(`concurrency: the same clients against a no-op grpc-js server with the same mTLS, ${FLOOR_SECONDS} s each`);
  const floorServer = await startFloorServer();
  try {
    const floor = await oneAndMany(floorLoad(floorServer.child.pid!, floorServer.address), FLOOR_SECONDS);
    progress(`concurrency floor: 1 client ${Math.round(floor.one.callsPerSec)} calls/s, ${CONCURRENT_CLIENTS} clients ${Math.round(floor.many.callsPerSec)} calls/s`);
    return { one, many, ratio, floor };
  } finally {
    floorServer.child.kill("SIGKILL");
  }
}

interface GrowthResult {
  readonly base: number;
  readonly batch: number;
  readonly fromMaxelem: number;
  readonly toMaxelem: number;
  readonly toHashsize: number;
  readonly api: { readonly seconds: number; readonly serverHandlerSeconds?: number };
  readonly raw: { readonly seconds: number };
  readonly ratio: number;
}

async function benchGrowth(): Promise<GrowthResult> {
  const c = client!;
  const set = "growing";
  const total = GROWTH_BASE + GROWTH_BATCH;
  const fromMaxelem = 1_048_576;
  await c.call("createIpset", { ipsetId: set, ipset: ipsetDefinition({ hashsize: 262_144, maxelem: fromMaxelem }), requestId: "" });
  progress(`growth: filling ${set} with ${GROWTH_BASE} entries (untimed)`);
  const encode = (from: number, to: number): Buffer => encodedBatch(set, Array.from({ length: to - from }, (_, i) => address(from + i)));
  await batchAddPreEncoded(encode(0, GROWTH_BASE));
  const request = encode(GROWTH_BASE, total);
  await sleep(QUIET_MS); // let the fill's garbage be collected before the clock starts

  progress(`growth: BatchAddEntries of ${GROWTH_BATCH} more (the set grows past maxelem ${fromMaxelem})`);
  const logged = server!.rpcLogLines("BatchAddEntries").length;
  const started = performance.now();
  const response = await batchAddPreEncoded(request);
  const apiSeconds = (performance.now() - started) / 1000;
  if (Number(response.addedCount) !== GROWTH_BATCH) throw new Error(`BatchAddEntries reported ${response.addedCount} added, expected ${GROWTH_BATCH}`);
  const handlerMs = await serverHandlerMs("BatchAddEntries", logged);
  const grown = (await c.call("getIpset", { name: `ipsets/${set}` })) as Ipset;
  if (grown.maxelem <= fromMaxelem) throw new Error(`set ${set} did not grow (maxelem ${grown.maxelem})`);
  const count = netns!.setEntries(set);
  if (count !== total) throw new Error(`kernel set ${set} holds ${count} entries, expected ${total}`);
  progress(`growth: API ${apiSeconds.toFixed(2)} s (maxelem ${fromMaxelem} → ${grown.maxelem}, hashsize ${grown.hashsize})`);

  // Raw: the same 1.1M lines restored into a fresh set of the grown geometry, then swapped with the live one.
  const rawLive = "rawgrowing";
  const rawFresh = "rawgrowing-new";
  netns!.exec("ipset", ["create", rawLive, "hash:ip", "family", "inet", "hashsize", "262144", "maxelem", String(fromMaxelem)]);
  const file = join(scratch!, "rawgrowing.restore");
  let lines: string[] = [`create ${rawFresh} hash:ip family inet hashsize ${grown.hashsize} maxelem ${grown.maxelem}\n`];
  for (let i = 0; i < total; i++) lines.push(`add ${rawFresh} ${address(i)}\n`);
  writeFileSync(file, lines.join(""));
  lines = [];
  progress(`growth: raw \`ipset restore\` of ${total} lines into a fresh set + \`ipset swap\` (timed inside the namespace)`);
  const raw = await rawIpset.run<{ seconds: number }>(netns!.name, ["restore-swap", file, rawFresh, rawLive]);
  rmSync(file, { force: true });
  const rawCount = netns!.setEntries(rawLive);
  if (rawCount !== total) throw new Error(`kernel set ${rawLive} holds ${rawCount} entries, expected ${total}`);
  netns!.exec("ipset", ["destroy", rawFresh]);
  netns!.exec("ipset", ["destroy", rawLive]);
  progress(`growth: raw ${raw.seconds.toFixed(2)} s`);
  return {
    base: GROWTH_BASE,
    batch: GROWTH_BATCH,
    fromMaxelem,
    toMaxelem: grown.maxelem,
    toHashsize: grown.hashsize,
    api: { seconds: apiSeconds, ...(handlerMs === undefined ? {} : { serverHandlerSeconds: handlerMs / 1000 }) },
    raw: { seconds: raw.seconds },
    ratio: apiSeconds / raw.seconds,
  };
}

// ---- report ----------------------------------------------------------------------------------------------------------------

const ms = (value: number): string => `${value.toFixed(3)} ms`;
const sec = (value: number): string => `${value.toFixed(2)} s`;
const rate = (value: number, unit: string): string => `${Math.round(value).toLocaleString("en-US")} ${unit}`;
const ratio = (value: number): string => `${value.toFixed(2)}×`;
const verdict = (ok: boolean): string => (ok ? "PASS" : "FAIL");

function concurrencyPasses(result: ConcurrencyResult): boolean {
  return result.ratio >= TARGETS.concurrencyRatioMin && result.many.latency.p99Ms <= TARGETS.concurrencyP99MaxMs;
}

function batchRows(b: BatchResult): string[][] {
  const rows: string[][] = [];
  const label = b.entries >= 1_000_000 ? `${b.entries / 1_000_000}M` : `${b.entries / 1000}k`;
  rows.push([`BatchAddEntries ${label}, one call: time${b.rounds > 1 ? ` (median of ${b.rounds}, in turn with raw)` : ""}`, sec(b.api.seconds), sec(b.raw.seconds), ratio(b.ratio), `≤ ${TARGETS.batchRatioMax}×`, verdict(b.ratio <= TARGETS.batchRatioMax)]);
  rows.push([`BatchAddEntries ${label}: throughput`, rate(b.api.entriesPerSec, "entries/s"), rate(b.raw.entriesPerSec, "entries/s"), "", "", ""]);
  const split = (seconds: number, handler: number | undefined): string => (handler === undefined ? "?" : `${sec(handler)} / ${sec(seconds - handler)}`);
  rows.push([`  server handler (its log) / outside it`, split(b.api.seconds, b.api.serverHandlerSeconds), "", b.api.serverHandlerSeconds === undefined ? "" : ratio(b.api.serverHandlerSeconds / b.raw.seconds), "", ""]);
  rows.push([`  via generated client (next fresh set)`, sec(b.apiEndToEnd.seconds), "", ratio(b.ratioEndToEnd), "", ""]);
  rows.push([`    server handler / outside it`, split(b.apiEndToEnd.seconds, b.apiEndToEnd.serverHandlerSeconds), "", "", "", ""]);
  rows.push([`  client protobuf encode alone`, sec(b.apiEndToEnd.clientEncodeSeconds), "", "", "", ""]);
  return rows;
}

function concurrencyRows(result: ConcurrencyResult): string[][] {
  const { one, many, floor } = result;
  return [
    [`Concurrency, 1 client (add/test/delete): calls/s`, rate(one.callsPerSec, "calls/s"), "", "", "", ""],
    [`  1 client: p50 / p99`, `${ms(one.latency.p50Ms)} / ${ms(one.latency.p99Ms)}`, "", "", "", ""],
    [`Concurrency, ${many.clients} clients: calls/s in total`, rate(many.callsPerSec, "calls/s"), "", `${ratio(result.ratio)} 1 client`, `≥ ${TARGETS.concurrencyRatioMin}× 1 client`, verdict(result.ratio >= TARGETS.concurrencyRatioMin)],
    [`  ${many.clients} clients: p50 / p99`, `${ms(many.latency.p50Ms)} / ${ms(many.latency.p99Ms)}`, "", "", `p99 ≤ ${TARGETS.concurrencyP99MaxMs} ms`, verdict(many.latency.p99Ms <= TARGETS.concurrencyP99MaxMs)],
    [`  ${many.clients} clients: CPU per call, server / bench client`, `${Math.round(many.serverCpuPerCallUs)} / ${Math.round(many.clientCpuPerCallUs)} µs`, "", "", "", ""],
    [`  no-op gRPC server, same mTLS: 1 / ${many.clients} clients`, `${rate(floor.one.callsPerSec, "")}/ ${rate(floor.many.callsPerSec, "calls/s")}`, "", `${ratio(floor.ratio)} 1 client`, "reference", ""],
    [`  no-op gRPC server: CPU per call, server / bench client`, `${Math.round(floor.many.serverCpuPerCallUs)} / ${Math.round(floor.many.clientCpuPerCallUs)} µs`, "", "", "", ""],
    // What the machine's CPUs could give if every one were busy with this stack's CPU per call (ipset and the kernel left out).
    [`  ceiling: ${cpus().length} CPUs ÷ (server + client CPU per call), Portcullis / no-op server`, `${rate(ceiling(many), "")}/ ${rate(ceiling(floor.many), "calls/s")}`, "", `${ratio(ceiling(many) / one.callsPerSec)} / ${ratio(ceiling(floor.many) / one.callsPerSec)} 1 client`, "reference", ""],
  ];
}

function ceiling(run: ConcurrencyRun): number {
  return (cpus().length * 1e6) / (run.serverCpuPerCallUs + run.clientCpuPerCallUs);
}

function growthRows(result: GrowthResult): string[][] {
  const handler = result.api.serverHandlerSeconds;
  return [
    [`Growth: 1M-entry set + BatchAddEntries 100k`, sec(result.api.seconds), sec(result.raw.seconds), ratio(result.ratio), `≤ ${TARGETS.growthRatioMax}×`, verdict(result.ratio <= TARGETS.growthRatioMax)],
    [`  maxelem ${result.fromMaxelem} → ${result.toMaxelem}; server handler`, handler === undefined ? "?" : sec(handler), "", "", "", ""],
  ];
}

/** BENCH_ONLY: one of the last rows alone, printed as a table (not written to latest.json). */
async function runOnly(only: string, startedAt: Date): Promise<number> {
  const rows: string[][] = [["benchmark", "API", "raw ipset", "API/raw", "target", "verdict"]];
  if (only === "concurrency") rows.push(...concurrencyRows(await benchConcurrency()));
  else if (only === "growth") rows.push(...growthRows(await benchGrowth()));
  else if (only === "batch") rows.push(...batchRows(await benchBatch(BATCH_SIZES[0], BATCH_100K_ROUNDS)));
  else throw new Error(`BENCH_ONLY must be concurrency, growth or batch, not ${only}`);
  process.stdout.write(`Portcullis benchmark (BENCH_ONLY=${only}) — ${startedAt.toISOString()}, load ${loadavg().map((l) => l.toFixed(2)).join(" ")}\n${table(rows)}\n`);
  return 0;
}

// ---- main --------------------------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const startedAt = new Date();
  const machine = { cpu: cpus()[0]?.model ?? "unknown", cpus: cpus().length, node: process.version, kernel: release(), totalMemMB: Math.round(totalmem() / 1048576) };
  const loadAtStart = loadavg();
  progress(`machine: ${machine.cpu} ×${machine.cpus}, Node ${machine.node}, Linux ${machine.kernel}`);

  scratch = mkdtempSync(join(tmpdir(), "pc-bench-"));
  netns = new Netns();
  progress(`namespace ${netns.name} created; starting the server`);
  // BENCH_SERVER_CPU_PROF=<dir>: the server (only) writes a V8 CPU profile there when it exits (for diagnosis).
  const profileDir = process.env.BENCH_SERVER_CPU_PROF;
  // (Node 20 refuses --cpu-prof in NODE_OPTIONS, hence the inspector-based preload bench/cpu-profile.cjs.)
  const savedNodeOptions = process.env.NODE_OPTIONS;
  if (profileDir !== undefined && profileDir !== "") {
    process.env.NODE_OPTIONS = `${savedNodeOptions ?? ""} --require ${resolve(HERE, "cpu-profile.cjs")}`.trim();
    process.env.BENCH_CPU_PROF_DIR = resolve(profileDir);
    progress(`server CPU profile → ${resolve(profileDir)}`);
  }
  try {
    server = await PortcullisProcess.start(netns.name, { logToFile: true });
  } finally {
    if (savedNodeOptions === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = savedNodeOptions;
    delete process.env.BENCH_CPU_PROF_DIR;
  }
  client = new IpsetTestClient(server.address, server.credentials());
  const memoryAtStart = memoryOf(server.pid!);
  progress(`server pid ${server.pid} listening on ${server.address}; RSS ${memoryAtStart.rssMB.toFixed(0)} MB`);

  const only = process.env.BENCH_ONLY ?? "";
  if (only !== "") return runOnly(only, startedAt);

  const single = await benchSingle();
  progress(`single add: API p50 ${ms(single.api.p50Ms)}, raw p50 ${ms(single.raw.p50Ms)}`);

  const batch100k = await benchBatch(BATCH_SIZES[0], BATCH_100K_ROUNDS);

  const lists: ListResult[] = [];
  for (const size of PAGE_SIZES) lists.push(await benchList(`batch${BATCH_SIZES[0] / 1000}k`, BATCH_SIZES[0], size));
  progress("list: raw `ipset save` of the same set, for reference");
  const rawSave = await rawIpset.run<{ seconds: number; bytes: number }>(netns!.name, ["save", `batch${BATCH_SIZES[0] / 1000}k`]);

  const batch1m = await benchBatch(BATCH_SIZES[1], 1, async () => {
    progress(`quiet period: ${QUIET_MS} ms without requests`);
    await sleep(QUIET_MS);
  });
  const memoryEnd = memoryOf(server.pid!);
  const concurrency = await benchConcurrency();
  const growth = await benchGrowth();

  const totalSeconds = (performance.now() - t0) / 1000;
  const loadAtEnd = loadavg();
  const batches = [batch100k, batch1m];
  const rssAfter = batch1m.memoryAfter!;
  const rssQuiet = batch1m.memoryAfterQuiet!;

  const rows: string[][] = [
    ["benchmark", "API", "raw ipset", "API/raw", "target", "verdict"],
    [`AddEntry, ${SINGLE_COUNT} sequential: p50`, ms(single.api.p50Ms), ms(single.raw.p50Ms), ratio(single.ratioP50), "API p50 < raw p50", verdict(single.api.p50Ms < single.raw.p50Ms)],
    ["AddEntry: p99", ms(single.api.p99Ms), ms(single.raw.p99Ms), ratio(single.ratioP99), "", ""],
    ["AddEntry: mean / max", `${ms(single.api.meanMs)} / ${ms(single.api.maxMs)}`, `${ms(single.raw.meanMs)} / ${ms(single.raw.maxMs)}`, "", "", ""],
    ["AddEntry: throughput (sequential)", rate(single.api.callsPerSec, "calls/s"), rate(single.raw.callsPerSec, "calls/s"), "", "", ""],
  ];
  for (const b of batches) rows.push(...batchRows(b));
  for (const l of lists) {
    rows.push([`ListEntries 100k, page_size ${l.pageSize}: total`, sec(l.seconds), sec(rawSave.seconds), ratio(l.seconds / rawSave.seconds), "", ""]);
    rows.push([`ListEntries page_size ${l.pageSize}: pages/s (${l.pages} pages)`, rate(l.pagesPerSec, "pages/s"), "", "", "", ""]);
    rows.push([`ListEntries page_size ${l.pageSize}: entries/s`, rate(l.entriesPerSec, "entries/s"), rate(BATCH_SIZES[0] / rawSave.seconds, "entries/s"), "", "", ""]);
    rows.push([`ListEntries page_size ${l.pageSize}: page p50 / p99`, `${ms(l.pageP50Ms)} / ${ms(l.pageP99Ms)}`, "", "", "", ""]);
  }
  rows.push(["Server RSS at start", `${memoryAtStart.rssMB.toFixed(0)} MB`, "", "", "", ""]);
  rows.push(["Server RSS right after the 1M batch", `${rssAfter.rssMB.toFixed(0)} MB`, "", "", `≤ ${TARGETS.rssMaxMB} MB`, verdict(rssAfter.rssMB <= TARGETS.rssMaxMB)]);
  rows.push([`Server RSS after ${QUIET_MS / 1000} s quiet`, `${rssQuiet.rssMB.toFixed(0)} MB`, "", "", `≤ ${TARGETS.rssMaxMB} MB`, verdict(rssQuiet.rssMB <= TARGETS.rssMaxMB)]);
  rows.push(["Server peak RSS (VmHWM) until the 1M batch's reply", `${rssAfter.hwmMB.toFixed(0)} MB`, "", "", "", ""]);
  rows.push(["Server peak RSS (VmHWM) over the whole run", `${memoryEnd.hwmMB.toFixed(0)} MB`, "", "", "", ""]);
  rows.push(...concurrencyRows(concurrency), ...growthRows(growth));

  const header = [
    `Portcullis benchmark — ${startedAt.toISOString()}`,
    `machine: ${machine.cpu} (${machine.cpus} CPUs, ${machine.totalMemMB} MB RAM), Node ${machine.node}, Linux ${machine.kernel}`,
    `load average (1/5/15 min): ${loadAtStart.map((l) => l.toFixed(2)).join(" ")} at start, ${loadAtEnd.map((l) => l.toFixed(2)).join(" ")} at end${loadAtStart[0]! > machine.cpus * 0.75 ? "  ← machine busy at start: numbers are noisy" : ""}`,
    `namespace: ${netns.name} (one for the whole run); raw tool timed inside it by bench/raw-ipset.mjs (no \`ip netns exec\` cost)`,
    "",
  ];
  const notes = [
    "",
    "raw columns: AddEntry → `ipset add SET ADDR` process per call (spawnSync); BatchAddEntries → `ipset restore` of the same add lines into a fresh set (100k: API and raw in turn, medians);",
    "ListEntries → one `ipset save` of the same 100k set (reference only: one dump, not pages).",
    "BatchAddEntries API time: compact form (elements sharing timeout/comment), protobuf-encoded before the clock (gRPC transfer, server decode, SQLite, kernel and reply included);",
    "'via generated client': Entry messages through the ordinary generated-client call (client-side encoding inside the call) into one more fresh set,",
    "run after the raw restores, so the server already holds the API rows' batches (SQLite and heap are larger than for the API row).",
    "Server peak RSS over the whole run is read before the concurrency and growth rows, which run last.",
    `concurrency: each client repeats AddEntry → TestEntry → DeleteEntry of its own addresses on one hash:ip set, on its own connection; 1 and ${CONCURRENT_CLIENTS} clients in turn, ${CONCURRENCY_SECONDS} s each in two halves;`,
    `  the no-op gRPC server row: the same clients and mTLS against a method that answers at once (${FLOOR_SECONDS} s each): the transport's own share.`,
    "growth: 1M entries at maxelem 1,048,576 + one BatchAddEntries of 100k (API) vs `ipset restore` of 1.1M add lines (and the create) + `ipset swap` (raw).",
    `total run time ${totalSeconds.toFixed(1)} s`,
  ];
  process.stdout.write(`${[...header, table(rows), ...notes].join("\n")}\n`);

  const results = {
    startedAt: startedAt.toISOString(),
    totalSeconds,
    machine,
    loadAverage: { atStart: loadAtStart, atEnd: loadAtEnd },
    netns: netns.name,
    targets: TARGETS,
    single: { warmup: SINGLE_WARMUP, count: SINGLE_COUNT, ...single, pass: single.api.p50Ms < single.raw.p50Ms },
    batches: batches.map((b) => ({ ...b, pass: b.ratio <= TARGETS.batchRatioMax })),
    list: { set: `batch${BATCH_SIZES[0] / 1000}k`, entries: BATCH_SIZES[0], pages: lists, rawSaveSeconds: rawSave.seconds, rawSaveBytes: rawSave.bytes },
    concurrency: { ...concurrency, pass: concurrencyPasses(concurrency) },
    growth: { ...growth, pass: growth.ratio <= TARGETS.growthRatioMax },
    memory: {
      atStart: memoryAtStart,
      after1mBatch: rssAfter,
      afterQuiet: rssQuiet,
      quietMs: QUIET_MS,
      atEnd: memoryEnd,
      pass: rssAfter.rssMB <= TARGETS.rssMaxMB && rssQuiet.rssMB <= TARGETS.rssMaxMB,
    },
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, "latest.json"), `${JSON.stringify(results, null, 2)}\n`);
  progress(`results written to ${join(RESULTS_DIR, "latest.json")}`);
  return 0;
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  if (cleaning !== undefined) {
    progress("interrupted");
  } else {
    progress(`FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    if (server !== undefined) progress(`last server output:\n${server.output.split("\n").slice(-15).join("\n")}`);
  }
} finally {
  await cleanup();
}
process.exit(exitCode);
