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
  /** "api", "fail2ban", "system", or "fleet" (another host shared it: see the `origin_node` attribute). */
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
  /** The feed that fills it, if one does (its entries then follow the feed's list and are read-only). */
  readonly feed?: string;
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

/** What a rule does with a matching packet. */
export type RuleTarget =
  | "ACCEPT"
  | "DROP"
  | "RETURN"
  | { readonly reject: string }
  | { readonly log: string }
  | { readonly jump: string }
  | { readonly goto: string };

/** A port, or an inclusive range `[first, last]`. */
export type PortSpec = number | readonly [number, number];

/**
 * A rule to add, in plain words: every match is optional. Addresses and interfaces take a leading "!" to negate
 * (`"!192.0.2.0/24"`).
 */
export interface RuleInput {
  /** "tcp", "udp", "icmp", … (undefined: every protocol); a leading "!" negates. */
  readonly protocol?: string;
  readonly source?: string;
  readonly destination?: string;
  readonly inInterface?: string;
  readonly outInterface?: string;
  readonly sourcePorts?: readonly PortSpec[];
  readonly destinationPorts?: readonly PortSpec[];
  /** Match an ipset by the packet's source (default) or destination address. */
  readonly matchSet?: { readonly set: string; readonly direction?: "src" | "dst"; readonly negate?: boolean };
  /** Conntrack states, e.g. ["ESTABLISHED", "RELATED"]. */
  readonly states?: readonly ("NEW" | "ESTABLISHED" | "RELATED" | "INVALID" | "UNTRACKED")[];
  readonly comment?: string;
  readonly target: RuleTarget;
}

/** A rule as the kernel has it. */
export interface FirewallRule {
  /** The rule in plain words, as {@link RuleInput} takes it; undefined when it uses matches that RuleInput cannot
   * express (a rule someone else wrote with other extensions, negated ports, a set matched on several directions). */
  readonly spec?: RuleInput;
  /** Stable id: survives other rules moving (use it to delete the rule). */
  readonly id: string;
  readonly chain: string;
  /** 1-based position in the chain (0 when unknown, e.g. right after an append). */
  readonly position: number;
  /** The rule as `iptables-save` prints it. */
  readonly text: string;
  /** Whether Portcullis created it (and restores it after a reboot). */
  readonly managed: boolean;
  readonly packets: number;
  readonly bytes: number;
}

/** A chain of the filter table. */
export interface ChainInfo {
  readonly name: string;
  /** Built-in chains (INPUT, FORWARD, OUTPUT) have a policy; user chains do not. */
  readonly builtin: boolean;
  readonly policy?: "ACCEPT" | "DROP";
  readonly ruleCount: number;
  /** How many rules jump or go to it (a referenced chain cannot be deleted). */
  readonly references: number;
  /** Packets and bytes that met the policy. */
  readonly packets: number;
  readonly bytes: number;
}

/** A whole filter table, as {@link Firewall.apply} takes it and {@link Firewall.export} gives it. */
export interface RulesetInput {
  /** Policies of built-in chains (left out: ACCEPT) and the user chains to have. */
  readonly chains?: readonly { readonly name: string; readonly policy?: "ACCEPT" | "DROP" }[];
  /** Every rule, in order, each with its chain. */
  readonly rules: readonly (RuleInput & { readonly chain: string })[];
}

/** One call that tried to change something (or was refused), as the server's audit log keeps it. */
export interface AuditRecord {
  readonly time: Date;
  /** The certificate's name. */
  readonly principal: string;
  readonly role: string;
  /** e.g. "portcullis.v1.JailService/BanIp". */
  readonly method: string;
  readonly resource: string;
  /** "OK" or the gRPC status name, e.g. "PERMISSION_DENIED". */
  readonly code: string;
  /** The stable reason when it failed, e.g. "ROLE_REQUIRED". */
  readonly reason: string;
  /** The fleet host the change was made on, when another host shared it; undefined for calls to this host. */
  readonly originNode?: string;
}

/** A host of the fleet, as its last heartbeat describes it. */
export interface FleetNode {
  /** Its `cluster.node` name. */
  readonly name: string;
  /** The Portcullis version it runs. */
  readonly version: string;
  readonly heartbeatTime: Date;
  readonly startTime: Date;
  /** Shared ban messages in the stream it has not applied yet. */
  readonly lag: number;
  /** Shared bans and entries it applied, and refused (its allowlist, ignoreip, no such jail or set). */
  readonly bansApplied: number;
  readonly bansRefused: number;
  /** Whether its heartbeat is recent. */
  readonly online: boolean;
}

/** A ban of an address on one host of the fleet. */
export interface HostBan {
  /** The host that blocks it. */
  readonly node: string;
  /** What blocks it there: "jails/{jail}/bans/{address}" or "ipsets/{set}/entries/{element}". */
  readonly resource: string;
  /** Since when. */
  readonly banTime: Date;
  /** When it ends; undefined for never, or when the host's jail decides. */
  readonly expireTime?: Date;
  /** Where the ban was made, when it came through the fleet. */
  readonly originNode?: string;
}

