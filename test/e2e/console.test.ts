import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Page } from "playwright-core";
import { VictimAttacker } from "../harness/netns.js";
import { becomesUnreachable, canConnect } from "../harness/tcp.js";
import { dovecotFailures } from "../harness/fail2ban.js";
import { startJailHosts, type JailHosts } from "../harness/jail-hosts.js";
import { ConsoleBrowser } from "../harness/console-browser.js";
import { rest } from "../harness/rest.js";
import { freePort } from "../harness/tcp.js";
import { PATIENCE_MS } from "../harness/wait.js";

const { victimV4, attackerV4 } = VictimAttacker;
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
/** Payloads that would run script if any view built HTML from data. */
const IMG = "<img src=x onerror=alert(1)>";
const SCRIPT = `"><script>alert(2)</script>`;

/** RFC 4180 CSV: quoted fields may hold commas, doubled quotes and line breaks. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (char === '"') quoted = false;
      else field += char;
    } else if (char === '"') quoted = true;
    else if (char === ",") record.push(field), (field = "");
    else if (char === "\n") record.push(field), records.push(record), (record = []), (field = "");
    else if (char !== "\r") field += char;
  }
  if (field !== "" || record.length > 0) record.push(field), records.push(record);
  return records;
}

/** Waits for a view's heading and for its first data to arrive. */
async function open(page: Page, url: string, heading: string | RegExp): Promise<void> {
  await page.goto(url);
  await page.getByRole("heading", { level: 1, name: heading }).waitFor();
  await page.waitForLoadState("networkidle");
}

/** Violations axe-core rates serious or critical on the page as it is now. */
async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(context: Document): Promise<{ violations: Array<{ id: string; impact: string | null; nodes: Array<{ target: unknown[] }> }> }> } }).axe;
    const result = await axe.run(document);
    return result.violations.map((violation) => ({ id: violation.id, impact: violation.impact, targets: violation.nodes.map((node) => JSON.stringify(node.target)) }));
  });
  return violations.filter((violation) => violation.impact === "serious" || violation.impact === "critical").map((violation) => `${violation.id} (${violation.impact}): ${violation.targets.join(", ")}`);
}

