import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { expectError } from "./helpers/expect-error.js";
import { parseIpsetSave } from "../../server/src/drivers/parse/ipset-save.js";
import { elementFamily, expandElement, normalizeElement, normalizeRange, validateComment } from "../../server/src/ipsets/element.js";
import { validateIpsetName } from "../../server/src/names.js";
import { isModeledType, type IpsetDefinition } from "../../server/src/ipsets/ipset-model.js";


const hashIp: IpsetDefinition = { name: "blocklist", typeName: "hash:ip", family: "inet", comments: false };
const hashIp6: IpsetDefinition = { ...hashIp, name: "blocklist6", family: "inet6" };
const hashNet: IpsetDefinition = { ...hashIp, name: "nets", typeName: "hash:net" };
const hashNet6: IpsetDefinition = { ...hashNet, name: "nets6", family: "inet6" };
const ipPort: IpsetDefinition = { ...hashIp, name: "svc", typeName: "hash:ip,port" };
const ipPort6: IpsetDefinition = { ...ipPort, name: "svc6", family: "inet6" };
const netPort: IpsetDefinition = { ...hashIp, name: "netsvc", typeName: "hash:net,port" };
const netPort6: IpsetDefinition = { ...netPort, name: "netsvc6", family: "inet6" };
const bitmap: IpsetDefinition = { name: "office", typeName: "bitmap:ip", range: "192.0.2.0-192.0.2.255", comments: false };
const listSet: IpsetDefinition = { name: "all", typeName: "list:set", comments: false };

const invalidElement = (def: IpsetDefinition, raw: string, message?: RegExp): void =>
  expectError(() => normalizeElement(def, raw), "INVALID_ELEMENT", { field: "element", value: raw }, message);

/**
 * What was added in the fixture's namespace (see the header of fixtures/ipset-save.txt), what normalizeElement makes
 * of it, and, where the kernel expands the element into several entries, what `ipset save` printed instead.
 */