/** What {@link Fleet.searchBans} found (Fleet: the `client.fleet` namespace). */
export interface BanSearch {
  /** Every ban of the address, by host. */
  readonly bans: readonly HostBan[];
  /** The online hosts that answered, and those that did not in time. */
  readonly answered: readonly string[];
  readonly unanswered: readonly string[];
}

/** Options of a ban or unban. */
export interface BanOptions {
  /** Also on every host of the fleet (the server needs a `cluster` section); default false. */
  readonly fleet?: boolean;
}

/** Options of a ban: its scope, and how long it lasts and why. */
export interface BanTerms extends BanOptions {
  /**
   * Seconds until the server lifts the ban (1 to 315360000, at most the jail's bantime: a longer one is refused with
   * `BAN_DURATION_EXCEEDS_BANTIME`); undefined = the jail's bantime.
   */
  readonly duration?: number;
  /** Why (at most 200 characters, no control characters): the BAN event's `reason` attribute. */
  readonly reason?: string;
}

/** Who the server takes the caller to be (Host: the `client.host` namespace). */
export interface CallerIdentity {
  /** The client certificate's name (Subject CN). */
  readonly principal: string;
  /** "viewer", "operator" or "admin" (Subject O). */
  readonly role: string;
  /** The address the server sees the connection come from (canonical form); undefined when the transport gives none. */
  readonly address?: string;
}

/** Which events a list or an export takes; every criterion given must hold. */
export interface EventFilter {
  /** Event types such as "BAN" (empty or undefined: all). */
  readonly types?: readonly string[];
  /** Resources starting with this, e.g. "jails/". */
  readonly resourcePrefix?: string;
  /** Events caused by this principal: a certificate's name, "fail2ban" or "system". */
  readonly principal?: string;
  /** Events about this jail (its name, e.g. "sshd"). */
  readonly jail?: string;
  /** Events about this address or network (any spelling). */
  readonly address?: string;
  /** Events recorded at or after this time. */
  readonly since?: Date;
  /** Events recorded before this time. */
  readonly until?: Date;
}

/** Which audit records a listing takes; every criterion given must hold. */
export interface AuditFilter {
  /** Calls made by this principal. */
  readonly principal?: string;
  /** Calls of this RPC, e.g. "portcullis.v1.JailService/BanIp". */
  readonly method?: string;
  /** Calls whose resource starts with this, e.g. "jails/sshd". */
  readonly resourcePrefix?: string;
  /** Calls made at or after this time. */
  readonly since?: Date;
  /** Calls made before this time. */
  readonly until?: Date;
}

/**
 * A span of time ending now: "hour" (60 buckets of a minute), "day" (24 of an hour), "week" (28 of 6 hours) or
 * "month" (30 of a day). Buckets are aligned to multiples of their width (UTC); the last one holds now.
 */
export type ActivityWindow = "hour" | "day" | "week" | "month";

/** Bans and unbans per bucket of a window (every bucket, empty ones too, oldest first). */
export interface BanTimeline {
  readonly window: ActivityWindow;
  readonly bucketSeconds: number;
  readonly buckets: ReadonlyArray<{ readonly start: Date; readonly bans: number; readonly unbans: number }>;
}

/** An address or network banned in a window. */
export interface Offender {
  /** The address, or the network in CIDR notation (/24 for IPv4, /64 for IPv6). */
  readonly address: string;
  /** Bans in the window. */
  readonly banCount: number;
  readonly lastBanTime: Date;
  /** The jails that banned it, by name. */
  readonly jails: readonly string[];
  /** How many different addresses were banned (1 for an address). */
  readonly addressCount: number;
}

/** The most banned addresses and networks of a window, most bans first. */
export interface TopOffenders {
  readonly window: ActivityWindow;
  readonly addresses: readonly Offender[];
  readonly networks: readonly Offender[];
}

/** The host at a glance. */
export interface HostOverview {
  /** Bans in force in every jail. */
  readonly activeBans: number;
  /** Bans of the last 24 hours. */
  readonly bansLastDay: number;
  readonly jailCount: number;
  readonly fail2banUp: boolean;
  readonly ipsetCount: number;
  readonly managedIpsetCount: number;
  /** Entries of every set. */
  readonly entryCount: number;
  readonly managedRuleCount: number;
  /** Whether the host is in a fleet. */
  readonly fleet: boolean;
  readonly fleetNodeCount: number;
  readonly fleetNodesOnline: number;
}

/** One jail's bans and unbans over a window, with fail2ban's own counters (which have no window). */
export interface JailActivity {
  /** The jail's name. */
  readonly jail: string;
  readonly bans: number;
  readonly unbans: number;
  readonly currentlyBanned: number;
  readonly totalBanned: number;
  readonly currentlyFailed: number;
  readonly totalFailed: number;
}

