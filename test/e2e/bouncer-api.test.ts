// The CrowdSec bouncer API: Debian's real crowdsec-custom-bouncer, pointed at Portcullis's bouncer listener with only
// an API key and the server's CA, receives fail2ban's bans and unbans and a published set's entries; a bad key gets
// 403 and nothing; a Portcullis restart between two polls loses nothing and repeats nothing. Then the JSON shapes a
// bouncer reads (startup, deltas, durations, per-address queries) and what the listener refuses.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createClient, type PortcullisClient, type PortcullisError } from "@portcullis/sdk";
import { startJailHosts, type JailHosts } from "../harness/jail-hosts.js";
import { waitFor } from "../harness/wait.js";

const BOUNCER_BIN = "/usr/bin/crowdsec-custom-bouncer";
const BIN = resolve(import.meta.dirname, "../../server/bin/portcullis");
const BANTIME = 3600;
const PUBLISHED = "published";

interface LapiDecision {
  id: number;
  origin: string;
  type: string;
  scope: string;
  value: string;
  duration: string;
  scenario: string;
}

/** A free loopback port: the bouncer listener keeps it across the server's restarts, as a bouncer's api_url needs. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as { port: number };
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

/** A Go duration ("3h59m58s") in seconds. */
function seconds(duration: string): number {
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(\d+)s$/.exec(duration);
  assert.ok(match, `"${duration}" is a Go duration of whole seconds`);
  return Number(match[1] ?? 0) * 3600 + Number(match[2] ?? 0) * 60 + Number(match[3]);
}

