// The SDK's public data: plain, frozen objects with whole-word fields (no generated message classes).

/** One change on the host, as the server's event log recorded it. */
export interface HostEvent {
  /** Position in the host's event log (increasing, no gaps within what the server keeps). */
  readonly sequence: number;
  readonly time: Date;
  /** e.g. "BAN", "UNBAN", "ENTRY_ADDED", "RULE_CREATED". */
  readonly type: string;
  /** The resource it concerns, e.g. "jails/dovecot/bans/192.0.2.100". */
  readonly resource: string;
  /** Who caused it: a certificate's name, "fail2ban" or "system". */
  readonly principal: string;
  /** "api", "fail2ban" or "system". */
  readonly origin: string;
  readonly attributes: Readonly<Record<string, string>>;
}

/** A ban or an unban in a jail. */
export interface BanEvent {
  readonly jail: string;
  readonly address: string;
  readonly event: HostEvent;
}

/** A jail as `fail2ban-client status <jail>` shows it, plus its settings. */
export interface JailStatus {
  readonly name: string;
  readonly currentlyFailed: number;
  readonly totalFailed: number;
  readonly files: readonly string[];
  readonly currentlyBanned: number;
  readonly totalBanned: number;
  readonly banned: readonly string[];
  readonly maxRetry: number;
  /** Seconds. */
  readonly findTime: number;
  /** Seconds; -1 for ever. */
  readonly banTime: number;
  readonly ignoreIp: readonly string[];
  readonly actions: readonly string[];
}

/** An entry of an IP set. */
export interface IpsetEntry {
  readonly element: string;
  /** Seconds left; undefined = permanent. */
  readonly timeout?: number;
  readonly comment?: string;
}

/** An IP set. */
export interface IpsetInfo {
  readonly name: string;
  /** e.g. "hash:ip". */
  readonly type: string;
  /** "inet" or "inet6" (hash types). */
  readonly family?: string;
  readonly entryCount: number;
  /** Whether Portcullis manages it (restores it after a reboot). */
  readonly managed: boolean;
}

/** An address or network no jail bans (the host allowlist). */
export interface AllowlistEntry {
  /** The address, or the network in CIDR notation. */
  readonly network: string;
  readonly comment: string;
  readonly createTime: Date;
  /** undefined = never. */
  readonly expireTime?: Date;
  readonly createdBy: string;
}
