import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { Agent, request as httpsRequest } from "node:https";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Client, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { contract, type HttpRoute } from "../../server/src/rest/http-rules.js";
import { parseIpsetSave } from "../../server/src/drivers/parse/ipset-save.js";
import { Fail2banServer } from "../harness/fail2ban.js";
import { NatsCluster } from "../harness/nats.js";
import { PortcullisProcess } from "../harness/server.js";
import { rest } from "../harness/rest.js";
import { reasonOf } from "../harness/grpc-clients.js";
import { caseSeed, grpcRequest, Random, restRequest, type FuzzWorld, type GrpcInput, type RestInput } from "../harness/fuzz-inputs.js";

/**
 * A seeded fuzz run over every gRPC method and every REST operation of the contract (read from the descriptor set, so
 * new methods are fuzzed without edits here), as admin, against a real server whose kernel commands run in a throwaway
 * namespace beside a real fail2ban-server and a one-node NATS. Afterwards: no gRPC answer was INTERNAL or UNKNOWN and no
 * REST answer a 5xx other than a 503 with a reason (every 4xx is problem JSON), the server answers health, the kernel holds what the store says for
 * every managed set, and the server restarts cleanly on the same data.
 *
 * PC_FUZZ_SEED reproduces a run (it is printed); PC_FUZZ_SECONDS bounds its time (default 50), PC_FUZZ_CASES its
 * cases (default 4000); PC_FUZZ_CONCURRENCY (default 4; 1 makes the order of effects reproducible too);
 * PC_FUZZ_METHODS=REGEX fuzzes only the matching methods; PC_FUZZ_DUMP=FILE writes every case's outcome there (JSON lines), and the server's log to FILE.server.log.
 */

const SEED = Number(process.env.PC_FUZZ_SEED ?? 20240917);
const SECONDS = Number(process.env.PC_FUZZ_SECONDS ?? 50);
const CASES = Number(process.env.PC_FUZZ_CASES ?? 4000);
const CONCURRENCY = Number(process.env.PC_FUZZ_CONCURRENCY ?? 4);
/** A call that takes longer than this is a hang, and reported. */
const CALL_DEADLINE_MS = 30_000;

/** gRPC codes that are the server's fault whatever the input. */
const SERVER_FAULTS: ReadonlySet<number> = new Set([status.UNKNOWN, status.INTERNAL, status.DATA_LOSS, status.UNIMPLEMENTED, status.DEADLINE_EXCEEDED]);

interface Outcome {
  readonly index: number;
  readonly transport: "grpc" | "rest";
  readonly method: string;
  /** gRPC code name or HTTP status. */
  readonly answer: string;
  readonly reason: string;
  readonly detail: string;
  /** Why this answer is a failure; undefined when it is not. */
  readonly fault?: string;
  readonly input: string;
}

/** PC_FUZZ_METHODS (a regular expression over "Service/Method") narrows a run, to chase one failure. */
const routes = contract().routes.filter((route) => new RegExp(process.env.PC_FUZZ_METHODS ?? "").test(`${route.service.replace("portcullis.v1.", "")}/${route.method}`));
let fail2ban: Fail2banServer | undefined;
let nats: NatsCluster | undefined;
let server: PortcullisProcess | undefined;
const outcomes: Outcome[] = [];

before(async () => {
  fail2ban = new Fail2banServer();
  await fail2ban.start();
  nats = await NatsCluster.start(1);
  const configFile = join(fail2ban.dir, "portcullis.json");
  writeFileSync(configFile, JSON.stringify({ cluster: { servers: nats.urls, node: "fuzz", heartbeatSeconds: 1 } }));
  server = await PortcullisProcess.start(fail2ban.netns.name, {
    env: {
      PORTCULLIS_CONFIG: configFile,
      PORTCULLIS_FAIL2BAN_SOCKET: fail2ban.socket,
      PORTCULLIS_FAIL2BAN_CONFIG_DIR: fail2ban.configDir,
      PORTCULLIS_FAIL2BAN_ACTION_SOCKET: join(fail2ban.dir, "action.sock"),
    },
  });
});

after(async () => {
  try {
    await server?.stop();
  } finally {
    await fail2ban?.destroy(); // and its namespace
    await nats?.stop();
  }
});