describe("CrowdSec bouncer API", { skip: existsSync(BOUNCER_BIN) ? false : `${BOUNCER_BIN} is not installed (scripts/setup.sh)` }, () => {
  let jh: JailHosts;
  let client: PortcullisClient;
  let port = 0;
  let ca = "";
  const dir = mkdtempSync(join(tmpdir(), "pc-bouncer-"));

  /** GET on the bouncer listener with this key (or none); the status and the parsed body. */
  const get = (path: string, key: string | undefined, options: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: unknown; headers: Record<string, unknown> }> =>
    new Promise((done, fail) => {
      const req = httpsRequest({ host: "127.0.0.1", port, path, method: options.method ?? "GET", ca, headers: { ...(key === undefined ? {} : { "X-Api-Key": key }), "User-Agent": "pc-test/1.0", ...options.headers } }, (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => (text += chunk.toString()));
        res.on("end", () => done({ status: res.statusCode ?? 0, body: text === "" ? undefined : JSON.parse(text), headers: res.headers }));
      });
      req.on("error", fail);
      req.end();
    });
  const stream = async (key: string, startup = false): Promise<{ new: LapiDecision[]; deleted: LapiDecision[] }> => {
    const reply = await get(`/v1/decisions/stream${startup ? "?startup=true" : ""}`, key);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    return reply.body as { new: LapiDecision[]; deleted: LapiDecision[] };
  };
  const ban = (address: string) => jh.fail2ban.ask(["set", "dovecot", "banip", address]);
  const unban = (address: string) => jh.fail2ban.ask(["set", "dovecot", "unbanip", address]);

  before(async () => {
    port = await freePort();
    // A fixed gRPC port too: the SDK client reconnects to it after the restart.
    const grpcPort = await freePort();
    const config = join(dir, "portcullis.yaml");
    writeFileSync(config, `bouncer:\n  address: 127.0.0.1:${port}\n  sets: [${PUBLISHED}]\n`);
    jh = await startJailHosts([`bantime = ${BANTIME}`, "maxretry = 3"], undefined, ["--config", config, "--grpc-address", `127.0.0.1:${grpcPort}`]);
    ca = readFileSync(join(jh.f.server.dataDir, "pki", "ca.crt"), "utf8");
    client = createClient({ address: jh.f.server.address, bundle: join(jh.f.server.dataDir, "pki/clients/admin") });
    await client.ipsets.create(PUBLISHED, { type: "hash:net", timeout: 0 });
  });

  after(async () => {
    client?.dispose();
    try {
      await jh?.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe("Debian's crowdsec-custom-bouncer", () => {
    let bouncer: ChildProcess | undefined;
    const record = join(dir, "decisions.log");
    const lines = (): string[] => (existsSync(record) ? readFileSync(record, "utf8").split("\n").filter((line) => line !== "") : []);
    /** The bouncer's script calls for an address: "add 192.0.2.50 3599 dovecot", "del 192.0.2.50 0 dovecot". */
    const callsFor = (value: string): string[] => lines().filter((line) => line.split(" ")[1] === value).map((line) => line.split(" ").slice(0, 4).join(" "));

    /** Starts the bouncer as its own process with its own config (no daemon, no metrics port, logs in `dir`). */
    const startBouncer = (key: string, name: string): ChildProcess => {
      const script = join(dir, "record.sh");
      writeFileSync(script, `#!/bin/sh\necho "$1 $2 $3 $4" >> ${record}\n`);
      chmodSync(script, 0o755);
      const logDir = join(dir, `${name}-log`);
      const file = join(dir, `${name}.yaml`);
      writeFileSync(file, [
        `bin_path: ${script}`, "feed_via_stdin: false", "total_retries: 0", "scenarios_containing: []", "scenarios_not_containing: []", "origins: []",
        `piddir: ${dir}`, "update_frequency: 1s", "cache_retention_duration: 1s", "daemonize: false", "log_mode: file", `log_dir: ${logDir}`, "log_level: debug",
        `api_url: https://localhost:${port}/`, `api_key: ${key}`, `ca_cert_path: ${join(jh.f.server.dataDir, "pki", "ca.crt")}`,
        "prometheus:", "  enabled: false", "  listen_addr: 127.0.0.1", "  listen_port: 60602", "",
      ].join("\n"));
      return spawn(BOUNCER_BIN, ["-c", file], { stdio: "ignore" });
    };
    const stop = async (child: ChildProcess | undefined): Promise<void> => {
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((done) => child.once("exit", () => done()));
      process.kill(child.pid!, "SIGTERM");
      await exited;
    };
    const bouncerLog = (name: string): string => {
      const file = join(dir, `${name}-log`, "crowdsec-custom-bouncer.log");
      return existsSync(file) ? readFileSync(file, "utf8").slice(-3000) : "(no log)";
    };

    after(async () => {
      await stop(bouncer);
    });

    it("gets fail2ban's ban, the unban and a published set's entry; a restart of Portcullis between polls loses and repeats nothing", async () => {
      const created = await client.bouncers.create("custom");
      assert.match(created.apiKey, /^[0-9a-f]{64}$/);
      await ban("192.0.2.50");
      assert.ok(!jh.f.server.output.includes(created.apiKey), "the key is not logged");
      bouncer = startBouncer(created.apiKey, "custom");

      // The ban fail2ban made arrives with the jail's bantime left as its duration.
      const first = await waitFor(() => `the bouncer's add of 192.0.2.50 (log: ${bouncerLog("custom")})`, () => callsFor("192.0.2.50")[0]);
      const [op, , duration, scenario] = first.split(" ");
      assert.equal(op, "add");
      assert.equal(scenario, "dovecot");
      assert.ok(Number(duration) > BANTIME - 60 && Number(duration) <= BANTIME, `duration ${duration} is the bantime left`);

      // A set entry of a published set.
      await client.ipsets.add(PUBLISHED, ["198.51.100.0/24"]);
      await waitFor("the bouncer's add of 198.51.100.0/24", () => callsFor("198.51.100.0/24")[0]?.startsWith(`add 198.51.100.0/24 `));

      // The unban is a deletion.
      await unban("192.0.2.50");
      await waitFor("the bouncer's del of 192.0.2.50", () => callsFor("192.0.2.50").some((call) => call.startsWith("del ")));
      assert.deepEqual(callsFor("192.0.2.50").map((call) => call.split(" ")[0]), ["add", "del"]);

      // Portcullis stops between two polls (the bouncer held still meanwhile); fail2ban bans and unbans while it is down.
      await ban("192.0.2.51");
      await waitFor("the bouncer's add of 192.0.2.51", () => callsFor("192.0.2.51")[0]);
      const before = lines().length;
      process.kill(bouncer.pid!, "SIGSTOP");
      try {
        await jh.f.server.kill("SIGTERM");
        await unban("192.0.2.51");
        await ban("192.0.2.52");
        await jh.f.server.restart();
      } finally {
        process.kill(bouncer.pid!, "SIGCONT");
      }
      await waitFor("the bouncer's add of 192.0.2.52 and del of 192.0.2.51 after the restart", () =>
        callsFor("192.0.2.52").length > 0 && callsFor("192.0.2.51").length > 1);
      // A few more polls: nothing else arrives.
      await new Promise((done) => setTimeout(done, 3_500));
      const since = lines().slice(before).map((line) => line.split(" ").slice(0, 2).join(" ")).sort();
      assert.deepEqual(since, ["add 192.0.2.52", "del 192.0.2.51"], `after the restart, exactly the changes (log: ${lines().join(" | ")})`);
      assert.deepEqual(callsFor("198.51.100.0/24").map((call) => call.split(" ")[0]), ["add"], "the set entry was not sent again");

      const listed = (await client.bouncers.list()).find((info) => info.name === "custom");
      assert.ok(listed?.lastPullTime !== undefined && Date.now() - listed.lastPullTime.getTime() < 30_000, "list shows its last pull");
      assert.match(listed.version ?? "", /crowdsec|Go-http-client/i, "and its User-Agent");
      await unban("192.0.2.52");
    });

    it("with a bad key gets 403 and no decision", async () => {
      await stop(bouncer);
      bouncer = undefined;
      const before = lines().length;
      const wrong = startBouncer("0".repeat(64), "wrong");
      try {
        await waitFor(() => `the bad key's refusal in the bouncer's log (${bouncerLog("wrong")})`, () => /403/.test(bouncerLog("wrong")));
        assert.equal(lines().length, before, "no decision reached the bad key's bouncer");
      } finally {
        await stop(wrong);
      }
      const raw = await get("/v1/decisions/stream?startup=true", "0".repeat(64));
      assert.equal(raw.status, 403);
      assert.deepEqual(raw.body, { message: "access forbidden" });
      assert.equal((await get("/v1/decisions/stream?startup=true", undefined)).status, 403);
      assert.ok(!jh.f.server.output.includes("0".repeat(64)), "the key is not logged");
    });
  });

  describe("JSON shapes", () => {
    let key = "";

    before(async () => {
      key = (await client.bouncers.create("shapes")).apiKey;
    });

    it("startup: every active decision; then only what changed; durations are the time left", async () => {
      await client.ipsets.add(PUBLISHED, ["203.0.113.7"], { timeout: 600 });
      await ban("192.0.2.60");
      await waitFor("the ban recorded", async () => (await get("/v1/decisions?ip=192.0.2.60", key)).body !== null);
      const startup = await stream(key, true);
      const jailBan = startup.new.find((decision) => decision.value === "192.0.2.60");
      assert.ok(jailBan !== undefined, JSON.stringify(startup));
      assert.deepEqual(Object.keys(jailBan).sort(), ["duration", "id", "origin", "scenario", "scope", "type", "value"]);
      assert.equal(jailBan.type, "ban");
      assert.equal(jailBan.scope, "Ip");
      assert.equal(jailBan.origin, "fail2ban");
      assert.equal(jailBan.scenario, "dovecot");
      assert.ok(Number.isSafeInteger(jailBan.id) && jailBan.id > 0);
      assert.ok(seconds(jailBan.duration) > BANTIME - 60 && seconds(jailBan.duration) <= BANTIME, jailBan.duration);
      const range = startup.new.find((decision) => decision.value === "198.51.100.0/24");
      assert.equal(range?.scope, "Range");
      assert.equal(range?.origin, "lists");
      assert.equal(range?.scenario, PUBLISHED);
      assert.ok(seconds(range.duration) > 24 * 86_400, "a permanent entry goes with ipset's longest timeout");
      const timed = startup.new.find((decision) => decision.value === "203.0.113.7");
      assert.ok(timed !== undefined && seconds(timed.duration) > 590 && seconds(timed.duration) <= 600, timed?.duration);
      assert.deepEqual(startup.deleted, []);

      // Nothing changed: nothing new, nothing deleted.
      assert.deepEqual(await stream(key), { new: [], deleted: [] });

      // A ban, then its unban: new, then deleted with the same id.
      await ban("2001:db8::61");
      const added = await waitFor("the IPv6 ban in the stream", async () => {
        const delta = await stream(key);
        return delta.new.length > 0 ? delta : undefined;
      });
      assert.deepEqual(added.new.map((decision) => [decision.value, decision.scope]), [["2001:db8::61", "Ip"]]);
      assert.deepEqual(added.deleted, []);
      await unban("2001:db8::61");
      const removed = await waitFor("the unban in the stream", async () => {
        const delta = await stream(key);
        return delta.deleted.length > 0 ? delta : undefined;
      });
      assert.deepEqual(removed.new, []);
      assert.deepEqual(removed.deleted.map((decision) => [decision.id, decision.value]), [[added.new[0]!.id, "2001:db8::61"]]);

      // A bouncer's filters.
      const ranges = await get("/v1/decisions/stream?startup=true&scopes=range", key);
      assert.deepEqual((ranges.body as { new: LapiDecision[] }).new.map((decision) => decision.value), ["198.51.100.0/24"]);
      await unban("192.0.2.60");
    });

    it("GET /v1/decisions answers the decisions that cover an address, or null", async () => {
      const covered = await get("/v1/decisions?ip=198.51.100.9", key);
      assert.equal(covered.status, 200);
      assert.deepEqual((covered.body as LapiDecision[]).map((decision) => [decision.value, decision.scope, decision.type]), [["198.51.100.0/24", "Range", "ban"]]);
      const none = await get("/v1/decisions?ip=192.0.2.222", key);
      assert.equal(none.status, 200);
      assert.equal(none.body, null);
      assert.equal((await get("/v1/decisions?ip=not-an-address", key)).status, 400);
      assert.equal((await get("/v1/decisions?ip=198.51.100.9", "f".repeat(64))).status, 403);
    });

    it("refuses anything but the two GETs, and oversized requests", async () => {
      const post = await get("/v1/decisions/stream", key, { method: "POST" });
      assert.equal(post.status, 405);
      assert.equal(post.headers.allow, "GET");
      const other = await get("/v1/ipsets", key);
      assert.equal(other.status, 404);
      assert.match((other.body as { message: string }).message, /only GET \/v1\/decisions/);
      assert.equal((await get("/v1/watchers/login", key, { method: "POST" })).status, 404);
      assert.equal((await get(`/v1/decisions?ip=${"1".repeat(3000)}`, key)).status, 414);
      await assert.rejects(get("/v1/decisions/stream", key, { headers: { "X-Big": "x".repeat(20_000) } }).then((reply) => {
        if (reply.status === 431) throw new Error("refused");
        return reply;
      }));
    });

    it("bouncers list|delete through the SDK and the CLI; a deleted bouncer's key stops working", async () => {
      const env = { ...process.env, PORTCULLIS_ADDRESS: jh.f.server.address, PORTCULLIS_BUNDLE: join(jh.f.server.dataDir, "pki/clients/admin") };
      const cli = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => new Promise((done) =>
        execFile(BIN, args, { env, encoding: "utf8" }, (error, stdout, stderr) => done({ code: error === null ? 0 : Number(error.code), stdout, stderr })));
      const added = await cli("bouncers", "add", "cli-one", "--json");
      assert.equal(added.code, 0, added.stderr);
      const cliKey = (JSON.parse(added.stdout) as { apiKey: string }).apiKey;
      assert.equal((await get("/v1/decisions/stream?startup=true", cliKey)).status, 200);
      const listed = await cli("bouncers", "list");
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /^cli-one\s.*pc-test\/1\.0/m);
      assert.ok(!listed.stdout.includes(cliKey), "list never shows a key");
      const twice = await cli("bouncers", "add", "cli-one");
      assert.notEqual(twice.code, 0);
      assert.match(twice.stderr, /BOUNCER_ALREADY_EXISTS|exists already/);
      assert.equal((await cli("bouncers", "delete", "cli-one")).code, 0);
      assert.equal((await get("/v1/decisions/stream", cliKey)).status, 403);
      const recorded = (await client.events.list({ resourcePrefix: "bouncers/cli-one" })).events.map((event) => event.type);
      assert.deepEqual(recorded, ["BOUNCER_CREATED", "BOUNCER_DELETED"]);
      await assert.rejects(client.bouncers.delete("cli-one"), (error: PortcullisError) => error.code === "NotFound" && error.reason === "BOUNCER_NOT_FOUND");
      await assert.rejects(client.bouncers.create("bad name"), (error: PortcullisError) => error.code === "InvalidArgument" && error.reason === "INVALID_BOUNCER_NAME");
    });
  });
});
