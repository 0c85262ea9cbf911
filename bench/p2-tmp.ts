import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials } from "@grpc/grpc-js";
import { Rule, TargetKind } from "../sdk/src/gen/portcullis/v1/firewall.js";
import { Netns } from "../test/harness/netns.js";
import { FirewallTestClient } from "../test/harness/grpc-clients.js";
const ns = new Netns();
const dir = mkdtempSync(join(tmpdir(), "pc-prof-"));
const child = spawn(process.execPath, ["--cpu-prof", "--cpu-prof-dir", "/tmp/prof", "server/bin/portcullis", "serve", "--data-dir", dir, "--netns", ns.name, "--grpc-address", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
let out = "";
const address = await new Promise<string>((resolve) => child.stdout.on("data", (d) => { out += d; const m = /"grpc":"([^"]+)".*listening/.exec(out); if (m) resolve(m[1]!); }));
const b = join(dir, "pki/clients/admin");
const c = new FirewallTestClient(address, credentials.createSsl(readFileSync(join(b, "ca.crt")), readFileSync(join(b, "client.key")), readFileSync(join(b, "client.crt"))));
const rules = Array.from({ length: 10000 }, (_, i) => Rule.fromPartial({ chain: "INPUT", protocol: "tcp", destinationPort: { ports: [{ first: 30000 + i, last: 30000 + i }] }, target: { kind: TargetKind.TARGET_KIND_ACCEPT } }));
for (let r = 0; r < 2; r++) {
  let t = performance.now();
  await c.call("applyRuleset", { parent: "firewall/ipv4/tables/filter", chains: [], rules, confirmWithin: 0, allowLockout: false });
  console.log("apply", (performance.now() - t).toFixed(0));
  t = performance.now();
  await c.call("listRules", { parent: "firewall/ipv4/tables/filter/chains/INPUT", pageSize: 10000, pageToken: "" });
  console.log("list", (performance.now() - t).toFixed(0));
}
c.close();
child.kill("SIGINT");
await new Promise((r) => child.once("exit", r));
ns.destroy();
console.log(out.split("\n").filter((l) => /command ran|"rpc"/.test(l)).slice(-10).join("\n"));
