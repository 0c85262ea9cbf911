import type { SentDecision } from "../bouncers/decision-model.js";

/** A decision as CrowdSec's Local API writes it (models.Decision in its swagger). */
export interface LapiDecision {
  readonly id: number;
  readonly origin: string;
  readonly type: "ban";
  readonly scope: "Ip" | "Range";
  readonly value: string;
  readonly duration: string;
  readonly scenario: string;
}

/** The decision with the time left until its end, as a Go duration ("3h59m58s"); a lifted one with "0s". */
export function toLapiDecision(decision: SentDecision, now: number, lifted = false): LapiDecision {
  return {
    id: decision.id,
    origin: decision.origin,
    type: "ban",
    scope: decision.scope,
    value: decision.value,
    duration: lifted ? "0s" : goDuration(Math.max(0, decision.until - now)),
    scenario: decision.scenario,
  };
}

/** Whole seconds as Go's time.Duration prints them: "0s", "58s", "4m0s", "3h59m58s". */
export function goDuration(milliseconds: number): string {
  const total = Math.floor(milliseconds / 1000);
  if (total === 0) return "0s";
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}
