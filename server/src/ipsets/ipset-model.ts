/** Domain model of ipset sets and entries, independent of the wire (proto) and of the kernel tool's text. */

/** The set types Portcullis can create and validate elements for. */
export const MODELED_TYPES = ["hash:ip", "hash:net", "hash:ip,port", "hash:net,port", "bitmap:ip", "list:set"] as const;
export type ModeledType = (typeof MODELED_TYPES)[number];

export type Family = "inet" | "inet6";

/** ipset's largest timeout, in seconds: the kernel keeps it in milliseconds in an unsigned int. */
export const MAX_TIMEOUT_SECONDS = 2_147_483;

/** What `ipset create` needs, and what `ipset save` prints on a `create` line. */
export interface IpsetDefinition {
  readonly name: string;
  /** Kernel type string, e.g. "hash:ip"; may be a type we do not model (read-only sets). */
  readonly typeName: string;
  /** hash types only. */
  readonly family?: Family;
  readonly hashsize?: number;
  /** hash types: maxelem; list:set: size. */
  readonly maxelem?: number;
  /** Default timeout in seconds. Present = the set supports timeouts (0 = permanent by default). */
  readonly timeout?: number;
  readonly comments: boolean;
  /** bitmap:ip only: "FROM-TO" or CIDR, as given/printed. */
  readonly range?: string;
  /** Managed hash sets: grow instead of refusing a batch that would pass maxelem (not a kernel option). */
  readonly autoGrow?: boolean;
  /** The largest maxelem growth may reach (not a kernel option). */
  readonly growLimit?: number;
}

/** One element of a set as the kernel holds it. */
export interface KernelEntry {
  /** Normalized element text, as `ipset save` prints it. */
  readonly element: string;
  /** Remaining seconds (sets with timeout support); 0 or undefined = permanent. */
  readonly timeout?: number;
  readonly comment?: string;
}

/** A set as `ipset list -terse` describes it. */
export interface KernelIpset {
  readonly definition: IpsetDefinition;
  readonly memoryBytes: number;
  readonly references: number;
  readonly entryCount: number;
}

export function isModeledType(typeName: string): typeName is ModeledType {
  return (MODELED_TYPES as readonly string[]).includes(typeName);
}
