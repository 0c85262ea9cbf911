import { ServerError } from "../errors.js";
import { normalizeRange } from "./element.js";
import { validateIpsetName } from "../names.js";
import { isModeledType, MAX_TIMEOUT_SECONDS, type IpsetDefinition } from "./ipset-model.js";

/** What a client asks for when creating a set, before validation and defaults. */
export type DefinitionInput = IpsetDefinition;

/** How far a managed hash set grows by default (see IpsetDefinition.growLimit). */
export const DEFAULT_GROW_LIMIT = 16_777_216;
const MAX_MAXELEM = 1 << 28;

/** Checks a create request against what the type accepts, and fills the kernel's defaults explicitly. */
export function validateDefinition(input: DefinitionInput): IpsetDefinition {
  validateIpsetName(input.name);
  if (!isModeledType(input.typeName)) {
    throw new ServerError("INVALID_IPSET_TYPE", `type "${input.typeName}" cannot be created here; use one of hash:ip, hash:net, hash:ip,port, hash:net,port, bitmap:ip, list:set`, { field: "ipset.type" });
  }
  if (input.timeout !== undefined) validateTimeout(input.timeout, "ipset.default_timeout");
  const refuse = (field: string, what: string): never => {
    throw new ServerError("INVALID_IPSET_OPTION", `${what} is not an option of ${input.typeName} sets; leave ${field} unset`, { field });
  };
  const base = { name: input.name, typeName: input.typeName, comments: input.comments, ...(input.timeout === undefined ? {} : { timeout: input.timeout }) };
  const refuseGrowth = (): void => {
    if (input.autoGrow === true) refuse("ipset.auto_grow", "growth");
    if (input.growLimit !== undefined) refuse("ipset.grow_limit", "grow_limit");
  };
  switch (input.typeName) {
    case "bitmap:ip": {
      if (input.family === "inet6") throw new ServerError("INVALID_IPSET_OPTION", "bitmap:ip sets hold IPv4 addresses only; use hash:ip for IPv6", { field: "ipset.family" });
      if (input.hashsize !== undefined) refuse("ipset.hashsize", "hashsize");
      if (input.maxelem !== undefined) refuse("ipset.maxelem", "maxelem");
      refuseGrowth();
      if (input.range === undefined || input.range === "") {
        throw new ServerError("INVALID_IPSET_OPTION", "bitmap:ip sets need a range, e.g. 192.0.2.0-192.0.2.255 or 192.0.2.0/24", { field: "ipset.range" });
      }
      return { ...base, range: normalizeRange(input.range) };
    }
    case "list:set": {
      if (input.family !== undefined) refuse("ipset.family", "family");
      if (input.hashsize !== undefined) refuse("ipset.hashsize", "hashsize");
      if (input.range !== undefined) refuse("ipset.range", "range");
      refuseGrowth();
      const size = input.maxelem ?? 8;
      checkBounds(size, 1, 65_536, "ipset.maxelem");
      return { ...base, maxelem: size };
    }
    default: {
      if (input.range !== undefined) refuse("ipset.range", "range");
      const hashsize = input.hashsize ?? 1024;
      checkBounds(hashsize, 64, 1 << 26, "ipset.hashsize");
      const maxelem = input.maxelem ?? 65_536;
      checkBounds(maxelem, 1, MAX_MAXELEM, "ipset.maxelem");
      const growLimit = input.growLimit ?? Math.max(DEFAULT_GROW_LIMIT, maxelem);
      checkBounds(growLimit, maxelem, MAX_MAXELEM, "ipset.grow_limit");
      return { ...base, family: input.family ?? "inet", hashsize, maxelem, autoGrow: input.autoGrow ?? true, growLimit };
    }
  }
}

export function validateTimeout(seconds: number, field: string): void {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_TIMEOUT_SECONDS) {
    throw new ServerError("INVALID_TIMEOUT", `${field} must be a whole number of seconds from 0 to ${MAX_TIMEOUT_SECONDS}`, { field, value: String(seconds) });
  }
}

/** Whether a managed set grows when a batch would pass maxelem (hash types, unless switched off). */
export function growsAutomatically(definition: IpsetDefinition): boolean {
  return definition.typeName.startsWith("hash:") && definition.autoGrow !== false;
}

/**
 * The definition of a set grown to hold `needed` entries: maxelem doubled until it does (at most growLimit), and
 * hashsize scaled alike, so the kernel need not rehash its way up from a small table.
 */
export function grownDefinition(definition: IpsetDefinition, needed: number): IpsetDefinition {
  const from = definition.maxelem ?? 65_536;
  const limit = definition.growLimit ?? Math.max(DEFAULT_GROW_LIMIT, from);
  let maxelem = from;
  while (maxelem < needed) maxelem *= 2;
  maxelem = Math.min(maxelem, limit);
  const hashsize = Math.min(1 << 26, Math.round((definition.hashsize ?? 1024) * (maxelem / from)));
  return { ...definition, maxelem, hashsize };
}

function checkBounds(value: number, min: number, max: number, field: string): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ServerError("INVALID_IPSET_OPTION", `${field} must be from ${min} to ${max}`, { field, value: String(value) });
  }
}

/** Whether two definitions are interchangeable for `ipset swap` and for receiving imported entries. */
export function compatible(a: IpsetDefinition, b: IpsetDefinition): boolean {
  return a.typeName === b.typeName && (a.family ?? "inet") === (b.family ?? "inet");
}

/** A definition's type (and family) for messages. */
export function describeDefinition(definition: IpsetDefinition): string {
  return definition.family === undefined ? definition.typeName : `${definition.typeName} family ${definition.family}`;
}
