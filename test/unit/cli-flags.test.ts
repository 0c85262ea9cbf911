// The client commands' flag parsing, and the rule that they are built only on the public SDK.
import { it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { InvalidArgumentError } from "commander";
import { duration, ports, ruleOf, seconds } from "../../server/src/cli/parse-flags.js";
import { UsageError } from "../../server/src/cli/connect.js";

it("ports: iptables' forms (25, 1000:2000, lists); anything else is refused naming the part", () => {
  assert.deepEqual(ports("25"), [25]);
  assert.deepEqual(ports("25,587,1000:2000"), [25, 587, [1000, 2000]]);
  assert.throws(() => ports("25,smtp"), (error: unknown) => error instanceof InvalidArgumentError && /"smtp" is not a port/.test(error.message));
  assert.throws(() => ports("1000-2000"), InvalidArgumentError);
  assert.throws(() => seconds("-5"), InvalidArgumentError);
  assert.equal(seconds("600"), 600);
});

it("duration: seconds, or numbers with units s, m, h, d, w (combined too); anything else is refused", () => {
  assert.equal(duration("3600"), 3600);
  assert.equal(duration("90s"), 90);
  assert.equal(duration("10m"), 600);
  assert.equal(duration("1h30m"), 5400);
  assert.equal(duration("7d"), 604_800);
  assert.equal(duration("2w"), 1_209_600);
  for (const bad of ["", "1h30", "1.5h", "-1h", "1y", "h", "10 m"]) assert.throws(() => duration(bad), InvalidArgumentError, bad);
});

it("ruleOf: iptables-style flags become the SDK's RuleInput; a rule without a clear target is a usage error", () => {
  assert.deepEqual(ruleOf({ protocol: "tcp", dport: [22], source: "!198.51.100.0/24", ctstate: "new,established", jump: "REJECT", rejectWith: "tcp-reset" }), {
    protocol: "tcp", source: "!198.51.100.0/24", destinationPorts: [22], states: ["NEW", "ESTABLISHED"], target: { reject: "tcp-reset" },
  });
  assert.deepEqual(ruleOf({ matchSet: "!trusted", setDirection: "dst", jump: "DROP" }), { matchSet: { set: "trusted", direction: "dst", negate: true }, target: "DROP" });
  assert.deepEqual(ruleOf({ jump: "mail_in" }), { target: { jump: "mail_in" } });
  assert.deepEqual(ruleOf({ goto: "mail_in" }), { target: { goto: "mail_in" } });
  assert.throws(() => ruleOf({ protocol: "tcp" }), (error: unknown) => error instanceof UsageError && /needs a target/.test(error.message));
  assert.throws(() => ruleOf({ jump: "ACCEPT", goto: "x" }), UsageError);
  assert.throws(() => ruleOf({ jump: "DROP", logPrefix: "x" }), /--log-prefix goes with -j LOG/);
  assert.throws(() => ruleOf({ jump: "DROP", ctstate: "NEW,BOGUS" }), /"BOGUS" is not one of/);
});

it("the client commands import only the public SDK, commander and Node (they are the SDK's first user)", () => {
  const dir = resolve(import.meta.dirname, "../../server/src/cli");
  for (const file of readdirSync(dir)) {
    const imports = [...readFileSync(join(dir, file), "utf8").matchAll(/from "([^"]+)"/g)].map((match) => match[1]!);
    for (const specifier of imports) {
      assert.ok(specifier === "@portcullis/sdk" || specifier === "commander" || specifier.startsWith("node:") || /^\.\/[\w-]+\.js$/.test(specifier), `${file} imports ${specifier}`);
    }
  }
});
