/**
 * Validation of structured rules: a rule given by a client is checked for its family and chain and normalized to the
 * form iptables-save prints, so that the rendered rule (drivers/iptables-render.ts) reads back as the same spec.
 */
import { ServerError } from "../errors.js";
import { formatAddress, networkBase, parseAddressStrict, type Address } from "../addresses.js";
import { validateIpsetName } from "../names.js";
import type { AddressMatch, Family, InterfaceMatch, PortMatch, RuleSpec, Target } from "./rule-model.js";
import {
  DEFAULT_LOG_LEVEL, DEFAULT_REJECT_WITH, LOG_LEVELS, MAX_COMMENT_BYTES, MAX_LOG_PREFIX_BYTES, MAX_SET_DIRECTIONS, MULTIPORT_SLOTS, NOT_JUMPABLE,
  PORT_PROTOCOLS, PROTOCOLS, REJECT_WITH, STATE_ORDER, checkChain, checkInterface, checkText, invalidRule,
} from "../drivers/iptables-vocabulary.js";

/** Parses an address strictly (see parseAddressStrict); undefined when it is not one. */
function parseAddress(text: string): Address | undefined {
  const parsed = parseAddressStrict(text);
  return "problem" in parsed ? undefined : parsed;
}

/** As iptables-save prints it: network base with the prefix always written; undefined for a match-all /0. */
function normalizeAddress(family: Family, match: AddressMatch | undefined, field: string): AddressMatch | undefined {
  const raw = match?.address.trim() ?? "";
  if (match === undefined || raw === "") return undefined;
  const [addressText = "", prefixText, extra] = raw.split("/");
  const address = parseAddress(addressText);
  if (address === undefined) {
    invalidRule(field, raw, `${field} "${raw}" is not an IP address or network; write it like 192.0.2.1, 203.0.113.0/24 or 2001:db8::/32 (host names are not accepted)`);
  }
  if (address.kind() !== family) {
    throw new ServerError("FAMILY_MISMATCH", `${field} ${raw} is an ${address.kind() === "ipv4" ? "IPv4" : "IPv6"} address but the rule is for ${family} (${family === "ipv4" ? "iptables" : "ip6tables"})`, { field, value: raw });
  }
  const max = family === "ipv4" ? 32 : 128;
  if (prefixText !== undefined && (extra !== undefined || !/^(0|[1-9]\d*)$/.test(prefixText) || Number(prefixText) > max)) {
    invalidRule(field, raw, `${field} "${raw}": the prefix length must be a decimal number 0-${max} (write /24, not /255.255.255.0)`);
  }
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix === 0) {
    if (match.negate) invalidRule(field, raw, `${field} "! ${raw}" matches no packet at all; remove the match or its negation`);
    return undefined;
  }
  return { address: `${formatAddress(networkBase(address, prefix))}/${prefix}`, negate: match.negate === true };
}

function normalizeInterface(match: InterfaceMatch | undefined, field: string): InterfaceMatch | undefined {
  if (match === undefined || match.name === "") return undefined;
  checkInterface(match.name, field);
  // "+" matches every interface: iptables-save prints nothing for it.
  if (match.name === "+") {
    if (match.negate) invalidRule(field, match.name, `${field} "! +" matches no packet at all; remove the match or its negation`);
    return undefined;
  }
  return { name: match.name, negate: match.negate === true };
}

function normalizePorts(match: PortMatch | undefined, field: string, protocol: string | undefined, protocolNegate: boolean): PortMatch | undefined {
  if (match === undefined || (match.ports.length === 0 && !match.negate)) return undefined;
  const listed = (): string => match.ports.map((range) => `${range.first}${range.last === range.first ? "" : `:${range.last}`}`).join(",");
  if (match.ports.length === 0) invalidRule(field, "", `${field} is negated but lists no ports; give the ports not to match`);
  if (protocol === undefined || !PORT_PROTOCOLS.has(protocol) || protocolNegate) {
    invalidRule(field, listed(), `${field} needs protocol tcp, udp, sctp or udplite${protocol === undefined ? "; set rule.protocol" : `, not ${protocolNegate ? "! " : ""}${protocol}`}`);
  }
  let normalized = typeof match.negate === "boolean";
  let slots = 0;
  for (const range of match.ports) {
    // A last port of 0 means a single port (the wire default).
    const last = range.last === 0 ? range.first : range.last;
    checkPort(range.first, field);
    if (last !== range.first) checkPort(last, field);
    if (range.first > last) invalidRule(field, `${range.first}:${last}`, `${field}: range ${range.first}:${last} runs backwards; write the lower port first (${last}:${range.first})`);
    if (last !== range.last) normalized = false;
    slots += last === range.first ? 1 : 2;
  }
  if (match.ports.length > 1 && slots > MULTIPORT_SLOTS) {
    invalidRule(field, listed(), `${field} needs ${slots} port slots, but one rule holds at most ${MULTIPORT_SLOTS} (a range counts as two); split it into several rules`);
  }
  // Already in normal form (as the API adapters make it): kept, not copied; specs are never modified.
  if (normalized) return match;
  return { ports: match.ports.map((range) => ({ first: range.first, last: range.last === 0 ? range.first : range.last })), negate: match.negate === true };
}

