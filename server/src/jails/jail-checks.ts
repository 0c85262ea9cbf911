import { ServerError } from "../errors.js";
import { canonicalNetwork, formatAddress, overlaps, parseAddressStrict, parseNetworkCanonical } from "../addresses.js";
import { JAIL_NAME } from "../names.js";

/**
 * The checks of what callers hand the jail domain. Only validated strings it built itself go to fail2ban (which
 * unpickles whatever arrives): jail names match a strict pattern and addresses are parsed and printed canonically.
 */

/** The longest a bantime, a ban's own duration or an allowlist entry's timeout may be: ten years, in seconds. */
export const TEN_YEARS_SECONDS = 315_360_000;
/** The longest note a caller may attach (an allowlist entry's comment, a ban's reason). */
const MAX_NOTE = 200;

/** A note a caller attaches: at most MAX_NOTE characters, no control characters (it goes into events and logs). */
export function validateNote(text: string, field: string): void {
  if (text.length > MAX_NOTE || /[\u0000-\u001f\u007f]/.test(text)) {
    throw new ServerError("INVALID_COMMENT", `${field} must be at most ${MAX_NOTE} characters without control characters`, { field });
  }
}

export function validateJailName(name: string): void {
  if (!JAIL_NAME.test(name)) throw new ServerError("INVALID_RESOURCE_NAME", `"${name.slice(0, 70)}" is not a jail name (letters, digits, _ . @ -)`, { field: "jail", value: name.slice(0, 70) });
}

/** The address in its canonical form (2001:DB8::0001 → 2001:db8::1); INVALID_ELEMENT if it is none. */
export function validateAddress(raw: string, field = "address"): string {
  const parsed = parseAddressStrict(raw);
  if ("problem" in parsed) throw new ServerError("INVALID_ELEMENT", `${field} "${raw.slice(0, 100)}": ${parsed.problem}`, { field, value: raw.slice(0, 100) });
  return formatAddress(parsed);
}

/** The ignoreip entries (addresses or networks) that cover an address; host names there are skipped. */
export function ignoreIpCovering(address: string, entries: readonly string[]): string[] {
  const target = parseNetworkCanonical(address);
  return entries.filter((entry) => overlaps(parseNetworkCanonical(entry), target));
}

/** The first ignoreip entry that covers the address, if any. */
export function protectedBy(address: string, entries: readonly string[]): string | undefined {
  return ignoreIpCovering(address, entries)[0];
}

/** An ignoreip entry in the canonical form AddIgnoreIp stores, or undefined for one that is no address or network. */
export function canonicalOrUndefined(entry: string): string | undefined {
  try {
    return canonicalNetwork(entry, "entry");
  } catch {
    return undefined;
  }
}
