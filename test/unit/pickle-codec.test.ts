import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, it } from "node:test";
import { decodeReply, encodeCommand, PickleError, type PickleValue } from "../../server/src/drivers/parse/pickle-codec.js";

// Every fixture is pickled by the real python3 `pickle` module at test time, preferably by the interpreter that runs
// fail2ban-server (Debian's), with fail2ban's own modules, so exceptions and IPAddr pickle exactly as the server's do.
const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
const PRELUDE = `
import sys, pickle
sys.path.append("/usr/lib/python3/dist-packages")
from fail2ban.exceptions import UnknownJailException, DuplicateJailException
from fail2ban.server.ipdns import IPAddr
`;

/** pickle.dumps(<expression>, protocol) — HIGHEST_PROTOCOL (5 on Python 3.11) unless told. */
function py(expression: string, protocol = "pickle.HIGHEST_PROTOCOL", setup = ""): Buffer {
  const script = `${PRELUDE}\n${setup}\nsys.stdout.buffer.write(pickle.dumps(${expression}, ${protocol}))`;
  return execFileSync(PYTHON, ["-c", script], { maxBuffer: 64 * 1024 * 1024, stdio: ["ignore", "pipe", "pipe"] });
}

/** Feeds bytes to python3's pickle.loads and returns what it read, as JSON (types checked on the Python side). */
function pythonLoads(bytes: Buffer): unknown {
  const script = `
import sys, pickle, json
value = pickle.loads(sys.stdin.buffer.read())
assert type(value) is list and all(type(item) is str for item in value), repr(value)
print(json.dumps(value))`;
  return JSON.parse(execFileSync(PYTHON, ["-c", script], { input: bytes, encoding: "utf8" }));
}

const rejects = (bytes: Uint8Array, message: RegExp, options?: { truncated?: boolean }): void =>
  assert.throws(() => decodeReply(bytes), (error: unknown) => {
    assert.ok(error instanceof PickleError, `expected a PickleError, got ${String(error)}`);
    assert.match(error.message, message);
    if (options?.truncated !== undefined) assert.equal(error.truncated, options.truncated);
    return true;
  });

