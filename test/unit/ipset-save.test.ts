import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { expectError } from "./helpers/expect-error.js";
import { ipsetOptionIn, parseIpsetSave, parseIpsetTerse, renderAddLine, renderCreateLine } from "../../server/src/drivers/parse/ipset-save.js";
import type { ServerError } from "../../server/src/errors.js";
import type { IpsetDefinition } from "../../server/src/ipsets/ipset-model.js";

// Real output of ipset 7.17, captured in a network namespace; the commands are in the header of ipset-save.txt.
const saveText = readFileSync(new URL("./fixtures/ipset-save.txt", import.meta.url), "utf8");
const terseText = readFileSync(new URL("./fixtures/ipset-list-terse.txt", import.meta.url), "utf8");


const expectImportError = (text: string, line: number, message: RegExp): void =>
  expectError(() => parseIpsetSave(text), "INVALID_IMPORT", { line: String(line) }, new RegExp(`^line ${line}: .*${message.source}`));

describe("parseIpsetSave on real ipset save output", () => {
  const parsed = parseIpsetSave(saveText);
  const set = (name: string): IpsetDefinition | undefined => parsed.sets.find((def) => def.name === name);
  const addsOf = (name: string) => parsed.adds.filter((add) => add.set === name);

  it("reads every create and add line", () => {
    assert.deepEqual(parsed.sets.map((def) => def.name), [
      "blocklist", "blocklist6", "nets", "nets6", "svc", "svc6", "netsvc", "netsvc6", "office", "lab", "counted", "triple", "all", "empty",
    ]);
    const addLines = saveText.split("\n").filter((line) => line.startsWith("add "));
    assert.equal(parsed.adds.length, addLines.length);
  });

  it("parses the modeled create options and ignores the rest", () => {
    assert.deepEqual(set("blocklist"), {
      name: "blocklist", typeName: "hash:ip", family: "inet", hashsize: 1024, maxelem: 65536, timeout: 0, comments: true,
    });
    assert.deepEqual(set("blocklist6"), {
      name: "blocklist6", typeName: "hash:ip", family: "inet6", hashsize: 2048, maxelem: 100000, comments: true,
    });
    assert.deepEqual(set("nets6"), {
      name: "nets6", typeName: "hash:net", family: "inet6", hashsize: 1024, maxelem: 65536, timeout: 600, comments: false,
    });
    assert.deepEqual(set("office"), {
      name: "office", typeName: "bitmap:ip", timeout: 0, comments: true, range: "192.0.2.0-192.0.2.255",
    });
    assert.deepEqual(set("lab"), { name: "lab", typeName: "bitmap:ip", comments: false, range: "10.0.0.9-10.0.0.20" });
    assert.deepEqual(set("all"), { name: "all", typeName: "list:set", maxelem: 8, timeout: 0, comments: true });
    assert.deepEqual(set("empty"), { name: "empty", typeName: "list:set", maxelem: 8, comments: false });
    assert.deepEqual(set("counted"), {
      name: "counted", typeName: "hash:net", family: "inet", hashsize: 1024, maxelem: 65536, comments: false,
    });
    assert.equal(set("triple")?.typeName, "hash:ip,port,ip");
  });

  it("keeps per-entry timeout and comment, with the line number", () => {
    const hi = parsed.adds.find((add) => add.entry.element === "192.0.2.7");
    assert.deepEqual(hi?.entry, { element: "192.0.2.7", timeout: 0, comment: "hi there" });
    assert.equal(saveText.split("\n")[(hi?.line ?? 0) - 1], 'add blocklist 192.0.2.7 timeout 0 comment "hi there"');
    assert.deepEqual(addsOf("blocklist").find((add) => add.entry.element === "203.0.113.9")?.entry,
      { element: "203.0.113.9", timeout: 0, comment: "it's ünïcode ✓" });
    assert.deepEqual(addsOf("blocklist").find((add) => add.entry.element === "10.0.0.1")?.entry,
      { element: "10.0.0.1", timeout: 0, comment: "back\\slash" });
    const expiring = addsOf("blocklist").find((add) => add.entry.element === "192.0.2.8")?.entry;
    assert.ok(expiring?.timeout !== undefined && expiring.timeout > 0 && expiring.timeout <= 300);
    assert.deepEqual(addsOf("blocklist6").find((add) => add.entry.element === "2001:db8::1")?.entry,
      { element: "2001:db8::1", comment: "v6 one" });
    assert.deepEqual(addsOf("all").map((add) => add.entry),
      [{ element: "blocklist", timeout: 0 }, { element: "nets", timeout: 0, comment: "member two" }]);
  });

  it("ignores counters and skbinfo values, and flags nomatch entries", () => {
    const counted = addsOf("counted");
    assert.deepEqual(counted.find((add) => add.entry.element === "10.0.0.0/8")?.entry, { element: "10.0.0.0/8" });
    const exception = counted.find((add) => add.entry.element === "10.1.0.0/16");
    assert.equal(exception?.nomatch, true);
    assert.equal(counted.find((add) => add.entry.element === "10.0.0.0/8")?.nomatch, undefined);
  });
});

