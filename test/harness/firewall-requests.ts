import { ApplyRulesetRequest, ChainPolicy, Rule, TargetKind } from "../../server/src/gen/portcullis/v1/firewall.js";
import type { DeepPartial } from "../../server/src/gen/portcullis/v1/firewall.js";

/** A full Rule message from the fields a test cares about. */
export function rule(partial: DeepPartial<Rule>): Rule {
  return Rule.fromPartial(partial);
}

export const accept = { kind: TargetKind.TARGET_KIND_ACCEPT };
export const drop = { kind: TargetKind.TARGET_KIND_DROP };

export const tcpPort = (port: number): DeepPartial<Rule> => ({ protocol: "tcp", destinationPort: { ports: [{ first: port, last: port }] } });

export const inputOf = (family: "ipv4" | "ipv6") => `firewall/${family}/tables/filter/chains/INPUT`;
export const filterOf = (family: "ipv4" | "ipv6") => `firewall/${family}/tables/filter`;

export { ChainPolicy, TargetKind };

/** A full ApplyRulesetRequest from the fields a test cares about (scope TABLE, no dry run, unless given). */
export function applyRequest(partial: DeepPartial<ApplyRulesetRequest>): ApplyRulesetRequest {
  return ApplyRulesetRequest.fromPartial(partial);
}
