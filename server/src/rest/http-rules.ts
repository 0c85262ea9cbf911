import { getExtension, hasExtension, ScalarType, type DescExtension, type DescFile, type DescMessage, type DescMethod, type FileRegistry } from "@bufbuild/protobuf";
import { contractRegistry } from "../api/contract.js";

/** One RPC's REST projection, from its `google.api.http` annotation in the contract. */
export interface HttpRoute {
  /** e.g. "portcullis.v1.JailService". */
  readonly service: string;
  /** e.g. "BanIp". */
  readonly method: string;
  readonly verb: "get" | "post" | "put" | "patch" | "delete";
  /** The annotation's template, e.g. "/v1/{jail=jails/*}:ban". */
  readonly template: string;
  /** "*" (the whole request is the JSON body) or "" (no body: fields come from the path and the query). */
  readonly body: string;
  readonly streaming: boolean;
  /**
   * A server stream of file pieces — messages with `content_type` and `data` (bytes), as google.api.HttpBody — that
   * REST serves as one download instead of Server-Sent Events.
   */
  readonly download: boolean;
  readonly request: DescMessage;
  readonly response: DescMessage;
  readonly descriptor: DescMethod;
  /** The path split into literal and variable parts. */
  readonly segments: readonly PathSegment[];
}

/**
 * A part of a path: literal text, or a variable — a request field holding a resource name whose pattern's `*`s are
 * path parameters named after the collection before them (`ipsets/*` → `ipset`).
 */
export type PathSegment =
  | { readonly kind: "literal"; readonly text: string }
  | { readonly kind: "variable"; readonly field: string; readonly parts: ReadonlyArray<{ readonly literal: string } | { readonly parameter: string }> };

/** Collection → the name of the path parameter for one of its members. */
const MEMBER: Readonly<Record<string, string>> = {
  ipsets: "ipset",
  entries: "entry",
  firewall: "family",
  tables: "table",
  chains: "chain",
  rules: "rule",
  jails: "jail",
  feeds: "feed",
  bouncers: "bouncer",
};

let loaded: { registry: FileRegistry; routes: HttpRoute[] } | undefined;

/** The contract's descriptor set (with the HTTP annotations and comments), and every RPC's route, in contract order. */
export function contract(): { registry: FileRegistry; routes: HttpRoute[] } {
  loaded ??= routesOf(contractRegistry());
  return loaded;
}

/** The routes of a descriptor set file (`buf build -o`). */
export function loadContract(file: string): { registry: FileRegistry; routes: HttpRoute[] } {
  return routesOf(contractRegistry(file));
}

function routesOf(registry: FileRegistry): { registry: FileRegistry; routes: HttpRoute[] } {
  const http = registry.getExtension("google.api.http");
  if (http === undefined) throw new Error("the descriptor set has no google.api.http extension; regenerate (npm run generate)");
  const routes: HttpRoute[] = [];
  for (const desc of registry) {
    if (desc.kind !== "service" || !desc.typeName.startsWith("portcullis.")) continue;
    for (const method of desc.methods) routes.push(routeOf(desc.typeName, method, http));
  }
  return { registry, routes };
}

function routeOf(service: string, method: DescMethod, http: DescExtension): HttpRoute {
  const options = method.proto.options;
  if (options === undefined || !hasExtension(options, http)) throw new Error(`${service}.${method.name} has no google.api.http annotation`);
  const rule = getExtension(options, http) as { pattern: { case: string | undefined; value?: unknown }; body: string };
  const verb = rule.pattern.case;
  if (verb !== "get" && verb !== "post" && verb !== "put" && verb !== "patch" && verb !== "delete") throw new Error(`${service}.${method.name}: unsupported HTTP rule ${verb}`);
  const template = String(rule.pattern.value);
  return {
    service,
    method: method.name,
    verb,
    template,
    body: rule.body,
    streaming: method.methodKind === "server_streaming",
    download: method.methodKind === "server_streaming" && isFilePiece(method.output),
    request: method.input,
    response: method.output,
    descriptor: method,
    segments: parseTemplate(template),
  };
}

/** Whether a message is a piece of a file: a string `content_type` and bytes `data`, as google.api.HttpBody. */
function isFilePiece(message: DescMessage): boolean {
  const field = (name: string) => message.fields.find((candidate) => candidate.name === name);
  const contentType = field("content_type");
  const data = field("data");
  return contentType?.fieldKind === "scalar" && contentType.scalar === ScalarType.STRING && data?.fieldKind === "scalar" && data.scalar === ScalarType.BYTES;
}

/** "/v1/{name=firewall/*\/tables/*}:export" → literal "/v1/", variable name (firewall, family, tables, table), literal ":export". */
export function parseTemplate(template: string): PathSegment[] {
  const segments: PathSegment[] = [];
  const pattern = /\{(\w+)=([^}]+)\}/g;
  let last = 0;
  for (const match of template.matchAll(pattern)) {
    if (match.index > last) segments.push({ kind: "literal", text: template.slice(last, match.index) });
    const words = match[2]!.split("/");
    const parts = words.map((word, i) => {
      if (word !== "*") return { literal: word };
      const collection = words[i - 1] ?? "";
      const parameter = MEMBER[collection];
      if (parameter === undefined) throw new Error(`${template}: no parameter name for a member of ${collection}`);
      return { parameter };
    });
    segments.push({ kind: "variable", field: match[1]!, parts });
    last = match.index + match[0].length;
  }
  if (last < template.length) segments.push({ kind: "literal", text: template.slice(last) });
  return segments;
}

/** The OpenAPI path of a route: "/v1/ipsets/{ipset}:flush". */
export function openApiPath(route: HttpRoute): string {
  return route.segments.map((segment) =>
    segment.kind === "literal" ? segment.text : segment.parts.map((part) => ("literal" in part ? part.literal : `{${part.parameter}}`)).join("/")).join("");
}

/** Leading comments of a descriptor, from the descriptor set's source info (trimmed, one space-joined paragraph per blank line). */
export function commentsOf(file: DescFile, path: readonly number[]): string | undefined {
  const location = file.proto.sourceCodeInfo?.location.find((candidate) => candidate.path.length === path.length && candidate.path.every((value, i) => value === path[i]));
  const text = location?.leadingComments?.trim();
  if (text === undefined || text === "") return undefined;
  return text.split("\n").map((line) => line.trim()).join("\n");
}
