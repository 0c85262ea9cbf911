// SIEM sinks against real receivers on loopback: a webhook receiver that is down for a while gets every event exactly
// once and in order, signed; Debian's rsyslog receives RFC 5424 over UDP and TCP (the TCP sink catches up after
// rsyslog was stopped); a TLS collector gets octet-counted frames; the file sink rotates and resumes after a restart.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { AddressFamily } from "../../server/src/gen/portcullis/v1/common.js";
import { Ipset, IpsetType } from "../../server/src/gen/portcullis/v1/ipset.js";
import { Netns } from "../harness/netns.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { freePort } from "../harness/tcp.js";
import { IpsetTestClient } from "../harness/grpc-clients.js";
import { waitFor } from "../harness/wait.js";

const SECRET = "a-webhook-secret-of-some-length";

interface SinkEvent {
  readonly sequence: number;
  readonly type: string;
  readonly resource: string;
}


/** Sequences that follow each other one by one, each once. */
function assertContiguous(sequences: readonly number[], what: string): void {
  for (let i = 1; i < sequences.length; i++) assert.equal(sequences[i], sequences[i - 1]! + 1, `${what}: ${sequences.join(",")}`);
}

const entry = (element: string) => ({ name: "", element, comment: "" });
const hashIp = Ipset.fromPartial({ type: IpsetType.IPSET_TYPE_HASH_IP, family: AddressFamily.ADDRESS_FAMILY_INET, defaultTimeout: 0 });

let scratch: string;
before(() => {
  scratch = mkdtempSync(join(tmpdir(), "pc-sinks-"));
});
after(() => rmSync(scratch, { recursive: true, force: true }));

async function serverWith(sinks: unknown[]): Promise<ServerFixture> {
  const file = join(scratch, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ sinks, reconcile: { intervalSeconds: 0 } }));
  return startServerFixture(new Netns(), {}, ["--config", file]);
}

