import { parseIptablesSave, validateRuleSpec, renderTable, ruleIdOf } from "../server/src/drivers/parse/iptables-save.js";
import { readFileSync } from "node:fs";
const text = readFileSync("/tmp/big.rules", "utf8");
for (let r = 0; r < 3; r++) {
  let t = performance.now();
  const tables = parseIptablesSave(text);
  console.log("parse 10k", (performance.now() - t).toFixed(0), "ms");
  t = performance.now();
  const specs = tables[0]!.rules.map((rule) => validateRuleSpec("ipv4", rule.spec));
  console.log("validate 10k", (performance.now() - t).toFixed(0), "ms");
  t = performance.now();
  renderTable("filter", [], specs.map((spec, i) => ({ chain: "INPUT", spec, managedId: i.toString(16).padStart(12, "0") })));
  console.log("render 10k", (performance.now() - t).toFixed(0), "ms");
  t = performance.now();
  tables[0]!.rules.forEach((rule, i) => ruleIdOf("ipv4", "filter", { ...rule, managedId: undefined }, 0));
  console.log("ids 10k (hash)", (performance.now() - t).toFixed(0), "ms");
}
