import { createHash } from "node:crypto";

/** Where a decision comes from, as CrowdSec's `origin`: a jail's ban, or an entry of a published set (a blocklist). */
export type DecisionOrigin = "fail2ban" | "lists";

/**
 * One active ban as a CrowdSec decision (always of type "ban"). Its scenario is the jail or the set; its id is derived
 * from what it is (see decisionId), so that the stream and the per-address query name it alike, across restarts.
 */
export interface Decision {
  readonly id: number;
  readonly origin: DecisionOrigin;
  readonly scenario: string;
  readonly scope: "Ip" | "Range";
  readonly value: string;
  /** When it ends, ms since the epoch; undefined: until it is lifted. */
  readonly until: number | undefined;
}

/** A decision as a bouncer is sent it: with an end, also when it has none here (see PERMANENT_HORIZON_MS). */
export type SentDecision = Decision & { readonly until: number };

/**
 * A decision's id: 48 bits of the SHA-256 of its origin, scenario, scope and value (a positive safe integer, as
 * CrowdSec's ids are). The same ban gets the same id whoever asks; a ban lifted and made again gets it again, which a
 * bouncer keyed by value (every stock one) does not mind.
 */
export function decisionId(origin: DecisionOrigin, scenario: string, scope: Decision["scope"], value: string): number {
  const digest = createHash("sha256").update(`${origin}\0${scenario}\0${scope}\0${value}`).digest();
  return digest.readUIntBE(0, 6) || 1;
}
