import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Fail2banClient } from "../../server/src/drivers/fail2ban-client.js";
import { decodeReply, encodeCommand, F2B_CLOSE, F2B_END, PickleError, type PickleValue } from "../../server/src/drivers/parse/pickle-codec.js";
import { ServerError, type Reason } from "../../server/src/errors.js";
import { createLogger } from "../../server/src/logger.js";
import { Fail2banServer } from "../harness/fail2ban.js";
import { waitFor } from "../harness/wait.js";

const log = createLogger(process.env.LOG_LEVEL ?? "silent");

async function rejectsWith(promise: Promise<unknown>, reason: Reason, message?: RegExp): Promise<ServerError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ServerError, `expected a ServerError, got ${String(error)}`);
    assert.equal(error.reason, reason, error.message);
    if (message !== undefined) assert.match(error.message, message);
    return error;
  }
  throw new Error(`expected ${reason}, but the command succeeded`);
}

describe("Fail2banClient against a real fail2ban-server", () => {
  let server: Fail2banServer | undefined;
  let client: Fail2banClient;
  const send = (...args: string[]): Promise<PickleValue> => client.send(args);

  before(async () => {
    server = new Fail2banServer();
    await server.start();
    client = new Fail2banClient(server.socket, log);
  });
  after(async () => {
    client?.close();
    await server?.destroy();
  });

  it("answers ping and lists the jails", async () => {
    assert.equal(await send("ping"), "pong");
    assert.deepEqual(await send("status"), [["Number of jail", 2], ["Jail list", "bulk, dovecot"]]);
  });

  it("reads a jail's status", async () => {
    assert.deepEqual(await send("status", "dovecot"), [
      ["Filter", [["Currently failed", 0], ["Total failed", 0], ["File list", [server!.mailLog]]]],
      ["Actions", [["Currently banned", 0], ["Total banned", 0], ["Banned IP list", []]]],
    ]);
  });

  it("bans and unbans addresses of both families through the jail's action", async () => {
    assert.equal(await send("set", "dovecot", "banip", "192.0.2.100", "2001:db8::100"), 2);
    assert.deepEqual(new Set(await send("get", "dovecot", "banned") as string[]), new Set(["192.0.2.100", "2001:db8::100"]));
    assert.equal(await send("get", "dovecot", "banned", "192.0.2.100"), 1);
    const [, actions] = await send("status", "dovecot") as [unknown, [string, PickleValue[]]];
    assert.deepEqual(actions[1].slice(0, 2), [["Currently banned", 2], ["Total banned", 2]]);
    assert.deepEqual(new Set((actions[1][2] as [string, string[]])[1]), new Set(["192.0.2.100", "2001:db8::100"]));
    assert.match(readFileSync(server!.dummyTarget, "utf8"), /^\+192\.0\.2\.100$/m);

    assert.equal(await send("set", "dovecot", "unbanip", "192.0.2.100", "2001:db8::100"), 2);
    assert.deepEqual(await send("get", "dovecot", "banned"), []);
    assert.match(readFileSync(server!.dummyTarget, "utf8"), /^-192\.0\.2\.100$/m);
  });

  it("sends and reads thousands of addresses in one command (replies of many socket reads)", async () => {
    // Canonical forms: fail2ban answers addresses as it normalised them.
    const addresses = Array.from({ length: 5000 }, (_, i) => (i % 2 ? `10.1.${i >> 8}.${i & 255}` : `2001:db8::${(i + 1).toString(16)}`));
    assert.equal(await client.send(["set", "bulk", "banip", ...addresses], 60_000), 5000);
    const banned = await send("get", "bulk", "banned") as string[];
    assert.equal(banned.length, 5000);
    assert.deepEqual(new Set(banned), new Set(addresses));
    assert.equal(await client.send(["set", "bulk", "unbanip", ...addresses], 60_000), 5000);
  });

  it("maps fail2ban's exceptions to reasons", async () => {
    const missing = await rejectsWith(send("status", "nojail"), "JAIL_NOT_FOUND", /^jail "nojail" does not exist in fail2ban$/);
    assert.deepEqual({ ...missing.metadata }, { jail: "nojail" });
    await rejectsWith(send("set", "nojail", "banip", "192.0.2.1"), "JAIL_NOT_FOUND");
    const invalid = await rejectsWith(send("frobnicate"), "FAIL2BAN_REJECTED", /^fail2ban rejected "frobnicate": Invalid command$/);
    assert.deepEqual({ ...invalid.metadata }, { exception: "Exception" });
    await rejectsWith(send("get", "dovecot"), "FAIL2BAN_REJECTED", /list index out of range/);
    assert.equal(await send("ping"), "pong");
  });

  it("refuses arguments it cannot send safely, without disturbing the connection", async () => {
    await assert.rejects(send("echo", "a\0b"), PickleError);
    await assert.rejects(send("echo", "<F2B_END_COMMAND>"), PickleError);
    assert.deepEqual(await send("echo", "ü ✓ \"' <F2B_END"), ["ü ✓ \"' <F2B_END"]);
  });

  it("queues concurrent commands and pairs every reply with its command", async () => {
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => send("echo", `n${i}`)));
    replies.forEach((reply, i) => assert.deepEqual(reply, [`n${i}`]));
  });

  it("times a command out without taking its late reply for the next one", async () => {
    await rejectsWith(client.send(["sleep", "1.5"], 300), "FAIL2BAN_UNAVAILABLE", /did not answer within 300 ms/);
    assert.equal(await send("ping"), "pong");
  });

  it("reports FAIL2BAN_UNAVAILABLE while fail2ban is down, and works again on restart with the same client", async () => {
    // A clean stop removes the socket file.
    await server!.stop("SIGTERM");
    assert.equal(existsSync(server!.socket), false);
    await rejectsWith(send("ping"), "FAIL2BAN_UNAVAILABLE", /\(ENOENT\): fail2ban is not running, or the socket path is wrong$/);
    await server!.start();
    assert.equal(await send("ping"), "pong");

    // Killed in the middle of a command: that command fails, and the socket file left behind refuses connections.
    const inFlight = rejectsWith(client.send(["sleep", "5"], 20_000), "FAIL2BAN_UNAVAILABLE", /closed the connection before answering/);
    await sleep(200);
    await server!.stop("SIGKILL");
    await inFlight;
    assert.equal(existsSync(server!.socket), true);
    await rejectsWith(send("ping"), "FAIL2BAN_UNAVAILABLE", /\(ECONNREFUSED\): fail2ban is not running/);
    await server!.start();
    assert.deepEqual(await send("status"), [["Number of jail", 2], ["Jail list", "bulk, dovecot"]]);
  });

  it("fails commands after close", async () => {
    const closing = new Fail2banClient(server!.socket, log);
    assert.equal(await closing.send(["ping"]), "pong");
    closing.close();
    await rejectsWith(closing.send(["ping"]), "SHUTTING_DOWN");
  });
});

