// Firewall benchmark: the API against the raw iptables tools, in the same run, each in its own fresh namespace.
// Run by `npm run bench` after the ipset benchmark; prints a table and writes bench/results/firewall.json.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Rule, RulesetScope, TargetKind } from "../server/src/gen/portcullis/v1/firewall.js";
import { Netns } from "../test/harness/netns.js";
import { PortcullisProcess } from "../test/harness/server.js";
import { FirewallTestClient } from "../test/harness/grpc-clients.js";
import { percentile } from "./report.js";

const HELPER = resolve(import.meta.dirname, "raw-iptables.mjs");
const INPUT = "firewall/ipv4/tables/filter/chains/INPUT";
const FILTER = "firewall/ipv4/tables/filter";
const SINGLES = 1_000;
const BIG = 10_000;
const AT_BIG = 200;
/** Applies timed, whole-table and managed-scope each (every one replacing what the previous one wrote), in turn with as many raw ones. */
const APPLIES = 10;
const LISTS = 10;

/** Rules of other tools beside the managed ones in the managed-scope case. */
const FOREIGN = 2_000;
const F2B_JUMP = "-p tcp -m multiport --dports 22 -j f2b-sshd";

/** FOREIGN rules as Docker (its chains, FORWARD's jumps, one ACCEPT per published port) and fail2ban make them. */
function neighbours(): string {
  const fixed = [
    "-A FORWARD -j DOCKER-USER", "-A FORWARD -j DOCKER-FORWARD", "-A DOCKER-FORWARD -j DOCKER", "-A DOCKER-FORWARD -i docker0 -j ACCEPT",
    "-A DOCKER-USER -j RETURN", "-A f2b-sshd -j RETURN", `-I INPUT 1 ${F2B_JUMP}`,
  ];
  const published = Array.from({ length: FOREIGN - fixed.length }, (_, i) => `-A DOCKER -d 198.51.100.${(i % 250) + 2}/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport ${1_000 + i} -j ACCEPT`);
  return ["*filter", ":DOCKER - [0:0]", ":DOCKER-FORWARD - [0:0]", ":DOCKER-USER - [0:0]", ":f2b-sshd - [0:0]", ...fixed, ...published, "COMMIT", ""].join("\n");
}

const accept = (port: number): Rule => Rule.fromPartial({ chain: "INPUT", protocol: "tcp", destinationPort: { ports: [{ first: port, last: port }] }, target: { kind: TargetKind.TARGET_KIND_ACCEPT } });
/**
 * The big rulesets start as real ones do, by accepting loopback traffic. The bench's client and server talk over lo in
 * the namespace whose INPUT chain holds the rules: without this rule each of the API's own packets walked the 10k rules
 * before it was delivered (≈ 0.6 ms more for a trivial call), a cost the raw tools, which send no packets, never pay.
 */
const LOOPBACK = Rule.fromPartial({ chain: "INPUT", inInterface: { name: "lo", negate: false }, target: { kind: TargetKind.TARGET_KIND_ACCEPT } });
/** BIG rules: loopback first, then ACCEPTs of ports from `firstPort` on. */
const bigRuleset = (firstPort: number): Rule[] => [LOOPBACK, ...Array.from({ length: BIG - 1 }, (_, i) => accept(firstPort + i))];
/** A rule of bigRuleset as iptables-restore reads it (the raw tools' files). */
const restoreLine = (rule: Rule): string => (rule === LOOPBACK ? "-A INPUT -i lo -j ACCEPT" : `-A INPUT -p tcp -m tcp --dport ${rule.destinationPort!.ports[0]!.first} -j ACCEPT`);
/** PC_BENCH_ONLY=apply,list runs only those cases (for iterating on one; `npm run bench` runs all). */
const only = process.env.PC_BENCH_ONLY?.split(",");
const runs = (name: string): boolean => only === undefined || only.includes(name);
const progress = (message: string): void => void process.stderr.write(`[firewall bench] ${message}\n`);

function raw(netns: Netns, args: string[]): number[] {
  return (JSON.parse(execFileSync("ip", ["netns", "exec", netns.name, process.execPath, HELPER, ...args], { encoding: "utf8", maxBuffer: 1 << 26 })) as { ms: number[] }).ms;
}

/**
 * `count` API runs and `count` raw runs taken in turn (API, raw, API, raw, …), so that both sides see the same machine:
 * on a shared VM a run's time drifts by tens of percent within a minute, and two blocks measured one after the other
 * compared the drift more than the tools.
 */
async function inTurn(count: number, api: () => Promise<number>, rawRun: () => number): Promise<[number[], number[]]> {
  const apiMs: number[] = [];
  const rawMs: number[] = [];
  for (let i = 0; i < count; i++) {
    apiMs.push(await api());
    rawMs.push(rawRun());
  }
  return [apiMs, rawMs];
}

