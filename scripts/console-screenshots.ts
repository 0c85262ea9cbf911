// Screenshots of every console view for the README: docs/console-<view>.png. Starts a small fleet (three hosts sharing
// bans through NATS, each with fail2ban in its own namespaces), makes fail2ban ban a few addresses, fills a set and
// some rules, then opens each view in Debian's Chromium with the admin certificate of the first host.
//   node --import tsx scripts/console-screenshots.ts
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Page } from "playwright-core";
import { NatsCluster } from "../test/harness/nats.js";
import { startFleet, type Fleet } from "../test/harness/fleet-hosts.js";
import { ConsoleBrowser } from "../test/harness/console-browser.js";
import { rest } from "../test/harness/rest.js";

const docs = resolve(import.meta.dirname, "../docs");
const progress = (message: string): void => void process.stderr.write(`[screenshots] ${message}\n`);

async function shoot(page: Page, browser: ConsoleBrowser, path: string, heading: string | RegExp, file: string, prepare?: (page: Page) => Promise<void>): Promise<void> {
  await page.goto(browser.url(path));
  await page.getByRole("heading", { level: 1, name: heading }).waitFor();
  await page.waitForLoadState("networkidle");
  await prepare?.(page);
  await sleep(300);
  await page.screenshot({ path: join(docs, `console-${file}.png`) });
  progress(`docs/console-${file}.png`);
}

let nats: NatsCluster | undefined;
let fleet: Fleet | undefined;
let browser: ConsoleBrowser | undefined;
try {
  progress("starting NATS and three hosts");
  nats = await NatsCluster.start(1);
  fleet = await startFleet(nats, ["mail-1", "web-1", "web-2"]);
  const host = fleet.hosts[0]!;
  const server = host.setup.f.server;
  const call = async (method: string, path: string, body?: unknown): Promise<void> => {
    const reply = await rest(server, method, path, body);
    if (reply.status !== 200) throw new Error(`${method} ${path}: ${reply.status} ${reply.text}`);
  };

  progress("seeding: fail2ban bans, the allowlist, sets, rules");
  for (const [i, address] of ["203.0.113.7", "203.0.113.19", "198.51.100.23", "203.0.113.44", "198.51.100.61", "2001:db8:5::9"].entries()) {
    for (let k = 0; k < 5; k++) await host.setup.fail2ban.ask(["set", "dovecot", "attempt", address]);
    if (i % 2 === 0) await sleep(400);
  }
  await call("POST", "/v1/jails/dovecot:ban", { address: "198.51.100.99", fleet: true });
  await call("POST", "/v1/jails/dovecot:ban", { address: "198.51.100.77", duration: 300, reason: "credential stuffing" });
  await call("POST", "/v1/allowlist", { network: "192.0.2.0/28", comment: "office" });
  await call("POST", "/v1/allowlist", { network: "198.51.100.7", comment: "monitoring", timeout: 604800 });
  await call("POST", "/v1/ipsets", { ipsetId: "blocklist", ipset: { type: "IPSET_TYPE_HASH_NET", comments: true } });
  const networks = Array.from({ length: 1200 }, (_, i) => `10.${Math.floor(i / 256)}.${i % 256}.0/24`);
  await call("POST", "/v1/ipsets/blocklist/entries:batchAdd", { elements: networks, comment: "drop list 2026-12-01" });
  await call("POST", "/v1/ipsets", { ipsetId: "scanners", ipset: { type: "IPSET_TYPE_HASH_IP", comments: true, defaultTimeout: 86400 } });
  for (const [element, comment] of [["203.0.113.200", "port scan"], ["198.51.100.150", "ssh sweep"]]) await call("POST", "/v1/ipsets/scanners/entries", { entry: { element, comment } });
  const rules = "/v1/firewall/ipv4/tables/filter/chains/INPUT/rules";
  await call("POST", rules, { rule: { protocol: "tcp", source: { address: "192.0.2.0/24" }, destinationPort: { ports: [{ first: 22 }] }, comment: "ssh from the office", target: { kind: "TARGET_KIND_ACCEPT" } } });
  await call("POST", rules, { rule: { matchSet: { set: "blocklist", directions: ["SET_DIRECTION_SRC"] }, comment: "drop list", target: { kind: "TARGET_KIND_DROP" } } });
  await call("POST", rules, { rule: { matchSet: { set: "scanners", directions: ["SET_DIRECTION_SRC"] }, comment: "scanners", target: { kind: "TARGET_KIND_DROP" } } });
  await call("POST", rules, { rule: { protocol: "tcp", destinationPort: { ports: [{ first: 143 }, { first: 993 }] }, comment: "imap", target: { kind: "TARGET_KIND_ACCEPT" } } });
  await server.cli(["certs", "issue", "--name", "noc", "--role", "viewer"]);
  await rest(server, "POST", "/v1/jails/dovecot:ban", { address: "203.0.113.5" }, { as: "noc" });
  await sleep(1500);

  browser = await ConsoleBrowser.launch(server);
  const page = await browser.newPage();
  await shoot(page, browser, "", "Overview", "overview", async () => {
    await page.locator("#top-addresses tbody th a").first().waitFor();
  });
  await shoot(page, browser, "address/203.0.113.7", "Address 203.0.113.7", "address", async () => {
    await page.locator("#address-fleet").waitFor();
  });
  await shoot(page, browser, "jails", "Jails", "jails");
  await shoot(page, browser, "jails/dovecot", "Jail dovecot", "jail");
  await shoot(page, browser, "sets", "Sets", "sets");
  await shoot(page, browser, "sets/blocklist", "Set blocklist", "set");
  await shoot(page, browser, "rules", "Rules", "rules", async () => {
    await page.getByRole("button", { name: /^Delete rule \d+ \(ACCEPT tcp port 143,993/ }).click();
    const form = page.getByRole("form", { name: "New rule in INPUT" });
    await form.getByLabel("Destination ports").fill("143,993");
    await form.getByLabel("Protocol").selectOption("tcp");
    await form.getByLabel("Target").selectOption("TARGET_KIND_ACCEPT");
    await form.getByLabel("Source", { exact: true }).fill("198.51.100.0/24");
    await form.getByLabel("Comment").fill("imap from partners only");
    await form.getByRole("button", { name: "Add to the draft" }).click();
  });
  await page.getByRole("button", { name: "Review and apply…" }).click();
  await page.getByRole("dialog").getByRole("heading", { name: "Rules changed" }).waitFor();
  await page.getByRole("dialog").getByLabel("Confirm within (seconds)").fill("120");
  await page.screenshot({ path: join(docs, "console-rules-review.png") });
  progress("docs/console-rules-review.png");
  await page.getByRole("dialog").getByRole("button", { name: "Apply in safe mode" }).click();
  await page.getByRole("timer").waitFor();
  await sleep(2200);
  await page.screenshot({ path: join(docs, "console-safe-mode.png") });
  progress("docs/console-safe-mode.png");
  await page.getByRole("button", { name: "Confirm" }).click();
  await shoot(page, browser, "events", "Events", "events");
  await shoot(page, browser, "audit", "Audit", "audit");
  await shoot(page, browser, "fleet", "Fleet", "fleet");
} finally {
  await browser?.close();
  await fleet?.close();
  await nats?.stop();
}
