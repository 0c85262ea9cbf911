import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { VictimAttacker } from "../harness/netns.js";
import { canConnect } from "../harness/tcp.js";
import { startJailHosts, type JailHosts } from "../harness/jail-hosts.js";

const root = resolve(import.meta.dirname, "../..");
const readme = readFileSync(join(root, "README.md"), "utf8");
const { victimV4 } = VictimAttacker;

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