describe("parseIpsetSave syntax", () => {
  it("skips blank and # lines, accepts CRLF, unquoted single-word comments and unknown create options", () => {
    const parsed = parseIpsetSave("# exported\r\n\r\n  create t hash:ip family inet6 frobnicate\r\nadd t 2001:db8::1 comment word\r\n");
    assert.deepEqual(parsed.sets, [{ name: "t", typeName: "hash:ip", family: "inet6", comments: false }]);
    assert.deepEqual(parsed.adds, [{ set: "t", entry: { element: "2001:db8::1", comment: "word" }, line: 4 }]);
  });

  it("accepts adds to sets it does not create (the importer decides) and empty input", () => {
    assert.deepEqual(parseIpsetSave("add existing 192.0.2.1\n").adds[0]?.set, "existing");
    assert.deepEqual(parseIpsetSave(""), { sets: [], adds: [] });
  });

  it("keeps quoted blanks and tabs inside comments", () => {
    assert.equal(parseIpsetSave('add t 192.0.2.1 comment "  a\tb  "').adds[0]?.entry.comment, "  a\tb  ");
  });

  it("refuses other commands and options before the set name", () => {
    expectImportError("create t hash:ip\nflush t", 2, /unsupported command flush/);
    expectImportError("destroy t", 1, /only create and add/);
    expectImportError("swap a b", 1, /unsupported command swap/);
    expectImportError("-exist", 1, /unsupported command -exist/);
    expectImportError("-! add t 192.0.2.1", 1, /unsupported command -!/);
    expectImportError("add -exist t 192.0.2.1", 1, /option -exist/);
  });

  it("counts lines including blank and comment lines", () => {
    expectImportError("# one\n\ncreate t hash:ip\nadd t", 4, /add needs an element/);
  });

  it("refuses malformed create lines", () => {
    expectImportError("create t", 1, /create needs a set type/);
    expectImportError("create", 1, /create needs a set name/);
    expectImportError(`create ${"x".repeat(32)} hash:ip`, 1, /longer than 31 bytes/);
    expectImportError("create t hash:ip family inet5", 1, /family must be inet or inet6, got inet5/);
    expectImportError("create t hash:ip family", 1, /option family needs a value/);
    expectImportError("create t hash:ip hashsize -1", 1, /hashsize needs a whole number/);
    expectImportError("create t hash:ip maxelem 4294967296", 1, /maxelem needs a whole number 0-4294967295/);
    expectImportError("create t hash:ip timeout 2147484", 1, /timeout needs a whole number 0-2147483/);
    expectImportError("create t hash:ip timeout 1 timeout 2", 1, /timeout is given twice/);
    expectImportError("create t list:set size 8 maxelem 8", 1, /only one of maxelem and size/);
    expectImportError("create t hash:ip\ncreate t hash:net", 2, /created twice \(first on line 1\)/);
  });

  it("refuses malformed add lines", () => {
    expectImportError("add", 1, /add needs a set name/);
    expectImportError("add t 192.0.2.1 timeout", 1, /option timeout needs a value/);
    expectImportError("add t 192.0.2.1 timeout soon", 1, /timeout needs a whole number 0-2147483, got soon/);
    expectImportError("add t 192.0.2.1 timeout 1 timeout 1", 1, /given twice/);
    expectImportError("add t 192.0.2.1 bogus", 1, /unknown option bogus/);
    expectImportError("add t 192.0.2.1 before other", 1, /unknown option before/);
    expectImportError('add t 192.0.2.1 comment "never closed', 1, /unterminated double quote/);
    expectImportError('add t 192.0.2.1 comment "a"b', 1, /closing double quote/);
    expectImportError('add t 192.0.2.1 comment a"b"', 1, /unexpected double quote/);
    expectImportError('add t 192.0.2.1 comment', 1, /option comment needs a value/);
  });
});

