import { readFileSync } from "node:fs";
import { createFileRegistry, fromBinary, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceDefinition } from "@grpc/grpc-js";
import type { Operation, StreamOperation } from "./operation.js";
import { shippedFile } from "../code-files.js";

/** One service of the contract: its generated definition and the operations behind its methods, served by both transports. */
export interface ContractService {
  readonly name: string;
  readonly definition: ServiceDefinition;
  readonly operations: Readonly<Record<string, Operation<never, unknown> | StreamOperation<never, unknown>>>;
}

let descriptorSet: Buffer | undefined;
let registry: FileRegistry | undefined;

/**
 * The contract's descriptor set (built by `npm run generate`, with comments and HTTP annotations), read once: gRPC
 * reflection serves it, the REST gateway takes its routes from it, undecodable requests are named by it.
 */
export function contractDescriptorSet(): Buffer {
  descriptorSet ??= readFileSync(shippedFile("gen/portcullis.binpb"));
  return descriptorSet;
}

/** The contract's descriptors as a registry (the served one, or those of another descriptor set file). */
export function contractRegistry(file?: string): FileRegistry {
  if (file !== undefined) return createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(file)));
  registry ??= createFileRegistry(fromBinary(FileDescriptorSetSchema, contractDescriptorSet()));
  return registry;
}
