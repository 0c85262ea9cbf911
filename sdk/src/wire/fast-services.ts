import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { generatedMessage } from "./generated-messages.js";
import { decodeMessage, decodeWithLazyField, type LazyField, type MessageDecoder } from "./decode.js";
import { encodeMessage, encodeWithKeptItems, type KeptItems, type MessageEncoder } from "./encode.js";

/** What a generated grpc-js method definition holds (ts-proto `outputServices=grpc-js`). */
interface MethodDefinition {
  readonly path: string;
  readonly requestSerialize: (value: never) => Buffer;
  readonly responseSerialize: (value: never) => Buffer;
  // Optional only for callers' narrower types (test/harness/grpc-clients.ts); generated definitions have both.
  readonly requestDeserialize?: (bytes: Buffer) => unknown;
  readonly responseDeserialize?: (bytes: Buffer) => unknown;
}

/** The generated functions of a message that the fast serializers use. */
type MessageFns = MessageEncoder<unknown> & MessageDecoder<unknown>;

interface MethodTypes {
  readonly request: MessageFns;
  readonly response: MessageFns;
  /** The response's fields: name (as generated) → number, item type name for message fields, repeated. */
  readonly responseFields: ReadonlyMap<string, { number: number; typeName: string; repeated: boolean }>;
  /** The same of the request's fields. */
  readonly requestFields: ReadonlyMap<string, { number: number; typeName: string; repeated: boolean }>;
}

let methodTypes: Map<string, MethodTypes> | undefined;

/** Method path → the generated functions of its request and response messages, from the contract's descriptor set. */
function typesOfMethods(): Map<string, MethodTypes> {
  if (methodTypes !== undefined) return methodTypes;
  // Resolved by package name (a self-reference), so that it is found from a bundle of this code too.
  const file = createRequire(import.meta.url).resolve("@portcullis/sdk/gen/portcullis.binpb");
  const set = fromBinary(FileDescriptorSetSchema, readFileSync(file));
  const messageFns = (fullName: string): MessageFns => {
    const fns = generatedMessage(fullName.replace(/^\./, "")) as unknown as Partial<MessageFns>;
    if (typeof fns.encode !== "function" || typeof fns.decode !== "function") throw new Error(`no generated code for message ${fullName}; regenerate (npm run generate)`);
    return fns as MessageFns;
  };
  const messages = new Map<string, (typeof set.file)[number]["messageType"][number]>(set.file.flatMap((file) => file.messageType.map((message) => [`.${file.package}.${message.name}`, message] as const)));
  methodTypes = new Map();
  for (const file of set.file) {
    for (const service of file.service) {
      for (const method of service.method) {
        const fields = (type: string) => new Map((messages.get(type)?.field ?? []).map((field) => [field.jsonName, { number: field.number, typeName: field.typeName, repeated: field.label === 3 }] as const));
        methodTypes.set(`/${file.package}.${service.name}/${method.name}`, {
          request: messageFns(method.inputType),
          response: messageFns(method.outputType),
          requestFields: fields(method.inputType),
          responseFields: fields(method.outputType),
        });
      }
    }
  }
  return methodTypes;
}

/**
 * A generated service definition whose serializers encode with FastWriter (encodeMessage): byte for byte what the
 * generated ones produce, an order of magnitude faster for big messages (10k rules, 100k entries); and whose
 * deserializers decode with decodeMessage: the generated decode functions, reading strings without TextDecoder —
 * the same values (and errors), faster for messages of many strings.
 */
export function withFastEncoding<D extends Record<string, MethodDefinition>>(definition: D, options: FastEncodingOptions<D> = {}): D {
  const types = typesOfMethods();
  const fast: Record<string, MethodDefinition> = {};
  for (const [key, method] of Object.entries(definition)) {
    const found = types.get(method.path);
    if (found === undefined) throw new Error(`method ${method.path} is not in the contract's descriptor set; regenerate (npm run generate)`);
    const keptField = options.keptResponseItems?.[key];
    const kept = keptField === undefined ? undefined : keptItems(method.path, found, keptField);
    const lazyField = options.lazyRequestItems?.[key];
    const lazy = lazyField === undefined ? undefined : lazyItems(method.path, found, lazyField);
    fast[key] = {
      ...method,
      requestSerialize: (value: unknown) => encodeMessage(found.request, value),
      requestDeserialize: lazy === undefined ? (bytes: Buffer) => decodeMessage(found.request, bytes) : (bytes: Buffer) => decodeWithLazyField(found.request, bytes, lazy),
      responseDeserialize: (bytes: Buffer) => decodeMessage(found.response, bytes),
      responseSerialize: kept === undefined ? (value: unknown) => encodeMessage(found.response, value) : (value: unknown) => encodeWithKeptItems(found.response, value, kept),
    };
  }
  return fast as D;
}

export interface FastEncodingOptions<D> {
  /**
   * Per method (by its key in the definition): a repeated message field of the response whose items the server makes
   * once and never modifies afterwards, so that their encoded bytes can be kept and reused (see KeptItems).
   */
  readonly keptResponseItems?: { readonly [K in keyof D]?: string };
  /**
   * Per method: a repeated message field of the request that the server reads item by item, in order, and only with
   * `length` and `at(i)` (see LazyItems): its items are decoded when read, not all up front.
   */
  readonly lazyRequestItems?: { readonly [K in keyof D]?: string };
}

function lazyItems(path: string, types: MethodTypes, field: string): LazyField {
  const descriptor = types.requestFields.get(field);
  if (descriptor === undefined || !descriptor.repeated || descriptor.typeName === "") throw new Error(`${path}: the request has no repeated message field ${field}`);
  return { field, number: descriptor.number, item: generatedMessage(descriptor.typeName.replace(/^\./, "")) as unknown as MessageDecoder<unknown> };
}

function keptItems(path: string, types: MethodTypes, field: string): KeptItems {
  const descriptor = types.responseFields.get(field);
  if (descriptor === undefined || !descriptor.repeated || descriptor.typeName === "") throw new Error(`${path}: the response has no repeated message field ${field}`);
  if ([...types.responseFields.values()].some((other) => other.number < descriptor.number)) {
    throw new Error(`${path}: ${field} must have the response's lowest field number for its items' bytes to be reused`);
  }
  return { field, number: descriptor.number, item: generatedMessage(descriptor.typeName.replace(/^\./, "")) as unknown as MessageEncoder<unknown> };
}
