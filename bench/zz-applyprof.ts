import { execFileSync } from "node:child_process";
import { Rule, TargetKind, ListRulesResponse } from "@portcullis/sdk/gen/portcullis/v1/firewall.js";
import { Netns } from "../test/harness/netns.js";
import { PortcullisProcess } from "../test/harness/server.js";
import { FirewallTestClient } from "../test/harness/grpc-clients.js";
const accept = (port: number): Rule => Rule.fromPartial({ chain: "INPUT", protocol: "tcp", destinationPort: { ports: [{ first: port, last: port }] }, target: { kind: TargetKind.TARGET_KIND_ACCEPT } });
if (process.env.PC_BENCH_INSIDE === undefined) {
  const outer = new Netns();
  try { execFileSync("ip", ["netns", "exec", outer.name, process.execPath, "--import", "tsx", import.meta.filename], { stdio: "inherit", env: { ...process.env, PC_BENCH_INSIDE: outer.name } }); } finally { outer.destroy(); }
  process.exit(0);
}
execFileSync("ip", ["link", "set", "lo", "up"]);
const server = await PortcullisProcess.start("");
const c = new FirewallTestClient(server.address, server.credentials());
try {
  const rules = Array.from({ length: 10000 }, (_, i) => accept(30_000 + (i % 30_000)));
  await c.call("applyRuleset", { parent: "firewall/ipv4/tables/filter", chains: [], rules, confirmWithin: 0, allowLockout: false });
  for (let i = 0; i < 10; i++) { const a0 = performance.now(); await c.call("applyRuleset", { parent: "firewall/ipv4/tables/filter", chains: [], rules, confirmWithin: 0, allowLockout: false }); console.log("apply", (performance.now() - a0).toFixed(1)); continue;
    const t0 = performance.now();
    const r = await c.call("listRules", { parent: "firewall/ipv4/tables/filter/chains/INPUT", pageSize: 10000, pageToken: "" });
    const t1 = performance.now();
    const bytes = ListRulesResponse.encode(r).finish();
    const t2 = performance.now(); ListRulesResponse.decode(bytes); const t3 = performance.now();
    const s0 = performance.now(); execFileSync("iptables-save", ["-c", "-t", "filter"], { maxBuffer: 1 << 26 }); const s1 = performance.now();
    console.log(`list ${(t1 - t0).toFixed(1)} ms  (size ${bytes.length}, client decode ${(t3 - t2).toFixed(1)} ms, encode ${(t2-t1).toFixed(1)}) save ${(s1-s0).toFixed(1)}`);
  }
  console.log("server ms", server.output.split("\n").filter((l) => l.includes("ApplyRuleset")).map((l) => JSON.parse(l).ms).join(" "));
} finally { c.close(); await server.stop(); }
