/**
 * Structured rules rendered as iptables-restore lines and iptables arguments. Rendering always gives the matches in one
 * fixed order, so a rule rendered here is printed back by iptables-save as exactly the same text
 * (drivers/parse/iptables-save.ts reads it). Values that could not be written into a rule line safely are refused here
 * whoever validated them before. Pure functions.
 */
import type { PortMatch, PortRange, Policy, RuleSpec, Table, Target } from "../firewall/rule-model.js";
import { TABLES } from "../firewall/rule-model.js";
import { validateIpsetName } from "../names.js";
import { BUILTIN_CHAINS, CONTROL, MAX_COMMENT_BYTES, MAX_LOG_PREFIX_BYTES, PORT_PROTOCOLS, STATE_ORDER, checkChain, checkInterface, checkText, invalidRule } from "./iptables-vocabulary.js";

/** iptables-save's quoting (xtables_save_string), which iptables-restore reads back. */
function quote(value: string): string {
  return /^[A-Za-z0-9_-]+$/.test(value) ? value : `"${value.replace(/["\\']/g, "\\$&")}"`;
}

/** A word printed without quotes must not split, quote or read as an option. */
function bare(value: string, field: string): string {
  if (!/^[^\s"'\\!-][^\s"'\\]*$/.test(value) || CONTROL.test(value)) {
    invalidRule(field, value, `${field} "${value}" cannot be written into a rule: it is empty, starts with - or !, or contains blanks, quotes or backslashes`);
  }
  return value;
}

function portText(range: PortRange, field: string): string {
  for (const port of [range.first, range.last]) {
    if (!Number.isInteger(port) || port < 0 || port > 65535) invalidRule(field, String(port), `${field}: ${port} is not a port number; use 1-65535`);
  }
  return range.first === range.last ? String(range.first) : `${range.first}:${range.last}`;
}

/**
 * Words are collected into `out`; free text (comment, log prefix) is quoted the way iptables-save prints it when
 * `quoted`, and left as one raw argument otherwise. Plain pushes, no per-call closures: ApplyRuleset renders 10k rules.
 */
function pushText(out: string[], value: string, quoted: boolean): void {
  out.push(quoted ? quote(value) : value);
}

function pushTarget(out: string[], target: Target, quoted: boolean): void {
  switch (target.kind) {
    case "ACCEPT":
    case "DROP":
    case "RETURN":
      out.push("-j", target.kind);
      return;
    case "REJECT":
      out.push("-j", "REJECT");
      if (target.rejectWith !== undefined) out.push("--reject-with", bare(target.rejectWith, "rule.target.reject_with"));
      return;
    case "LOG":
      out.push("-j", "LOG");
      if (target.prefix !== undefined) {
        checkText(target.prefix, "rule.target.log_prefix", MAX_LOG_PREFIX_BYTES, "log prefix");
        out.push("--log-prefix");
        pushText(out, target.prefix, quoted);
      }
      if (target.level !== undefined) out.push("--log-level", bare(target.level, "rule.target.log_level"));
      return;
    case "JUMP":
      out.push(target.goto ? "-g" : "-j", checkChain(target.chain, "rule.target.chain"));
      return;
    case "OTHER":
      out.push("-j", bare(target.name, "rule.target.other"));
      return;
  }
}

/** One port or range goes into the protocol's own match (-m tcp); udplite has none, so it always uses multiport. */
function singlePort(match: PortMatch | undefined, protocol: string): PortRange | undefined {
  return match !== undefined && match.ports.length === 1 && protocol !== "udplite" ? match.ports[0] : undefined;
}

/** The words after `-A CHAIN`, in the canonical order (see renderRule), appended to `out`. */
function pushRuleWords(out: string[], chain: string, spec: RuleSpec, quoted: boolean): void {
  checkChain(chain, "rule.chain");
  if (spec.source !== undefined) {
    if (spec.source.negate) out.push("!");
    out.push("-s", bare(spec.source.address, "rule.source"));
  }
  if (spec.destination !== undefined) {
    if (spec.destination.negate) out.push("!");
    out.push("-d", bare(spec.destination.address, "rule.destination"));
  }
  if (spec.inInterface !== undefined) {
    if (spec.inInterface.negate) out.push("!");
    out.push("-i", checkInterface(spec.inInterface.name, "rule.in_interface"));
  }
  if (spec.outInterface !== undefined) {
    if (spec.outInterface.negate) out.push("!");
    out.push("-o", checkInterface(spec.outInterface.name, "rule.out_interface"));
  }
  if (spec.protocol !== undefined) {
    if (spec.protocolNegate === true) out.push("!");
    out.push("-p", bare(spec.protocol, "rule.protocol"));
  }
  const { sourcePort, destinationPort, protocol = "" } = spec;
  if (sourcePort !== undefined) checkPortMatch(sourcePort, "rule.source_port", spec);
  if (destinationPort !== undefined) checkPortMatch(destinationPort, "rule.destination_port", spec);
  const sourceSingle = singlePort(sourcePort, protocol);
  const destinationSingle = singlePort(destinationPort, protocol);
  if (sourceSingle !== undefined || destinationSingle !== undefined) {
    out.push("-m", protocol);
    if (sourceSingle !== undefined) {
      if (sourcePort?.negate === true) out.push("!");
      out.push("--sport", portText(sourceSingle, "rule.source_port"));
    }
    if (destinationSingle !== undefined) {
      if (destinationPort?.negate === true) out.push("!");
      out.push("--dport", portText(destinationSingle, "rule.destination_port"));
    }
  }
  if (sourcePort !== undefined && sourceSingle === undefined) pushMultiport(out, sourcePort, "--sports", "rule.source_port");
  if (destinationPort !== undefined && destinationSingle === undefined) pushMultiport(out, destinationPort, "--dports", "rule.destination_port");
  if (spec.matchSet !== undefined) {
    validateIpsetName(spec.matchSet.set, "rule.match_set.set");
    out.push("-m", "set");
    if (spec.matchSet.negate) out.push("!");
    out.push("--match-set", spec.matchSet.set, spec.matchSet.directions.map((direction) => bare(direction, "rule.match_set.directions")).join(","));
  }
  if (spec.states !== undefined && spec.states.length > 0) {
    out.push("-m", "conntrack", "--ctstate", STATE_ORDER.filter((state) => spec.states?.includes(state)).join(","));
  }
  if (spec.comment !== undefined) {
    checkText(spec.comment, "rule.comment", MAX_COMMENT_BYTES, "comment");
    out.push("-m", "comment", "--comment");
    pushText(out, spec.comment, quoted);
  }
  pushTarget(out, spec.target, quoted);
}

function checkPortMatch(match: PortMatch, field: string, spec: RuleSpec): void {
  const protocol = spec.protocol ?? "";
  if (!PORT_PROTOCOLS.has(protocol) || spec.protocolNegate === true) invalidRule(field, protocol, `${field} needs protocol tcp, udp, sctp or udplite`);
  if (match.ports.length === 0) invalidRule(field, "", `${field} lists no ports`);
}

function pushMultiport(out: string[], match: PortMatch, option: string, field: string): void {
  out.push("-m", "multiport");
  if (match.negate) out.push("!");
  out.push(option, match.ports.map((range) => portText(range, field)).join(","));
}

/**
 * The arguments AFTER `-A CHAIN` (unquoted, one array element per argument: ready for `iptables -A CHAIN …`,
 * `-I CHAIN N …`, `-D CHAIN …` or `-C CHAIN …`). Canonical order, as iptables-save prints it back:
 * `[!] -s A [!] -d A [!] -i IF [!] -o IF [!] -p P -m P [!] --sport X [!] --dport Y -m multiport [!] --sports L
 * -m multiport [!] --dports L -m set [!] --match-set S DIRS -m conntrack --ctstate STATES
 * -m comment --comment C (-j TARGET [options] | -g CHAIN)`. The spec should come from validateRuleSpec, which puts
 * values into the form the kernel prints (/32 suffixes, default REJECT reply, numeric log level…); values that could
 * not be written into a rule line safely are refused here in any case.
 */
export function renderRule(chain: string, spec: RuleSpec): string[] {
  const out: string[] = [];
  pushRuleWords(out, chain, spec, false);
  return out;
}

/** `-A CHAIN …` with iptables-save's quoting: a line for iptables-restore, equal to what iptables-save prints. */
export function renderRuleLine(chain: string, spec: RuleSpec): string {
  const out = ["-A", chain];
  pushRuleWords(out, chain, spec, true);
  return out.join(" ");
}

/**
 * Complete iptables-restore input for one table: every built-in chain with its policy (ACCEPT when not given), the
 * user chains, the rules in order, COMMIT. Rules may only use and jump to chains declared here.
 */
export function renderTable(
  table: string,
  chains: ReadonlyArray<{ name: string; policy?: Policy }>,
  rules: ReadonlyArray<{ chain: string; spec: RuleSpec }>,
): string {
  if (!(TABLES as readonly string[]).includes(table)) invalidRule("table", table, `table "${table}" is not one of ${TABLES.join(", ")}`);
  const builtins = BUILTIN_CHAINS[table as Table];
  const policies = new Map<string, Policy>();
  const userChains: string[] = [];
  for (const [i, chain] of chains.entries()) {
    const field = `chains[${i}]`;
    if (policies.has(chain.name) || userChains.includes(chain.name)) invalidRule(`${field}.name`, chain.name, `${field}: chain ${chain.name} is listed twice`);
    if (builtins.includes(chain.name)) {
      const policy = chain.policy ?? "ACCEPT";
      if (policy !== "ACCEPT" && policy !== "DROP") invalidRule(`${field}.policy`, String(policy), `${field}.policy must be ACCEPT or DROP`);
      policies.set(chain.name, policy);
    } else {
      checkChain(chain.name, `${field}.name`);
      if (chain.policy !== undefined) invalidRule(`${field}.policy`, chain.policy, `${field}: ${chain.name} is a user chain; only built-in chains have a policy`);
      userChains.push(chain.name);
    }
  }
  const declared = new Set([...builtins, ...userChains]);
  const lines = [`*${table}`, ...builtins.map((name) => `:${name} ${policies.get(name) ?? "ACCEPT"} [0:0]`), ...userChains.map((name) => `:${name} - [0:0]`)];
  for (const [i, rule] of rules.entries()) {
    if (!declared.has(rule.chain)) invalidRule(`rules[${i}].chain`, rule.chain, `rules[${i}].chain: chain ${rule.chain} is not among the table's chains; declare it`);
    const target = rule.spec.target;
    if (target.kind === "JUMP" && !declared.has(target.chain)) {
      invalidRule(`rules[${i}].target.chain`, target.chain, `rules[${i}].target.chain: chain ${target.chain} is not among the table's chains; declare it`);
    }
    lines.push(renderRuleLine(rule.chain, rule.spec));
  }
  lines.push("COMMIT");
  return `${lines.join("\n")}\n`;
}
