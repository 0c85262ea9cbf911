import type { DescField } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";
import { ServerError } from "../errors.js";
import type { HttpRoute } from "./http-rules.js";

/** A route compiled for matching request paths. */
export interface CompiledRoute {
  readonly route: HttpRoute;
  readonly pattern: RegExp;
  /** For each capture group: the request field it belongs to. */
  readonly captures: readonly string[];
}

export function compileRoute(route: HttpRoute): CompiledRoute {
  const captures: string[] = [];
  let source = "";
  for (const segment of route.segments) {
    if (segment.kind === "literal") {
      source += escape(segment.text);
      continue;
    }
    source += segment.parts.map((part) => {
      if ("literal" in part) return escape(part.literal);
      captures.push(segment.field);
      return "([^/]+)";
    }).join("/");
  }
  return { route, pattern: new RegExp(`^${source}$`), captures };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The path's resource-name fields: `/v1/firewall/ipv4/tables/filter/chains/INPUT` → parent
 * "firewall/ipv4/tables/filter/chains/INPUT". Each `*` takes one percent-decoded path segment (an entry such as
 * 192.0.2.0/24 is written 192.0.2.0%2F24).
 */
export function pathFields(compiled: CompiledRoute, match: RegExpExecArray): Record<string, string> {
  const values = compiled.captures.map((field, i) => decodeSegment(match[i + 1]!, field));
  const fields: Record<string, string> = {};
  let next = 0;
  for (const segment of compiled.route.segments) {
    if (segment.kind !== "variable") continue;
    fields[segment.field] = segment.parts.map((part) => ("literal" in part ? part.literal : values[next++]!)).join("/");
  }
  return fields;
}

/** One path segment, percent-decoded; text that is not percent-encoded UTF-8 (`%zz`, `%FF`, `%ED%A0%80`) is refused. */
function decodeSegment(text: string, field: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new ServerError("MALFORMED_REQUEST", `the path segment "${text.slice(0, 100)}" (part of ${field}) is not valid percent-encoding of UTF-8 text; write each byte outside [A-Za-z0-9-._~] as %XX of its UTF-8 encoding`, { field });
  }
}

/**
 * Query parameters as the JSON values of the request's fields (numbers and booleans from their text), so that the
 * same schema checks them as a body would be checked; repeated fields take repeated parameters.
 */
export function queryFields(fields: readonly DescField[], query: Record<string, unknown>): Record<string, unknown> {
  const byName = new Map(fields.map((field) => [field.jsonName, field]));
  const out: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(query)) {
    const field = byName.get(name);
    if (field === undefined) {
      out[name] = raw; // refused by the schema, which names it
      continue;
    }
    const values = (Array.isArray(raw) ? raw : [raw]).map((value) => (typeof value === "string" ? convert(field, value) : value));
    out[name] = field.fieldKind === "list" ? values : values[values.length - 1];
  }
  return out;
}

function convert(field: DescField, text: string): unknown {
  const scalar = field.fieldKind === "scalar" || (field.fieldKind === "list" && field.listKind === "scalar") ? field.scalar : undefined;
  switch (scalar) {
    case ScalarType.BOOL:
      return text === "true" ? true : text === "false" ? false : text;
    case ScalarType.INT32:
    case ScalarType.UINT32:
    case ScalarType.SINT32:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text;
    default:
      return text;
  }
}

/** A request the schema refused, as the error clients see. */
export function invalidRequest(where: string, message: string): ServerError {
  return new ServerError("INVALID_REQUEST", `${where}: ${message}`, { field: where });
}
