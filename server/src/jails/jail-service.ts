import ipaddr from "ipaddr.js";
import { ServerError } from "../errors.js";
import { formatAddress, parseAddressStrict } from "../addresses.js";
import type { Fail2banClient } from "../drivers/fail2ban-client.js";
import { number, parseJailList, parseJailStatus, strings, type JailStatus } from "../drivers/parse/fail2ban-replies.js";

/** A jail as clients see it: what `fail2ban-client status <jail>` shows plus its settings. */
export interface JailView extends JailStatus {
  readonly name: string;
  readonly maxRetry: number;
  readonly findTime: number;
  readonly banTime: number;
  readonly ignoreIp: string[];
  readonly actions: string[];
}

/** Every jail, for bans and unbans that name no single jail. */
export const ALL_JAILS = "-";

const JAIL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;

/**
 * The jail domain over fail2ban's socket. Only validated strings it built itself go to fail2ban (which unpickles
 * whatever arrives): jail names match a strict pattern and addresses are parsed and printed canonically.
 */
export class JailService {
  readonly #fail2ban: Fail2banClient;

  constructor(fail2ban: Fail2banClient) {
    this.#fail2ban = fail2ban;
  }

  async names(): Promise<string[]> {
    return parseJailList(await this.#fail2ban.send(["status"]));
  }

  async list(): Promise<JailView[]> {
    const views: JailView[] = [];
    for (const name of await this.names()) views.push(await this.get(name));
    return views;
  }

  async get(name: string): Promise<JailView> {
    validateJailName(name);
    const status = parseJailStatus(await this.#fail2ban.send(["status", name]));
    const get = (key: string) => this.#fail2ban.send(["get", name, key]);
    return {
      name,
      ...status,
      maxRetry: number((await get("maxretry"))),
      findTime: number((await get("findtime"))),
      banTime: number((await get("bantime"))),
      ignoreIp: strings((await get("ignoreip"))),
      actions: strings((await get("actions"))),
    };
  }

  /** Bans in one jail or all; refused before anything changes if a jail's ignoreip protects the address. */
  async ban(jail: string, rawAddress: string): Promise<string[]> {
    const address = validateAddress(rawAddress);
    const jails = await this.#targets(jail);
    for (const name of jails) {
      const protector = protectedBy(address, strings((await this.#fail2ban.send(["get", name, "ignoreip"]))));
      if (protector !== undefined) {
        throw new ServerError("ADDRESS_IGNORED", `${address} is protected by the ignoreip entry "${protector}" of jail ${name}; remove it from ignoreip to ban it`, { jail: name, entry: protector, address });
      }
    }
    for (const name of jails) await this.#fail2ban.send(["set", name, "banip", address]);
    return jails;
  }

  /** Unbans in one jail or all; returns the jails where the address was banned. */
  async unban(jail: string, rawAddress: string): Promise<string[]> {
    const address = validateAddress(rawAddress);
    const unbanned: string[] = [];
    for (const name of await this.#targets(jail)) {
      if (number((await this.#fail2ban.send(["set", name, "unbanip", address]))) > 0) unbanned.push(name);
    }
    if (jail !== ALL_JAILS && unbanned.length === 0) {
      throw new ServerError("BAN_NOT_FOUND", `${address} is not banned in jail ${jail}`, { jail, address });
    }
    return unbanned;
  }

  /** Whether fail2ban answers, its version and jail count; never throws for a server that is down. */
  async status(): Promise<{ up: boolean; version: string; jailCount: number }> {
    try {
      const version = String(await this.#fail2ban.send(["version"]));
      return { up: true, version, jailCount: (await this.names()).length };
    } catch (error) {
      if (error instanceof ServerError && error.reason === "FAIL2BAN_UNAVAILABLE") return { up: false, version: "", jailCount: 0 };
      throw error;
    }
  }

  async #targets(jail: string): Promise<string[]> {
    if (jail === ALL_JAILS) return this.names();
    validateJailName(jail);
    const names = await this.names();
    if (!names.includes(jail)) throw new ServerError("JAIL_NOT_FOUND", `there is no jail ${jail}; fail2ban has ${names.join(", ") || "none"}`, { jail });
    return [jail];
  }
}

function validateJailName(name: string): void {
  if (!JAIL_NAME.test(name)) throw new ServerError("INVALID_RESOURCE_NAME", `"${name.slice(0, 70)}" is not a jail name (letters, digits, _ . @ -)`, { field: "jail", value: name.slice(0, 70) });
}

function validateAddress(raw: string): string {
  const parsed = parseAddressStrict(raw);
  if ("problem" in parsed) throw new ServerError("INVALID_ELEMENT", `address "${raw.slice(0, 100)}": ${parsed.problem}`, { field: "address", value: raw.slice(0, 100) });
  return formatAddress(parsed);
}

/** The ignoreip entry (address or network) that covers the address, if any; host names there are skipped. */
function protectedBy(address: string, entries: readonly string[]): string | undefined {
  const target = ipaddr.parse(address);
  return entries.find((entry) => {
    try {
      const [network, prefix] = entry.includes("/") ? ipaddr.parseCIDR(entry) : [ipaddr.parse(entry), target.kind() === "ipv4" ? 32 : 128];
      return network.kind() === target.kind() && target.match(network, prefix);
    } catch {
      return false;
    }
  });
}
