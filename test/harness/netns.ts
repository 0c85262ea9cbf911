import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";

/** Runs a command and returns stdout; throws with stderr on failure. Argument arrays only. */
export function sh(file: string, args: readonly string[], input?: string): string {
  return execFileSync(file, args, { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"], maxBuffer: 256 * 1024 * 1024, ...(input === undefined ? {} : { input }) });
}

/** Runs a command inside a namespace. */
export function inNetns(netns: string, file: string, args: readonly string[], input?: string): string {
  return sh("ip", ["netns", "exec", netns, file, ...args], input);
}

/** A throwaway network namespace `pc-<random>`: its own iptables, ipset and loopback; never the host's. */
export class Netns {
  readonly name: string;

  constructor(prefix = "pc") {
    this.name = `${prefix}-${randomBytes(4).toString("hex")}`;
    sh("ip", ["netns", "add", this.name]);
    inNetns(this.name, "ip", ["link", "set", "lo", "up"]);
  }

  exec(file: string, args: readonly string[], input?: string): string {
    return inNetns(this.name, file, args, input);
  }

  /** How many entries the namespace's kernel set holds (`ipset list -terse`), read without Portcullis. */
  setEntries(set: string): number {
    return Number(/Number of entries: (\d+)/.exec(this.exec("ipset", ["list", "-terse", set]))![1]);
  }

  destroy(): void {
    try {
      // Sets live in the namespace and go with it; flushing first releases references quickly.
      sh("ip", ["netns", "del", this.name]);
    } catch {
      // already gone
    }
  }
}

/**
 * The verified packet-level recipe: a victim and an attacker namespace joined by a veth pair, with TEST-NET
 * addresses (victim 192.0.2.1 / 2001:db8::1, attacker 192.0.2.100 / 2001:db8::100; IPv6 without DAD delays).
 */
export class VictimAttacker {
  readonly victim: Netns;
  readonly attacker: Netns;
  static readonly victimV4 = "192.0.2.1";
  static readonly attackerV4 = "192.0.2.100";
  static readonly victimV6 = "2001:db8::1";
  static readonly attackerV6 = "2001:db8::100";

  constructor() {
    this.victim = new Netns();
    this.attacker = new Netns();
    const suffix = this.victim.name.slice(3, 11);
    const [v, a] = [`pcv${suffix}`, `pca${suffix}`];
    try {
      sh("ip", ["link", "add", v, "netns", this.victim.name, "type", "veth", "peer", "name", a, "netns", this.attacker.name]);
      this.victim.exec("ip", ["addr", "add", `${VictimAttacker.victimV4}/24`, "dev", v]);
      this.victim.exec("ip", ["-6", "addr", "add", `${VictimAttacker.victimV6}/64`, "dev", v, "nodad"]);
      this.victim.exec("ip", ["link", "set", v, "up"]);
      this.attacker.exec("ip", ["addr", "add", `${VictimAttacker.attackerV4}/24`, "dev", a]);
      this.attacker.exec("ip", ["-6", "addr", "add", `${VictimAttacker.attackerV6}/64`, "dev", a, "nodad"]);
      this.attacker.exec("ip", ["link", "set", a, "up"]);
    } catch (error) {
      this.destroy();
      throw error;
    }
  }

  destroy(): void {
    this.victim.destroy();
    this.attacker.destroy();
  }
}
