// The `portcullis` client commands, run as a user runs them (the installed binary, PORTCULLIS_* variables), against
// a real server whose kernel is the victim namespace's, with fail2ban jail dovecot and an attacker next to it.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { VictimAttacker } from "../harness/netns.js";
import { canConnect } from "../harness/tcp.js";
import { startJailHosts, type JailHosts } from "../harness/jail-hosts.js";
import { rest } from "../harness/rest.js";
import { waitFor } from "../harness/wait.js";

const BIN = resolve(import.meta.dirname, "../../server/bin/portcullis");
const { victimV4, attackerV4 } = VictimAttacker;

let setup: JailHosts;
let scratch: string;
let env: NodeJS.ProcessEnv;

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `portcullis ARGS` and returns its exit code and output (a non-zero exit is a result, not an error). */
function portcullis(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  return new Promise((resolvePromise) => {
    execFile(BIN, args, { env: options.env ?? env, encoding: "utf8", timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** `portcullis ARGS --json`, which must succeed; its parsed output. */
async function json<T>(args: string[]): Promise<T> {
  const result = await portcullis([...args, "--json"]);
  assert.equal(result.code, 0, `portcullis ${args.join(" ")} failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

const attackerReaches = (port = 143): Promise<boolean> => canConnect(setup.hosts.attacker.name, victimV4, port);

before(async () => {
  setup = await startJailHosts(["maxretry = 5", "findtime = 600", "bantime = 600"], (socket) => `portcullis.py[socket="${socket}"]`);
  scratch = mkdtempSync(join(tmpdir(), "pc-cli-"));
  env = { ...process.env, PORTCULLIS_ADDRESS: setup.f.server.address, PORTCULLIS_BUNDLE: join(setup.f.server.dataDir, "pki/clients/admin") };
  await setup.f.server.cli(["certs", "issue", "--name", "noc", "--role", "viewer"]);
});
after(async () => {
  rmSync(scratch, { recursive: true, force: true });
  await setup?.close();
});

describe("portcullis CLI", () => {
  it("ban --jail makes the attacker's connect fail; status shows it as fail2ban-client does; unban lifts it everywhere", async () => {
    assert.equal(await attackerReaches(), true);
    const banned = await json<{ address: string; jails: string[] }[]>(["ban", attackerV4, "--jail", "dovecot"]);
    assert.deepEqual(banned, [{ address: attackerV4, jails: ["dovecot"] }]);
    assert.equal(await attackerReaches(), false, "banned: the connect must fail");

    const overview = await portcullis(["status"]);
    assert.equal(overview.stdout, "Status\n|- Number of jail:\t1\n`- Jail list:\tdovecot\n");
    const status = await portcullis(["status", "dovecot"]);
    assert.equal(status.code, 0);
    assert.match(status.stdout, /^Status for the jail: dovecot\n\|- Filter\n\|  \|- Currently failed:\t0\n/);
    assert.match(status.stdout, new RegExp(`   \\|- Currently banned:\\t1\\n   \\|- Total banned:\\t1\\n   \`- Banned IP list:\\t${attackerV4.replaceAll(".", "\\.")}\\n$`));
    const structured = await json<{ name: string; banned: string[]; maxRetry: number }>(["status", "dovecot"]);
    assert.deepEqual([structured.name, structured.banned, structured.maxRetry], ["dovecot", [attackerV4], 5]);

    const unbanned = await portcullis(["unban", attackerV4]);
    assert.deepEqual([unbanned.code, unbanned.stdout], [0, `${attackerV4} unbanned in dovecot\n`]);
    assert.equal(await attackerReaches(), true, "unbanned: the connect must succeed again");
    assert.equal((await portcullis(["unban", attackerV4])).stdout, `${attackerV4} was not banned\n`);
  });

  it("ban --duration --reason: the server lifts the ban when the duration ends; a duration past the jail's bantime is refused", async () => {
    const asked = Date.now();
    const banned = await portcullis(["ban", attackerV4, "--jail", "dovecot", "--duration", "2s", "--reason", "cli test"]);
    assert.deepEqual([banned.code, banned.stdout], [0, `${attackerV4} banned in dovecot\n`]);
    assert.equal(await attackerReaches(), false, "banned: the connect must fail");
    await waitFor("the ban lifted after its 2 s", () => attackerReaches(), { within: 10_000, every: 100 });
    assert.ok(Date.now() - asked >= 1900);
    const tooLong = await portcullis(["ban", attackerV4, "--jail", "dovecot", "--duration", "1h"]);
    assert.equal(tooLong.code, 4, tooLong.stderr); // FAILED_PRECONDITION
    assert.match(tooLong.stderr, /longer than jail dovecot's bantime of 600 s/);
    const badFlag = await portcullis(["ban", attackerV4, "--jail", "dovecot", "--duration", "soon"]);
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /"soon" is not a duration/);
    assert.equal((await portcullis(["ban", attackerV4, "--set", "x", "--reason", "r"])).code, 2);
  });

  it("sets and rules: a set blocked by a rule added with iptables flags, ban --set, import from a file, export, delete", async () => {
    const created = await json<{ name: string; type: string }>(["sets", "create", "cli_block", "--type", "hash:net", "--timeout", "600"]);
    assert.deepEqual([created.name, created.type], ["cli_block", "hash:net"]);
    const rule = await json<{ id: string; text: string; spec: unknown }>(["rules", "add", "INPUT", "--match-set", "cli_block", "-j", "DROP", "--position", "1"]);
    assert.equal(rule.text, "-A INPUT -m set --match-set cli_block src -j DROP");
    assert.deepEqual(rule.spec, { matchSet: { set: "cli_block", direction: "src" }, target: "DROP" });

    assert.equal((await portcullis(["ban", attackerV4, "--set", "cli_block", "--timeout", "300"])).code, 0);
    assert.equal(await attackerReaches(), false, "in the blocked set: the connect must fail");
    assert.equal((await portcullis(["sets", "test", "cli_block", attackerV4])).code, 0);
    assert.equal((await portcullis(["sets", "test", "cli_block", "203.0.113.9"])).code, 1, "not in the set: exit 1");

    const list = join(scratch, "blocklist.txt");
    writeFileSync(list, `# a blocklist\n203.0.113.0/24\n198.51.100.7  # one host\n\n${Array.from({ length: 300 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`).join("\n")}\n`);
    const imported = await portcullis(["sets", "import", "cli_block", list, "--chunk", "100", "--json"]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.deepEqual(JSON.parse(imported.stdout), { set: "cli_block", read: 302, added: 302 });
    assert.equal(imported.stderr, "", "no progress when stderr is not a terminal");
    const shown = await json<{ entryCount: number; entries: { element: string; timeout?: number }[] }>(["sets", "show", "cli_block"]);
    assert.equal(shown.entryCount, 303);
    assert.ok(shown.entries.some((entry) => entry.element === "198.51.100.7" && entry.timeout !== undefined && entry.timeout > 500));
    const exported = await portcullis(["sets", "export", "cli_block"]);
    assert.match(exported.stdout, /^create cli_block hash:net family inet .*timeout 600/m);
    assert.match(exported.stdout, /^add cli_block 203\.0\.113\.0\/24 timeout \d+$/m);

    // Our rule first, then the DROP rule of the jail's Portcullis action (fail2ban-dovecot).
    const rules = await json<{ id: string; position: number; managed: boolean; text: string }[]>(["rules", "list", "INPUT"]);
    assert.deepEqual(rules.map((r) => [r.position, r.managed, r.text]), [[1, true, rule.text], [2, true, "-A INPUT -m set --match-set fail2ban-dovecot src -j DROP"]]);
    assert.equal(rules[0]!.id, rule.id);
    const inUse = await portcullis(["sets", "delete", "cli_block"]);
    assert.equal(inUse.code, 4, "a set a rule uses cannot be deleted: conflict");
    assert.match(inUse.stderr, /referenced by the iptables rule "-A INPUT -m set --match-set cli_block src -j DROP"/);

    assert.equal((await portcullis(["rules", "delete", "INPUT", rule.id])).code, 0);
    assert.equal(await attackerReaches(), true, "rule deleted: the connect must succeed again");
    assert.equal((await portcullis(["sets", "delete", "cli_block"])).code, 0);
    assert.equal((await portcullis(["sets", "show", "cli_block"])).code, 3);
  });

  it("rules apply --confirm-within: the ruleset blocks the attacker, comes back by itself unless confirmed; export --json round-trips", async () => {
    const ruleset = join(scratch, "ruleset.json");
    writeFileSync(ruleset, JSON.stringify({
      chains: [{ name: "INPUT", policy: "ACCEPT" }],
      rules: [
        { chain: "INPUT", source: `${attackerV4}/32`, protocol: "tcp", destinationPorts: [143], target: { reject: "tcp-reset" } },
        { chain: "INPUT", protocol: "tcp", destinationPorts: [25, 587, [1000, 2000]], states: ["NEW"], comment: "mail", target: "ACCEPT" },
      ],
    }));
    /** Applies the ruleset file in safe mode; the rollback time it prints, checked against the call's own time. */
    const apply = async (seconds: number): Promise<number> => {
      const asked = Date.now();
      const applied = await portcullis(["rules", "apply", ruleset, "--confirm-within", String(seconds)]);
      assert.equal(applied.code, 0, applied.stderr);
      const rollbackAt = Date.parse(/^applied 2 rules; rolled back at (\S+) unless `portcullis rules confirm`\n$/.exec(applied.stdout)?.[1] ?? "");
      assert.ok(rollbackAt >= asked + seconds * 1000 && rollbackAt <= Date.now() + seconds * 1000, applied.stdout);
      return rollbackAt;
    };

    // Not confirmed: checked with the server paused, so its rollback cannot come first however slow the machine.
    await apply(3);
    await setup.f.server.whilePaused(async () => assert.equal(await attackerReaches(), false, "the applied ruleset rejects the attacker"));
    await waitFor("not confirmed: the previous table back", () => attackerReaches());

    // Confirmed at once (one CLI run, seconds before the deadline): it stays after the deadline.
    const rollbackAt = await apply(8);
    assert.equal((await portcullis(["rules", "confirm"])).code, 0);
    const exported = await json<{ chains: unknown[]; rules: unknown[] }>(["rules", "export"]);
    assert.deepEqual(exported.rules, [
      { chain: "INPUT", protocol: "tcp", source: `${attackerV4}/32`, destinationPorts: [143], target: { reject: "tcp-reset" } },
      { chain: "INPUT", protocol: "tcp", destinationPorts: [25, 587, [1000, 2000]], states: ["NEW"], comment: "mail", target: "ACCEPT" },
    ]);
    await sleep(rollbackAt - Date.now() + 1000); // past the deadline: a rollback would be due
    assert.equal(await attackerReaches(), false, "confirmed: the ruleset stays");

    // The export, applied again, is the same table.
    writeFileSync(ruleset, JSON.stringify(exported));
    assert.equal((await portcullis(["rules", "apply", ruleset])).code, 0);
    assert.deepEqual((await json<{ rules: unknown[] }>(["rules", "export"])).rules, exported.rules);
    const text = await portcullis(["rules", "export"]);
    assert.match(text.stdout, new RegExp(`^-A INPUT -s ${attackerV4.replaceAll(".", "\\.")}/32 -p tcp -m tcp --dport 143 -j REJECT --reject-with tcp-reset$`, "m"));

    writeFileSync(ruleset, JSON.stringify({ chains: [], rules: [] }));
    assert.equal((await portcullis(["rules", "apply", ruleset])).code, 0);
    assert.equal(await attackerReaches(), true);
  });

  it("exit codes scripts rely on, with the server's message on stderr (JSON with --json)", async () => {
    const usage = await portcullis(["ban", attackerV4]);
    assert.deepEqual([usage.code, usage.stderr], [2, "portcullis: say where: --jail JAIL (or - for every jail), or --set SET\n"]);
    assert.equal((await portcullis(["frobnicate"])).code, 2);
    assert.equal((await portcullis(["rules", "add", "INPUT", "-p", "tcp", "--dport", "22"])).code, 2, "no target");

    const invalid = await portcullis(["ban", "192.0.2.999", "--jail", "dovecot", "--json"]);
    assert.equal(invalid.code, 2);
    assert.deepEqual((JSON.parse(invalid.stderr) as { error: { code: string; reason: string } }).error.code, "InvalidArgument");
    const badPort = await portcullis(["rules", "add", "INPUT", "-p", "tcp", "--dport", "70000", "-j", "ACCEPT"]);
    assert.equal(badPort.code, 2);
    assert.match(badPort.stderr, /70000 is not a port number/);

    assert.equal((await portcullis(["status", "nojail"])).code, 3);
    assert.equal((await portcullis(["sets", "create", "cli_twice"])).code, 0);
    assert.equal((await portcullis(["sets", "create", "cli_twice"])).code, 4);

    const viewerEnv = { ...env, PORTCULLIS_BUNDLE: join(setup.f.server.dataDir, "pki/clients/noc") };
    const denied = await portcullis(["sets", "add", "cli_twice", "192.0.2.9"], { env: viewerEnv });
    assert.equal(denied.code, 5);
    assert.match(denied.stderr, /needs the operator role; certificate "noc" has role viewer/);
    assert.equal((await portcullis(["sets", "list"], { env: viewerEnv })).code, 0, "viewers read");
    const issued = await portcullis(["certs", "issue", "--name", "ops", "--role", "operator", "--data-dir", setup.f.server.dataDir, "--json"]);
    assert.equal(issued.code, 0, issued.stderr);
    const bundle = JSON.parse(issued.stdout) as { name: string; role: string; bundle: string };
    assert.deepEqual([bundle.name, bundle.role, bundle.bundle], ["ops", "operator", join(setup.f.server.dataDir, "pki/clients/ops")]);
    const operatorEnv = { ...env, PORTCULLIS_BUNDLE: bundle.bundle };
    assert.equal((await portcullis(["sets", "add", "cli_twice", "192.0.2.9"], { env: operatorEnv })).code, 0, "operators change entries");
    assert.equal((await portcullis(["sets", "create", "cli_ops"], { env: operatorEnv })).code, 5, "but not sets");

    const down = await portcullis(["status", "--address", "127.0.0.1:1"]);
    assert.equal(down.code, 6);
    assert.equal((await portcullis(["status", "--bundle", join(scratch, "nowhere")])).code, 2);
    assert.equal((await portcullis(["sets", "delete", "cli_twice"])).code, 0);

    const help = await portcullis(["rules", "add", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Examples:\n  portcullis rules add INPUT -p tcp --dport 25,587,465 -j ACCEPT/);
    const commands = [["status"], ["ban"], ["unban"], ["watch"], ...["list", "show", "create", "delete", "add", "del", "test", "import", "export"].map((c) => ["sets", c]), ...["list", "add", "delete", "apply", "confirm", "export"].map((c) => ["rules", c])];
    for (const command of commands) {
      const shown = await portcullis([...command, "--help"]);
      assert.equal(shown.code, 0);
      assert.match(shown.stdout, new RegExp(`\\nExamples?:\\n  portcullis ${command.join(" ")}[ \\n]`), `portcullis ${command.join(" ")} --help shows an example of itself`);
    }
  });

  it("watch: --since replays the log (JSON lines with --json); without it, follows what happens from now", async () => {
    const first = await portcullis(["watch", "--since", "0", "--count", "3", "--json"]);
    assert.equal(first.code, 0);
    const events = first.stdout.trim().split("\n").map((line) => JSON.parse(line) as { sequence: number; type: string });
    assert.deepEqual(events.map((event) => event.sequence), [1, 2, 3]);

    const follow = portcullis(["watch", "--type", "ENTRY_ADDED", "--count", "1"]);
    // It follows from the moment its stream is open: the server counts it as its one event subscriber.
    await waitFor("watch's event stream", async () => /^portcullis_event_subscribers 1$/m.test((await rest(setup.f.server, "GET", "/metrics")).text), { every: 100 });
    assert.equal((await portcullis(["sets", "create", "cli_watch"])).code, 0);
    assert.equal((await portcullis(["sets", "add", "cli_watch", "192.0.2.77"])).code, 0);
    const followed = await follow;
    assert.equal(followed.code, 0);
    assert.match(followed.stdout, /^#\d+ \S+ ENTRY_ADDED ipsets\/cli_watch\/entries\/192\.0\.2\.77 by admin \(api\) element=192\.0\.2\.77\n$/);
    assert.equal((await portcullis(["sets", "delete", "cli_watch"])).code, 0);
  });

  it("serve --netns with a namespace that does not exist stops at once and says which", async () => {
    const missing = `pc-missing-${process.pid}`;
    const data = join(scratch, "missing-netns");
    const result = await portcullis(["serve", "--netns", missing, "--data-dir", data, "--grpc-address", "127.0.0.1:0", "--rest-address", "127.0.0.1:0"]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, new RegExp(`network namespace "${missing}" is not usable \\(ip netns add ${missing} creates it\\)`));
  });
});
