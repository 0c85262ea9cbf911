import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { Client, credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { pino } from "pino";
import request from "supertest";
import { startServer, type RunningServer } from "../../server/src/main.js";
import { loadConfig } from "../../server/src/config.js";
import { clientBundlePaths, issueClientCertificate } from "../../server/src/auth/cert-authority.js";
import { contract } from "../../server/src/rest/http-rules.js";
import { Netns } from "../harness/netns.js";
import { FirewallTestClient, reasonOf } from "../harness/grpc-clients.js";

/**
 * Requests that cannot be decoded are the caller's fault: every gRPC method answers undecodable bytes and 64-bit
 * integers it cannot hold exactly with INVALID_ARGUMENT and a reason, and every REST refusal — bad percent-encoding,
 * headers too large for Node's parser, unknown routes, bodies that are not JSON — is problem JSON, never a 5xx.
 */

interface Bundle {
  readonly cert: Buffer;
  readonly key: Buffer;
}

let netns: Netns | undefined;
let server: RunningServer | undefined;
let dataDir: string | undefined;
let restAddress = "";
let ca: Buffer;
const bundles: Record<"admin" | "viewer", Bundle> = {} as Record<"admin" | "viewer", Bundle>;
const serverLog: string[] = [];

before(async () => {
  netns = new Netns();
  dataDir = mkdtempSync(join(tmpdir(), "pc-data-"));
  // No fail2ban: these requests are refused before any operation runs.
  const config = loadConfig({ dataDir, netns: netns.name, grpcAddress: "127.0.0.1:0", restAddress: "127.0.0.1:0", logLevel: "info" }, {
    PORTCULLIS_FAIL2BAN_SOCKET: join(dataDir, "no-fail2ban.sock"),
    PORTCULLIS_FAIL2BAN_CONFIG_DIR: join(dataDir, "no-fail2ban"),
  });
  server = await startServer(config, pino({ level: "info" }, { write: (line: string) => void serverLog.push(line) }));
  const listening = serverLog.map((line) => JSON.parse(line) as { msg: string; rest?: string }).find((line) => line.msg === "listening");
  restAddress = listening!.rest!;
  const pki = join(dataDir, "pki");
  const admin = clientBundlePaths(pki, "admin");
  const viewer = await issueClientCertificate(pki, { name: "test-viewer", role: "viewer" });
  bundles.admin = { cert: readFileSync(admin.certPath), key: readFileSync(admin.keyPath) };
  bundles.viewer = { cert: readFileSync(viewer.certPath), key: readFileSync(viewer.keyPath) };
  ca = readFileSync(admin.caPath);
});

after(async () => {
  try {
    await server?.close();
  } finally {
    netns?.destroy();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  }
});

/** One gRPC call with raw request bytes (no serializer of ours in between); resolves with the status it ended with. */
function callRaw(path: string, streaming: boolean, bytes: Buffer, as: Bundle = bundles.admin): Promise<ServiceError | undefined> {
  const client = new Client(server!.grpcAddress, credentials.createSsl(ca, as.key, as.cert), { "grpc.ssl_target_name_override": "localhost" });
  const identity = (value: Buffer): Buffer => value;
  return new Promise((resolve) => {
    const done = (error?: ServiceError | null): void => {
      client.close();
      resolve(error ?? undefined);
    };
    if (!streaming) {
      client.makeUnaryRequest(path, identity, identity, bytes, new Metadata(), { deadline: Date.now() + 10_000 }, (error) => done(error));
      return;
    }
    const call = client.makeServerStreamRequest(path, identity, identity, bytes, new Metadata(), { deadline: Date.now() + 10_000 });
    // A stream that starts (the request decoded) is ended here: only its refusal is of interest.
    call.on("data", () => call.cancel());
    call.on("error", (error: ServiceError) => done(error.code === status.CANCELLED ? undefined : error));
    call.on("end", () => done());
  });
}

/** A protobuf varint field (wire type 0). */
function varintField(number: number, value: bigint): Buffer {
  const bytes = [number << 3];
  let rest = BigInt.asUintN(64, value);
  do {
    const low = Number(rest & 0x7fn);
    rest >>= 7n;
    bytes.push(rest === 0n ? low : low | 0x80);
  } while (rest !== 0n);
  return Buffer.from(bytes);
}

describe("gRPC: undecodable requests are INVALID_ARGUMENT, never INTERNAL", () => {
  const methods = contract().routes;

  it("every method answers the single byte 0xff with MALFORMED_REQUEST naming the request type", async () => {
    assert.ok(methods.length > 40, `the contract's methods (${methods.length})`);
    for (const method of methods) {
      const error = await callRaw(`/${method.service}/${method.method}`, method.streaming, Buffer.from([0xff]));
      assert.equal(error?.code, status.INVALID_ARGUMENT, `${method.method}: ${error?.code} ${error?.details}`);
      assert.equal(reasonOf(error), "MALFORMED_REQUEST", method.method);
      assert.match(error!.details, new RegExp(`not a valid ${method.request.typeName.replaceAll(".", "\\.")} message`), method.method);
    }
  });

  it("a field whose length runs past the end, or an unknown wire type, is MALFORMED_REQUEST too", async () => {
    for (const bytes of [Buffer.from([0x0a, 0x10, 0x61]), Buffer.from([0x0f]), Buffer.from([0x08, 0xff, 0xff, 0xff])]) {
      const error = await callRaw("/portcullis.v1.IpsetService/GetIpset", false, bytes);
      assert.equal(error?.code, status.INVALID_ARGUMENT, `${bytes.toString("hex")}: ${error?.details}`);
      assert.equal(reasonOf(error), "MALFORMED_REQUEST");
    }
  });

  it("a 64-bit integer above 2^53 − 1 is INTEGER_OUT_OF_RANGE naming the field and the range (ListEvents, WatchEvents)", async () => {
    for (const method of ["ListEvents", "WatchEvents"]) {
      const error = await callRaw(`/portcullis.v1.EventService/${method}`, method === "WatchEvents", varintField(1, 2n ** 53n + 1n));
      assert.equal(error?.code, status.INVALID_ARGUMENT, `${method}: ${error?.details}`);
      assert.equal(reasonOf(error), "INTEGER_OUT_OF_RANGE");
      assert.match(error!.details, /after_sequence is 9007199254740993; it must be from 0 to 9007199254740991/);
    }
    // The largest exact value is accepted: nothing comes after it.
    assert.equal(await callRaw("/portcullis.v1.EventService/ListEvents", false, varintField(1, 2n ** 53n - 1n)), undefined);
  });

  it("a negative int64 beyond −(2^53 − 1) in a nested message names its path (UpdateJail ban_time_increment.max_time)", async () => {
    const increment = varintField(3, -(2n ** 60n));
    const body = Buffer.concat([Buffer.from([0x0a, 0x0b]), Buffer.from("jails/sshd1"), Buffer.from([(5 << 3) | 2, increment.length]), increment]);
    const error = await callRaw("/portcullis.v1.JailService/UpdateJail", false, body);
    assert.equal(error?.code, status.INVALID_ARGUMENT, error?.details);
    assert.equal(reasonOf(error), "INTEGER_OUT_OF_RANGE");
    assert.match(error!.details, /ban_time_increment\.max_time is -1152921504606846976; it must be from -9007199254740991/);
  });

  it("the role is checked first: a viewer's garbage to an admin method is PERMISSION_DENIED", async () => {
    const error = await callRaw("/portcullis.v1.IpsetService/CreateIpset", false, Buffer.from([0xff]), bundles.viewer);
    assert.equal(error?.code, status.PERMISSION_DENIED, error?.details);
  });

  it("an error that echoes a 70,000-character input is clipped, and the connection serves on (trailers are bounded)", async () => {
    const client = new Client(server!.grpcAddress, credentials.createSsl(ca, bundles.admin.key, bundles.admin.cert), { "grpc.ssl_target_name_override": "localhost" });
    const identity = (value: Buffer): Buffer => value;
    const call = (name: string) =>
      new Promise<ServiceError | undefined>((resolve) => {
        const bytes = Buffer.concat([Buffer.from([0x0a]), varintField(0, BigInt(Buffer.byteLength(name))).subarray(1), Buffer.from(name)]);
        client.makeUnaryRequest("/portcullis.v1.IpsetService/GetIpset", identity, identity, bytes, new Metadata(), { deadline: Date.now() + 10_000 }, (error) => resolve(error ?? undefined));
      });
    try {
      for (const long of [`ipsets/${"z".repeat(70_000)}`, `ipsets/${"é".repeat(30_000)}`, `${"😀".repeat(20_000)}`]) {
        const [refused, neighbour] = await Promise.all([call(long), call("ipsets/nope")]);
        assert.equal(refused?.code, status.INVALID_ARGUMENT, refused?.details);
        assert.ok(Buffer.byteLength(refused!.details) <= 600, refused!.details.slice(0, 100));
        assert.doesNotMatch(refused!.details, /[\ud800-\udbff](?![\udc00-\udfff])/, "a lone surrogate in the message");
        assert.equal(neighbour?.code, status.NOT_FOUND, `the call beside it: ${neighbour?.details}`);
      }
    } finally {
      client.close();
    }
  });

  it("logs no unexpected error for any of it", () => {
    assert.deepEqual(serverLog.filter((line) => /"level":50/.test(line)).slice(0, 3), []);
  });
});

describe("64-bit answers are exact numbers", () => {
  it("kernel counters beyond 2^53 − 1 saturate at 2^53 − 1 instead of failing every client's decode", async () => {
    netns!.exec("iptables-restore", ["-c"], "*filter\n:INPUT ACCEPT [18446744073709551615:9007199254740993]\n[9007199254740993:18446744073709551615] -A INPUT -p tcp --dport 9 -j ACCEPT\nCOMMIT\n");
    const client = new FirewallTestClient(server!.grpcAddress, credentials.createSsl(ca, bundles.admin.key, bundles.admin.cert));
    try {
      const chains = await client.call("listChains", { parent: "firewall/ipv4/tables/filter" });
      const input = chains.chains.find((chain) => chain.name.endsWith("/chains/INPUT"))!;
      assert.deepEqual([input.packets, input.bytes], [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]);
      const rules = await client.call("listRules", { parent: "firewall/ipv4/tables/filter/chains/INPUT", pageSize: 0, pageToken: "" });
      assert.deepEqual(rules.rules.map((rule) => [rule.packets, rule.bytes]), [[Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]]);
    } finally {
      client.close();
      netns!.exec("iptables", ["-F", "INPUT"]);
    }
  });
});

interface Problem {
  type: string;
  status: number;
  code: string;
  reason: string;
  detail: string;
}

/** Asserts a reply is problem JSON of the given status and reason; returns the problem. */
function expectProblem(reply: { status: number; headers: Record<string, string | undefined>; text: string }, httpStatus: number, reason: string): Problem {
  const where = `${reply.status} ${reply.text.slice(0, 300)}`;
  assert.equal(reply.status, httpStatus, where);
  assert.match(reply.headers["content-type"] ?? "", /^application\/problem\+json(;|$)/, where);
  const problem = JSON.parse(reply.text) as Problem;
  assert.equal(problem.status, httpStatus, where);
  assert.equal(problem.reason, reason, where);
  assert.equal(problem.type, `urn:portcullis:error:${reason.toLowerCase().replaceAll("_", "-")}`);
  assert.ok(problem.detail.length > 0);
  return problem;
}

describe("REST: every refusal is problem JSON, never a 5xx", () => {
  const send = (verb: "get" | "post" | "delete" | "put" | "patch", path: string, as: Bundle = bundles.admin) =>
    request(`https://${restAddress}`)[verb](path).ca(ca).cert(as.cert).key(as.key).timeout(10_000).buffer(true);

  it("bad percent-encoding in a path parameter is 400 MALFORMED_REQUEST naming the segment", async () => {
    for (const bad of ["%zz", "%", "%FF", "%ED%A0%80", "%u0000", "a%E2%82", "%C0%AF"]) {
      const reply = await send("delete", `/v1/ipsets/fz/entries/${bad}`);
      const problem = expectProblem(reply, 400, "MALFORMED_REQUEST");
      assert.ok(problem.detail.includes(`"${bad}"`), problem.detail);
      assert.match(problem.detail, /part of name/);
      expectProblem(await send("get", `/v1/ipsets/${bad}`), 400, "MALFORMED_REQUEST");
      expectProblem(await send("post", `/v1/jails/${bad}:ban`), 400, "MALFORMED_REQUEST");
    }
    assert.deepEqual(serverLog.filter((line) => /URIError|"level":50/.test(line)).slice(0, 3), []);
  });

  it("a 64-bit query parameter or body field above 2^53 − 1 is 400 INTEGER_OUT_OF_RANGE, not silently rounded", async () => {
    const query = expectProblem(await send("get", "/v1/events:list?afterSequence=9007199254740993"), 400, "INTEGER_OUT_OF_RANGE");
    assert.match(query.detail, /query\.afterSequence is 9007199254740993; it must be from 0 to 9007199254740991/);
    const number = expectProblem(
      await send("patch", "/v1/jails/sshd1").set("content-type", "application/json").send('{"banTimeIncrement":{"maxTime":9007199254740993}}'),
      400,
      "INTEGER_OUT_OF_RANGE",
    );
    assert.match(number.detail, /body\.banTimeIncrement\.maxTime is 9007199254740992 \(beyond what a JSON number holds exactly\)/);
    const negative = expectProblem(await send("get", "/v1/events:list?afterSequence=-1"), 400, "INTEGER_OUT_OF_RANGE");
    assert.match(negative.detail, /must be from 0/);
    const exact = await send("get", "/v1/events:list?afterSequence=9007199254740991");
    assert.equal(exact.status, 200, exact.text);
  });

  it("an unknown route is 404 ROUTE_NOT_FOUND; a known path with another method says which methods it takes", async () => {
    expectProblem(await send("get", "/v1/nothing-here"), 404, "ROUTE_NOT_FOUND");
    const wrongMethod = expectProblem(await send("put", "/v1/ipsets"), 404, "ROUTE_NOT_FOUND");
    assert.match(wrongMethod.detail, /no PUT \/v1\/ipsets; this path takes GET, POST/);
  });

  it("a body that is not JSON, not an object, of another content type, or too large is 400 problem JSON", async () => {
    expectProblem(await send("post", "/v1/ipsets").set("content-type", "application/json").send("{not json"), 400, "INVALID_REQUEST");
    expectProblem(await send("post", "/v1/ipsets").set("content-type", "application/json").send("[1,2]"), 400, "INVALID_REQUEST");
    expectProblem(await send("post", "/v1/ipsets").set("content-type", "text/plain").send("hello"), 400, "INVALID_REQUEST");
    expectProblem(await send("post", "/v1/ipsets").set("content-type", "application/json").send(JSON.stringify({ ipsetId: "x".repeat(2 * 1024 * 1024) })), 400, "REQUEST_TOO_LARGE");
  });

  /** Raw bytes over TLS with the admin certificate: what a client that is not an HTTP library sends. */
  function rawExchange(text: string): Promise<string> {
    const separator = restAddress.lastIndexOf(":");
    return new Promise((resolve, reject) => {
      const socket = connect({ host: restAddress.slice(0, separator), port: Number(restAddress.slice(separator + 1)), ca, cert: bundles.admin.cert, key: bundles.admin.key, servername: "localhost" }, () => socket.end(text));
      let answer = "";
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => (answer += chunk));
      socket.on("end", () => resolve(answer));
      socket.on("close", () => resolve(answer));
      socket.on("error", reject);
    });
  }

  /** Status line, headers and body of a raw HTTP/1.1 answer. */
  function parseAnswer(answer: string): { status: number; headers: Record<string, string>; text: string } {
    const [head = "", text = ""] = answer.split("\r\n\r\n", 2);
    const [statusLine = "", ...lines] = head.split("\r\n");
    const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(":")).toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]));
    return { status: Number(statusLine.split(" ")[1]), headers, text };
  }

  it("headers larger than Node's parser reads are 431 problem JSON (a real socket: this happens before express)", async () => {
    const answer = parseAnswer(await rawExchange(`GET /v1/ipsets HTTP/1.1\r\nHost: localhost\r\nX-Big: ${"a".repeat(64 * 1024)}\r\n\r\n`));
    const problem = expectProblem(answer, 431, "REQUEST_TOO_LARGE");
    assert.equal(problem.code, "INVALID_ARGUMENT");
    assert.match(problem.detail, /header section is larger than the server reads \(\d+ bytes\)/);
    assert.equal(Number(answer.headers["content-length"]), Buffer.byteLength(answer.text));
  });

  it("a request refused by the parser right after a keep-alive answer still gets its own answer, not a reset", async () => {
    // Pipelined: the first answer has been written, its 'finish' not yet seen, when the second request's header overflows.
    const huge = `POST /v1/jails/bulk:addIgnoreIp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\nX-Big: ${"h".repeat(70_000)}\r\n\r\n{}`;
    const answer = await rawExchange(`GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n${huge}`);
    const second = answer.indexOf("HTTP/1.1 431 ");
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.ok(second > 0, `no 431 after the first answer: ${answer.slice(0, 300)}`);
    expectProblem(parseAnswer(answer.slice(second)), 431, "REQUEST_TOO_LARGE");
  });

  it("text that is not HTTP is 400 problem JSON", async () => {
    const problem = expectProblem(parseAnswer(await rawExchange("NOT HTTP AT ALL\x00\r\n\r\n")), 400, "MALFORMED_REQUEST");
    assert.match(problem.detail, /not valid HTTP\/1\.1 \(HPE_/);
  });
});
