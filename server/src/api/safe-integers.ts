import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { ServerError } from "../errors.js";

/**
 * 64-bit integers of the contract are JavaScript numbers in the server (ts-proto `forceLong=number`): exact up to
 * 2^53 − 1. A request with a larger one is refused by range, naming the field, rather than rounded (REST) or failing to
 * decode (gRPC). The limits are in the proto comments of each such field.
 */
const WIDE: ReadonlySet<ScalarType> = new Set([ScalarType.INT64, ScalarType.SINT64, ScalarType.SFIXED64, ScalarType.UINT64, ScalarType.FIXED64]);
const UNSIGNED: ReadonlySet<ScalarType> = new Set([ScalarType.UINT64, ScalarType.FIXED64]);
const MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** Whether a message (or one it contains) has a 64-bit integer field, so that its requests need the check. */
export function hasWideIntegers(desc: DescMessage, seen: Set<DescMessage> = new Set()): boolean {
  if (seen.has(desc)) return false;
  seen.add(desc);
  return desc.fields.some((field) => {
    const scalar = scalarOf(field);
    if (scalar !== undefined) return WIDE.has(scalar);
    const message = messageOf(field);
    return message !== undefined && hasWideIntegers(message, seen);
  });
}

/**
 * INTEGER_OUT_OF_RANGE for the first 64-bit integer field of a request in proto3 JSON form (numbers, or decimal
 * strings as proto3 JSON writes them) that is not exact as a JavaScript number; undefined if there is none. `name`
 * spells a field for the caller's transport (the proto name for gRPC, the JSON name for REST); `prefix` starts the
 * path (e.g. "body").
 */
export function unsafeInteger(desc: DescMessage, json: unknown, name: (field: DescField) => string, prefix = ""): ServerError | undefined {
  if (!isObject(json)) return undefined;
  for (const field of desc.fields) {
    const value = json[field.jsonName] ?? json[field.name];
    if (value === undefined || value === null) continue;
    const path = prefix === "" ? name(field) : `${prefix}.${name(field)}`;
    const scalar = scalarOf(field);
    const message = messageOf(field);
    const items: Array<[string, unknown]> =
      field.fieldKind === "list" && Array.isArray(value) ? value.map((item, i) => [`${path}[${i}]`, item])
      : field.fieldKind === "map" && isObject(value) ? Object.entries(value).map(([key, item]) => [`${path}[${JSON.stringify(key)}]`, item])
      : [[path, value]];
    for (const [at, item] of items) {
      const refusal = scalar !== undefined && WIDE.has(scalar) ? outOfRange(at, item, UNSIGNED.has(scalar)) : message !== undefined ? unsafeInteger(message, item, name, at) : undefined;
      if (refusal !== undefined) return refusal;
    }
  }
  return undefined;
}

function outOfRange(path: string, value: unknown, unsigned: boolean): ServerError | undefined {
  let exact: bigint;
  if (typeof value === "number" && Number.isInteger(value)) exact = Number.isSafeInteger(value) ? BigInt(value) : value > 0 ? MAX + 1n : -MAX - 1n;
  else if (typeof value === "string" && /^-?\d{1,30}$/.test(value)) exact = BigInt(value);
  else return undefined; // not an integer: the schema (REST) or the decoder (gRPC) refuses it in its own words
  const least = unsigned ? 0n : -MAX;
  if (exact >= least && exact <= MAX) return undefined;
  const text = typeof value === "number" && !Number.isSafeInteger(value) ? `${value} (beyond what a JSON number holds exactly)` : String(value);
  return new ServerError("INTEGER_OUT_OF_RANGE", `${path} is ${text}; it must be from ${least} to ${MAX} (2^53 − 1)`, { field: path, value: String(value).slice(0, 40) });
}

function scalarOf(field: DescField): ScalarType | undefined {
  if (field.fieldKind === "scalar") return field.scalar;
  if (field.fieldKind === "list" && field.listKind === "scalar") return field.scalar;
  if (field.fieldKind === "map" && field.mapKind === "scalar") return field.scalar;
  return undefined;
}

function messageOf(field: DescField): DescMessage | undefined {
  if (field.fieldKind === "message") return field.message;
  if (field.fieldKind === "list" && field.listKind === "message") return field.message;
  if (field.fieldKind === "map" && field.mapKind === "message") return field.message;
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A kernel counter for a uint64 response field: saturated at 2^53 − 1, past which a number is not exact. */
export function saturated(count: number): number {
  return Math.min(count, Number.MAX_SAFE_INTEGER);
}
