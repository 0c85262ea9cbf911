import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import * as anyMessages from "../gen/google/protobuf/any.js";
import * as emptyMessages from "../gen/google/protobuf/empty.js";
import * as timestampMessages from "../gen/google/protobuf/timestamp.js";
import * as statusMessages from "../gen/google/rpc/status.js";
import * as errorDetailMessages from "../gen/google/rpc/error_details.js";
import * as commonMessages from "../gen/portcullis/v1/common.js";
import * as ipsetMessages from "../gen/portcullis/v1/ipset.js";
import * as firewallMessages from "../gen/portcullis/v1/firewall.js";
import * as eventMessages from "../gen/portcullis/v1/events.js";
import * as jailMessages from "../gen/portcullis/v1/jail.js";
import { decodeMessage, type MessageDecoder } from "./decode.js";
import { encodeMessage, type MessageEncoder } from "./encode.js";

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

/** Generated modules by protobuf package; a message `A.B` is exported as `A_B`. */
const MODULES: Record<string, readonly object[]> = {
  "google.protobuf": [anyMessages, emptyMessages, timestampMessages],
  "google.rpc": [statusMessages, errorDetailMessages],
  "portcullis.v1": [commonMessages, ipsetMessages, firewallMessages, eventMessages, jailMessages],
};

let methodTypes: Map<string, { request: MessageFns; response: MessageFns }> | undefined;

/** Method path → the generated functions of its request and response messages, from the contract's descriptor set. */
function typesOfMethods(): Map<string, { request: MessageFns; response: MessageFns }> {
  if (methodTypes !== undefined) return methodTypes;
  // Resolved by package name (a self-reference), so that it is found from a bundle of this code too.
  const file = createRequire(import.meta.url).resolve("@portcullis/sdk/gen/portcullis.binpb");
  const set = fromBinary(FileDescriptorSetSchema, readFileSync(file));
  const messageFns = (fullName: string): MessageFns => {
    const name = fullName.replace(/^\./, "");
    for (const [pkg, modules] of Object.entries(MODULES)) {
      if (!name.startsWith(`${pkg}.`)) continue;
      const exported = name.slice(pkg.length + 1).replaceAll(".", "_");
      for (const module of modules) {
        const fns = (module as Record<string, unknown>)[exported] as Partial<MessageFns> | undefined;
        if (typeof fns?.encode === "function" && typeof fns.decode === "function") return fns as MessageFns;
      }
    }
    throw new Error(`no generated code for message ${name}; regenerate (npm run generate)`);
  };
  methodTypes = new Map();
  for (const file of set.file) {
    for (const service of file.service) {
      for (const method of service.method) {
        methodTypes.set(`/${file.package}.${service.name}/${method.name}`, { request: messageFns(method.inputType), response: messageFns(method.outputType) });
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
export function withFastEncoding<D extends Record<string, MethodDefinition>>(definition: D): D {
  const types = typesOfMethods();
  const fast: Record<string, MethodDefinition> = {};
  for (const [key, method] of Object.entries(definition)) {
    const found = types.get(method.path);
    if (found === undefined) throw new Error(`method ${method.path} is not in the contract's descriptor set; regenerate (npm run generate)`);
    fast[key] = {
      ...method,
      requestSerialize: (value: unknown) => encodeMessage(found.request, value),
      requestDeserialize: (bytes: Buffer) => decodeMessage(found.request, bytes),
      responseDeserialize: (bytes: Buffer) => decodeMessage(found.response, bytes),
      responseSerialize: (value: unknown) => encodeMessage(found.response, value),
    };
  }
  return fast as D;
}
