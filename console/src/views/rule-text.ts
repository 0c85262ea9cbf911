import type { Rule } from "../api/client";

type PortMatch = NonNullable<Rule["sourcePort"]>;

function ports(match: PortMatch | undefined): string {
  const list = (match?.ports ?? []).map((range) => (range.last === undefined || range.last === 0 || range.last === range.first ? `${range.first ?? ""}` : `${range.first ?? ""}-${range.last}`));
  return `${match?.negate === true ? "not " : ""}${list.join(",")}`;
}

/** What a rule matches, in words (`tcp from 192.0.2.0/24 port 22`); `text` (iptables-save) for rules the API does not model. */
export function matchText(rule: Rule): string {
  if (rule.modeled === false) return rule.text ?? "";
  const parts: string[] = [];
  if (rule.protocol !== undefined && rule.protocol !== "") parts.push(`${rule.protocolNegate === true ? "not " : ""}${rule.protocol}`);
  if (rule.source?.address !== undefined && rule.source.address !== "") parts.push(`from ${rule.source.negate === true ? "not " : ""}${rule.source.address}`);
  if (rule.destination?.address !== undefined && rule.destination.address !== "") parts.push(`to ${rule.destination.negate === true ? "not " : ""}${rule.destination.address}`);
  if (rule.inInterface?.name !== undefined && rule.inInterface.name !== "") parts.push(`in ${rule.inInterface.negate === true ? "not " : ""}${rule.inInterface.name}`);
  if (rule.outInterface?.name !== undefined && rule.outInterface.name !== "") parts.push(`out ${rule.outInterface.negate === true ? "not " : ""}${rule.outInterface.name}`);
  if ((rule.sourcePort?.ports ?? []).length > 0) parts.push(`source port ${ports(rule.sourcePort)}`);
  if ((rule.destinationPort?.ports ?? []).length > 0) parts.push(`port ${ports(rule.destinationPort)}`);
  if (rule.matchSet?.set !== undefined && rule.matchSet.set !== "") {
    const directions = (rule.matchSet.directions ?? []).map((direction) => (direction === "SET_DIRECTION_DST" ? "dst" : "src")).join(",");
    parts.push(`${rule.matchSet.negate === true ? "not " : ""}in set ${rule.matchSet.set} (${directions || "src"})`);
  }
  if ((rule.states ?? []).length > 0) parts.push(`state ${(rule.states ?? []).map((state) => state.replace("CONNTRACK_STATE_", "")).join(",")}`);
  return parts.length === 0 ? "all packets" : parts.join(" ");
}

/** The target in iptables words: ACCEPT, DROP, REJECT (tcp-reset), LOG "prefix", JUMP chain. */
export function targetText(rule: Rule): string {
  const target = rule.target ?? {};
  const kind = (target.kind ?? "TARGET_KIND_UNSPECIFIED").replace("TARGET_KIND_", "");
  switch (kind) {
    case "JUMP":
      return `${target.goto === true ? "GOTO" : "JUMP"} ${target.chain ?? ""}`;
    case "REJECT":
      return target.rejectWith === undefined || target.rejectWith === "" ? "REJECT" : `REJECT (${target.rejectWith})`;
    case "LOG":
      return target.logPrefix === undefined || target.logPrefix === "" ? "LOG" : `LOG "${target.logPrefix}"`;
    case "OTHER":
      return target.other ?? "OTHER";
    default:
      return kind;
  }
}