describe("webhook sink", () => {
  let f: ServerFixture;
  let port: number;
  let receiver: HttpServer | undefined;
  const received: SinkEvent[] = [];
  const bodies: number[] = [];

  const startReceiver = async (): Promise<void> => {
    receiver = createHttpServer((req, res) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (chunk: string) => (body += chunk));
      req.on("end", () => {
        const expected = `sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`;
        if (req.headers["x-portcullis-signature"] !== expected) {
          res.writeHead(401).end();
          return;
        }
        const events = (JSON.parse(body) as { events: SinkEvent[] }).events;
        assert.equal(req.headers["x-portcullis-delivery"], `${events[0]!.sequence}-${events[events.length - 1]!.sequence}`);
        received.push(...events);
        bodies.push(events.length);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver!.listen(port, "127.0.0.1", resolve));
  };

  before(async () => {
    port = await freePort();
    await startReceiver();
    f = await serverWith([{ type: "webhook", name: "hook", url: `http://127.0.0.1:${port}/portcullis`, secret: SECRET, timeoutMs: 2000 }]);
  });
  after(async () => {
    receiver?.close();
    await f?.close();
  });

  it("a receiver down for a while gets every event once, in order, signed with the HMAC of the body", async () => {
    await f.client.call("createIpset", { ipsetId: "hooked", ipset: hashIp, requestId: "" });
    for (const address of ["192.0.2.1", "192.0.2.2", "192.0.2.3"]) await f.client.call("addEntry", { parent: "ipsets/hooked", entry: entry(address) });
    await waitFor("the first four events", () => received.length >= 4);
    assert.deepEqual(received.map((event) => event.type), ["IPSET_CREATED", "ENTRY_ADDED", "ENTRY_ADDED", "ENTRY_ADDED"]);

    await new Promise((resolve) => receiver!.close(resolve));
    receiver = undefined;
    for (let i = 10; i < 15; i++) await f.client.call("addEntry", { parent: "ipsets/hooked", entry: entry(`192.0.2.${i}`) });
    await sleep(1500); // deliveries fail meanwhile
    assert.equal(received.length, 4);
    await startReceiver();
    await waitFor("the events made while the receiver was down", () => received.length >= 9);
    await sleep(500); // nothing more (no repeats) arrives
    assert.equal(received.length, 9);
    assertContiguous(received.map((event) => event.sequence), "webhook sequences");
    assert.deepEqual(received.slice(4).map((event) => event.resource), [10, 11, 12, 13, 14].map((i) => `ipsets/hooked/entries/192.0.2.${i}`));
    assert.ok(bodies.slice(1).some((count) => count > 1), `the missed events came batched: ${bodies.join(",")}`);
  });
});

describe("webhook sink across a crash", () => {
  interface Delivery {
    readonly range: string;
    readonly body: string;
    readonly sequences: number[];
  }
  let f: ServerFixture | undefined;
  let receiver: HttpServer | undefined;
  after(async () => {
    receiver?.closeAllConnections();
    receiver?.close();
    await f?.close();
  });

  it("a batch held by a slow receiver when the server is killed goes again with the same range and events, then the rest, none lost", async () => {
    // A SIEM that answers in ~20 ms; `hold` makes it keep the next multi-event batch without answering.
    const deliveries: Delivery[] = [];
    let hold = false;
    let held: Delivery | undefined;
    receiver = createHttpServer((req, res) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (chunk: string) => (body += chunk));
      req.on("end", () => {
        const delivery = { range: String(req.headers["x-portcullis-delivery"]), body, sequences: (JSON.parse(body) as { events: SinkEvent[] }).events.map((event) => event.sequence) };
        deliveries.push(delivery);
        if (hold && held === undefined && delivery.sequences.length > 1) {
          held = delivery; // never answered: the server dies waiting
          return;
        }
        setTimeout(() => res.writeHead(204).end(), 20);
      });
    });
    const port = await freePort();
    await new Promise<void>((resolve) => receiver!.listen(port, "127.0.0.1", resolve));
    f = await serverWith([{ type: "webhook", name: "siem", url: `http://127.0.0.1:${port}/portcullis`, timeoutMs: 60_000, startAt: "oldest" }]);
    await f.client.call("createIpset", { ipsetId: "crash", ipset: hashIp, requestId: "" });

    // Events arrive faster than the receiver answers, so batches hold several.
    const burst = (from: number, count: number, client: IpsetTestClient): Promise<unknown> =>
      Promise.all(Array.from({ length: count }, (_, i) => client.call("addEntry", { parent: "ipsets/crash", entry: entry(`192.0.2.${from + i}`) })));
    await burst(1, 20, f.client);
    hold = true;
    await burst(21, 20, f.client);
    await waitFor("a batch held by the receiver", () => held !== undefined);
    await burst(41, 10, f.client); // logged while the batch is held: a merged re-send would take them in
    await f.server.kill("SIGKILL");
    const inFlight = held!;
    const before = deliveries.length;

    await f.server.restart();
    const client = f.clientAs("admin");
    await burst(51, 5, client);
    // Every entry event: the set's creation and 55 entries.
    const taken = (): Set<number> => new Set(deliveries.flatMap((delivery) => delivery.sequences));
    await waitFor("every event delivered", () => deliveries.length > before && taken().size >= 56);
    const resent = deliveries[before]!;
    assert.equal(resent.range, inFlight.range, `the first delivery after the restart is the batch in flight (${deliveries.map((d) => d.range).join(" ")})`);
    assert.equal(resent.body, inFlight.body, "with the same events");
    // No event lost: every sequence up to the newest, each taken; repeats only of the batch in flight.
    const all = [...taken()].sort((a, b) => a - b);
    assert.equal(all[0], 1);
    assertContiguous(all, "webhook sequences");
    const repeats = deliveries.flatMap((delivery) => delivery.sequences).length - all.length;
    assert.equal(repeats, inFlight.sequences.length, `only the batch in flight came twice: ${deliveries.map((d) => d.range).join(" ")}`);
  });
});