/** Protocol-2 pickles written by hand, for a peer that misbehaves in ways a real fail2ban-server will not on cue. */
const pickled = {
  str: (text: string): Buffer => {
    const bytes = Buffer.from(text, "utf8");
    const header = Buffer.alloc(5);
    header[0] = 0x58; // BINUNICODE
    header.writeUInt32LE(bytes.length, 1);
    return Buffer.concat([header, bytes]);
  },
  /** (0, value) */
  ok: (value: Buffer): Buffer => Buffer.concat([Buffer.from([0x80, 2, 0x4b, 0]), value, Buffer.from([0x86, 0x2e])]),
  top: (value: Buffer): Buffer => Buffer.concat([Buffer.from([0x80, 2]), value, Buffer.from([0x2e])]),
};

describe("Fail2banClient framing and reconnection, against a scripted peer on a unix socket", () => {
  const dir = mkdtempSync(join(tmpdir(), "pc-f2b-peer-"));
  const path = join(dir, "peer.sock");
  let peer: Server;
  let connections = 0;
  let goodbyes = 0;
  /** What the peer does with each command it reads. */
  let respond: (command: PickleValue, socket: Socket) => void = () => undefined;
  let client: Fail2banClient;

  before(async () => {
    peer = createServer((socket) => {
      connections++;
      let buffer = Buffer.alloc(0);
      socket.on("data", (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        for (let end = buffer.indexOf(F2B_END); end >= 0; end = buffer.indexOf(F2B_END)) {
          const message = buffer.subarray(0, end);
          buffer = buffer.subarray(end + F2B_END.length);
          if (message.equals(F2B_CLOSE)) goodbyes++;
          else respond(decodeReply(message), socket);
        }
      });
      socket.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => peer.listen(path, resolve));
    client = new Fail2banClient(path, log);
  });
  after(() => {
    client?.close();
    peer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("reconnects transparently to a server that closes the connection after every reply", async () => {
    // Closing right after the reply: the next queued command is written before the close is noticed, fails with
    // EPIPE/ECONNRESET, and goes again on a new connection.
    respond = (command, socket) => socket.write(Buffer.concat([pickled.ok(pickled.str((command as string[]).join(" "))), F2B_END]), () => socket.destroy());
    connections = 0;
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => client.send(["echo", String(i)])));
    replies.forEach((reply, i) => assert.equal(reply, `echo ${i}`));
    for (let i = 0; i < 5; i++) assert.equal(await client.send(["ping"]), "ping");
    assert.equal(connections, 25);
  });

  it("reads replies in any chunking, and a terminator inside a string does not end the reply", async () => {
    respond = (_command, socket) => {
      const reply = Buffer.concat([pickled.ok(pickled.str("log line <F2B_END_COMMAND> and more")), F2B_END]);
      const cut = reply.indexOf(F2B_END) + F2B_END.length;
      socket.write(reply.subarray(0, cut));
      setTimeout(() => {
        for (const byte of reply.subarray(cut)) socket.write(Buffer.from([byte]));
      }, 50);
    };
    assert.equal(await client.send(["get", "x", "matches"]), "log line <F2B_END_COMMAND> and more");
    assert.equal(await client.send(["get", "x", "matches"]), "log line <F2B_END_COMMAND> and more");
  });

  it("refuses replies that are not fail2ban's (code, value), then carries on", async () => {
    const replies: Array<[Buffer, Reason, RegExp]> = [
      [Buffer.from("\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R.", "latin1"), "FAIL2BAN_BAD_REPLY", /could not be decoded/],
      [pickled.top(pickled.str("ERROR: load message failed")), "FAIL2BAN_BAD_REPLY", /answered something unexpected/],
      [encodeCommand(["SHUTDOWN"]), "FAIL2BAN_UNAVAILABLE", /shutting down/],
      [Buffer.concat([Buffer.from([0x80, 2, 0x4b, 1]), pickled.str("not an exception"), Buffer.from([0x86, 0x2e])]), "FAIL2BAN_BAD_REPLY", /unexpected/],
    ];
    for (const [bytes, reason, message] of replies) {
      respond = (_command, socket) => socket.write(Buffer.concat([bytes, F2B_END]));
      await rejectsWith(client.send(["status"]), reason, message);
    }
    respond = (_command, socket) => socket.write(Buffer.concat([pickled.ok(pickled.str("pong")), F2B_END]));
    assert.equal(await client.send(["ping"]), "pong");
  });

  it("drops a connection on which data arrives unasked, and reconnects", async () => {
    let dropped = false;
    respond = (_command, socket) => {
      socket.once("close", () => (dropped = true));
      socket.write(Buffer.concat([pickled.ok(pickled.str("pong")), F2B_END]));
      setTimeout(() => socket.write(Buffer.concat([pickled.ok(pickled.str("stray")), F2B_END])), 20);
    };
    connections = 0;
    assert.equal(await client.send(["ping"]), "pong");
    await waitFor("the client dropping the connection the stray reply came on", () => dropped);
    respond = (_command, socket) => socket.write(Buffer.concat([pickled.ok(pickled.str("pong")), F2B_END]));
    assert.equal(await client.send(["ping"]), "pong");
    assert.equal(connections, 1);
  });

  it("says goodbye on close, as fail2ban-client does", async () => {
    const other = new Fail2banClient(path, log);
    assert.equal(await other.send(["ping"]), "pong");
    other.close();
    await waitFor("the goodbye", () => goodbyes > 0);
    assert.equal(goodbyes, 1);
  });
});