describe("decodeReply on replies pickled by python3", () => {
  it("reads ping, status and a jail status", () => {
    assert.deepEqual(decodeReply(py("(0, 'pong')")), [0, "pong"]);
    assert.deepEqual(decodeReply(py("(0, [('Number of jail', 2), ('Jail list', 'sshd, dovecot')])")), [0, [["Number of jail", 2], ["Jail list", "sshd, dovecot"]]]);
    const status = `(0, [('Filter', [('Currently failed', 3), ('Total failed', 17), ('File list', ['/var/log/mail.log'])]),
      ('Actions', [('Currently banned', 2), ('Total banned', 9), ('Banned IP list', [IPAddr('192.0.2.7'), IPAddr('2001:db8::7')])])])`;
    assert.deepEqual(decodeReply(py(status)), [0, [
      ["Filter", [["Currently failed", 3], ["Total failed", 17], ["File list", ["/var/log/mail.log"]]]],
      ["Actions", [["Currently banned", 2], ["Total banned", 9], ["Banned IP list", ["192.0.2.7", "2001:db8::7"]]]],
    ]]);
  });

  it("reads ban lists of IPAddr (builtins.str REDUCE) in APPENDS batches", () => {
    for (const count of [1000, 2500]) {
      const reply = decodeReply(py(`(0, [IPAddr('10.%d.%d.%d' % (i >> 16, (i >> 8) & 255, i & 255)) for i in range(${count})])`));
      const expected = Array.from({ length: count }, (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
      assert.deepEqual(reply, [0, expected]);
    }
  });

  it("reads UnknownJailException exactly as fail2ban's Transmitter answers it", () => {
    const setup = `
from fail2ban.server.transmitter import Transmitter
from fail2ban.server.server import Server
reply = Transmitter(Server()).proceed(["status", "nojail"])`;
    assert.deepEqual(decodeReply(py("reply", undefined, setup)), [1, { exception: "UnknownJailException", args: ["nojail"] }]);
  });

  it("reads other exceptions, with several arguments and with __notes__ (BUILD)", () => {
    assert.deepEqual(decodeReply(py("(1, DuplicateJailException('sshd'))")), [1, { exception: "DuplicateJailException", args: ["sshd"] }]);
    assert.deepEqual(decodeReply(py("(1, ValueError('not banned', ['192.0.2.9'], 3))")), [1, { exception: "ValueError", args: ["not banned", ["192.0.2.9"], 3] }]);
    assert.deepEqual(decodeReply(py("(1, Exception())")), [1, { exception: "Exception", args: [] }]);
    assert.deepEqual(decodeReply(py("(1, e)", undefined, "e = KeyError('x'); e.add_note('a note')")), [1, { exception: "KeyError", args: ["x"] }]);
  });

  it("reads None, booleans, ints of every width and floats", () => {
    assert.deepEqual(decodeReply(py("[None, True, False, 0, 255, 256, 65535, 65536, -1, -2**31, 2**31 - 1, 2**31]")), [null, true, false, 0, 255, 256, 65535, 65536, -1, -(2 ** 31), 2 ** 31 - 1, 2 ** 31]);
    assert.deepEqual(decodeReply(py("[2**53 - 1, -(2**53 - 1), 2**53, -2**70, 2**2100]")), [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2n ** 53n, -(2n ** 70n), 2n ** 2100n]);
    const floats = decodeReply(py("[1.5, -0.0, 1e300, float('inf'), float('-inf'), float('nan'), 0.1]"));
    assert.deepEqual(floats, [1.5, -0, 1e300, Infinity, -Infinity, NaN, 0.1]);
    assert.ok(Object.is((floats as number[])[1], -0));
  });

  it("reads strings of every length, including non-ASCII and lone surrogates", () => {
    assert.deepEqual(decodeReply(py("['', 'héllo ✓ 😀', 'x' * 300, 'y' * 70000]")), ["", "héllo ✓ 😀", "x".repeat(300), "y".repeat(70000)]);
    // fail2ban decodes log lines with surrogateescape; the pickler writes such strings with surrogatepass.
    assert.deepEqual(decodeReply(py("b'bad \\xff byte'.decode('utf-8', 'surrogateescape')")), "bad \udcff byte");
  });

  it("reads bytes as copies", () => {
    const reply = decodeReply(py("[b'', b'ab', bytes(range(256)) * 400]")) as Uint8Array[];
    assert.deepEqual(reply.map((b) => b.length), [0, 2, 102400]);
    assert.ok(reply.every((b) => b instanceof Uint8Array));
    assert.deepEqual([...reply[1]!], [0x61, 0x62]);
    assert.equal(reply[2]![511], 255);
  });

  it("reads dicts, sets, frozensets and tuples (also as protocol 3 writes them, with GLOBAL and REDUCE)", () => {
    const expression = "{'a': 1, 'b': [1, 2], 3: None, (1, 'k'): 'tuple key', 'set': {1, 2, 'x'}, 'frozen': frozenset(['f']), 'empty': (set(), {}, (), [])}";
    const expected = new Map<PickleValue, PickleValue>([
      ["a", 1], ["b", [1, 2]], [3, null], [[1, "k"], "tuple key"], ["set", new Set([1, 2, "x"])], ["frozen", new Set(["f"])],
      ["empty", [new Set(), new Map(), [], []]],
    ]);
    for (const protocol of ["3", "4", "5"]) assert.deepEqual(decodeReply(py(expression, protocol)), expected, `protocol ${protocol}`);
    assert.deepEqual(decodeReply(py("(1, UnknownJailException('nojail'))", "3")), [1, { exception: "UnknownJailException", args: ["nojail"] }]);
  });

  it("reads large dicts and sets (SETITEMS/ADDITEMS batches) and memo entries past 255 (LONG_BINGET)", () => {
    const dict = decodeReply(py("{str(i): i for i in range(2500)}")) as Map<PickleValue, PickleValue>;
    assert.equal(dict.size, 2500);
    assert.equal(dict.get("2499"), 2499);
    assert.equal((decodeReply(py("set(range(2500))")) as Set<PickleValue>).size, 2500);
    const shared = decodeReply(py("l", undefined, "l = [str(i) for i in range(300)]; l.append(l[299]); l.append(l[0])")) as string[];
    assert.deepEqual(shared.slice(-3), ["299", "299", "0"]);
  });
});

describe("decodeReply refuses what it must not run or cannot bound", () => {
  it("refuses globals outside the allow-list, however they are spelled", () => {
    rejects(Buffer.from("\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R.", "latin1"), /global "os.system" is not allowed/);
    const setup = `
import os
class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/portcullis-pwned",))`;
    rejects(py("(0, Evil())", undefined, setup), /global "posix.system" is not allowed/);
    rejects(py("(0, Evil())", "2", setup), /global "posix.system" is not allowed/);
    rejects(py("getattr"), /global "builtins.getattr" is not allowed/);
    rejects(py("(1, e)", undefined, "import subprocess\ne = subprocess.CalledProcessError(1, 'x')"), /global "subprocess.CalledProcessError" is not allowed/);
  });

  it("never puts a class into a value, and applies allowed classes only to what they accept", () => {
    rejects(py("[str]"), /a class cannot be part of a value/);
    rejects(py("str"), /a class cannot be part of a value/);
    // str(1.5) would need Python's float repr; nothing fail2ban sends needs it.
    rejects(Buffer.from("\x80\x04\x8c\x08builtins\x8c\x03str\x93G\x3f\xf8\x00\x00\x00\x00\x00\x00\x85R.", "latin1"), /str\(\) is only accepted/);
    assert.equal(decodeReply(Buffer.from("\x80\x04\x8c\x08builtins\x8c\x03str\x93\x8c\x02hi\x85\x81.", "latin1")), "hi"); // NEWOBJ
    rejects(Buffer.from("\x80\x04\x8c\x02hiK\x01\x85R.", "latin1"), /REDUCE needs an allowed class/);
  });

  it("reports every strict prefix of a reply as truncated", () => {
    const whole = py("(0, [('Number of jail', 2), ('Jail list', 'sshd, dovecot'), ('big', 2**70), ('f', 1.5)])");
    for (let length = 0; length < whole.length; length++) rejects(whole.subarray(0, length), /./, { truncated: true });
    assert.deepEqual(decodeReply(whole), [0, [["Number of jail", 2], ["Jail list", "sshd, dovecot"], ["big", 2n ** 70n], ["f", 1.5]]]);
  });

  it("refuses unknown and unsupported opcodes, trailing bytes and unbalanced stacks", () => {
    rejects(Buffer.from([0x80, 5, 0x00, 0x2e]), /unsupported pickle opcode 0x00/);
    rejects(py("['a']", "0"), /unsupported pickle opcode 0x28|unsupported pickle opcode 0x6c/);
    rejects(Buffer.from("\x80\x05P1\n.", "latin1"), /unsupported pickle opcode 0x50/); // PERSID
    rejects(Buffer.from([0x80, 6, 0x4e, 0x2e]), /unsupported pickle protocol 6/);
    rejects(Buffer.concat([py("(0, 'pong')"), Buffer.from("x")]), /bytes after STOP/);
    rejects(Buffer.from("\x80\x05NN.", "latin1"), /unbalanced stack/);
    rejects(Buffer.from("\x80\x05a.", "latin1"), /stack underflow/);
    rejects(Buffer.from("\x80\x05h\x07.", "latin1"), /memo entry 7 is missing/);
    rejects(Buffer.from("\x80\x05)\x94K\x01a.", "latin1"), /APPEND needs a list/); // tuples are immutable
    rejects(Buffer.from("\x80\x05}]K\x01s.", "latin1"), /cannot be a dict key/);
  });

  it("refuses cycles and containers changed after use", () => {
    rejects(py("l", undefined, "l = []; l.append(l)"), /changed after it was used/);
    rejects(py("d", undefined, "d = {}; d['self'] = [d]"), /changed after it was used/);
  });

  it("bounds the logical size (shared references count every time) and the depth", () => {
    rejects(py("a", undefined, "a = ['x' * 10]\nfor _ in range(40): a = [a, a]"), /reply larger than/);
    rejects(py("a", undefined, "a = []\nfor _ in range(100): a = [a]"), /nested deeper than 64/);
    rejects(py("2**9000"), /integer longer than 1024 bytes/);
    assert.throws(() => decodeReply(py("['x' * 100] * 10"), { maxSize: 1000 }), /reply larger than 1000/);
    assert.equal((decodeReply(py("['x' * 100] * 9"), { maxSize: 1000 }) as string[]).length, 9);
  });
});

describe("encodeCommand", () => {
  it("writes a list of str that python3's pickle.loads reads back exactly", () => {
    const commands: string[][] = [
      ["ping"],
      ["set", "dovecot", "banip", "192.0.2.100", "2001:db8::1"],
      ["set", "jail-ü", "addignoreip", "", "é😀✓", "x".repeat(300), "y".repeat(70_000), "quote ' \" \\ \n newline"],
      Array.from({ length: 1500 }, (_, i) => `arg${i}`),
    ];
    for (const command of commands) assert.deepEqual(pythonLoads(encodeCommand(command)), command);
  });

  it("is decoded by decodeReply too", () => {
    assert.deepEqual(decodeReply(encodeCommand(["get", "sshd", "banned"])), ["get", "sshd", "banned"]);
  });

  it("refuses anything but a non-empty list of well-formed strings without NUL or protocol markers", () => {
    const refuses = (args: unknown, message: RegExp): void => assert.throws(() => encodeCommand(args as string[]), (error: unknown) => error instanceof PickleError && message.test(error.message));
    refuses([], /non-empty list/);
    refuses("ping", /non-empty list/);
    refuses(["set", 1], /argument 1 is not a string/);
    refuses(["set", null], /argument 1 is not a string/);
    refuses(["set", ["nested"]], /argument 1 is not a string/);
    refuses([{ toString: () => "ping" }], /argument 0 is not a string/);
    refuses(["set", "a\0b"], /argument 1 contains NUL/);
    refuses(["set", "bad \ud800 surrogate"], /not well-formed Unicode/);
    refuses(["set", "x<F2B_END_COMMAND>(lp0\nVstop\na.<F2B_END_COMMAND>"], /protocol markers/);
    refuses(["<F2B_CLOSE_COMMAND>"], /protocol markers/);
  });
});
