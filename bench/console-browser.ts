// Console benchmark in Debian's Chromium: how fast the console loads (first contentful paint, and the first data on
// screen), and how soon a ban fail2ban decides shows in an open jail page's DOM. Prints a table; writes
// bench/results/console-browser.json. Run by `npm run bench`, or alone: node --import tsx bench/console-browser.ts
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type { Page } from "playwright-core";
import { Fail2banServer } from "../test/harness/fail2ban.js";
import { startServerFixture, type ServerFixture } from "../test/harness/fixture.js";
import { ConsoleBrowser } from "../test/harness/console-browser.js";
import { percentile, table } from "./report.js";

const LOADS = 15;
const BANS = 20;
const TARGETS = { loadMs: 1000, banMs: 250 };

const progress = (message: string): void => void process.stderr.write(`[console bench] ${message}\n`);

/**
 * In every page: the wall-clock time (ms since the epoch) at which a banned address's row first appears in a bans
 * table, from a MutationObserver (so the time is the DOM's, not the test driver's), and when the jails list's first
 * row (key "jails") or the overview's counts and latest bans (key "") were rendered (ms after navigation start). A string: tsx would wrap a function's inner functions in a
 * helper the page does not have.
 */
const OBSERVE_ROWS = `(() => {
  const seen = {};
  Object.defineProperty(window, "__rows", { value: seen });
  new MutationObserver(() => {
    for (const row of document.querySelectorAll("#bans tr[data-address]")) {
      const address = row.dataset.address;
      if (address !== undefined && !(address in seen)) seen[address] = performance.timeOrigin + performance.now();
    }
    if (!("jails" in seen) && document.querySelector("main table tbody tr th a") !== null) seen["jails"] = performance.now();
    if (!("" in seen) && document.querySelector("#overview-cards .card") !== null && document.querySelector("#latest-bans tbody tr") !== null) seen[""] = performance.now();
  }).observe(document, { subtree: true, childList: true });
})();`;

/** fail2ban's "Ban" log lines of a jail: address → when fail2ban decided (its log has milliseconds, local time). */
function fail2banDecisions(fail2ban: Fail2banServer, jail: string): Map<string, number> {
  const decided = new Map<string, number>();
  for (const line of readFileSync(join(fail2ban.dir, "fail2ban.log"), "utf8").split("\n")) {
    const match = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d),(\d{3}) .*\[(\S+)\] Ban (\S+)$/.exec(line);
    if (match === null || match[8] !== jail) continue;
    const [year, month, day, hour, minute, second, ms] = match.slice(1, 8).map(Number) as [number, number, number, number, number, number, number];
    decided.set(match[9]!, new Date(year, month - 1, day, hour, minute, second, ms).getTime());
  }
  return decided;
}

/** Bans made by fail2ban itself (maxretry attempts each) while the jail's page is open: DOM time − fail2ban's decision. */
async function banLatencies(browser: ConsoleBrowser, fail2ban: Fail2banServer, jail: string, first: number): Promise<number[]> {
  const page = await browser.newPage();
  try {
    await page.addInitScript(OBSERVE_ROWS);
    await page.goto(browser.url(`jails/${jail}`));
    await page.getByRole("status", { name: "Event stream: Live" }).waitFor();
    const addresses = Array.from({ length: BANS }, (_, i) => `198.51.100.${first + i}`);
    for (const address of addresses) {
      for (let k = 0; k < 3; k++) await fail2ban.ask(["set", jail, "attempt", address]);
      await page.locator(`#bans tr[data-address="${address}"]`).waitFor({ timeout: 10_000 });
      await sleep(50);
    }
    const shown = await page.evaluate(() => (window as unknown as { __rows: Record<string, number> }).__rows);
    const decided = fail2banDecisions(fail2ban, jail);
    return addresses.map((address) => (shown[address] ?? Infinity) - (decided.get(address) ?? NaN));
  } finally {
    await page.context().close();
  }
}

