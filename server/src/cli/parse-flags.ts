// Command-line values → what the SDK takes. Only the shape is checked here; the server validates the content (and says
// what is wrong) so that the CLI and every other client get the same rules.
import { InvalidArgumentError } from "commander";
import type { PortSpec, RuleInput, RuleTarget } from "@portcullis/sdk";
import { UsageError } from "./connect.js";

/** A whole number of seconds (or other count) ≥ 0. */
export function seconds(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError(`"${value}" is not a whole number ≥ 0`);
  return Number(value);
}

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** A duration in seconds: "90", "90s", "10m", "1h", "7d", "2w", or those combined ("1h30m"). */
export function duration(value: string): number {
  const parts = /^(?:\d+[smhdw]?)+$/.test(value) ? [...value.matchAll(/(\d+)([smhdw]?)/g)] : [];
  // A bare number is seconds, and only alone ("1h30" would be ambiguous).
  if (parts.length === 0 || (parts.length > 1 && parts.some((part) => part[2] === ""))) {
    throw new InvalidArgumentError(`"${value}" is not a duration; write seconds (3600) or with units s, m, h, d, w (90s, 10m, 1h30m, 7d)`);
  }
  const total = parts.reduce((sum, part) => sum + Number(part[1]) * UNIT_SECONDS[part[2] || "s"]!, 0);
  if (!Number.isSafeInteger(total)) throw new InvalidArgumentError(`"${value}" is too long a duration`);
  return total;
}

/** A whole number ≥ 1. */
export function positive(value: string): number {
  const n = seconds(value);
  if (n === 0) throw new InvalidArgumentError("must be at least 1");
  return n;
}

/** An ISO 8601 time, e.g. 2026-01-31 or 2026-01-31T12:00:00Z. */
export function isoTime(value: string): Date {
  const parsed = /^\d{4}-\d{2}-\d{2}/.test(value) ? new Date(value) : new Date(Number.NaN);
  if (Number.isNaN(parsed.getTime())) throw new InvalidArgumentError(`"${value}" is not a time; write it like 2026-01-31 or 2026-01-31T12:00:00Z`);
  return parsed;
}

/** "25", "1000:2000", or a list "25,587,1000:2000" (iptables' forms). */
export function ports(value: string): PortSpec[] {
  return value.split(",").map((part) => {
    const match = /^(\d{1,5})(?::(\d{1,5}))?$/.exec(part.trim());
    if (match === null) throw new InvalidArgumentError(`"${part}" is not a port or a range FIRST:LAST`);
    return match[2] === undefined ? Number(match[1]) : [Number(match[1]), Number(match[2])] as const;
  });
}

/** The rule flags of `rules add`, named as iptables names them. */
export interface RuleFlags {
  readonly protocol?: string;
  readonly source?: string;
  readonly destination?: string;
  readonly inInterface?: string;
  readonly outInterface?: string;
  readonly sport?: PortSpec[];
  readonly dport?: PortSpec[];
  readonly matchSet?: string;
  readonly setDirection?: "src" | "dst";
  readonly ctstate?: string;
  readonly comment?: string;
  readonly jump?: string;
  readonly goto?: string;
  readonly rejectWith?: string;
  readonly logPrefix?: string;
}

const STATES = new Set(["NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED"]);

/** The rule the flags describe; a missing or ambiguous target is a usage error. */
export function ruleOf(flags: RuleFlags): RuleInput {
  const states = flags.ctstate?.split(",").map((state) => state.trim().toUpperCase());
  const unknown = states?.find((state) => !STATES.has(state));
  if (unknown !== undefined) throw new UsageError(`--ctstate: "${unknown}" is not one of ${[...STATES].join(", ")}`);
  const negatedSet = flags.matchSet?.startsWith("!") ?? false;
  return {
    ...(flags.protocol === undefined ? {} : { protocol: flags.protocol }),
    ...(flags.source === undefined ? {} : { source: flags.source }),
    ...(flags.destination === undefined ? {} : { destination: flags.destination }),
    ...(flags.inInterface === undefined ? {} : { inInterface: flags.inInterface }),
    ...(flags.outInterface === undefined ? {} : { outInterface: flags.outInterface }),
    ...(flags.sport === undefined ? {} : { sourcePorts: flags.sport }),
    ...(flags.dport === undefined ? {} : { destinationPorts: flags.dport }),
    ...(flags.matchSet === undefined ? {} : { matchSet: { set: negatedSet ? flags.matchSet.slice(1) : flags.matchSet, direction: flags.setDirection ?? "src", negate: negatedSet } }),
    ...(states === undefined ? {} : { states: states as RuleInput["states"] }),
    ...(flags.comment === undefined ? {} : { comment: flags.comment }),
    target: targetOf(flags),
  };
}

function targetOf(flags: RuleFlags): RuleTarget {
  if (flags.goto !== undefined) {
    if (flags.jump !== undefined) throw new UsageError("give -j TARGET or -g CHAIN, not both");
    return { goto: flags.goto };
  }
  const jump = flags.jump;
  if (jump === undefined) throw new UsageError("a rule needs a target: -j ACCEPT|DROP|REJECT|RETURN|LOG|CHAIN or -g CHAIN");
  if (flags.rejectWith !== undefined && jump !== "REJECT") throw new UsageError("--reject-with goes with -j REJECT");
  if (flags.logPrefix !== undefined && jump !== "LOG") throw new UsageError("--log-prefix goes with -j LOG");
  if (jump === "ACCEPT" || jump === "DROP" || jump === "RETURN") return jump;
  if (jump === "REJECT") return { reject: flags.rejectWith ?? "" };
  if (jump === "LOG") return { log: flags.logPrefix ?? "" };
  return { jump };
}