function checkPort(port: number, field: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) invalidRule(field, String(port), `${field}: ${port} is not a port number; use 1-65535`);
}

/** Targets without options, shared by every rule that has them (specs are never modified). */
const PLAIN_TARGETS = {
  ACCEPT: Object.freeze({ kind: "ACCEPT" }),
  DROP: Object.freeze({ kind: "DROP" }),
  RETURN: Object.freeze({ kind: "RETURN" }),
} as const satisfies Record<string, Target>;

function normalizeTarget(family: Family, target: Target, protocol: string | undefined, protocolNegate: boolean): Target {
  switch (target.kind) {
    case "ACCEPT":
    case "DROP":
    case "RETURN":
      return PLAIN_TARGETS[target.kind];
    case "REJECT": {
      const field = "rule.target.reject_with";
      const rejectWith = target.rejectWith === undefined || target.rejectWith === "" ? DEFAULT_REJECT_WITH[family] : target.rejectWith;
      if (!REJECT_WITH[family].includes(rejectWith)) {
        invalidRule(field, rejectWith, `${field} "${rejectWith}" is not a reply for ${family} rules; use one of ${REJECT_WITH[family].join(", ")}`);
      }
      if (rejectWith === "tcp-reset" && (protocol !== "tcp" || protocolNegate)) {
        invalidRule(field, rejectWith, `${field} tcp-reset answers TCP packets only; set rule.protocol to tcp or choose an ICMP reply`);
      }
      return { kind: "REJECT", rejectWith };
    }
    case "LOG": {
      const prefix = target.prefix === "" ? undefined : target.prefix;
      if (prefix !== undefined) checkText(prefix, "rule.target.log_prefix", MAX_LOG_PREFIX_BYTES, "log prefix");
      const given = target.level?.trim().toLowerCase() ?? "";
      const level = given === "" ? DEFAULT_LOG_LEVEL : LOG_LEVELS.get(given) ?? given;
      if (!/^[0-7]$/.test(level)) {
        invalidRule("rule.target.log_level", target.level ?? "", `rule.target.log_level "${target.level ?? ""}" is not a syslog level; use 0-7 or emerg, alert, crit, error, warning, notice, info, debug`);
      }
      return { kind: "LOG", ...(prefix === undefined ? {} : { prefix }), ...(level === DEFAULT_LOG_LEVEL ? {} : { level }) };
    }
    case "JUMP": {
      const field = "rule.target.chain";
      checkChain(target.chain, field);
      if (NOT_JUMPABLE.has(target.chain)) {
        invalidRule(field, target.chain, `${field} ${target.chain} is a built-in chain or target, not a user chain; use target kind ${target.chain} itself or jump to a user chain`);
      }
      return { kind: "JUMP", chain: target.chain, goto: target.goto === true };
    }
    case "OTHER":
      return invalidRule("rule.target.kind", target.name, `target ${target.name} is not modeled by Portcullis and is read-only; use ACCEPT, DROP, REJECT, RETURN, LOG or JUMP`);
    default:
      return invalidRule("rule.target.kind", String((target as { kind: unknown }).kind), "rule.target.kind must be ACCEPT, DROP, REJECT, RETURN, LOG or JUMP");
  }
}

/**
 * Validates a rule for a family and returns it normalized to the form iptables-save prints, so that the rendered rule
 * reads back as the same spec and text. Errors name the field (metadata.field: rule.source, rule.destination_port,
 * rule.target.chain, …). With `chain`, interfaces the chain never sees (-o in INPUT, -i in OUTPUT) are refused too.
 * Whether the set or the jump target exists is the caller's business.
 */