describe("console: the web console in Debian's Chromium, with client certificates, against a real server and fail2ban", () => {
  let setup: JailHosts;
  let browser: ConsoleBrowser;
  let page: Page;

  before(async () => {
    // A fixed REST port, so that the page reconnects to the same address after the server restarts.
    setup = await startJailHosts(["maxretry = 5", "findtime = 600", "bantime = 3600"], undefined, ["--rest-address", `127.0.0.1:${await freePort()}`]);
    browser = await ConsoleBrowser.launch(setup.f.server, { viewer: "noc" });
    page = await browser.newPage();
  });
  after(async () => {
    try {
      await browser?.close();
    } finally {
      await setup?.close();
    }
  });

  it("fail2ban bans an attacker after five log lines: the row appears live on the open overview and jail pages and the attacker's connects fail; Unban on the page lets them through again", async () => {
    const { hosts, fail2ban } = setup;
    const overview = await browser.newPage();
    await open(overview, browser.url(""), "Overview");
    await overview.getByRole("status", { name: "Event stream: Live" }).waitFor();
    const activeBans = overview.locator("#overview-cards .card").filter({ hasText: "Active bans" }).locator(".card-value");
    assert.equal(await activeBans.innerText(), "0");
    await open(page, browser.url("jails/dovecot"), "Jail dovecot");
    await page.getByRole("status", { name: "Event stream: Live" }).waitFor();
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true);

    appendFileSync(fail2ban.mailLog, dovecotFailures(attackerV4, victimV4, 5));
    const row = page.locator(`#bans tr[data-address="${attackerV4}"]`);
    await row.waitFor({ timeout: PATIENCE_MS });
    // The overview: the ban at once in the latest bans, then the server's counts (no reload of the page).
    await overview.locator(`#latest-bans tr[data-address="${attackerV4}"]`).getByText("fail2ban").waitFor();
    await overview.waitForFunction(() => document.querySelector("#overview-cards .card .card-value")?.textContent === "1");
    await overview.locator("#top-addresses").getByRole("row", { name: new RegExp(`^${attackerV4.replaceAll(".", "\\.")} 1 `) }).waitFor();
    await overview.locator("#jail-activity").getByRole("row", { name: /^dovecot 1 0 1 / }).waitFor();
    await overview.context().close();
    assert.equal(await becomesUnreachable(hosts.attacker.name, victimV4, 143), true, "banned by fail2ban: the connect must fail");
    // The jail is read again after the event: the ban's times and the time it has left.
    await row.locator("td").nth(3).getByText(/^\d+m \d+s$/).waitFor();
    assert.equal(await row.locator("td").nth(1).innerText(), "1h");

    await row.getByRole("button", { name: `Unban ${attackerV4}` }).click();
    await page.getByRole("status").getByText(`${attackerV4} unbanned in dovecot.`).waitFor();
    await row.waitFor({ state: "detached" });
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "unbanned from the page: the connect must succeed");
    assert.deepEqual(await page.evaluate(() => (window as unknown as { __xss: unknown[] }).__xss), []);
  });

  it("a viewer sees every view without action controls, and a request forced from the page is refused", async () => {
    await rest(setup.f.server, "POST", "/v1/jails/dovecot:ban", { address: attackerV4 });
    await rest(setup.f.server, "POST", "/v1/ipsets", { ipsetId: "blocklist", ipset: { type: "IPSET_TYPE_HASH_NET", comments: true } });
    await rest(setup.f.server, "POST", "/v1/ipsets/blocklist/entries", { entry: { element: "203.0.113.0/24", comment: "spam" } });
    const viewer = await browser.newPage();
    try {
      const actions = /^(Ban.*|Unban.*|Delete.*|Add|Allow.*|Allowlist.*|Remove.*|Save settings|Create|Import|Panic mode…|End panic mode…|Add to the draft|Review and apply…|Move .*|Stop.*|Start.*|Reload.*)$/;
      for (const [path, heading] of [["", "Overview"], ["jails", "Jails"], ["jails/dovecot", "Jail dovecot"], ["sets", "Sets"], ["sets/blocklist", "Set blocklist"], ["rules", "Rules"], [`address/${attackerV4}`, `Address ${attackerV4}`]] as const) {
        await open(viewer, browser.url(path, "viewer"), heading);
        await viewer.getByText("noc").first().waitFor();
        const buttons = await viewer.locator("main button").evaluateAll((elements) => elements.map((element) => element.getAttribute("aria-label") ?? element.textContent ?? ""));
        assert.deepEqual(buttons.filter((name) => actions.test(name)), [], `${path}: a viewer gets no action controls`);
        assert.equal(await viewer.locator("main select:not(form[aria-label='Event filters'] select), main input[type=number], main input[type=file]").count(), 0, `${path}: no editable settings`);
      }
      // The data is there all the same.
      await open(viewer, browser.url("jails/dovecot", "viewer"), "Jail dovecot");
      await viewer.locator(`#bans tr[data-address="${attackerV4}"]`).waitFor();

      const forced = await viewer.evaluate(async (address) => {
        const response = await fetch("/v1/jails/dovecot:unban", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ address }) });
        return { status: response.status, body: (await response.json()) as { reason: string } };
      }, attackerV4);
      assert.equal(forced.status, 403);
      assert.equal(forced.body.reason, "ROLE_REQUIRED");
      const jail = await rest(setup.f.server, "GET", "/v1/jails/dovecot");
      assert.deepEqual(jail.json.banned, [attackerV4], "the refused unban changed nothing");
      // The admin finds the refusal in the audit log, filtered by the server.
      await open(page, browser.url("audit"), "Audit");
      const filters = page.getByRole("form", { name: "Audit filters" });
      await filters.getByRole("textbox", { name: "By" }).fill("noc");
      await filters.getByRole("button", { name: "Apply filters" }).click();
      await page.waitForFunction(() => [...document.querySelectorAll("#audit tbody tr")].every((row) => row.children[1]?.textContent === "noc"));
      assert.deepEqual(await page.locator("#audit tbody tr").first().locator("td").allInnerTexts().then((cells) => cells.slice(1)), ["noc", "viewer", "JailService/UnbanIp", "jails/dovecot", "PERMISSION_DENIED: ROLE_REQUIRED"]);
    } finally {
      await viewer.context().close();
      await rest(setup.f.server, "POST", "/v1/jails/dovecot:unban", { address: attackerV4 });
    }
  });

  it("an admin changes a jail's settings, bantime.increment included, from the jail page; a refused value shows the server's detail", async () => {
    const { fail2ban } = setup;
    await open(page, browser.url("jails/dovecot"), "Jail dovecot");
    const settings = page.getByRole("region", { name: "Settings" });
    await settings.getByLabel("Find time (seconds)").fill("900");
    await settings.getByRole("checkbox", { name: "Ban times grow" }).check();
    await settings.getByLabel("Longest ban (seconds)").fill("86400");
    await settings.getByLabel("Multipliers").fill("1 4 16");
    await settings.getByRole("button", { name: "Save settings" }).click();
    await page.getByRole("status").getByText("Settings of dovecot saved.").waitFor();
    assert.deepEqual(
      await Promise.all(["findtime", "bantime.increment", "bantime.maxtime", "bantime.multipliers"].map((key) => fail2ban.ask(["get", "dovecot", key]))),
      [900, true, 86400, "1 4 16"],
    );
    await settings.getByLabel("Max retry").fill("5000");
    await settings.getByRole("button", { name: "Save settings" }).click();
    await page.getByRole("alert").filter({ hasText: /max.?retry/i }).waitFor();
    assert.equal(await fail2ban.ask(["get", "dovecot", "maxretry"]), 5, "the refused value changed nothing");
    await settings.getByLabel("Max retry").fill("5");
  });

  it("an operator bans from the jail page with a duration and a reason: the row shows the ban's own end, the BAN event carries both", async () => {
    const { hosts } = setup;
    await open(page, browser.url("jails/dovecot"), "Jail dovecot");
    const form = page.getByRole("form", { name: "Ban an address" });
    await form.getByLabel("Address to ban").fill(attackerV4);
    await form.getByLabel("Duration").selectOption({ label: "10 minutes" });
    await form.getByLabel("Reason").fill(`password spraying ${IMG}`);
    await form.getByRole("button", { name: "Ban" }).click();
    await page.getByRole("status").getByText(`${attackerV4} banned in dovecot for 10m.`).waitFor();
    const row = page.locator(`#bans tr[data-address="${attackerV4}"]`);
    await row.locator("td").nth(1).getByText("10m", { exact: true }).waitFor();
    await row.locator("td").nth(3).getByText(/^9m \d+s$|^10m$/).waitFor();
    assert.equal(await becomesUnreachable(hosts.attacker.name, victimV4, 143), true, "banned from the page: the connect must fail");
    const events = await rest(setup.f.server, "GET", `/v1/events:list?types=EVENT_TYPE_BAN&address=${attackerV4}&pageSize=1000`);
    const ban = (events.json.events as Array<{ attributes: Record<string, string> }>).at(-1);
    assert.deepEqual([ban?.attributes.reason, ban?.attributes.duration], [`password spraying ${IMG}`, "600"]);
    // Longer than the jail's hour is not offered (the server would refuse it).
    assert.deepEqual(await form.getByLabel("Duration").locator("option").allInnerTexts(), ["The jail's bantime (1h)", "10 minutes"]);
    await row.getByRole("button", { name: `Unban ${attackerV4}` }).click();
    await row.waitFor({ state: "detached" });
    assert.deepEqual(await page.evaluate(() => (window as unknown as { __xss: unknown[] }).__xss), []);
  });

  it("an admin stops a jail from the jail page (confirmed), the page shows it stopped, and starts it again", async () => {
    const { fail2ban } = setup;
    await open(page, browser.url("jails/dovecot"), "Jail dovecot");
    await page.getByRole("button", { name: "Stop jail…" }).click();
    const dialog = page.getByRole("dialog", { name: "Stop jail dovecot?" });
    await dialog.getByRole("button", { name: "Stop jail" }).click();
    await page.locator("#jail-state").getByText("Jail dovecot is not running").waitFor();
    assert.match(JSON.stringify(await fail2ban.ask(["status"])), /"Number of jail",0/);
    assert.equal(await page.locator("#bans").count(), 0);
    await page.getByRole("button", { name: "Start jail dovecot" }).click();
    await page.locator("#bans").waitFor();
    assert.equal(await page.locator("#jail-state").count(), 0);
    assert.match(JSON.stringify(await fail2ban.ask(["status"])), /"Jail list","dovecot"/);
    await page.getByRole("button", { name: "Reload jail dovecot" }).click();
    await page.getByRole("status").getByText("Jail dovecot reloaded from fail2ban's configuration.").waitFor();
  });

  it("safe-mode apply from the rules page: a countdown and Confirm keep the rule; unconfirmed, the rollback is shown and the table is back", async () => {
    const { hosts } = setup;
    await open(page, browser.url("rules?family=ipv4&table=filter&chain=INPUT"), "Rules");
    const rules = page.locator("#rules tbody");

    // Draft a rule that drops the attacker's IMAP connects, review the server's dry run, apply in safe mode, confirm.
    const form = page.getByRole("form", { name: "New rule in INPUT" });
    await form.getByLabel("Source", { exact: true }).fill(attackerV4);
    await form.getByLabel("Destination ports").fill("143");
    await form.getByLabel("Comment").fill("console safe mode");
    await form.getByRole("button", { name: "Add to the draft" }).click();
    await page.getByText("1 pending change (not applied yet)").waitFor();
    await page.getByRole("button", { name: "Review and apply…" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByText(`-A INPUT -s ${attackerV4}/32 -p tcp -m tcp --dport 143 -m comment --comment "console safe mode" -j DROP`).waitFor();
    await dialog.getByLabel("Confirm within (seconds)").fill("60");
    await dialog.getByRole("button", { name: "Apply in safe mode" }).click();
    const countdown = page.getByRole("timer");
    await countdown.waitFor();
    // The server paused: its rollback timer cannot fire while the page counts down and the packets are checked.
    await setup.f.server.whilePaused(async () => {
      const seconds = async (): Promise<number> => Number((await countdown.textContent())?.replace(" s", ""));
      const first = await seconds();
      assert.ok(first > 0 && first <= 61, `the countdown starts from the 60 s given, shows ${first}`);
      // The page ticks each second; a loaded machine may run its timer late, so this waits for the tick (bounded).
      const counted = await page.waitForFunction(
        (from) => Number(document.querySelector("[role=timer]")?.textContent?.replace(" s", "")) < from, first, { timeout: 5_000 },
      ).then(() => true, () => false);
      assert.ok(counted, `the countdown counts down from ${first}`);
      assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false, "applied: the rule drops the connect");
    });
    await page.getByRole("button", { name: "Confirm" }).click();
    await page.getByText(/^Confirmed at .*: 1 change to ipv4 filter stays\.$/).waitFor();
    await rules.getByText("console safe mode").waitFor();

    // Delete it in safe mode and let the deadline pass: the server rolls back, the page says so and shows the rule again.
    await page.getByRole("button", { name: /^Delete rule \d+ \(DROP tcp from 192\.0\.2\.100/ }).click();
    await rules.getByText("console safe mode").waitFor({ state: "detached" });
    await page.getByRole("button", { name: "Review and apply…" }).click();
    await dialog.getByText(/^-A INPUT -s 192\.0\.2\.100\/32 .* -j DROP$/).waitFor();
    await dialog.getByLabel("Confirm within (seconds)").fill("5");
    await dialog.getByRole("button", { name: "Apply in safe mode" }).click();
    await countdown.waitFor();
    await setup.f.server.whilePaused(async () => {
      assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true, "the rule is gone until the rollback");
    });
    const rolledBack = page.getByRole("alert").filter({ hasText: "Rolled back" });
    await rolledBack.waitFor({ timeout: PATIENCE_MS });
    assert.match(await rolledBack.innerText(), /1 change to ipv4 filter was not confirmed in time: at .* the server put the previous table back\./);
    await rules.getByText("console safe mode").waitFor();
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), false, "rolled back: the rule drops the connect again");

    // Clean up for good (no safe mode).
    await page.getByRole("button", { name: /^Delete rule \d+ \(DROP tcp from 192\.0\.2\.100/ }).click();
    await page.getByRole("button", { name: "Review and apply…" }).click();
    await dialog.getByRole("checkbox", { name: "Roll back unless confirmed" }).uncheck();
    await dialog.getByRole("button", { name: "Apply", exact: true }).click();
    await rules.getByText("console safe mode").waitFor({ state: "detached" });
    assert.equal(await canConnect(hosts.attacker.name, victimV4, 143), true);
  });

  it("script in data (set comments, allowlist comments) and in a jail name is shown as text and never runs", async () => {
    await rest(setup.f.server, "POST", "/v1/ipsets", { ipsetId: "xss", ipset: { type: "IPSET_TYPE_HASH_IP", comments: true } });
    for (const [element, comment] of [["198.51.100.1", IMG], ["198.51.100.2", "'><script>alert(3)</script>"]]) {
      assert.equal((await rest(setup.f.server, "POST", "/v1/ipsets/xss/entries", { entry: { element, comment } })).status, 200);
    }
    assert.equal((await rest(setup.f.server, "POST", "/v1/allowlist", { network: "198.51.100.7", comment: SCRIPT })).status, 200);
    // Each page's traps start empty: checked on every view, before the next one is opened.
    const nothingRan = async (view: string): Promise<void> => {
      const traps = await page.evaluate(() => ({ calls: (window as unknown as { __xss: unknown[] }).__xss, blocked: (window as unknown as { __csp: string[] }).__csp }));
      assert.deepEqual(traps, { calls: [], blocked: [] }, `${view}: no alert() ran, and nothing even tried (the CSP blocked nothing)`);
      assert.equal(await page.locator("main img, main script").count(), 0, `${view}: no element was made from data`);
    };

    await open(page, browser.url("sets/xss"), "Set xss");
    await page.locator("#entries").getByText(IMG, { exact: true }).waitFor();
    await page.locator("#entries").getByText("'><script>alert(3)</script>", { exact: true }).waitFor();
    await nothingRan("set");
    await open(page, browser.url("jails"), "Jails");
    await page.getByRole("cell", { name: SCRIPT, exact: true }).waitFor();
    await nothingRan("jails");
    await open(page, browser.url("events"), "Events");
    await page.locator("#events").getByText(`comment=${SCRIPT}`, { exact: false }).waitFor();
    await nothingRan("events");
    await open(page, browser.url("address/198.51.100.1"), "Address 198.51.100.1");
    await page.locator("#address-entries").getByText(IMG, { exact: true }).waitFor();
    await nothingRan("address");
    // A jail name in the address bar: shown as the heading, and in the server's refusal, as text.
    for (const name of [IMG, SCRIPT]) {
      await open(page, browser.url(`jails/${encodeURIComponent(name)}`), `Jail ${name}`);
      await page.getByRole("alert").filter({ hasText: `The jail could not be read: ` }).filter({ hasText: name }).waitFor();
      await nothingRan(`jail ${name}`);
    }
    await rest(setup.f.server, "POST", "/v1/allowlist:remove", { network: "198.51.100.7" });
  });

  it("a set's entries: a list file imported with progress, pages and a filter answered by the server, an entry deleted", async () => {
    assert.equal((await rest(setup.f.server, "POST", "/v1/ipsets", { ipsetId: "imports", ipset: { type: "IPSET_TYPE_HASH_NET", comments: true } })).status, 200);
    const lines = ["# a drop list", ...Array.from({ length: 12_000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24 ; SBL${i}`)];
    await open(page, browser.url("sets/imports"), "Set imports");
    await page.evaluate(() => {
      const seen: number[] = [];
      Object.defineProperty(window, "__progress", { value: seen });
      new MutationObserver(() => {
        const bar = document.querySelector("progress");
        if (bar !== null && seen[seen.length - 1] !== bar.value) seen.push(bar.value);
      }).observe(document.body, { subtree: true, childList: true, attributes: true });
    });
    const form = page.getByRole("region", { name: "Import a list" });
    await form.getByLabel("File").setInputFiles({ name: "drop.txt", mimeType: "text/plain", buffer: Buffer.from(lines.join("\n")) });
    await form.getByLabel("Comment").fill("drop list");
    await form.getByRole("button", { name: "Import" }).click();
    await page.getByRole("status").getByText("Imported 12,000 lines into imports (12,000 new entries).").waitFor();
    const progress = await page.evaluate(() => (window as unknown as { __progress: number[] }).__progress);
    assert.deepEqual(progress.filter((value) => value > 0), [5000, 10_000, 12_000], "the bar moved chunk by chunk");

    const pager = page.getByRole("navigation", { name: "Entry pages" });
    await pager.getByText("Page 1 of 120 (12,000 entries)").waitFor();
    await pager.getByRole("button", { name: "Next page" }).click();
    await pager.getByText("Page 2 of 120 (12,000 entries)").waitFor();
    await page.getByRole("search", { name: "Filter entries" }).getByRole("searchbox").fill("10.5.0.0/16");
    await page.getByRole("search", { name: "Filter entries" }).getByRole("button", { name: "Filter" }).click();
    await pager.getByText(/^Page 1 of the entries matching/).waitFor();
    const elements = async (): Promise<string[]> => page.locator("#entries tbody th").allInnerTexts();
    await page.waitForFunction(() => document.querySelector("#entries tbody th")?.textContent === "10.5.0.0/24");
    const shown = await elements();
    assert.equal(shown.length, 100);
    assert.ok(shown.every((element) => element.startsWith("10.5.")), shown.join(" "));
    assert.equal(await page.locator("#entries tbody tr").first().locator("td").nth(1).innerText(), "drop list");

    await page.getByRole("button", { name: "Delete 10.5.0.0/24" }).click();
    await page.getByRole("status").getByText("10.5.0.0/24 deleted from imports.").waitFor();
    await page.waitForFunction(() => document.querySelector("#entries tbody th")?.textContent === "10.5.1.0/24");
    assert.equal((await rest(setup.f.server, "GET", "/v1/ipsets/imports")).json.entryCount, 11_999);
  });

  it("a filtered export of the event log downloads as CSV and as JSON lines", async () => {
    await open(page, browser.url("events"), "Events");
    const filters = page.getByRole("form", { name: "Event filters" });
    await filters.getByLabel("Type").selectOption("EVENT_TYPE_BAN");
    await filters.getByRole("textbox", { name: "Jail" }).fill("dovecot");
    await filters.getByRole("button", { name: "Apply filters" }).click();
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll("#events tbody tr[data-sequence]")];
      return rows.length > 0 && rows.every((row) => row.children[2]?.textContent === "Ban");
    });
    const shown = await page.locator("#events tbody tr[data-sequence]").count();

    const [csvDownload] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Export CSV" }).click()]);
    assert.equal(csvDownload.suggestedFilename(), "events.csv");
    const [header, ...records] = parseCsv(readFileSync((await csvDownload.path())!, "utf8"));
    assert.deepEqual(header, ["sequence", "time", "type", "resource", "principal", "origin", "jail", "address", "attributes"]);
    assert.equal(records.length, shown, "the file holds the events the filtered view shows");
    assert.ok(records.every((record) => record[2] === "BAN" && record[6] === "dovecot"), JSON.stringify(records));
    assert.deepEqual(records.filter((record) => record[7] === attackerV4).map((record) => record[4]), ["fail2ban", "admin", "alice"]);

    const [jsonDownload] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Export JSON lines" }).click()]);
    const events = readFileSync((await jsonDownload.path())!, "utf8").trim().split("\n").map((line) => JSON.parse(line) as { type: string; sequence: number });
    assert.deepEqual(events.map((event) => String(event.sequence)), records.map((record) => record[0]));
    assert.ok(events.every((event) => event.type === "EVENT_TYPE_BAN"));
  });

  it("axe-core finds no serious or critical accessibility violations on any view, nor in a dialog; the Content-Security-Policy blocks nothing the console does", async () => {
    const views: Array<[string, string | RegExp]> = [
      ["", "Overview"], ["jails", "Jails"], ["jails/dovecot", "Jail dovecot"], ["sets", "Sets"], ["sets/blocklist", "Set blocklist"], [`address/${attackerV4}`, `Address ${attackerV4}`],
      ["rules", "Rules"], ["events", "Events"], ["audit", "Audit"], ["fleet", "Fleet"], ["nowhere/at/all", "Not found"],
    ];
    const found: string[] = [];
    for (const [path, heading] of views) {
      await open(page, browser.url(path), heading);
      found.push(...(await seriousViolations(page)).map((violation) => `/console/${path}: ${violation}`));
      found.push(...(await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp)).map((blocked) => `/console/${path}: CSP blocked ${blocked}`));
    }
    await open(page, browser.url("rules"), "Rules");
    // Panic mode is off (GetPanicMode): only the control that switches it on is offered.
    await page.getByRole("button", { name: "End panic mode…", exact: true }).waitFor({ state: "detached" });
    await page.getByRole("button", { name: "Panic mode…", exact: true }).click();
    await page.getByRole("dialog").waitFor();
    found.push(...(await seriousViolations(page)).map((violation) => `panic dialog: ${violation}`));
    await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
    assert.deepEqual(found, []);
  });

  it("the live tail resumes after the server restarts: events made before the page reconnects arrive, none twice, no gap", async () => {
    const events = page.locator("#events tbody tr[data-sequence]");
    const sequences = async (): Promise<number[]> => (await events.evaluateAll((rows) => rows.map((row) => Number(row.getAttribute("data-sequence")))));
    const allow = async (network: string): Promise<void> => {
      assert.equal((await rest(setup.f.server, "POST", "/v1/allowlist", { network, comment: "tail" })).status, 200);
      const removed = await rest(setup.f.server, "POST", "/v1/allowlist:remove", { network });
      assert.equal(removed.status, 200, JSON.stringify(removed.json));
    };
    await open(page, browser.url("events"), "Events");
    await page.getByText("Following new events.").waitFor();
    await allow("198.51.100.31");
    // Both its events (allowlisted, removed) shown: the newest of them is where the page must resume from.
    await page.waitForFunction(() => [...document.querySelectorAll("#events tbody tr[data-sequence]")].filter((row) => row.textContent?.includes("198.51.100.31")).length === 2);
    const before = Math.max(...(await sequences()));
    await page.locator(`#events tr[data-sequence="${before}"]`).getByText("198.51.100.31").first().waitFor();

    await setup.f.server.kill();
    await page.getByText("Connection lost; resuming after the last event shown…").waitFor();
    await setup.f.server.restart();
    // At once, before the page is back: these are only seen through the resume after the last event shown.
    await allow("198.51.100.32");
    await allow("198.51.100.33");
    await page.getByText("Following new events.").waitFor({ timeout: PATIENCE_MS });
    await page.locator("#events tbody").getByText("198.51.100.33").first().waitFor();
    await allow("198.51.100.34");
    // Both events of the last allow (add, then remove) arrive as separate messages: wait for the remove too.
    await page.waitForFunction((min) => Number(document.querySelector("#events tbody tr[data-sequence]")?.getAttribute("data-sequence")) >= min, before + 6, { timeout: PATIENCE_MS });
    await page.locator("#events tbody").getByText("198.51.100.34").first().waitFor();

    const shown = await sequences();
    const newest = shown[0]!;
    assert.ok(newest >= before + 6, `the events after the restart are shown (newest ${newest}, before ${before})`);
    // Newest first, each sequence once, none missing, from the first event shown to the newest.
    const expected = Array.from({ length: shown.length }, (_, i) => newest - i);
    assert.deepEqual(shown, expected);
    assert.equal(await page.getByRole("status", { name: "Event stream: Live" }).count(), 1, "the shared stream is live again too");
  });
});