/** Cold loads (a new context each: empty cache) of a view: first contentful paint, and its data on screen. */
async function loadTimes(browser: ConsoleBrowser, view: "" | "jails"): Promise<{ paint: number[]; data: number[] }> {
  const result = { paint: [] as number[], data: [] as number[] };
  for (let i = 0; i < LOADS; i++) {
    const page: Page = await browser.newPage();
    try {
      await page.addInitScript(OBSERVE_ROWS);
      await page.goto(browser.url(view));
      await page.waitForFunction((key) => key in (window as unknown as { __rows: Record<string, number> }).__rows, view);
      const timing = await page.evaluate((key) => ({
        paint: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN,
        data: (window as unknown as { __rows: Record<string, number> }).__rows[key] ?? NaN,
      }), view);
      result.paint.push(timing.paint);
      result.data.push(timing.data);
    } finally {
      await page.context().close();
    }
  }
  return result;
}

const startedAt = new Date();
let actionSocket = "";
const fail2ban = new Fail2banServer({
  expectedJails: "pc, watched",
  jails: ({ dir, mailLog }) => {
    actionSocket = join(dir, "action.sock");
    return [
      "[DEFAULT]", "backend = polling", `logpath = ${mailLog}`, "filter = dovecot", "maxretry = 3", "findtime = 600", "bantime = 3600",
      // The Portcullis action tells the server of each ban as fail2ban makes it.
      "[pc]", "enabled = true", `action = portcullis.py[socket="${actionSocket}"]`,
      // Any other action: the server sees fail2ban's bans when it next compares the jail's ban list.
      "[watched]", "enabled = true", "action = noop", "",
    ].join("\n");
  },
});
let f: ServerFixture | undefined;
let browser: ConsoleBrowser | undefined;
try {
  await fail2ban.start();
  f = await startServerFixture(fail2ban.netns, {
    PORTCULLIS_FAIL2BAN_SOCKET: fail2ban.socket,
    PORTCULLIS_FAIL2BAN_CONFIG_DIR: fail2ban.configDir,
    PORTCULLIS_FAIL2BAN_ACTION_SOCKET: actionSocket,
  });
  browser = await ConsoleBrowser.launch(f.server);
  progress(`${LOADS} cold loads of /console/ (the overview) and of /console/jails`);
  const overviewLoads = await loadTimes(browser, "");
  const loads = await loadTimes(browser, "jails");
  progress(`${BANS} bans by fail2ban with the Portcullis action, jail page open`);
  const viaAction = await banLatencies(browser, fail2ban, "pc", 1);
  progress(`${BANS} bans by fail2ban with another action (seen by the server's watcher), jail page open`);
  const viaWatcher = await banLatencies(browser, fail2ban, "watched", 101);

  const ms = (values: readonly number[]): string => `${percentile(values, 50).toFixed(0)} / ${percentile(values, 99).toFixed(0)} ms`;
  const verdict = (ok: boolean): string => (ok ? "PASS" : "FAIL");
  const rows = [
    ["Console (Chromium)", "p50 / p99", "target", ""],
    ["Cold load of the overview: first contentful paint", ms(overviewLoads.paint), "", ""],
    ["Cold load of the overview: counts and latest bans on screen", ms(overviewLoads.data), `p50 ≤ ${TARGETS.loadMs} ms`, verdict(percentile(overviewLoads.data, 50) <= TARGETS.loadMs)],
    ["Cold load of the jails: first contentful paint", ms(loads.paint), "", ""],
    ["Cold load of the jails: jails on screen (first meaningful paint)", ms(loads.data), `p50 ≤ ${TARGETS.loadMs} ms`, verdict(percentile(loads.data, 50) <= TARGETS.loadMs)],
    ["fail2ban's ban → row in the open jail page (Portcullis action)", ms(viaAction), `p50 ≤ ${TARGETS.banMs} ms`, verdict(percentile(viaAction, 50) <= TARGETS.banMs)],
    ["fail2ban's ban → row in the open jail page (other action, watcher)", ms(viaWatcher), "", ""],
  ];
  process.stdout.write(`Portcullis console benchmark — ${startedAt.toISOString()}, load ${loadavg().map((l) => l.toFixed(2)).join(" ")}\n${table(rows)}\n`);
  const out = resolve(import.meta.dirname, "results");
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "console-browser.json"), `${JSON.stringify({ startedAt, overviewLoads, loads, viaAction, viaWatcher }, null, 2)}\n`);
} finally {
  await browser?.close();
  await f?.close();
  await fail2ban.destroy();
}
