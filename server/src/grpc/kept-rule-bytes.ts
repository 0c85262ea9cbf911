import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { FirewallServiceService, ListRulesResponse, Rule } from "../gen/portcullis/v1/firewall.js";

// Kept for the "list 10000 rules ≤ 2× raw" bench row, which fails without it (docs/performance.md, issue 19).
const ruleBytes = new WeakMap<Readonly<Rule>, Uint8Array>();

/**
 * ListRulesResponse as the generated encode writes it, byte for byte, with each rule's bytes kept per wire rule:
 * the API reuses the read-only wire rule of every unchanged rule (toRule), so a warm listing encodes only what changed.
 * `rules` is field 1, the lowest, so the generated encode writes it first too.
 */
export function encodeListRules(response: ListRulesResponse): Buffer {
  const writer = new BinaryWriter();
  for (const rule of response.rules) {
    let bytes = ruleBytes.get(rule);
    if (bytes === undefined) ruleBytes.set(rule, (bytes = Rule.encode(rule).finish()));
    writer.uint32(10).bytes(bytes);
  }
  const encoded = ListRulesResponse.encode({ ...response, rules: [] }, writer).finish();
  return Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength);
}

/** The firewall service's definition, its ListRules answers encoded by encodeListRules. */
export const firewallServiceWithKeptRules: typeof FirewallServiceService = {
  ...FirewallServiceService,
  listRules: { ...FirewallServiceService.listRules, responseSerialize: encodeListRules },
};
