import { CHAIN_LINE, parseIptablesSave, parseRuleLine } from "../drivers/parse/iptables-save.js";
import { identifyRules, type ManagedLines } from "./rule-identity.js";
import type { Family, ParsedChain, ParsedRule, RuleSpec } from "./rule-model.js";
import type { ChainView, RuleView, TableViews } from "./table-reader.js";

/**
 * A table read for a change that must know which rules are Portcullis's and which are other tools' (an
 * ApplyRuleset), when the managed ones are nearly all there is: a 10k-rule table with a few foreign rules.
 *
 * A rule Portcullis rendered is printed back by iptables-save as the very line it was rendered to, so a rule whose
 * line is a managed line (up to as many copies as are managed) is managed without being parsed; its spec is parsed
 * only if asked for. The other rules are parsed and identified as TableReader does (by content, another spelling of
 * a managed rule included), so the result is the same as a full read, at the cost of the foreign rules only.
 * Chain rule counts and references are not computed (an apply needs neither).
 */
export function splitTable(family: Family, table: string, text: string, managed: ManagedLines): TableViews {
  const chains: ParsedChain[] = [];
  const chainLines: string[] = [];
  const rules: Array<RuleView | undefined> = [];
  const others: Array<{ index: number; line: string; position: number; packets: number; bytes: number }> = [];
  const taken = new Map<string, number>();
  const positions = new Map<string, number>();
  let inTable = false;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("*")) {
      inTable = line.slice(1) === table;
      continue;
    }
    if (!inTable || line === "" || line.startsWith("#") || line === "COMMIT") continue;
    if (line.startsWith(":")) {
      const match = CHAIN_LINE.exec(line);
      if (match === null) continue; // the full parse below reports a broken dump
      const [, name = "", policy = "", packets = "0", bytes = "0"] = match;
      chains.push({ name, builtin: policy !== "-", ...(policy === "ACCEPT" || policy === "DROP" ? { policy } : {}), packets: Number(packets), bytes: Number(bytes) });
      chainLines.push(line);
      continue;
    }
    const counters = /^\[(\d+):(\d+)\] /.exec(line);
    const body = counters === null ? line : line.slice(counters[0].length);
    const chain = /^-A (\S+) /.exec(body)?.[1] ?? "";
    const position = (positions.get(chain) ?? 0) + 1;
    positions.set(chain, position);
    const [packets, bytes] = [Number(counters?.[1] ?? 0), Number(counters?.[2] ?? 0)];
    const ids = managed.get(body);
    const used = taken.get(body) ?? 0;
    if (ids !== undefined && used < ids.length) {
      taken.set(body, used + 1);
      rules.push(managedView(chain, position, body, ids[used]!, packets, bytes));
    } else {
      others.push({ index: rules.length, line: body, position, packets, bytes });
      rules.push(undefined);
    }
  }
  if (others.length > 0) {
    // The other rules, parsed in their chains' context (a jump needs its chain declared), identified by content
    // against the managed lines not yet taken.
    const parsed = parseIptablesSave([`*${table}`, ...chainLines, ...others.map((other) => other.line), "COMMIT", ""].join("\n"))[0]!.rules;
    const remaining = new Map<string, string[]>();
    for (const [line, ids] of managed) if ((taken.get(line) ?? 0) < ids.length) remaining.set(line, ids.slice(taken.get(line) ?? 0));
    const identities = identifyRules(family, table, parsed, remaining);
    others.forEach((other, i) => {
      const rule: ParsedRule = { ...parsed[i]!, position: other.position, packets: other.packets, bytes: other.bytes };
      rules[other.index] = { ...rule, ...identities[i]! };
    });
  }
  return { chains: chains.map((chain): ChainView => ({ ...chain, ruleCount: 0, references: 0 })), rules: rules as RuleView[] };
}

function managedView(chain: string, position: number, text: string, id: string, packets: number, bytes: number): RuleView {
  let spec: RuleSpec | undefined;
  return {
    chain, position, key: text, text, modeled: true, packets, bytes, id, managed: true,
    get spec(): RuleSpec {
      return (spec ??= parseRuleLine(text).spec);
    },
  };
}
