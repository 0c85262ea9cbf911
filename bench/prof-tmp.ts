import { execFileSync } from "node:child_process";
import { Rule, TargetKind } from "@portcullis/sdk/gen/portcullis/v1/firewall.js";
import { Netns } from "../test/harness/netns.js";
import { PortcullisProcess } from "../test/harness/server.js";
import { FirewallTestClient } from "../test/harness/grpc-clients.js";
const INPUT = "firewall/ipv4/tables/filter/chains/INPUT";
const FILTER = "firewall/ipv4/tables/filter";
const accept = (port: number): Rule => Rule.fromPartial({ chain: "INPUT", protocol: "tcp", destinationPort: { ports: [{ first: port, last: port }] }, target: { kind: TargetKind.TARGET_KIND_ACCEPT } });
if (process.env.PC_BENCH_INSIDE === undefined) {
  const outer = new Netns();
  try { execFileSync("ip", ["netns", "exec", outer.name, process.execPath, "--import", "tsx", import.meta.filename], { stdio: "inherit", env: { ...process.env, PC_BENCH_INSIDE: outer.name } }); } finally { outer.destroy(); }
  process.exit(0);
}
execFileSync("ip", ["link", "set", "lo", "up"]);
const server = await PortcullisProcess.start("", { extraArgs: process.env.DEBUG ? ["--log-level", "debug"] : [] });
const c = new FirewallTestClient(server.address, server.credentials());
const t = async (name: string, f: () => Promise<unknown>) => { const s = performance.now(); await f(); console.log(name, (performance.now() - s).toFixed(1), "ms"); };
const rules = Array.from({ length: 10000 }, (_, i) => accept(30_000 + i));
const OPS = process.env.OPS ?? "apply,list,append,delete";
await c.call("applyRuleset", { parent: FILTER, chains: [], rules, confirmWithin: 0, allowLockout: false });
if (OPS.includes("apply")) for (let k = 0; k < 5; k++) await t("apply", () => c.call("applyRuleset", { parent: FILTER, chains: [], rules, confirmWithin: 0, allowLockout: false }));
if (OPS.includes("list")) for (let k = 0; k < 5; k++) await t("list", () => c.call("listRules", { parent: INPUT, pageSize: 10000, pageToken: "" }));
const ids: string[] = [];
if (OPS.includes("append")) for (let k = 0; k < 30; k++) await t("append", async () => ids.push((await c.call("createRule", { parent: INPUT, rule: accept(60000 + k), position: 0, allowLockout: false, requestId: "", confirmWithin: 0 })).id));
if (OPS.includes("delete")) for (const id of ids) await t("delete", () => c.call("deleteRule", { name: `${INPUT}/rules/${id}`, allowLockout: false, confirmWithin: 0 }));
c.close();
console.log(server.output.split("\n").filter((l) => l.includes("istRules") || l.includes("applyRuleset")).map((l) => { const j = JSON.parse(l); return `${j.method ?? j.rpc} ${j.ms ?? j.durationMs ?? j.duration}`; }).join("\n"));
await server.stop();
