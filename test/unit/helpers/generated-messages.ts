import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import { Rule, TargetKind } from "@portcullis/sdk/gen/portcullis/v1/firewall.js";

/** The generated code's folder (sdk/src/gen). */
export const GEN = resolve(dirname(fileURLToPath(import.meta.url)), "../../../sdk/src/gen");

/** What ts-proto generates for each message (MessageFns), as far as the wire tests use it. */
export interface MessageFns {
  encode(message: unknown, writer?: BinaryWriter): BinaryWriter;
  decode(input: BinaryReader | Uint8Array, length?: number): unknown;
  fromJSON(object: unknown): unknown;
  fromPartial(object: unknown): unknown;
}

export const isMessageFns = (value: unknown): value is MessageFns =>
  typeof value === "object" && value !== null && ["encode", "decode", "fromJSON", "fromPartial"].every((key) => typeof (value as Record<string, unknown>)[key] === "function");

/** mulberry32: reproducible randomness from a seed. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 10,000 rules as ListRules returns them (≈ 2 MB encoded), for the codecs' timing checks. */
export function tenThousandRules(): Rule[] {
  return Array.from({ length: 10_000 }, (_, i) => {
    const id = (0x10000000 + i * 7919).toString(16);
    return Rule.fromPartial({
      name: `firewall/ipv4/tables/filter/chains/INPUT/rules/${id}`, id, chain: "INPUT", position: i + 1, protocol: "tcp",
      destinationPort: { ports: [{ first: 1000 + (i % 60000), last: 1000 + (i % 60000) }] }, target: { kind: TargetKind.TARGET_KIND_ACCEPT },
      text: `-A INPUT -p tcp -m tcp --dport ${1000 + (i % 60000)} -m comment --comment "rule ${i}" -j ACCEPT`.padEnd(70, "."),
      packets: i * 1_234_567, bytes: i * 987_654_321, managed: i % 3 !== 0, modeled: true,
    });
  });
}