export function validateRuleSpec(family: Family, spec: RuleSpec, chain?: string): RuleSpec {
  const given = spec.protocol?.trim().toLowerCase() ?? "";
  const negateProtocol = spec.protocolNegate === true;
  let protocol: string | undefined = given === "icmpv6" ? "ipv6-icmp" : given;
  if (protocol === "" || protocol === "all") {
    if (negateProtocol) invalidRule("rule.protocol", given, `rule.protocol "! ${given || "all"}" matches no packet at all; give a protocol to negate or drop the negation`);
    protocol = undefined;
  } else if (!PROTOCOLS[family].includes(protocol)) {
    const other = family === "ipv4" ? "ipv6" : "ipv4";
    invalidRule("rule.protocol", given, PROTOCOLS[other].includes(protocol)
      ? `rule.protocol ${given} is for ${other} rules; use ${family === "ipv4" ? "icmp" : "ipv6-icmp"} in an ${family} rule`
      : `rule.protocol "${given}" is not supported; use one of ${PROTOCOLS[family].join(", ")} or all`);
  }
  const source = normalizeAddress(family, spec.source, "rule.source");
  const destination = normalizeAddress(family, spec.destination, "rule.destination");
  const inInterface = normalizeInterface(spec.inInterface, "rule.in_interface");
  const outInterface = normalizeInterface(spec.outInterface, "rule.out_interface");
  if (chain === "INPUT" || chain === "PREROUTING") {
    if (outInterface !== undefined) invalidRule("rule.out_interface", outInterface.name, `chain ${chain} sees packets before routing, so it has no outgoing interface; remove rule.out_interface or use FORWARD/OUTPUT`);
  } else if (chain === "OUTPUT" || chain === "POSTROUTING") {
    if (inInterface !== undefined) invalidRule("rule.in_interface", inInterface.name, `chain ${chain} sees locally sent packets, which have no incoming interface; remove rule.in_interface or use INPUT/FORWARD`);
  }
  const sourcePort = normalizePorts(spec.sourcePort, "rule.source_port", protocol, negateProtocol);
  const destinationPort = normalizePorts(spec.destinationPort, "rule.destination_port", protocol, negateProtocol);
  let matchSet = spec.matchSet;
  if (matchSet !== undefined) {
    validateIpsetName(matchSet.set, "rule.match_set.set");
    const directions = matchSet.directions.join(",");
    if (matchSet.directions.length < 1 || matchSet.directions.length > MAX_SET_DIRECTIONS || !matchSet.directions.every((d) => d === "src" || d === "dst")) {
      invalidRule("rule.match_set.directions", directions, `rule.match_set.directions "${directions}" must be 1 to ${MAX_SET_DIRECTIONS} of src and dst, one per dimension of the set`);
    }
    matchSet = { set: matchSet.set, directions: [...matchSet.directions], negate: matchSet.negate === true };
  }
  const states = spec.states ?? [];
  for (let i = 0; i < states.length; i++) {
    const state = states[i]!;
    if (!STATE_ORDER.includes(state)) invalidRule("rule.states", String(state), `rule.states: "${state}" is not a conntrack state; use ${STATE_ORDER.join(", ")}`);
    if (states.indexOf(state) !== i) invalidRule("rule.states", state, `rule.states lists ${state} twice; give each state once`);
  }
  const comment = spec.comment === "" ? undefined : spec.comment;
  if (comment !== undefined) {
    checkText(comment, "rule.comment", MAX_COMMENT_BYTES, "comment");
  }
  const target = normalizeTarget(family, spec.target, protocol, negateProtocol);
  // Assigned one by one rather than spread: this runs for every rule of a 10k-rule ApplyRuleset.
  const result: { -readonly [K in keyof RuleSpec]: RuleSpec[K] } = { target };
  if (protocol !== undefined) {
    result.protocol = protocol;
    if (negateProtocol) result.protocolNegate = true;
  }
  if (source !== undefined) result.source = source;
  if (destination !== undefined) result.destination = destination;
  if (inInterface !== undefined) result.inInterface = inInterface;
  if (outInterface !== undefined) result.outInterface = outInterface;
  if (sourcePort !== undefined) result.sourcePort = sourcePort;
  if (destinationPort !== undefined) result.destinationPort = destinationPort;
  if (matchSet !== undefined) result.matchSet = matchSet;
  if (states.length > 0) result.states = STATE_ORDER.filter((state) => states.includes(state));
  if (comment !== undefined) result.comment = comment;
  return result;
}