describe("syslog sinks (rsyslog)", () => {
  let f: ServerFixture;
  let rsyslog: ChildProcess | undefined;
  let udpPort: number;
  let tcpPort: number;
  let tlsPort: number;
  let dir: string;
  const tlsFrames: string[] = [];
  let tls: ReturnType<typeof createTlsServer>;

  const startRsyslog = async (): Promise<void> => {
    rsyslog = spawn("rsyslogd", ["-n", "-f", join(dir, "rsyslog.conf"), "-i", join(dir, "rsyslog.pid")], { stdio: ["ignore", "ignore", "pipe"] });
    // Ready when the TCP input holds its port.
    await waitFor("rsyslog listening", () => new Promise<boolean>((resolve) => {
      const socket = createNetServer().listen(tcpPort, "127.0.0.1");
      socket.once("listening", () => socket.close(() => resolve(false)));
      socket.once("error", () => resolve(true));
    }), { every: 100 });
  };
  const stopRsyslog = async (): Promise<void> => {
    if (rsyslog === undefined || rsyslog.exitCode !== null) return;
    const exited = new Promise((resolve) => rsyslog!.once("exit", resolve));
    rsyslog.kill("SIGTERM");
    await exited;
  };
  const lines = (): string[] => (existsSync(join(dir, "out.log")) ? readFileSync(join(dir, "out.log"), "utf8").trim().split("\n") : []);
  const sequencesOf = (app: string): number[] => lines().filter((line) => line.split(" ")[3] === app).map((line) => Number(/ sequence="(\d+)"/.exec(line)![1]));

  before(async () => {
    dir = mkdtempSync(join(scratch, "rsyslog-"));
    [udpPort, tcpPort, tlsPort] = [await freePort(), await freePort(), await freePort()];
    writeFileSync(join(dir, "rsyslog.conf"), [
      `global(workDirectory="${dir}")`,
      'module(load="imudp")',
      'module(load="imtcp")',
      `input(type="imudp" address="127.0.0.1" port="${udpPort}")`,
      `input(type="imtcp" address="127.0.0.1" port="${tcpPort}")`,
      `*.* action(type="omfile" file="${join(dir, "out.log")}" template="RSYSLOG_SyslogProtocol23Format")`,
      "",
    ].join("\n"));
    await startRsyslog();
    f = await serverWith([
      { type: "syslog", name: "rsyslog-udp", transport: "udp", host: "127.0.0.1", port: udpPort, appName: "pc-udp" },
      { type: "syslog", name: "rsyslog-tcp", transport: "tcp", host: "127.0.0.1", port: tcpPort, appName: "pc-tcp", facility: 10 },
    ]);
    // A TLS collector (octet-counted frames, as RFC 5425 sends them) with f's server certificate (SAN localhost).
    tls = createTlsServer({ cert: readFileSync(join(f.server.dataDir, "pki/server.crt")), key: readFileSync(join(f.server.dataDir, "pki/server.key")) }, (socket) => {
      let buffer = "";
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => {
        buffer += chunk;
        for (;;) {
          const space = buffer.indexOf(" ");
          if (space < 0) break;
          const length = Number(buffer.slice(0, space));
          if (Buffer.byteLength(buffer.slice(space + 1)) < length) break;
          const frame = Buffer.from(buffer.slice(space + 1)).subarray(0, length).toString();
          tlsFrames.push(frame);
          buffer = buffer.slice(space + 1 + frame.length);
        }
      });
    });
    await new Promise<void>((resolve) => tls.listen(tlsPort, "127.0.0.1", resolve));
  });
  after(async () => {
    tls?.close();
    await f?.close();
    await stopRsyslog();
  });

  it("rsyslog receives RFC 5424 over UDP and TCP; after rsyslog was down, the TCP sink delivers what it missed, once", async () => {
    await f.client.call("createIpset", { ipsetId: "logged", ipset: hashIp, requestId: "" });
    await f.client.call("addEntry", { parent: "ipsets/logged", entry: entry("192.0.2.1") });
    await waitFor("both events over UDP and TCP", () => sequencesOf("pc-udp").length >= 2 && sequencesOf("pc-tcp").length >= 2);
    const tcpLine = lines().find((line) => line.split(" ")[3] === "pc-tcp" && line.includes(" ENTRY_ADDED "))!;
    // <facility 10 * 8 + informational 6>1 TIMESTAMP HOST APP PID MSGID [SD] MSG
    assert.match(tcpLine, /^<86>1 \S+ \S+ pc-tcp \d+ ENTRY_ADDED \[portcullis@32473 sequence="\d+" resource="ipsets\/logged\/entries\/192\.0\.2\.1" principal="admin" origin="api"\] \{"sequence":\d+,.*"type":"ENTRY_ADDED"/);
    assert.match(lines().find((line) => line.split(" ")[3] === "pc-udp")!, /^<134>1 /, "local0, informational");

    await stopRsyslog();
    for (let i = 10; i < 14; i++) await f.client.call("addEntry", { parent: "ipsets/logged", entry: entry(`192.0.2.${i}`) });
    await sleep(1000);
    await startRsyslog();
    await waitFor("the four events made while rsyslog was down, over TCP", () => sequencesOf("pc-tcp").length >= 6);
    await sleep(500);
    const tcp = sequencesOf("pc-tcp");
    assert.equal(tcp.length, 6);
    assertContiguous(tcp, "TCP sequences");
  });

  it("a TLS collector gets the events as octet-counted RFC 5424 frames, only over a verified connection", async () => {
    // A CA that did not sign the collector's certificate.
    const other = join(scratch, "other-ca");
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=other", "-days", "1", "-keyout", `${other}.key`, "-out", `${other}.crt`], { stdio: "ignore" });
    const g = await serverWith([
      { type: "syslog", name: "tls-verified", transport: "tls", host: "localhost", port: tlsPort, ca: join(f.server.dataDir, "pki/ca.crt"), appName: "pc-tls" },
      { type: "syslog", name: "tls-unverified", transport: "tls", host: "localhost", port: tlsPort, ca: `${other}.crt`, appName: "pc-tls-other" },
    ]);
    try {
      await g.client.call("createIpset", { ipsetId: "tls_logged", ipset: hashIp, requestId: "" });
      await waitFor("the frame over TLS", () => tlsFrames.length >= 1);
      await sleep(1500);
      assert.equal(tlsFrames.length, 1, tlsFrames.join("\n"));
      assert.match(tlsFrames[0]!, /^<134>1 \S+ \S+ pc-tls \d+ IPSET_CREATED \[portcullis@32473 sequence="1" resource="ipsets\/tls_logged" principal="admin" origin="api"\] \{/);
    } finally {
      await g.close();
    }
  });
});

describe("file sink", () => {
  it("JSON lines, rotated by size (keep N), resumed from its position after a restart: no gap, no repeat", async () => {
    const path = join(scratch, "events.jsonl");
    const f = await serverWith([{ type: "file", name: "jsonl", path, maxBytes: 4096, keep: 2, startAt: "oldest" }]);
    // The sink may rotate while we read (events.jsonl renamed, not yet recreated): read again until a read sees
    // the same files twice in a row, which is only certain once the sink is idle.
    const readOnce = (): SinkEvent[] => [`${path}.2`, `${path}.1`, path].flatMap((file) => {
      try {
        const text = readFileSync(file, "utf8");
        const complete = text.slice(0, text.lastIndexOf("\n") + 1); // a line being written is not a line yet
        return complete.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line) as SinkEvent);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
        throw error;
      }
    });
    const read = (): SinkEvent[] => {
      for (;;) {
        const first = readOnce();
        const second = readOnce();
        if (JSON.stringify(first) === JSON.stringify(second)) return second;
      }
    };
    try {
      await f.client.call("createIpset", { ipsetId: "filed", ipset: hashIp, requestId: "" });
      for (let i = 1; i <= 60; i++) await f.client.call("addEntry", { parent: "ipsets/filed", entry: entry(`192.0.2.${i}`) });
      await waitFor("the last event in the file", () => read().some((event) => event.resource === "ipsets/filed/entries/192.0.2.60"));
      assert.ok(existsSync(`${path}.2`) && !existsSync(`${path}.3`), "rotated, two old files kept");
      for (const file of [path, `${path}.1`, `${path}.2`]) assert.ok(readFileSync(file).length <= 4096, `${file} within maxBytes`);
      const before = read();
      assertContiguous(before.map((event) => event.sequence), "kept lines");

      await f.server.kill("SIGKILL");
      await f.server.restart();
      const client = new IpsetTestClient(f.server.address, f.server.credentials()); // the restarted server's new port
      try {
        for (let i = 61; i <= 63; i++) await client.call("addEntry", { parent: "ipsets/filed", entry: entry(`192.0.2.${i}`) });
      } finally {
        client.close();
      }
      await waitFor("the events after the restart", () => read().some((event) => event.resource === "ipsets/filed/entries/192.0.2.63"));
      const all = read();
      assertContiguous(all.map((event) => event.sequence), "lines across the restart");
      assert.equal(all.filter((event) => event.resource === "ipsets/filed/entries/192.0.2.60").length, 1, "nothing delivered twice");
    } finally {
      await f.close();
    }
  });
});