describe("parseIpsetTerse on real ipset list -terse output", () => {
  const sets = parseIpsetTerse(terseText);
  const saved = parseIpsetSave(saveText);

  it("gives the same definitions as ipset save", () => {
    const byName = new Map(sets.map((set) => [set.definition.name, set.definition]));
    assert.equal(sets.length, saved.sets.length);
    for (const def of saved.sets) assert.deepEqual(byName.get(def.name), def);
  });

  it("reads memory, references and entry counts", () => {
    for (const set of sets) {
      assert.ok(set.memoryBytes > 0);
      assert.equal(set.entryCount, saved.adds.filter((add) => add.set === set.definition.name).length, set.definition.name);
      assert.equal(set.references, ["blocklist", "nets"].includes(set.definition.name) ? 1 : 0, set.definition.name);
    }
    assert.deepEqual(sets.find((set) => set.definition.name === "blocklist"),
      { definition: saved.sets[0], memoryBytes: 943, references: 1, entryCount: 8 });
  });

  it("reads a single block without a trailing newline, and no sets from empty output", () => {
    const one = "Name: x\nType: list:set\nRevision: 3\nHeader: size 4\nSize in memory: 80\nReferences: 2\nNumber of entries: 0";
    assert.deepEqual(parseIpsetTerse(one), [
      { definition: { name: "x", typeName: "list:set", maxelem: 4, comments: false }, memoryBytes: 80, references: 2, entryCount: 0 },
    ]);
    assert.deepEqual(parseIpsetTerse(""), []);
  });

  it("reports unexpected output as a kernel command failure", () => {
    const block = "Name: x\nType: hash:ip\nRevision: 6\nHeader: family inet\nSize in memory: 80\nReferences: 0\nNumber of entries: 0\n";
    expectError(() => parseIpsetTerse(block.replace("Header: family inet\n", "")), "KERNEL_COMMAND_FAILED", { line: "1" }, /no "Header:" line/);
    expectError(() => parseIpsetTerse(block.replace("References: 0", "References: many")), "KERNEL_COMMAND_FAILED", { line: "6" }, /References/);
    expectError(() => parseIpsetTerse(block.replace("family inet", "family ipx")), "KERNEL_COMMAND_FAILED", { line: "4" }, /family/);
    expectError(() => parseIpsetTerse("garbage"), "KERNEL_COMMAND_FAILED", { line: "1" }, /Key: value/);
  });
});

