import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { parse as parseYaml } from "yaml";
import { contract, openApiPath, type HttpRoute } from "../../server/src/rest/http-rules.js";

interface SpecResponse {
  readonly content?: Record<string, { schema?: object }>;
}

/** One operation of openapi/portcullis.v1.yaml. */
export interface SpecOperation {
  readonly operationId: string;
  /** The spec's path, e.g. "/v1/ipsets/{ipset}:flush". */
  readonly path: string;
  readonly verb: string;
  /** Whether the request has a JSON body (otherwise its fields are path and query parameters). */
  readonly hasBody: boolean;
  readonly responses: Readonly<Record<string, SpecResponse>>;
}

const document = parseYaml(readFileSync(resolve(import.meta.dirname, "../../openapi/portcullis.v1.yaml"), "utf8")) as {
  paths: Record<string, Record<string, { operationId?: string; requestBody?: object; responses?: Record<string, SpecResponse> }>>;
};
const ajv = new Ajv2020({ strict: false });
addFormats.default(ajv);
// int64 is a decimal string in proto3 JSON (or a number, which formats do not check); other text would become NaN.
ajv.addFormat("int32", true).addFormat("int64", /^-?\d{1,19}$/);
ajv.addSchema(document, "openapi");

/** Every operation the spec declares, in the spec's order. */
export const specOperations: readonly SpecOperation[] = Object.entries(document.paths).flatMap(([path, item]) =>
  Object.entries(item).flatMap(([verb, operation]) =>
    operation.operationId === undefined ? [] : [{ operationId: operation.operationId, path, verb, hasBody: operation.requestBody !== undefined, responses: operation.responses ?? {} }]));

/**
 * The spec operation a concrete request (`POST`, "/v1/ipsets/spam:flush") reaches, RPC or not (/healthz): of the
 * paths it matches, the most literal one ("/v1/ipsets/{ipset}:flush" rather than a `{parameter}` taking "spam:flush").
 */
export function operationOfRequest(method: string, path: string): SpecOperation | undefined {
  const bare = path.split("?")[0]!;
  const literalLength = (specPath: string): number => specPath.replace(/\{[a-z]+\}/g, "").length;
  return specOperations
    .filter((operation) => operation.verb === method.toLowerCase() && patternOf(operation.path).test(bare))
    .sort((a, b) => literalLength(b.path) - literalLength(a.path))[0];
}

/** The contract route (the RPC) a concrete request reaches, if any. */
export function routeOfRequest(method: string, path: string): HttpRoute | undefined {
  const operation = operationOfRequest(method, path);
  return contract().routes.find((route) => route.verb === operation?.verb && openApiPath(route) === operation.path);
}

/**
 * What the spec says an operation answers with a status: its media type and a validator of the body against that
 * response's schema. The exact status wins over its range ("404" over "4XX"); undefined when the spec declares neither.
 */
export function responseOf(operation: SpecOperation, status: number): { mediaType: string; validate: ValidateFunction } | undefined {
  const key = [String(status), `${String(status)[0]}XX`].find((candidate) => operation.responses[candidate] !== undefined);
  if (key === undefined) return undefined;
  const [mediaType] = Object.keys(operation.responses[key]!.content ?? {});
  if (mediaType === undefined) return undefined;
  const at = `openapi#/paths/${pointer(operation.path)}/${operation.verb}/responses/${key}/content/${pointer(mediaType)}/schema`;
  return { mediaType, validate: ajv.getSchema(at) ?? ajv.compile({ $ref: at }) };
}

/** A validator for one of the spec's component schemas, e.g. "portcullis.v1.Event". */
export function schemaValidator(name: string): ValidateFunction {
  const at = `openapi#/components/schemas/${pointer(name)}`;
  return ajv.getSchema(at) ?? ajv.compile({ $ref: at });
}

/** "/v1/ipsets/{ipset}:flush" → a pattern that each `{parameter}` matches as one path segment. */
function patternOf(specPath: string): RegExp {
  return new RegExp(`^${specPath.split(/\{[a-z]+\}/).map((literal) => literal.replace(/[.*+?^$()|[\]\\{}]/g, "\\$&")).join("[^/]+")}$`);
}

/** A JSON pointer token. */
function pointer(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}
