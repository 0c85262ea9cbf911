// Writes openapi/portcullis.v1.yaml, the REST projection of the contract, from the descriptor set that
// `npm run generate` builds: one operation per RPC at its `google.api.http` route, schemas in the proto3 JSON mapping
// (as the gateway reads and writes them), the proto comments as descriptions, problem JSON (RFC 9457) for errors.
// Run by scripts/generate.sh; never edit the output by hand.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { stringify } from "yaml";
import { ScalarType, type DescEnum, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { commentsOf, loadContract, openApiPath, type HttpRoute } from "../server/src/rest/http-rules.js";

// Arguments: the descriptor set, the output file.
const [descriptorSet = "sdk/src/gen/portcullis.binpb", output = "openapi/portcullis.v1.yaml"] = process.argv.slice(2);
const out = resolve(output);
const { routes } = loadContract(resolve(descriptorSet));

type Schema = Record<string, unknown>;
const schemas: Record<string, Schema> = {};

const SCALARS: Record<number, Schema> = {
  [ScalarType.STRING]: { type: "string" },
  [ScalarType.BOOL]: { type: "boolean" },
  [ScalarType.BYTES]: { type: "string", contentEncoding: "base64" },
  [ScalarType.DOUBLE]: { type: "number" },
  [ScalarType.FLOAT]: { type: "number" },
  [ScalarType.INT32]: { type: "integer", format: "int32" },
  [ScalarType.SINT32]: { type: "integer", format: "int32" },
  [ScalarType.SFIXED32]: { type: "integer", format: "int32" },
  [ScalarType.UINT32]: { type: "integer", format: "int32", minimum: 0 },
  [ScalarType.FIXED32]: { type: "integer", format: "int32", minimum: 0 },
  // Written as JSON numbers (exact up to 2^53); read as numbers or decimal strings.
  [ScalarType.INT64]: { type: ["integer", "string"], format: "int64" },
  [ScalarType.SINT64]: { type: ["integer", "string"], format: "int64" },
  [ScalarType.SFIXED64]: { type: ["integer", "string"], format: "int64" },
  [ScalarType.UINT64]: { type: ["integer", "string"], format: "int64" },
  [ScalarType.FIXED64]: { type: ["integer", "string"], format: "int64" },
};

function described(schema: Schema, text: string | undefined): Schema {
  return text === undefined ? schema : { ...schema, description: text };
}

function enumRef(desc: DescEnum): Schema {
  if (schemas[desc.typeName] === undefined) {
    schemas[desc.typeName] = described({ type: "string", enum: desc.values.map((value) => value.name) }, commentsOf(desc.file, pathOf(desc)));
  }
  return { $ref: `#/components/schemas/${desc.typeName}` };
}

function messageRef(desc: DescMessage): Schema {
  switch (desc.typeName) {
    case "google.protobuf.Timestamp":
      return { type: "string", format: "date-time" };
    case "google.protobuf.Empty":
      return { type: "object", additionalProperties: false };
  }
  if (schemas[desc.typeName] === undefined) {
    schemas[desc.typeName] = {}; // placeholder: recursive messages
    schemas[desc.typeName] = messageSchema(desc, new Set());
  }
  return { $ref: `#/components/schemas/${desc.typeName}` };
}

function fieldSchema(field: DescField): Schema {
  const single = (): Schema => {
    switch (field.fieldKind) {
      case "scalar":
        return SCALARS[field.scalar]!;
      case "enum":
        return enumRef(field.enum);
      case "message":
        return messageRef(field.message);
      case "list":
        return field.listKind === "scalar" ? SCALARS[field.scalar]! : field.listKind === "enum" ? enumRef(field.enum) : messageRef(field.message);
      case "map":
        return {};
    }
  };
  if (field.fieldKind === "list") return { type: "array", items: single() };
  if (field.fieldKind === "map") {
    const value = field.mapKind === "scalar" ? SCALARS[field.scalar]! : field.mapKind === "enum" ? enumRef(field.enum) : messageRef(field.message);
    return { type: "object", additionalProperties: value };
  }
  return single();
}

/** A message in the proto3 JSON mapping: lowerCamelCase names; unknown fields are refused. */
function messageSchema(desc: DescMessage, leaveOut: ReadonlySet<string>): Schema {
  const properties: Record<string, Schema> = {};
  for (const field of desc.fields) {
    if (leaveOut.has(field.name)) continue;
    properties[field.jsonName] = described(fieldSchema(field), commentsOf(desc.file, pathOf(field)));
  }
  return described({ type: "object", additionalProperties: false, properties }, commentsOf(desc.file, pathOf(desc)));
}

/** The source-info path of a descriptor (messages, enums and fields at any nesting; services' methods). */
function pathOf(desc: DescMessage | DescEnum | DescField): number[] {
  if (desc.kind === "field") return [...pathOf(desc.parent), 2, desc.parent.fields.indexOf(desc)];
  const parent = desc.parent;
  if (parent === undefined) {
    return desc.kind === "message" ? [4, desc.file.messages.indexOf(desc)] : [5, desc.file.enums.indexOf(desc)];
  }
  return desc.kind === "message" ? [...pathOf(parent), 3, parent.nestedMessages.indexOf(desc)] : [...pathOf(parent), 4, parent.nestedEnums.indexOf(desc)];
}

const PROBLEM = {
  description: "An error (RFC 9457 problem details), with the gRPC status name and the stable reason.",
  content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
};

function operation(route: HttpRoute): Schema {
  const service = route.descriptor.parent;
  const methodPath = [6, service.file.services.indexOf(service), 2, service.methods.indexOf(route.descriptor)];
  const description = commentsOf(service.file, methodPath);
  const pathFields = new Set(route.segments.flatMap((segment) => (segment.kind === "variable" ? [segment.field] : [])));
  const parameters: Schema[] = route.segments.flatMap((segment) =>
    segment.kind === "variable"
      ? segment.parts.flatMap((part) => ("parameter" in part ? [{ name: part.parameter, in: "path", required: true, schema: { type: "string" } }] : []))
      : []);
  let requestBody: Schema | undefined;
  if (route.body === "*") {
    const name = pathFields.size === 0 ? route.request.typeName : `${route.request.typeName}.Body`;
    if (pathFields.size === 0) messageRef(route.request);
    else schemas[name] ??= messageSchema(route.request, pathFields);
    requestBody = { required: false, content: { "application/json": { schema: { $ref: `#/components/schemas/${name}` } } } };
  } else {
    for (const field of route.request.fields) {
      if (pathFields.has(field.name)) continue;
      parameters.push(described({ name: field.jsonName, in: "query", required: false, schema: fieldSchema(field), ...(field.fieldKind === "list" ? { style: "form", explode: true } : {}) }, commentsOf(route.request.file, pathOf(field))));
    }
  }
  // A download's body is the file itself; ExportEvents, the one download, makes CSV or JSON lines.
  const success = route.download
    ? {
        description: `A download (Content-Disposition: attachment): the file itself, in the format asked for (gRPC streams it as ${route.response.name} pieces).`,
        content: { "text/csv": { schema: { type: "string" } }, "application/x-ndjson": { schema: { type: "string" } } },
      }
    : route.streaming
    ? {
        description: `Server-Sent Events: one \`event\` per ${route.response.name}, its \`id\` the sequence; reconnect with \`Last-Event-ID\` to resume.`,
        content: { "text/event-stream": { schema: { type: "string" } } },
      }
    : { description: route.response.name, content: { "application/json": { schema: messageRef(route.response) } } };
  return {
    operationId: route.method,
    tags: [route.service.split(".").pop()],
    summary: description?.split("\n")[0],
    ...(description === undefined ? {} : { description }),
    ...(parameters.length === 0 ? {} : { parameters }),
    ...(requestBody === undefined ? {} : { requestBody }),
    responses: { "200": success, "4XX": PROBLEM, "5XX": PROBLEM },
  };
}

const paths: Record<string, Record<string, Schema>> = {};
for (const route of routes) (paths[openApiPath(route)] ??= {})[route.verb] = operation(route);
paths["/healthz"] = { get: { operationId: "Healthz", tags: ["Health"], summary: "The process is up.", responses: { "200": { description: "ok", content: { "text/plain": { schema: { type: "string" } } } }, "4XX": PROBLEM } } };
paths["/readyz"] = {
  get: {
    operationId: "Readyz",
    tags: ["Health"],
    summary: "The kernel tools answer (and fail2ban, when configured).",
    responses: { "200": { description: "ready", content: { "application/json": { schema: { $ref: "#/components/schemas/Readiness" } } } }, "4XX": PROBLEM, "503": { description: "not ready", content: { "application/json": { schema: { $ref: "#/components/schemas/Readiness" } } } } },
  },
};

const document = {
  openapi: "3.1.0",
  info: {
    title: "Portcullis",
    version: "v1",
    description: "REST projection of the portcullis.v1 gRPC contract (generated from proto/ by scripts/generate-openapi.ts). Every call needs a client certificate from the server's CA (mutual TLS); its CN is the principal and its O the role (viewer, operator, admin).",
    license: { name: "Proprietary", identifier: "LicenseRef-Proprietary" },
  },
  servers: [{ url: "https://127.0.0.1:8443", description: "the default REST address" }],
  security: [{ mutualTLS: [] }],
  tags: [
    ...[...new Map(routes.map((route) => [route.service, route.descriptor.parent])).values()].map((service) => ({
      name: service.name,
      description: commentsOf(service.file, [6, service.file.services.indexOf(service)]) ?? service.name,
    })),
    { name: "Health", description: "Liveness and readiness, for load balancers and health checks." },
  ],
  paths,
  components: {
    securitySchemes: { mutualTLS: { type: "mutualTLS", description: "A client certificate issued by `portcullis certs issue`." } },
    schemas: {
      ...Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b))),
      Problem: {
        type: "object",
        required: ["type", "title", "status", "code", "reason", "detail"],
        properties: {
          type: { type: "string", description: "A URI naming the error: urn:portcullis:error:<reason>." },
          title: { type: "string", description: "The gRPC status name in words." },
          status: { type: "integer", description: "The HTTP status (grpc-gateway's mapping of the gRPC code)." },
          code: { type: "string", description: "The gRPC status name, e.g. FAILED_PRECONDITION." },
          reason: { type: "string", description: "The stable machine-readable reason, e.g. IPSET_IN_USE." },
          detail: { type: "string", description: "What went wrong and what to change." },
          metadata: { type: "object", additionalProperties: { type: "string" }, description: "e.g. the field and value at fault." },
        },
      },
      Readiness: {
        type: "object",
        required: ["ready", "checks"],
        properties: { ready: { type: "boolean" }, checks: { type: "object", additionalProperties: { type: "string" } } },
      },
    },
  },
};

mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `# Generated from proto/ by scripts/generate-openapi.ts (npm run generate). Do not edit.\n${stringify(document, { lineWidth: 0, aliasDuplicateObjects: false })}`);
