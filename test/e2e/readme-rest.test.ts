import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { VictimAttacker } from "../harness/netns.js";
import { canConnect } from "../harness/tcp.js";
import { startJailHosts, type JailHosts } from "../harness/jail-hosts.js";

const root = resolve(import.meta.dirname, "../..");
const readme = readFileSync(join(root, "README.md"), "utf8");
const { victimV4 } = VictimAttacker;
const execFileAsync = promisify(execFile);

let setup: JailHosts;
before(async () => {
  // The demo's jail: dovecot, banning through the Portcullis action.
  setup = await startJailHosts(["maxretry = 5", "findtime = 600", "bantime = 600"], (socket) => `portcullis.py[socket="${socket}"]`);
});
after(async () => setup?.close());

it("the README's curl examples work as written: the ban drops the attacker's packets, the unban lets them through", async () => {
  const block = /```sh\n(B=var\/pki\/clients\/admin P=https:\/\/localhost:8443\n[\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(block !== undefined, "README must show the curl examples");
  const [, setCert, ...commands] = block.trimEnd().split("\n");
  // Only where the server and its admin bundle are differs from the demo.
  const port = setup.f.server.restAddress.split(":")[1];
  const prelude = `B=${join(setup.f.server.dataDir, "pki/clients/admin")} P=https://localhost:${port}\n${setCert}\n`;
  const run = (command: string): string => execFileSync("bash", ["-c", prelude + command], { encoding: "utf8", timeout: 20_000 });
  const { hosts } = setup;
  const outputs: string[] = [];
  for (const command of commands) {
    if (command.includes("curl -sN")) {
      // The event stream never ends by itself: read it for a second.
      let streamed = "";
      try {
        execFileSync("bash", ["-c", `${prelude}timeout 1 ${command}`], { encoding: "utf8" });
      } catch (error) {
        streamed = String((error as { stdout?: string }).stdout ?? "");
      }
      outputs.push(streamed);
      continue;
    }
    outputs.push(run(command));
    if (command.includes(":ban")) assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false, "banned: the connect must fail");
    if (command.includes(":unban")) assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "unbanned: the connect must succeed");
  }
  const [jail, ban, entries, unban, allowlist, events, stream] = outputs as [string, string, string, string, string, string, string];
  assert.equal(JSON.parse(jail).name, "jails/dovecot");
  assert.deepEqual(JSON.parse(ban), { jails: ["jails/dovecot"] });
  assert.deepEqual(JSON.parse(entries).entries.map((entry: { element: string }) => entry.element), ["192.0.2.100"]);
  assert.deepEqual(JSON.parse(unban), { jails: ["jails/dovecot"] });
  assert.equal(JSON.parse(allowlist).entry.network, "198.51.100.0/24");
  // The jail's sets and DROP rules (made by Portcullis when it met the jail), then the ban.
  assert.deepEqual(JSON.parse(events).events.map((event: { type: string; resource: string }) => [event.type, event.resource.replace(/rules\/\w+$/, "rules/…")]), [
    ["EVENT_TYPE_IPSET_CREATED", "ipsets/fail2ban-dovecot"],
    ["EVENT_TYPE_RULE_CREATED", "firewall/ipv4/tables/filter/chains/INPUT/rules/…"],
    ["EVENT_TYPE_IPSET_CREATED", "ipsets/fail2ban6-dovecot"],
    ["EVENT_TYPE_RULE_CREATED", "firewall/ipv6/tables/filter/chains/INPUT/rules/…"],
    ["EVENT_TYPE_BAN", "jails/dovecot/bans/192.0.2.100"],
  ]);
  assert.match(stream, /^id: \d+\nevent: EVENT_TYPE_BAN\ndata: \{/m);
});

it("the README's SDK snippet works as written: the ban drops the attacker, the set and its DROP rule exist", async () => {
  const snippet = /### With the TypeScript SDK[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(snippet !== undefined, "README must show the SDK snippet");
  // Next to the repository's node_modules (so that @portcullis/sdk resolves), run from a directory whose
  // var/pki/clients/admin is the test server's bundle; the address comes from PORTCULLIS_ADDRESS.
  const script = join(root, `.readme-snippet-${process.pid}.ts`);
  const cwd = mkdtempSync(join(tmpdir(), "pc-readme-sdk-"));
  try {
    writeFileSync(script, snippet);
    mkdirSync(join(cwd, "var/pki/clients"), { recursive: true });
    symlinkSync(join(setup.f.server.dataDir, "pki/clients/admin"), join(cwd, "var/pki/clients/admin"));
    const { stdout } = await execFileAsync(process.execPath, ["--import", import.meta.resolve("tsx"), script], { cwd, env: { ...process.env, PORTCULLIS_ADDRESS: setup.f.server.address }, encoding: "utf8" });
    assert.equal(stdout, "banned 192.0.2.100 in dovecot\n");
    assert.equal(await canConnect(setup.hosts.attacker.name, victimV4, 143), false, "banned: the connect must fail");
    assert.match(setup.hosts.victim.exec("iptables", ["-S", "INPUT", "1"]), /--match-set spam_ips src -j DROP/);
    assert.match(setup.hosts.victim.exec("ipset", ["list", "spam_ips"]), /203\.0\.113\.0\/24 timeout \d+/);
  } finally {
    rmSync(script, { force: true });
    rmSync(cwd, { recursive: true, force: true });
  }
});

it("the README's CLI examples work as written: each ban drops the attacker's packets, each unban lets them through", async () => {
  const block = /### With the `portcullis` CLI[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(block !== undefined, "README must show the CLI examples");
  const [, setBinary, ...commands] = block.trimEnd().split("\n");
  // Only where the server and its admin bundle are differs from the demo.
  const prelude = `export PORTCULLIS_BUNDLE=${join(setup.f.server.dataDir, "pki/clients/admin")} PORTCULLIS_ADDRESS=${setup.f.server.address}\n${setBinary}\n`;
  const run = (command: string): string => execFileSync("bash", ["-c", prelude + command], { cwd: root, encoding: "utf8", timeout: 30_000 });
  const attackerReaches = (): Promise<boolean> => canConnect(setup.hosts.attacker.name, victimV4, 143);
  run("$P unban 192.0.2.100"); // the SDK snippet above banned it
  assert.equal(await attackerReaches(), true);
  const outputs = new Map<string, string>();
  for (const command of commands) {
    outputs.set(command, run(command));
    if (/ ban /.test(command)) assert.equal(await attackerReaches(), false, `${command}: the connect must fail`);
    if (/ unban | sets del /.test(command)) assert.equal(await attackerReaches(), true, `${command}: the connect must succeed`);
  }
  const out = (prefix: string): string => [...outputs].find(([command]) => command.startsWith(prefix))![1];
  assert.match(out("$P status dovecot"), /^Status for the jail: dovecot\n\|- Filter\n/);
  assert.deepEqual(JSON.parse(out("$P status dovecot --json")).banned, ["192.0.2.100"]);
  assert.equal(out("$P sets test"), "192.0.2.100 is in set bad_nets\n");
  assert.match(out("$P rules list INPUT"), /^CHAIN +POS +ID +PACKETS +BYTES +MANAGED +RULE\nINPUT +1 +\w+ +\d+ +\d+ +yes +-m set --match-set bad_nets src -j DROP\n/);
  assert.equal(out("$P watch").trim().split("\n").length, 3);
  assert.match(out("$P watch"), /^#1 \S+ IPSET_CREATED ipsets\/fail2ban-dovecot by /);
});