/** Everything about one address now (see {@link Host.inspect}). */
export interface AddressReport {
  /** The address in canonical form. */
  readonly address: string;
  /** The jails that ban it; `expireTime` undefined when the ban is for ever or fail2ban did not say. */
  readonly jailBans: ReadonlyArray<{ readonly jail: string; readonly banTime: Date; readonly expireTime?: Date; readonly forever: boolean }>;
  /** Entries of managed sets that hold it (the address itself, or a network covering it). */
  readonly entries: ReadonlyArray<{ readonly set: string; readonly entry: IpsetEntry }>;
  /** Managed rules that match it, and how: "source", "destination" or "set". */
  readonly rules: ReadonlyArray<{ readonly family: "ipv4" | "ipv6"; readonly table: string; readonly rule: FirewallRule; readonly matches: readonly string[] }>;
  /** Host allowlist entries that cover it. */
  readonly allowlist: readonly AllowlistEntry[];
  /** Jails' ignoreip entries that cover it. */
  readonly ignoreIp: ReadonlyArray<{ readonly jail: string; readonly entry: string }>;
  /** Its newest events, newest first. */
  readonly events: readonly HostEvent[];
}

/** Whether panic mode is on ({@link Firewall.panicMode}). */
export interface PanicMode {
  readonly enabled: boolean;
  /** The addresses still allowed to reach the API while it is on. */
  readonly managementAddresses: readonly string[];
}

/** How a feed's list is written: one address or network per line with `#`/`;` comments ("plain"), Spamhaus
 * DROP/EDROP (`CIDR ; SBLnnn`), a FireHOL netset, `ipset save` output, or a JSON array of strings; or "crowdsec":
 * a CrowdSec Local API's decision stream, followed as a bouncer does. */
export type FeedFormat = "plain" | "spamhaus" | "netset" | "ipset-save" | "json" | "crowdsec";

/** What a feed's refreshes did (kept across restarts of the server). */
export interface FeedStatus {
  /** When a list was last read and applied, or found unchanged; undefined before the first success. */
  readonly lastSuccessTime?: Date;
  /** When the last refresh ended, successful or not. */
  readonly lastAttemptTime?: Date;
  /** When the next scheduled refresh starts. */
  readonly nextRefreshTime: Date;
  /** Entries the feed's two sets hold. */
  readonly entryCount: number;
  /** Entries of the list left out because the host allowlist or a management address covers them. */
  readonly skippedCount: number;
  /** Lines of the last list read that are not an address or network. */
  readonly invalidCount: number;
  /** Refreshes that failed since the last success. */
  readonly consecutiveFailures: number;
  /** Why the last refresh failed (e.g. "FEED_SHRANK"), and what it said; undefined after a success. */
  readonly lastErrorReason?: string;
  readonly lastError?: string;
  /** The source's ETag and Last-Modified of the list applied (asked again with If-None-Match, If-Modified-Since). */
  readonly etag?: string;
  readonly lastModified?: string;
}

/** A published blocklist that fills two sets: the list's IPv4 part `ipset`, its IPv6 part `ipsetV6`. */
export interface FeedInfo {
  readonly name: string;
  /** An https://, http:// or file:/// URL. */
  readonly source: string;
  readonly format: FeedFormat;
  /** The hash:net set of the IPv4 part. */
  readonly ipset: string;
  /** The hash:net set (family inet6) of the IPv6 part: `ipset` + "-v6". */
  readonly ipsetV6: string;
  readonly intervalSeconds: number;
  readonly jitterSeconds: number;
  readonly timeoutSeconds: number;
  readonly retries: number;
  readonly maxBytes: number;
  /** A list that would take away more than this share of the sets' entries is refused (0 to 1). */
  readonly maxShrink: number;
  /** PEM CA certificates for an https source; undefined: the system's. */
  readonly ca?: string;
  /** crowdsec: the file on the server's host that holds the API key, if one is used. */
  readonly apiKeyFile?: string;
  /** crowdsec: the PEM client certificate, if one is used. */
  readonly clientCertificate?: string;
  /** crowdsec: ms between two reads of the decision stream (undefined: 1000). */
  readonly pollIntervalMs?: number;
  /** Whether an API key or client key is stored (they are never returned). */
  readonly credentialsSet: boolean;
  readonly status: FeedStatus;
}

/** A CrowdSec bouncer allowed to read the server's bans from its bouncer listener. */
export interface BouncerInfo {
  readonly name: string;
  readonly createTime: Date;
  /** When it last read the decisions; undefined before its first pull. */
  readonly lastPullTime?: Date;
  /** The User-Agent of its last pull (e.g. `crowdsec-firewall-bouncer/v0.0.25`); undefined before its first pull. */
  readonly version?: string;
}

/** A bouncer just registered, with its API key: shown only once (the server keeps its SHA-256). */
export interface BouncerKey {
  readonly bouncer: BouncerInfo;
  /** 64 hexadecimal digits, for the bouncer's `api_key`. */
  readonly apiKey: string;
}

/** What a refresh did. */
export interface FeedRefresh {
  /** The feed after the refresh. */
  readonly feed: FeedInfo;
  /** False when the source said the list had not changed (nothing was parsed or swapped). */
  readonly changed: boolean;
  readonly added: number;
  readonly removed: number;
  readonly kept: number;
  /** Entries left out: the allowlist or a management address covers them. */
  readonly skipped: number;
  /** Lines that are not an address or network. */
  readonly invalid: number;
}