/** Sets, a chain and a rule for the requests to name, made through the API before the run. */
async function makeWorld(s: PortcullisProcess): Promise<FuzzWorld> {
  const sets: Array<[string, object]> = [
    ["fz", { type: "IPSET_TYPE_HASH_IP", family: "ADDRESS_FAMILY_INET", comments: true, defaultTimeout: 0 }],
    ["fzt", { type: "IPSET_TYPE_HASH_IP", family: "ADDRESS_FAMILY_INET", comments: true, defaultTimeout: 600 }],
    ["fznet", { type: "IPSET_TYPE_HASH_NET", family: "ADDRESS_FAMILY_INET", comments: true }],
    ["fz6", { type: "IPSET_TYPE_HASH_NET", family: "ADDRESS_FAMILY_INET6" }],
    ["fzport", { type: "IPSET_TYPE_HASH_IP_PORT", family: "ADDRESS_FAMILY_INET", comments: true }],
  ];
  for (const [ipsetId, ipset] of sets) {
    const reply = await rest(s, "POST", "/v1/ipsets", { ipsetId, ipset });
    assert.equal(reply.status, 200, `create ${ipsetId}: ${reply.text}`);
  }
  assert.equal((await rest(s, "POST", "/v1/ipsets/fz/entries", { entry: { element: "192.0.2.7", comment: "seed" } })).status, 200);
  const filter = "/v1/firewall/ipv4/tables/filter";
  assert.equal((await rest(s, "POST", `${filter}/chains`, { chainId: "FZ" })).status, 200);
  const rule = await rest(s, "POST", `${filter}/chains/FZ/rules`, { rule: { matchSet: { set: "fz", directions: ["SET_DIRECTION_SRC"] }, target: { kind: "TARGET_KIND_DROP" } } });
  assert.equal(rule.status, 200, rule.text);
  // A feed whose list is a file beside fail2ban's; other sources a fuzzed feed may get (on loopback: nothing listens on
  // port 9, so a read is refused without leaving the host).
  const list = join(fail2ban!.dir, "fuzz-feed.list");
  writeFileSync(list, "198.51.100.0/24\n203.0.113.7\n2001:db8:f::/48\n");
  const feedSources = [pathToFileURL(list).href, pathToFileURL(join(fail2ban!.dir, "no-such.list")).href, "http://127.0.0.1:9/list.txt", "https://127.0.0.1:9/list.txt", "ftp://127.0.0.1/list", "http://user:pw@127.0.0.1:9/"];
  const feed = await rest(s, "POST", "/v1/feeds", { feedId: "fzfeed", feed: { source: feedSources[0], format: "FEED_FORMAT_NETSET", ipset: "ipsets/fzfeed" } });
  assert.equal(feed.status, 200, feed.text);
  // A rule that uses the feed's set keeps it from being deleted early in the run, so that the other calls reach it.
  const feedRule = await rest(s, "POST", `${filter}/chains/FZ/rules`, { rule: { matchSet: { set: "fzfeed", directions: ["SET_DIRECTION_SRC"] }, target: { kind: "TARGET_KIND_DROP" } } });
  assert.equal(feedRule.status, 200, feedRule.text);
  return { ipsets: [...sets.map(([name]) => name), "fzfeed", "fzfeed-v6"], jails: ["dovecot", "bulk"], chains: ["FZ", "INPUT"], rules: [String(rule.json.name)], feeds: ["fzfeed"], feedSources };
}