describe("renderCreateLine and renderAddLine", () => {
  it("render lines in ipset save's option order", () => {
    assert.equal(renderCreateLine({ name: "b", typeName: "hash:ip", family: "inet6", hashsize: 2048, maxelem: 100000, timeout: 0, comments: true }),
      "create b hash:ip family inet6 hashsize 2048 maxelem 100000 timeout 0 comment");
    assert.equal(renderCreateLine({ name: "o", typeName: "bitmap:ip", range: "192.0.2.0-192.0.2.255", comments: false }),
      "create o bitmap:ip range 192.0.2.0-192.0.2.255");
    assert.equal(renderCreateLine({ name: "l", typeName: "list:set", maxelem: 8, comments: true }), "create l list:set size 8 comment");
    assert.equal(renderAddLine("t", { element: "192.0.2.7", timeout: 0, comment: "hi there" }), 'add t 192.0.2.7 timeout 0 comment "hi there"');
    assert.equal(renderAddLine("t", { element: "2001:db8::/64,tcp:80" }), "add t 2001:db8::/64,tcp:80");
    assert.equal(renderAddLine("t", { element: "192.0.2.7", comment: "" }), "add t 192.0.2.7");
  });

  it("round-trips every set and entry of the fixture", () => {
    const saved = parseIpsetSave(saveText);
    const text = [...saved.sets.map(renderCreateLine), ...saved.adds.map((add) => renderAddLine(add.set, add.entry))].join("\n");
    const again = parseIpsetSave(text);
    assert.deepEqual(again.sets, saved.sets);
    assert.deepEqual(again.adds.map(({ set, entry }) => ({ set, entry })), saved.adds.map(({ set, entry }) => ({ set, entry })));
  });

  it("refuses values that would break the line", () => {
    expectError(() => renderAddLine("t", { element: "192.0.2.1", comment: 'say "hi"' }), "INVALID_COMMENT", { field: "comment", value: 'say "hi"' });
    expectError(() => renderAddLine("t", { element: "192.0.2.1", comment: "a\ndestroy t" }), "INVALID_COMMENT", { field: "comment", value: "a\ndestroy t" });
    expectError(() => renderAddLine("t", { element: "192.0.2.1 timeout 5" }), "INVALID_ELEMENT", { field: "element", value: "192.0.2.1 timeout 5" });
    expectError(() => renderAddLine("t\nflush", { element: "192.0.2.1" }), "INVALID_IPSET_NAME", { field: "name", value: "t\nflush" });
    expectError(() => renderCreateLine({ name: "", typeName: "hash:ip", comments: false }), "INVALID_IPSET_NAME", { field: "name", value: "" });
  });
});

describe("renderAddLine keeps user text data in the ipset session and restore input", () => {
  it("names every word ipset takes out of a line as its own option, with one or two dashes", () => {
    for (const word of ["-q", "--q", "-quiet", "--quiet", "-exist", "--exist", "-!", "--!", "-t", "-terse", "-f", "-file", "-o", "-output", "-s", "-sorted", "-r", "-resolve", "-n", "-name"]) {
      assert.equal(ipsetOptionIn(word), word, word);
    }
    for (const word of ["q", "-", "--", "---q", "-q ", " -q", "-5 points", "-exist please", "\\-q", "-x", "-comment", "-timeout"]) {
      assert.equal(ipsetOptionIn(word), undefined, JSON.stringify(word));
    }
  });

  it("quotes comments and refuses what ipset cannot read back: options, quotes, line breaks, NUL", () => {
    assert.equal(renderAddLine("s", { element: "192.0.2.1", comment: "-5 points" }), 'add s 192.0.2.1 comment "-5 points"');
    assert.equal(renderAddLine("s", { element: "192.0.2.1", comment: "a\\b" }), 'add s 192.0.2.1 comment "a\\b"');
    for (const comment of ["-q", "--exist", "-!", 'a"b', "a\nb", "a\rb", "a\0b"]) {
      assert.throws(() => renderAddLine("s", { element: "192.0.2.1", comment }), (error: ServerError) => error.reason === "INVALID_COMMENT", JSON.stringify(comment));
    }
    // Names and elements are single words: blanks or quotes would spill into further options.
    assert.throws(() => renderAddLine("s t", { element: "192.0.2.1" }), (error: ServerError) => error.reason === "INVALID_IPSET_NAME");
    assert.throws(() => renderAddLine("s", { element: "192.0.2.1 timeout 5" }), (error: ServerError) => error.reason === "INVALID_ELEMENT");
  });
});