/** The handler times (ms) the server logged for its last `count` calls of `method` ("rpc" lines). */
function loggedMs(server: PortcullisProcess, method: string, count: number): number[] {
  return server.rpcLogLines(method).slice(-count).map((line) => (JSON.parse(line) as { ms: number }).ms);
}

async function timed<T>(work: () => Promise<T>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

// The server runs as deployed, in the namespace whose firewall it manages, so its commands pay no `ip netns exec`
// (the raw tools are timed without it too). This process therefore re-runs itself inside a fresh namespace.
if (process.env.PC_BENCH_INSIDE === undefined) {
  const outer = new Netns();
  try {
    execFileSync("ip", ["netns", "exec", outer.name, process.execPath, "--import", "tsx", import.meta.filename], { stdio: "inherit", env: { ...process.env, PC_BENCH_INSIDE: outer.name } });
  } finally {
    outer.destroy();
  }
  process.exit(0);
}
const rawNetns = new Netns();
const scratch = mkdtempSync(join(tmpdir(), "pc-fwbench-"));
let server: PortcullisProcess | undefined;
let client: FirewallTestClient | undefined;
const rows: string[][] = [];
const results: Record<string, unknown> = {};
const add = (name: string, api: number[], rawMs: number[], target: string, pass?: boolean): void => {
  const [a50, a99, r50, r99] = [percentile(api, 50), percentile(api, 99), percentile(rawMs, 50), percentile(rawMs, 99)];
  results[name] = { apiP50Ms: a50, apiP99Ms: a99, rawP50Ms: r50, rawP99Ms: r99, ratioP50: a50 / r50, samples: api.length };
  rows.push([name, `${a50.toFixed(2)} / ${a99.toFixed(2)} ms`, `${r50.toFixed(2)} / ${r99.toFixed(2)} ms`, `${(a50 / r50).toFixed(2)}×`, target, pass === undefined ? "" : pass ? "PASS" : "FAIL"]);
};

try {
  execFileSync("ip", ["link", "set", "lo", "up"]);
  server = await PortcullisProcess.start("", { logToFile: true });
  client = new FirewallTestClient(server.address, server.credentials());
  const c = client;
  const createRule = (port: number) => c.call("createRule", { parent: INPUT, rule: accept(port), position: 0, allowLockout: false, requestId: "", confirmWithin: 0 });

  for (let i = 0; i < 20; i++) await createRule(1 + i); // warm-up
  if (runs("append")) {
    progress(`append ${SINGLES} rules one by one (API, then raw iptables -A)`);
    const appendApi: number[] = [];
    for (let i = 0; i < SINGLES; i++) appendApi.push(await timed(() => createRule(20_000 + i)));
    const appendRaw = raw(rawNetns, ["append", "20000", String(SINGLES)]);
    add(`append, ${SINGLES} sequential (small chain)`, appendApi, appendRaw, "");
  }

  progress(`apply a ${BIG}-rule ruleset (API ApplyRuleset and raw iptables-restore, in turn)`);
  const rules = bigRuleset(30_000);
  const applyTable = () => c.call("applyRuleset", { parent: FILTER, chains: [], rules, confirmWithin: 0, allowLockout: false, scope: RulesetScope.RULESET_SCOPE_TABLE, replaceForeign: false, dryRun: false });
  const restoreText = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ...rules.map(restoreLine), "COMMIT", ""].join("\n");
  writeFileSync(join(scratch, "big.rules"), restoreText);
  await applyTable(); // warm-up
  const [applyApi, applyRaw] = await inTurn(APPLIES, () => timed(applyTable), () => raw(rawNetns, ["restore", join(scratch, "big.rules"), "1"])[0]!);
  add(`apply ${BIG} rules (whole table, ${APPLIES}×)`, applyApi, applyRaw, "≤ 1.5× raw", percentile(applyApi, 50) <= 1.5 * percentile(applyRaw, 50));

  progress(`list the ${BIG}-rule chain (API ListRules, then raw iptables-save)`);
  if (runs("list")) {
    // Timed once the applies' deferred work is done (their replaced generations are deleted 2 s later, in the
    // background) and after warm-up calls, as the raw tool runs on a quiet machine.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const list = () => c.call("listRules", { parent: INPUT, pageSize: BIG, pageToken: "" });
    for (let i = 0; i < 3; i++) await list();
    const listApi: number[] = [];
    for (let i = 0; i < LISTS; i++) listApi.push(await timed(list));
    const listRaw = raw(rawNetns, ["save", String(LISTS)]);
    add(`list ${BIG} rules`, listApi, listRaw, "≤ 2× raw", percentile(listApi, 50) <= 2 * percentile(listRaw, 50));
  }

  if (runs("single")) {
    progress(`append and delete ${AT_BIG} rules with ${BIG} present`);
    const ids: string[] = [];
    const appendBigApi: number[] = [];
    for (let i = 0; i < AT_BIG; i++) appendBigApi.push(await timed(async () => ids.push((await createRule(60_000 + i)).id)));
    const appendBigRaw = raw(rawNetns, ["append", "60000", String(AT_BIG)]);
    add(`append with ${BIG} rules present`, appendBigApi, appendBigRaw, "≤ raw", percentile(appendBigApi, 50) <= percentile(appendBigRaw, 50));
    // Where the API's time goes: the server's own time for the call, and a call that does nothing (the round trip).
    const handler = loggedMs(server, "CreateRule", AT_BIG);
    const trivial: number[] = [];
    for (let i = 0; i < AT_BIG; i++) trivial.push(await timed(() => c.call("getPanicMode", {})));
    rows.push([`  server handler (its log) / round trip of a call that does nothing (GetPanicMode)`, `${percentile(handler, 50).toFixed(2)} / ${percentile(trivial, 50).toFixed(2)} ms`, "", "", "", ""]);
    const deleteApi: number[] = [];
    for (const id of ids) deleteApi.push(await timed(() => c.call("deleteRule", { name: `${INPUT}/rules/${id}`, allowLockout: false, confirmWithin: 0 })));
    const deleteRaw = raw(rawNetns, ["delete", "60000", String(AT_BIG)]);
    add(`delete by id vs -D by spec, ${BIG} present`, deleteApi, deleteRaw, "≤ raw", percentile(deleteApi, 50) <= percentile(deleteRaw, 50));
  }

  if (runs("managed")) {
    progress(`managed-scope apply of ${BIG} rules beside ${FOREIGN} foreign ones (API and raw iptables-restore --noflush, in turn)`);
    // Another tool's rules, in both namespaces: Docker-like chains (FORWARD jumps, one ACCEPT per published port) and
    // fail2ban's jump at the top of INPUT, where the managed rules are.
    const foreignText = neighbours();
    execFileSync("iptables-restore", ["--noflush"], { input: foreignText });
    execFileSync("ip", ["netns", "exec", rawNetns.name, "iptables-restore", "--noflush"], { input: foreignText });
    // Two rulesets applied in turn, so that every apply replaces 10k managed rules with 10k others.
    const rulesets = [30_000, 40_000].map(bigRuleset);
    const managedApply = (turn: number) => c.call("applyRuleset", { parent: FILTER, chains: [], rules: rulesets[turn % 2]!, confirmWithin: 0, allowLockout: false, scope: RulesetScope.RULESET_SCOPE_MANAGED, replaceForeign: false, dryRun: false });
    // The raw tool does the same change: the chain emptied, the same managed lines, fail2ban's jump put back on top.
    const rawFiles = rulesets.map((ruleset, i) => {
      const file = join(scratch, `managed-${i}.rules`);
      writeFileSync(file, ["*filter", "-F INPUT", ...ruleset.map(restoreLine), `-I INPUT 1 ${F2B_JUMP}`, "COMMIT", ""].join("\n"));
      return file;
    });
    const rawTurn = (turn: number): number => raw(rawNetns, ["restore-noflush", rawFiles[turn % 2]!, rawFiles[(turn + 1) % 2]!, "1"])[0]!;
    for (let i = 0; i < 2; i++) await managedApply(i); // warm-up, both sides
    for (let i = 0; i < 2; i++) rawTurn(i);
    let turn = 0;
    const [managedApi, managedRaw] = await inTurn(APPLIES, () => timed(() => managedApply(turn)), () => rawTurn(turn++));
    const kept = execFileSync("iptables-save", ["-t", "filter"], { encoding: "utf8", maxBuffer: 1 << 26 }).split("\n").filter((line) => /^-A (DOCKER|FORWARD -j DOCKER|f2b-|INPUT .*f2b-)/.test(line)).length;
    if (kept !== FOREIGN) throw new Error(`the managed-scope apply left ${kept} of the ${FOREIGN} foreign rules`);
    add(`apply ${BIG} managed rules beside ${FOREIGN} foreign (scope MANAGED, ${APPLIES}×)`, managedApi, managedRaw, "≤ 1.5× raw", percentile(managedApi, 50) <= 1.5 * percentile(managedRaw, 50));
  }

  const header = ["benchmark", "API p50 / p99", "raw p50 / p99", "API/raw", "target", "verdict"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(`\nPortcullis firewall benchmark — ${new Date().toISOString()} (raw tools timed inside their namespace, no ip netns exec cost)\n`);
  console.log([line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n"));
  mkdirSync(resolve(import.meta.dirname, "results"), { recursive: true });
  if (only === undefined) writeFileSync(resolve(import.meta.dirname, "results", "firewall.json"), JSON.stringify(results, null, 2));
} finally {
  client?.close();
  await server?.stop();
  rawNetns.destroy();
  rmSync(scratch, { recursive: true, force: true });
}