/** One gRPC call with raw bytes; server streams are cancelled after their first item or a moment. */
function callGrpc(client: Client, route: HttpRoute, bytes: Buffer): Promise<ServiceError | undefined> {
  const path = `/${route.service}/${route.method}`;
  const identity = (value: Buffer): Buffer => value;
  return new Promise((resolve) => {
    const deadline = Date.now() + CALL_DEADLINE_MS;
    if (!route.streaming) {
      client.makeUnaryRequest(path, identity, identity, bytes, new Metadata(), { deadline }, (error) => resolve(error ?? undefined));
      return;
    }
    const call = client.makeServerStreamRequest(path, identity, identity, bytes, new Metadata(), { deadline });
    const timer = setTimeout(() => call.cancel(), 300);
    call.on("data", () => call.cancel());
    call.on("error", (error: ServiceError) => {
      clearTimeout(timer);
      resolve(error.code === status.CANCELLED ? undefined : error);
    });
    call.on("end", () => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
}

interface RestAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
  readonly error?: string;
}

/** One HTTPS request; an event stream is closed once its headers arrive. */
function callRest(s: PortcullisProcess, agent: Agent, input: RestInput): Promise<RestAnswer> {
  const separator = s.restAddress.lastIndexOf(":");
  return new Promise((resolve) => {
    const req = httpsRequest({ host: s.restAddress.slice(0, separator), port: Number(s.restAddress.slice(separator + 1)), method: input.verb.toUpperCase(), path: input.path, headers: { ...input.headers }, agent, servername: "localhost", timeout: CALL_DEADLINE_MS }, (res) => {
      const contentType = String(res.headers["content-type"] ?? "");
      if (contentType.startsWith("text/event-stream")) {
        res.destroy();
        resolve({ status: res.statusCode ?? 0, contentType, text: "" });
        return;
      }
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk.length + text.length > 4096 ? chunk.slice(0, Math.max(0, 4096 - text.length)) : chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, contentType, text }));
      res.on("error", (error) => resolve({ status: res.statusCode ?? 0, contentType, text, error: error.message }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${CALL_DEADLINE_MS} ms`)));
    req.on("error", (error) => resolve({ status: 0, contentType: "", text: "", error: error.message }));
    req.end(input.body);
  });
}

function describeGrpcInput(input: GrpcInput): string {
  return input.kind === "message" ? JSON.stringify(input.json).slice(0, 600) : `${input.kind} bytes ${input.bytes.toString("hex").slice(0, 200)}`;
}

/** Runs case `index`: its transport and route follow from the index, its input from the seed. */
async function runCase(index: number, world: FuzzWorld, grpc: Client, agent: Agent): Promise<Outcome> {
  const random = new Random(caseSeed(SEED, index));
  const route = routes[Math.floor(index / 3) % routes.length]!;
  const method = `${route.service.replace("portcullis.v1.", "")}/${route.method}`;
  if (index % 3 !== 2) {
    const { bytes, input } = grpcRequest(route, world, random);
    const error = await callGrpc(grpc, route, bytes);
    const code = error?.code ?? status.OK;
    const reason = error === undefined ? "" : reasonOf(error) ?? "";
    const fault = SERVER_FAULTS.has(code) ? "server fault code" : code === status.UNAVAILABLE && reason === "" ? "transport failure" : undefined;
    return { index, transport: "grpc", method, answer: status[code] ?? String(code), reason, detail: error?.details ?? "", input: describeGrpcInput(input), ...(fault === undefined ? {} : { fault }) };
  }
  const input = restRequest(route, world, random);
  const answer = await callRest(server!, agent, input);
  let reason = "";
  let detail = answer.error ?? "";
  if (answer.contentType.startsWith("application/problem+json")) {
    try {
      const problem = JSON.parse(answer.text) as { reason?: string; detail?: string };
      reason = problem.reason ?? "";
      detail = problem.detail ?? "";
    } catch {
      detail = `unparseable problem JSON: ${answer.text.slice(0, 200)}`;
    }
  }
  const fault =
    answer.error !== undefined && answer.status === 0 ? "no answer"
    // 503 with a reason is an answer, as gRPC's UNAVAILABLE with one is (a feed's source that is down: FEED_UNAVAILABLE).
    : answer.status >= 500 && !(answer.status === 503 && reason !== "") ? "5xx"
    : answer.status >= 400 && !answer.contentType.startsWith("application/problem+json") ? "4xx that is not problem JSON"
    : undefined;
  const shown = `${input.verb.toUpperCase()} ${input.path.slice(0, 300)}${input.body === undefined ? "" : ` ${input.body.slice(0, 300)}`}${input.headers["x-fuzz"] === undefined ? "" : " (+ huge header)"}`;
  return { index, transport: "rest", method, answer: String(answer.status), reason, detail, input: shown, ...(fault === undefined ? {} : { fault }) };
}

/** grpc.health.v1.Health/Check for the whole server: SERVING is the two bytes 08 01. */
async function healthOf(s: PortcullisProcess): Promise<string> {
  const client = new Client(s.address, s.credentials("admin"), { "grpc.ssl_target_name_override": "localhost" });
  try {
    const identity = (value: Buffer): Buffer => value;
    const answer = await new Promise<Buffer>((resolve, reject) =>
      client.makeUnaryRequest("/grpc.health.v1.Health/Check", identity, identity, Buffer.alloc(0), new Metadata(), { deadline: Date.now() + 10_000 }, (error, value) => (error ? reject(error) : resolve(value!))));
    const restHealth = await rest(s, "GET", "/healthz");
    return `${answer.equals(Buffer.from([0x08, 0x01])) ? "SERVING" : answer.toString("hex")} / REST ${restHealth.status}`;
  } finally {
    client.close();
  }
}

/**
 * Differences between the store (ListIpsets, ListEntries) and the kernel (`ipset save` in the namespace) for every
 * managed set; entries within 5 s of expiring on either side are left out (the two expire them independently).
 */
async function storeKernelDifferences(s: PortcullisProcess): Promise<string[]> {
  const differences: string[] = [];
  const kernel = parseIpsetSave(fail2ban!.netns.exec("ipset", ["save"]));
  const managed: string[] = [];
  for (let token = ""; ; ) {
    const page = await rest(s, "GET", `/v1/ipsets?pageSize=1000${token === "" ? "" : `&pageToken=${encodeURIComponent(token)}`}`);
    assert.equal(page.status, 200, page.text);
    for (const set of page.json.ipsets as Array<{ name: string; managed?: boolean }>) if (set.managed === true) managed.push(set.name.slice("ipsets/".length));
    token = String(page.json.nextPageToken ?? "");
    if (token === "") break;
  }
  for (const set of managed) {
    if (!kernel.sets.some((candidate) => candidate.name === set)) {
      differences.push(`${set}: managed, but not in the kernel`);
      continue;
    }
    const stored = new Map<string, number | undefined>();
    for (let token = ""; ; ) {
      const page = await rest(s, "GET", `/v1/ipsets/${encodeURIComponent(set)}/entries?pageSize=10000${token === "" ? "" : `&pageToken=${encodeURIComponent(token)}`}`);
      assert.equal(page.status, 200, page.text);
      for (const entry of (page.json.entries ?? []) as Array<{ element: string; timeout?: number }>) stored.set(entry.element, entry.timeout);
      token = String(page.json.nextPageToken ?? "");
      if (token === "") break;
    }
    const inKernel = new Map(kernel.adds.filter((add) => add.set === set).map((add) => [add.entry.element, add.entry.timeout] as const));
    const expiring = (timeout: number | undefined): boolean => timeout !== undefined && timeout > 0 && timeout <= 5;
    const onlyStored = [...stored].filter(([element, timeout]) => !inKernel.has(element) && !expiring(timeout)).map(([element]) => element);
    const onlyKernel = [...inKernel].filter(([element, timeout]) => !stored.has(element) && !expiring(timeout)).map(([element]) => element);
    if (onlyStored.length > 0) differences.push(`${set}: ${onlyStored.length} in the store only, e.g. ${onlyStored.slice(0, 5).join(" ")}`);
    if (onlyKernel.length > 0) differences.push(`${set}: ${onlyKernel.length} in the kernel only, e.g. ${onlyKernel.slice(0, 5).join(" ")}`);
  }
  return differences;
}

/** The failures grouped by method, answer and reason, with a count and the first input of each. */
function faultReport(faults: readonly Outcome[]): string {
  const groups = new Map<string, { count: number; first: Outcome }>();
  for (const outcome of faults) {
    const key = `${outcome.transport} ${outcome.method} ${outcome.answer} ${outcome.reason} ${outcome.detail.slice(0, 60)}`;
    const group = groups.get(key);
    if (group === undefined) groups.set(key, { count: 1, first: outcome });
    else group.count++;
  }
  return [...groups.values()]
    .map(({ count, first }) => `${count}× ${first.transport} ${first.method} → ${first.answer} ${first.reason} "${first.detail.slice(0, 200)}" (${first.fault}); case ${first.index}: ${first.input}`)
    .join("\n");
}

describe(`fuzz (seed ${SEED}; PC_FUZZ_SEED reproduces it)`, () => {
  it(`runs up to ${CASES} seeded cases over every gRPC method and REST operation within ${SECONDS} s`, { timeout: (SECONDS + 120) * 1000 }, async () => {
    console.log(`# fuzz seed ${SEED} (PC_FUZZ_SEED=${SEED} reproduces this run), ${CONCURRENCY} concurrent`);
    const world = await makeWorld(server!);
    const grpc = new Client(server!.address, server!.credentials("admin"), { "grpc.ssl_target_name_override": "localhost", "grpc.max_send_message_length": 64 * 1024 * 1024, "grpc.max_receive_message_length": 64 * 1024 * 1024 });
    const bundle = server!.bundle("admin");
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca: bundle.ca, cert: bundle.cert, key: bundle.key });
    const stopAt = Date.now() + SECONDS * 1000;
    let next = 0;
    try {
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (next < CASES && Date.now() < stopAt) outcomes.push(await runCase(next++, world, grpc, agent));
      }));
    } finally {
      grpc.close();
      agent.destroy();
    }
    if (process.env.PC_FUZZ_DUMP !== undefined) {
      writeFileSync(process.env.PC_FUZZ_DUMP, outcomes.map((outcome) => JSON.stringify(outcome)).join("\n"));
      writeFileSync(`${process.env.PC_FUZZ_DUMP}.server.log`, server!.output);
    }
    const counts = new Map<string, number>();
    for (const outcome of outcomes) counts.set(`${outcome.transport} ${outcome.answer}`, (counts.get(`${outcome.transport} ${outcome.answer}`) ?? 0) + 1);
    console.log(`# ${outcomes.length} cases: ${[...counts].sort().map(([key, count]) => `${key}: ${count}`).join(", ")}`);
    const covered = new Set(outcomes.map((outcome) => `${outcome.transport} ${outcome.method}`));
    const missing = routes.flatMap((route) => ["grpc", "rest"].map((transport) => `${transport} ${route.service.replace("portcullis.v1.", "")}/${route.method}`)).filter((key) => !covered.has(key));
    assert.deepEqual(missing, [], "methods the run did not reach (raise PC_FUZZ_SECONDS)");
    assert.ok(outcomes.length >= Math.min(CASES, 1000), `only ${outcomes.length} cases ran`);
  });

  it("no gRPC answer was INTERNAL, UNKNOWN or a hang, and no REST answer a 5xx or a 4xx that is not problem JSON", () => {
    const faults = outcomes.filter((outcome) => outcome.fault !== undefined);
    if (faults.length > 0) {
      const errors = server!.output.split("\n").filter((line) => /"level":50/.test(line));
      console.log(`# faults (seed ${SEED}):\n${faultReport(faults)}\n# server errors logged (${errors.length}), the first:\n${errors.slice(0, 10).map((line) => line.slice(0, 1500)).join("\n")}`);
    }
    assert.equal(faults.length, 0, `${faults.length} faulty answers (see the report above)`);
  });

  it("the server logged no unexpected error during the run (a background task failing counts too)", () => {
    const errors = server!.output.split("\n").filter((line) => /"level":50/.test(line));
    assert.deepEqual(errors.map((line) => line.slice(0, 600)).slice(0, 5), [], `${errors.length} errors logged`);
  });

  it("the server answers health after the run", async () => {
    assert.equal(await healthOf(server!), "SERVING / REST 200");
  });

  it("the kernel holds what the store says for every managed set", async () => {
    assert.deepEqual(await storeKernelDifferences(server!), []);
  });

  it("restarts cleanly on the same data: health, and the kernel still equals the store", async () => {
    await server!.kill("SIGTERM");
    await server!.restart(); // rejects with the server's output if it does not start
    assert.equal(await healthOf(server!), "SERVING / REST 200");
    assert.deepEqual(await storeKernelDifferences(server!), []);
    assert.doesNotMatch(server!.output, /"level":50/, "the restart logged an error");
  });
});
