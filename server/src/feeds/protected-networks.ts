import { createHash } from "node:crypto";
import { overlap, parseNetworkCanonical, type Network } from "../addresses.js";
import type { Allowlist } from "../jails/allowlist.js";

/**
 * What no feed may block on this host: the host allowlist's live entries and the firewall's management addresses.
 * A listed entry that overlaps one of them (lies inside it, or holds it) is left out, as the fleet leaves out a
 * shared ban that would (fleet-applier.ts): a /8 on a list must not cut off the monitoring host inside it.
 */
export class ProtectedNetworks {
  readonly #ipv4: readonly Network[];
  readonly #ipv6: readonly Network[];
  /** The IPv4 networks as [first, last] address values, pairwise. */
  readonly #ipv4Ranges: Float64Array;
  /** A digest of the networks: the sets were filtered with another set of them when it differs. */
  readonly fingerprint: string;

  constructor(networks: Iterable<string>) {
    const parsed = new Map<string, Network>();
    for (const text of networks) {
      const network = parseNetworkCanonical(text);
      if (!("problem" in network)) parsed.set(network.network, network);
    }
    const all = [...parsed.values()];
    this.#ipv4 = all.filter((network) => network.address.kind() === "ipv4");
    this.#ipv6 = all.filter((network) => network.address.kind() === "ipv6");
    this.#ipv4Ranges = Float64Array.from(this.#ipv4.flatMap((network) => {
      const first = network.address.toByteArray().reduce((value, byte) => value * 256 + byte, 0);
      return [first, first + 2 ** (32 - network.prefix) - 1];
    }));
    this.fingerprint = createHash("sha256").update([...parsed.keys()].sort().join("\n")).digest("hex").slice(0, 32);
  }

  /** Now: the allowlist's entries that have not expired, and the management addresses from the configuration. */
  static of(allowlist: Allowlist, managementAddresses: readonly string[], now = Date.now()): ProtectedNetworks {
    return new ProtectedNetworks([...allowlist.list(now).map((row) => row.network), ...managementAddresses]);
  }

  /**
   * Whether the IPv4 addresses first..last (as values) share one with a protected network: the cheap test a list's
   * million entries take; only those it does not rule out are looked at with `protects`.
   */
  nearIpv4(first: number, last: number): boolean {
    const ranges = this.#ipv4Ranges;
    for (let i = 0; i < ranges.length; i += 2) if (first <= ranges[i + 1]! && ranges[i]! <= last) return true;
    return false;
  }

  /** Whether a network of the list overlaps a protected one. */
  protects(network: Network): boolean {
    const candidates = network.address.kind() === "ipv4" ? this.#ipv4 : this.#ipv6;
    for (const protectedNetwork of candidates) if (overlap(protectedNetwork, network)) return true;
    return false;
  }
}