const KERNEL_CASES: ReadonlyArray<readonly [set: string, input: string, normalized: string, printed?: readonly string[]]> = [
  ["blocklist", "192.0.2.7", "192.0.2.7"],
  ["blocklist", "192.0.2.8", "192.0.2.8"],
  ["blocklist", "198.51.100.0/30", "198.51.100.0/30", ["198.51.100.0", "198.51.100.1", "198.51.100.2", "198.51.100.3"]],
  ["blocklist", "203.0.113.9/32", "203.0.113.9"],
  ["blocklist", "10.0.0.1", "10.0.0.1"],
  ["blocklist6", "2001:0db8:0:0:0:0:0:1", "2001:db8::1"],
  ["blocklist6", "::ffff:1.2.3.4", "::ffff:1.2.3.4"],
  ["blocklist6", "::ffff:102:305", "::ffff:1.2.3.5"],
  ["blocklist6", "0:0:0:0:0:0:102:304", "::1.2.3.4"],
  ["blocklist6", "0:0:0:0:0:0:1:0", "::0.1.0.0"],
  ["blocklist6", "0:0:0:0:0:0:0:100", "::100"],
  ["blocklist6", "::ffff:ffff", "::255.255.255.255"],
  ["blocklist6", "::ffff:0:0", "::ffff:0.0.0.0"],
  ["blocklist6", "::ffff:0:102:304", "::ffff:0:102:304"],
  ["blocklist6", "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
  ["blocklist6", "2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"],
  ["blocklist6", "0:0:0:1::", "0:0:0:1::"],
  ["blocklist6", "1:0:1:0:0:1:0:0", "1:0:1::1:0:0"],
  ["blocklist6", "FE80::ABCD", "fe80::abcd"],
  ["blocklist6", "64:ff9b::1.2.3.4", "64:ff9b::102:304"],
  ["blocklist6", "2001:db8::2/128", "2001:db8::2"],
  // ipaddr.js alone would read ::a.b.c.d as ::ffff:a.b.c.d.
  ["blocklist6", "::9.8.7.6", "::9.8.7.6"],
  ["blocklist6", "::0.0.0.1", "::1"],
  ["blocklist6", "1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
  ["nets", "192.0.2.77/24", "192.0.2.0/24"],
  ["nets", "198.51.100.9/32", "198.51.100.9"],
  ["nets", "203.0.113.5", "203.0.113.5"],
  ["nets", "0.0.0.0/1", "0.0.0.0/1"],
  ["nets", "0.0.0.0", "0.0.0.0"],
  ["nets", "10.20.30.41/31", "10.20.30.40/31"],
  ["nets6", "2001:db8::77/64", "2001:db8::/64"],
  ["nets6", "2001:db8::9/128", "2001:db8::9"],
  ["nets6", "::ffff:1.2.3.4/120", "::ffff:1.2.3.0/120"],
  ["nets6", "2001:DB8:1::/48", "2001:db8:1::/48"],
  ["nets6", "::/1", "::/1"],
  ["nets6", "::", "::"],
  ["svc", "192.0.2.1,80", "192.0.2.1,tcp:80"],
  ["svc", "192.0.2.1,udp:53", "192.0.2.1,udp:53"],
  ["svc", "192.0.2.2,sctp:9", "192.0.2.2,sctp:9"],
  ["svc", "192.0.2.3,udplite:7", "192.0.2.3,udplite:7"],
  ["svc", "192.0.2.5,TCP:22", "192.0.2.5,tcp:22"],
  ["svc", "192.0.2.4,tcp:0", "192.0.2.4,tcp:0"],
  ["svc", "198.51.100.0/31,tcp:443", "198.51.100.0/31,tcp:443", ["198.51.100.0,tcp:443", "198.51.100.1,tcp:443"]],
  ["svc6", "2001:db8::1,tcp:80", "2001:db8::1,tcp:80"],
  ["svc6", "2001:0db8::2,udp:53", "2001:db8::2,udp:53"],
  ["netsvc", "192.0.2.77/24,tcp:80", "192.0.2.0/24,tcp:80"],
  ["netsvc", "198.51.100.7,udp:53", "198.51.100.7,udp:53"],
  ["netsvc", "198.51.100.8/32,9", "198.51.100.8,tcp:9"],
  ["netsvc", "0.0.0.0/1,tcp:2", "0.0.0.0/1,tcp:2"],
  ["netsvc", "0.0.0.0,tcp:3", "0.0.0.0,tcp:3"],
  ["netsvc6", "2001:db8::77/64,tcp:80", "2001:db8::/64,tcp:80"],
  ["netsvc6", "2001:db8::5/128,UDP:53", "2001:db8::5,udp:53"],
  ["netsvc6", "::,tcp:3", "::,tcp:3"],
  ["office", "192.0.2.5", "192.0.2.5"],
  ["office", "192.0.2.8/30", "192.0.2.8/30", ["192.0.2.8", "192.0.2.9", "192.0.2.10", "192.0.2.11"]],
  ["office", "192.0.2.0", "192.0.2.0"],
  ["office", "192.0.2.255", "192.0.2.255"],
  ["lab", "10.0.0.9", "10.0.0.9"],
  ["lab", "10.0.0.16/30", "10.0.0.16/30", ["10.0.0.16", "10.0.0.17", "10.0.0.18", "10.0.0.19"]],
  ["all", "blocklist", "blocklist"],
  ["all", "nets", "nets"],
];

describe("normalizeElement agrees with the kernel (fixtures/ipset-save.txt)", () => {
  const saved = parseIpsetSave(readFileSync(new URL("./fixtures/ipset-save.txt", import.meta.url), "utf8"));
  const definitions = new Map(saved.sets.map((def) => [def.name, def]));
  const printedBy = (set: string): string[] => saved.adds.filter((add) => add.set === set).map((add) => add.entry.element);

  for (const [set, input, normalized, printed = [normalized]] of KERNEL_CASES) {
    it(`${set}: ${input} → ${normalized}`, () => {
      const def = definitions.get(set);
      assert.ok(def !== undefined, `fixture has no set ${set}`);
      assert.equal(normalizeElement(def, input), normalized);
      for (const element of printed) assert.ok(printedBy(set).includes(element), `kernel did not print ${element} in ${set}`);
    });
  }

  it("every printed entry of a modeled set comes from a case above", () => {
    for (const def of saved.sets.filter((def) => isModeledType(def.typeName) && def.name !== "counted")) {
      const expected = KERNEL_CASES.filter(([set]) => set === def.name).flatMap(([, , normalized, printed = [normalized]]) => printed);
      assert.deepEqual([...printedBy(def.name)].sort(), [...expected].sort(), def.name);
    }
  });

  it("is a fixed point on everything the kernel printed", () => {
    for (const add of saved.adds) {
      const def = definitions.get(add.set);
      if (def === undefined || !isModeledType(def.typeName)) continue;
      assert.equal(normalizeElement(def, add.entry.element), add.entry.element, `${add.set}: ${add.entry.element}`);
    }
  });

  it("normalizes bitmap ranges the way the kernel printed them", () => {
    assert.equal(normalizeRange("192.0.2.77/24"), definitions.get("office")?.range);
    assert.equal(normalizeRange("10.0.0.9-10.0.0.20"), definitions.get("lab")?.range);
  });
});

describe("normalizeElement refuses", () => {
  it("host names and ambiguous address spellings", () => {
    for (const raw of ["example.com", "localhost", "", " 192.0.2.1", "192.0.2.1 ", "010.1.1.1", "1.2.3.04", "10.1", "0x0a.1.1.1", "4294967295", "192.0.2.256"]) {
      invalidElement(hashIp, raw, /not an IP address/);
    }
    invalidElement(hashIp, "example.com", /host names are not accepted/);
    for (const raw of ["fe80::1%eth0", "2001:db8:::1", "2001:db8::g", "[::1]"]) invalidElement(hashIp6, raw, /not an IPv6 address/);
    invalidElement(hashIp6, "::ffff:010.1.1.1", /four decimal numbers/);
    for (const raw of ["2001:db8::00001", "::1:2:3:4:5:6:7:8", "1:2:3:4::5:6:7:8", "::ffff:1.2.3.4%eth0"]) invalidElement(hashIp6, raw, /not an IPv6 address/);
  });

  it("addresses of the other family", () => {
    expectError(() => normalizeElement(hashIp, "2001:db8::1"), "FAMILY_MISMATCH", { field: "element", value: "2001:db8::1" },
      /^2001:db8::1 is an IPv6 address but set "blocklist" is family inet$/);
    expectError(() => normalizeElement(hashIp6, "192.0.2.1"), "FAMILY_MISMATCH", { field: "element", value: "192.0.2.1" },
      /^192.0.2.1 is an IPv4 address but set "blocklist6" is family inet6$/);
    expectError(() => normalizeElement(hashNet, "::ffff:1.2.3.4/120"), "FAMILY_MISMATCH", { field: "element", value: "::ffff:1.2.3.4/120" });
    expectError(() => normalizeElement(netPort6, "192.0.2.0/24,tcp:1"), "FAMILY_MISMATCH", { field: "element", value: "192.0.2.0/24,tcp:1" });
    expectError(() => normalizeElement(ipPort, "2001:db8::1,tcp:1"), "FAMILY_MISMATCH", { field: "element", value: "2001:db8::1,tcp:1" });
    expectError(() => normalizeElement(bitmap, "2001:db8::1"), "FAMILY_MISMATCH", { field: "element", value: "2001:db8::1" },
      /bitmap:ip set, which holds IPv4 addresses only/);
    const { name: _name, ...anonymous } = hashIp;
    expectError(() => normalizeElement(anonymous, "2001:db8::1"), "FAMILY_MISMATCH", { field: "element", value: "2001:db8::1" }, /but the set is family inet/);
  });

  it("treats a set without family as inet", () => {
    const { family: _family, ...noFamily } = hashIp;
    assert.equal(normalizeElement(noFamily, "192.0.2.1"), "192.0.2.1");
    expectError(() => normalizeElement(noFamily, "::1"), "FAMILY_MISMATCH", { field: "element", value: "::1" });
  });

  it("hash:ip ranges that are too large, IPv6 networks and the all-zero address", () => {
    assert.equal(normalizeElement(hashIp, "10.0.77.1/16"), "10.0.0.0/16");
    invalidElement(hashIp, "10.0.0.0/15", /too large.*\/15 is 131072 addresses; use \/16 or longer, or a hash:net set/);
    invalidElement(hashIp, "0.0.0.0/0", /too large/);
    invalidElement(hashIp6, "2001:db8::/126", /take single addresses/);
    invalidElement(hashIp6, "2001:db8::/112", /take single addresses/);
    invalidElement(hashIp, "0.0.0.0", /all-zero address 0.0.0.0/);
    invalidElement(hashIp, "0.0.0.0/31", /all-zero address/);
    invalidElement(hashIp6, "::", /all-zero address ::/);
    invalidElement(hashIp6, "::/128", /all-zero address/);
    invalidElement(ipPort, "0.0.0.0,tcp:1", /all-zero address/);
    invalidElement(ipPort6, "::,tcp:1", /all-zero address/);
    invalidElement(ipPort6, "2001:db8::/127,tcp:1", /take single addresses/);
  });

  it("prefix lengths that are out of range or not plain decimal", () => {
    invalidElement(hashIp, "10.5.5.5/032", /decimal number 0-32 without leading zeros/);
    invalidElement(hashNet, "10.0.0.0/33", /0-32/);
    invalidElement(hashNet, "10.0.0.0/-1", /0-32/);
    invalidElement(hashNet, "10.0.0.0/", /0-32/);
    invalidElement(hashNet, "10.0.0.0/8/8", /0-32/);
    invalidElement(hashNet6, "2001:db8::/129", /0-128/);
    invalidElement(hashNet, "10.0.0.1-10.0.0.6", /not an IP address/);
  });

  it("/0 networks", () => {
    invalidElement(hashNet, "0.0.0.0/0", /\/0 networks/);
    invalidElement(hashNet6, "::/0", /\/0 networks/);
    invalidElement(netPort, "0.0.0.0/0,tcp:1", /\/0 networks/);
  });

  it("ports that are not one decimal tcp, udp, sctp or udplite port", () => {
    assert.equal(normalizeElement(ipPort, "192.0.2.1,udp:65535"), "192.0.2.1,udp:65535");
    assert.equal(normalizeElement(ipPort6, "::ffff:192.0.2.1,Sctp:1"), "::ffff:192.0.2.1,sctp:1");
    invalidElement(ipPort, "192.0.2.1,http", /decimal number 0-65535 .*service names are not accepted/);
    invalidElement(ipPort, "192.0.2.1,tcp:0x50", /decimal number/);
    invalidElement(ipPort, "192.0.2.1,tcp:080", /without leading zeros/);
    invalidElement(ipPort, "192.0.2.1,tcp:65536", /0-65535/);
    invalidElement(ipPort, "192.0.2.1,tcp:", /0-65535/);
    invalidElement(netPort, "192.0.2.0/24,tcp:80-90", /port ranges are not supported/);
    invalidElement(ipPort, "192.0.2.1,icmp:8/0", /ICMP entries are not supported/);
    invalidElement(ipPort, "192.0.2.1,icmp:echo-request", /ICMP/);
    invalidElement(ipPort6, "2001:db8::1,icmpv6:1/0", /ICMP/);
    invalidElement(ipPort, "192.0.2.1,gre:0", /unknown protocol "gre"/);
    invalidElement(ipPort, "192.0.2.1", /ADDRESS,PROTO:PORT/);
    invalidElement(netPort, "192.0.2.0/24,tcp:1,x", /ADDRESS,PROTO:PORT/);
    invalidElement(netPort, ",tcp:1", /ADDRESS,PROTO:PORT/);
    invalidElement(ipPort, "example.com,tcp:1", /not an IP address/);
  });

  it("bitmap:ip elements outside the set's range", () => {
    invalidElement(bitmap, "192.0.3.1", /^192.0.3.1 is outside the range 192.0.2.0-192.0.2.255 of set "office"$/);
    invalidElement(bitmap, "192.0.2.0/23", /outside the range/);
    const lab: IpsetDefinition = { name: "lab", typeName: "bitmap:ip", range: "10.0.0.9-10.0.0.20", comments: false };
    invalidElement(lab, "10.0.0.8", /outside the range 10.0.0.9-10.0.0.20/);
    invalidElement(lab, "10.0.0.8/29", /outside the range/);
    assert.equal(normalizeElement({ ...bitmap, range: "192.0.2.0/24" }, "192.0.2.9/32"), "192.0.2.9");
    assert.equal(normalizeElement({ name: "z", typeName: "bitmap:ip", range: "0.0.0.0-0.0.0.3" }, "0.0.0.0"), "0.0.0.0");
  });

  it("list:set members that are not set names", () => {
    expectError(() => normalizeElement(listSet, "not a set"), "INVALID_IPSET_NAME", { field: "element", value: "not a set" });
    expectError(() => normalizeElement(listSet, "192.0.2.1/24"), "INVALID_IPSET_NAME", { field: "element", value: "192.0.2.1/24" });
  });

  it("unmodeled types", () => {
    expectError(() => normalizeElement({ ...hashIp, typeName: "hash:ip,port,ip" }, "192.0.2.1,tcp:80,192.0.2.2"),
      "INVALID_IPSET_TYPE", { field: "type", value: "hash:ip,port,ip" }, /read-only/);
  });
});

describe("validateIpsetName", () => {
  it("accepts names ipset and iptables can use", () => {
    for (const name of ["a", "f2b-sshd", "Block.List:v6_2", "0", "x".repeat(31)]) validateIpsetName(name);
  });

  it("refuses other names, naming the field", () => {
    for (const name of ["", "-x", "_x", ".x", "x".repeat(32), "has space", "ünï", "a/b", 'a"b']) {
      expectError(() => validateIpsetName(name), "INVALID_IPSET_NAME", { field: "ipset_id", value: name }, /1 to 31 characters/);
    }
    expectError(() => validateIpsetName("a b", "new_ipset_id"), "INVALID_IPSET_NAME", { field: "new_ipset_id", value: "a b" }, /^new_ipset_id "a b"/);
  });
});

describe("validateComment", () => {
  it("accepts up to 255 bytes of printable UTF-8", () => {
    for (const comment of ["", "hi there", "it's ünïcode ✓", "back\\slash", "x".repeat(255), "ü".repeat(127)]) validateComment(comment);
  });

  it("refuses long comments, double quotes and control characters", () => {
    const cases: ReadonlyArray<[string, RegExp]> = [
      ["x".repeat(256), /256 bytes .* at most 255/],
      ["ü".repeat(128), /256 bytes/],
      ['say "hi"', /double quotes/],
      ["two\nlines", /control characters/],
      ["tab\there", /control characters/],
      ["nul\u0000", /control characters/],
      ["del\u007f", /control characters/],
      ["c1\u0085", /control characters/],
    ];
    for (const [comment, message] of cases) {
      expectError(() => validateComment(comment), "INVALID_COMMENT", { field: "comment", value: comment }, message);
    }
  });
});

describe("normalizeRange", () => {
  it("returns FROM-TO as ipset save prints it", () => {
    assert.equal(normalizeRange("192.0.2.0-192.0.2.255"), "192.0.2.0-192.0.2.255");
    assert.equal(normalizeRange("10.0.0.5-10.0.0.5"), "10.0.0.5-10.0.0.5");
    assert.equal(normalizeRange("10.0.0.0/16"), "10.0.0.0-10.0.255.255");
    assert.equal(normalizeRange("10.1.0.0-10.1.255.255"), "10.1.0.0-10.1.255.255");
    assert.equal(normalizeRange("0.0.0.0/30"), "0.0.0.0-0.0.0.3");
    assert.equal(normalizeRange("255.255.255.255/32"), "255.255.255.255-255.255.255.255");
  });

  it("refuses reversed, oversized, IPv6 and malformed ranges", () => {
    const cases: ReadonlyArray<[string, RegExp]> = [
      ["10.0.0.5-10.0.0.1", /first address must not be greater than the last/],
      ["10.0.0.0/15", /131072 addresses; a bitmap:ip set holds at most 65536/],
      ["10.1.0.0-10.2.0.0", /65537 addresses/],
      ["10.0.0.5", /FROM-TO or CIDR/],
      ["10.0.0.1-10.0.0.2-10.0.0.3", /FROM-TO or CIDR/],
      ["2001:db8::/120", /IPv4 only/],
      ["2001:db8::1-2001:db8::2", /FROM-TO or CIDR/],
      ["010.0.0.0/24", /not an IPv4 address/],
      ["10.0.0.0/024", /without leading zeros/],
      ["10.0.0.0 - 10.0.0.4", /not an IPv4 address/],
      ["", /FROM-TO or CIDR/],
    ];
    for (const [range, message] of cases) {
      expectError(() => normalizeRange(range), "INVALID_IPSET_OPTION", { field: "range", value: range }, message);
    }
  });
});

describe("elementFamily", () => {
  it("tells the family of an element's address part", () => {
    assert.equal(elementFamily("192.0.2.0/24,tcp:80"), "inet");
    assert.equal(elementFamily("2001:db8::/64,tcp:80"), "inet6");
    assert.equal(elementFamily("::ffff:1.2.3.4"), "inet6");
    assert.equal(elementFamily("blocklist"), undefined);
  });
});

describe("expandElement: the entries the kernel holds for an element", () => {
  it("expands networks in sets of single addresses, in order, and leaves everything else whole", () => {
    assert.deepEqual(expandElement("hash:ip", "192.0.2.0/30"), ["192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    assert.deepEqual(expandElement("hash:ip,port", "192.0.2.4/31,tcp:25"), ["192.0.2.4,tcp:25", "192.0.2.5,tcp:25"]);
    assert.deepEqual(expandElement("bitmap:ip", "192.0.2.8/31"), ["192.0.2.8", "192.0.2.9"]);
    assert.equal(expandElement("hash:ip", "10.0.0.0/16").length, 65_536);
    assert.deepEqual(expandElement("hash:ip", "192.0.2.1"), ["192.0.2.1"]);
    assert.deepEqual(expandElement("hash:net", "192.0.2.0/24"), ["192.0.2.0/24"]);
    assert.deepEqual(expandElement("hash:net,port", "192.0.2.0/24,tcp:25"), ["192.0.2.0/24,tcp:25"]);
  });
});
