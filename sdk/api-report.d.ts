// The public API of @portcullis/sdk (npm run api-report). Review changes to this file like code.
// ---- api.ts
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
export type RuleTarget = "ACCEPT" | "DROP" | "RETURN" | {
    readonly reject: string;
} | {
    readonly log: string;
} | {
    readonly jump: string;
} | {
    readonly goto: string;
};
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
    readonly matchSet?: {
        readonly set: string;
        readonly direction?: "src" | "dst";
        readonly negate?: boolean;
    };
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
    readonly chains?: readonly {
        readonly name: string;
        readonly policy?: "ACCEPT" | "DROP";
    }[];
    /** Every rule, in order, each with its chain. */
    readonly rules: readonly (RuleInput & {
        readonly chain: string;
    })[];
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
    readonly buckets: ReadonlyArray<{
        readonly start: Date;
        readonly bans: number;
        readonly unbans: number;
    }>;
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
    readonly jailBans: ReadonlyArray<{
        readonly jail: string;
        readonly banTime: Date;
        readonly expireTime?: Date;
        readonly forever: boolean;
    }>;
    /** Entries of managed sets that hold it (the address itself, or a network covering it). */
    readonly entries: ReadonlyArray<{
        readonly set: string;
        readonly entry: IpsetEntry;
    }>;
    /** Managed rules that match it, and how: "source", "destination" or "set". */
    readonly rules: ReadonlyArray<{
        readonly family: "ipv4" | "ipv6";
        readonly table: string;
        readonly rule: FirewallRule;
        readonly matches: readonly string[];
    }>;
    /** Host allowlist entries that cover it. */
    readonly allowlist: readonly AllowlistEntry[];
    /** Jails' ignoreip entries that cover it. */
    readonly ignoreIp: ReadonlyArray<{
        readonly jail: string;
        readonly entry: string;
    }>;
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

// ---- base/cancellation.ts
import { type Event } from "./event.js";
/** Tells an operation that its caller no longer wants the result (VS Code's CancellationToken). */
export interface CancellationToken {
    /** Whether cancellation was requested. */
    readonly isCancellationRequested: boolean;
    /** Fires once, when cancellation is requested (at once for a listener that subscribes afterwards). */
    readonly onCancellationRequested: Event<void>;
}
/** Tokens that are never cancelled, and one that always is. */
export declare const CancellationToken: {
    /** A token that is never cancelled. */
    None: CancellationToken;
    /** A token that is cancelled already. */
    Cancelled: CancellationToken;
};
/** Creates a {@link CancellationToken} and cancels it when asked. */
export declare class CancellationTokenSource {
    #private;
    /**
     * @param parent - a token whose cancellation cancels this one too.
     */
    constructor(parent?: CancellationToken);
    /** The token to hand to operations. */
    get token(): CancellationToken;
    /** Requests cancellation: the token's listeners hear it once. */
    cancel(): void;
    /** Releases the listeners (without cancelling). */
    dispose(): void;
}

// ---- base/disposable.ts
/**
 * Something that holds a resource (a subscription, a stream, a connection) until it is disposed, as in VS Code's API.
 * Disposing twice is harmless.
 */
export declare class Disposable {
    #private;
    /** Combines several disposables into one that disposes them all (in order; a throwing one does not stop the rest). */
    static from(...disposables: ReadonlyArray<{
        dispose(): unknown;
    }>): Disposable;
    /** @param callOnDispose - what disposing does; called once. */
    constructor(callOnDispose: () => void);
    /** Releases the resource; later calls do nothing. */
    dispose(): void;
}

// ---- base/event.ts
import { Disposable } from "./disposable.js";
/**
 * An event, VS Code style: a function to subscribe a listener, which returns the {@link Disposable} that ends the
 * subscription. `thisArgs` is the listener's `this`; a `disposables` array receives the subscription, for disposing
 * several together.
 */
export type Event<T> = (listener: (event: T) => unknown, thisArgs?: unknown, disposables?: Disposable[]) => Disposable;
/** Options of an {@link EventEmitter}. */
export interface EventEmitterOptions {
    /** Called when the first listener subscribes (e.g. to open the stream the events come from). */
    readonly onFirstListenerAdd?: () => void;
    /** Called when the last listener unsubscribes (e.g. to close that stream). */
    readonly onLastListenerRemove?: () => void;
    /** Called with what a listener threw (default: reported asynchronously, never breaking the other listeners). */
    readonly onListenerError?: (error: unknown) => void;
}
/** Owns an {@link Event}: `fire` delivers a value to every current listener, in subscription order. */
export declare class EventEmitter<T> {
    #private;
    /** @param options - hooks for the first and last listener, and for listener errors. */
    constructor(options?: EventEmitterOptions);
    /** The event others subscribe to. */
    readonly event: Event<T>;
    /** Delivers a value to every listener subscribed now; a listener that throws does not stop the others. */
    fire(event: T): void;
    /** Whether anyone listens. */
    get hasListeners(): boolean;
    /** Drops every listener; the event then accepts no new ones. */
    dispose(): void;
}

// ---- bouncers.ts
import type { CancellationToken } from "./base/cancellation.js";
import type { BouncerInfo, BouncerKey } from "./api.js";
/** The API keys of CrowdSec bouncers that read the server's bans from its bouncer listener: `client.bouncers`. */
export declare class Bouncers {
    #private;
    /** Registers a bouncer and resolves to its API key, which is shown only here. Fails with AlreadyExists when the name is taken. */
    create(bouncer: string, token?: CancellationToken): Promise<BouncerKey>;
    /** Every bouncer with its last pull (all pages). */
    list(token?: CancellationToken): Promise<readonly BouncerInfo[]>;
    /** Deletes a bouncer: its key stops working at once. */
    delete(bouncer: string, token?: CancellationToken): Promise<void>;
}

// ---- client.ts
import { Ipsets } from "./ipsets.js";
import { Jails } from "./jails.js";
import { Firewall } from "./firewall.js";
import { Fleet } from "./fleet.js";
import { Host } from "./host.js";
import { Feeds } from "./feeds.js";
import { Bouncers } from "./bouncers.js";
import { Audit, Events } from "./events.js";
/** How to reach a server. Certificates and keys are PEM text or file paths. */
export interface ClientOptions {
    /** host:port of the gRPC endpoint (default: the profile's, PORTCULLIS_ADDRESS, or localhost:50051). */
    readonly address?: string;
    /** A directory with ca.crt, client.crt and client.key (what `portcullis certs issue` writes). */
    readonly bundle?: string;
    readonly ca?: string;
    readonly cert?: string;
    readonly key?: string;
    /** Default deadline of a call, in milliseconds (default 30000). */
    readonly deadlineMs?: number;
    /** A profile of ~/.config/portcullis/config.json (`{"profiles":{"NAME":{…these options…}}}`); default "default". */
    readonly profile?: string;
}
/** A connection to one Portcullis server, with its namespaces. Dispose it to close everything. */
export interface PortcullisClient {
    /** Closes the connection and ends every subscription. */
    dispose(): void;
    readonly jails: Jails;
    readonly ipsets: Ipsets;
    readonly firewall: Firewall;
    readonly events: Events;
    readonly audit: Audit;
    /** The fleet the server shares bans with (servers with a `cluster` section). */
    readonly fleet: Fleet;
    /** The host as a whole, and who the server takes the caller to be. */
    readonly host: Host;
    /** Published blocklists that fill sets, refreshed on a schedule. */
    readonly feeds: Feeds;
    /** The API keys of CrowdSec bouncers that read the server's bans (admin). */
    readonly bouncers: Bouncers;
}
/**
 * Creates a client. Options given win over the profile, which wins over `PORTCULLIS_ADDRESS`, `PORTCULLIS_BUNDLE`,
 * `PORTCULLIS_CA`, `PORTCULLIS_CERT` and `PORTCULLIS_KEY`.
 */
export declare function createClient(options?: ClientOptions): PortcullisClient;

// ---- errors.ts
import { type ServiceError } from "@grpc/grpc-js";
/** What went wrong, in words (the gRPC status codes). */
export type ErrorCode = "Cancelled" | "Unknown" | "InvalidArgument" | "DeadlineExceeded" | "NotFound" | "AlreadyExists" | "PermissionDenied" | "ResourceExhausted" | "FailedPrecondition" | "Aborted" | "OutOfRange" | "Unimplemented" | "Internal" | "Unavailable" | "DataLoss" | "Unauthenticated";
/**
 * Why the server refused or failed a call, stable across versions; docs/errors.md says when each is given.
 * {@link PortcullisError.reason} stays a string: a newer server may send a reason this list does not have yet.
 */
export type ErrorReason = "INVALID_RESOURCE_NAME" | "INVALID_IPSET_NAME" | "INVALID_IPSET_TYPE" | "INVALID_IPSET_OPTION" | "INVALID_ELEMENT" | "FAMILY_MISMATCH" | "INVALID_TIMEOUT" | "INVALID_COMMENT" | "INVALID_BAN_DURATION" | "INVALID_SETTING" | "NOTHING_TO_UPDATE" | "INVALID_PAGE_TOKEN" | "INVALID_PAGE_SIZE" | "INVALID_IMPORT" | "BATCH_TOO_LARGE" | "REQUEST_ID_REUSED" | "INVALID_CHAIN_NAME" | "INVALID_RULE" | "UNKNOWN_REFERENCE" | "INVALID_FILTER" | "INVALID_ORDER_BY" | "INVALID_POLICY" | "INVALID_SCOPE" | "INVALID_POSITION" | "UNKNOWN_SERVICE" | "RULESET_REJECTED" | "IPSET_NOT_FOUND" | "ENTRY_NOT_FOUND" | "IPSET_ALREADY_EXISTS" | "CHAIN_NOT_FOUND" | "RULE_NOT_FOUND" | "BAN_NOT_FOUND" | "CHAIN_ALREADY_EXISTS" | "JAIL_NOT_FOUND" | "JAIL_ALREADY_EXISTS" | "JAIL_RUNNING" | "FAIL2BAN_NO_DATABASE" | "IPSET_IN_USE" | "IPSET_NOT_MANAGED" | "IPSET_ALREADY_MANAGED" | "IPSET_INCOMPATIBLE" | "TIMEOUT_NOT_SUPPORTED" | "COMMENT_NOT_SUPPORTED" | "TABLE_READ_ONLY" | "CHAIN_IN_USE" | "CHAIN_NOT_EMPTY" | "CHAIN_BUILTIN" | "LOCKOUT" | "ADDRESS_IGNORED" | "ADDRESS_ALLOWLISTED" | "BAN_DURATION_EXCEEDS_BANTIME" | "INVALID_ACTION_REQUEST" | "INVALID_REQUEST" | "REQUEST_TOO_LARGE" | "ROUTE_NOT_FOUND" | "CONSOLE_NOT_BUILT" | "MALFORMED_REQUEST" | "INTEGER_OUT_OF_RANGE" | "ACTION_TIMEOUT" | "NO_PENDING_ROLLBACK" | "PANIC_MODE" | "FOREIGN_RULES" | "FLEET_NOT_CONFIGURED" | "ADDRESS_MANAGEMENT" | "FAIL2BAN_REJECTED" | "IPSET_FULL" | "INVALID_FEED_NAME" | "INVALID_FEED_SOURCE" | "FEED_NOT_FOUND" | "FEED_ALREADY_EXISTS" | "IPSET_OWNED_BY_FEED" | "FEED_TOO_LARGE" | "FEED_INVALID" | "FEED_SHRANK" | "FEED_UNAUTHORIZED" | "FEED_UNAVAILABLE" | "INVALID_BOUNCER_NAME" | "BOUNCER_NOT_FOUND" | "BOUNCER_ALREADY_EXISTS" | "CERTIFICATE_REQUIRED" | "CERTIFICATE_REVOKED" | "CERTIFICATE_INVALID" | "ROLE_REQUIRED" | "CROSS_SITE_REQUEST" | "SUBSCRIBER_TOO_SLOW" | "KERNEL_UNAVAILABLE" | "SHUTTING_DOWN" | "FAIL2BAN_UNAVAILABLE" | "FLEET_UNAVAILABLE" | "KERNEL_COMMAND_FAILED" | "CONFIG_WRITE_FAILED" | "INVALID_DUMP" | "FAIL2BAN_BAD_REPLY" | "INTERNAL";
/**
 * The one error the SDK throws for a refused or failed call: the server's message (which says what to change), a
 * {@link ErrorCode}, and the server's stable `reason` (e.g. `IPSET_IN_USE`) with its metadata (e.g. the field at fault).
 */
export declare class PortcullisError extends Error {
    /** What went wrong, in words. */
    readonly code: ErrorCode;
    /**
     * The server's stable machine-readable reason, e.g. `JAIL_NOT_FOUND` (see {@link ErrorReason}); "" when the server
     * sent none.
     */
    readonly reason: string;
    /** Details the server attached, e.g. `{ field: "address" }`. */
    readonly metadata: Readonly<Record<string, string>>;
    /**
     * @param code - what went wrong.
     * @param message - what the server said.
     * @param reason - the server's stable reason.
     * @param metadata - details the server attached.
     */
    constructor(code: ErrorCode, message: string, reason?: string, metadata?: Readonly<Record<string, string>>, options?: {
        cause?: unknown;
    });
    /** A grpc-js call error as a PortcullisError: code, message, and the reason from its google.rpc.ErrorInfo. */
    static fromServiceError(error: Partial<ServiceError>): PortcullisError;
}

// ---- events.ts
import type { CancellationToken } from "./base/cancellation.js";
import type { Event } from "./base/event.js";
import type { ActivityWindow, AuditFilter, AuditRecord, BanTimeline, EventFilter, HostEvent, TopOffenders } from "./api.js";
/** What {@link Events.list} returns: a page of the log and where the log ends. */
export interface EventPage {
    readonly events: readonly HostEvent[];
    /** The newest sequence in the log: pass it as `after` to continue. */
    readonly lastSequence: number;
}
/** The host's event log: `client.events`. */
export declare class Events {
    #private;
    /** Every change on the host from the moment of subscribing; resumes across reconnects without loss or repeats. */
    readonly onDidChange: Event<HostEvent>;
    /**
     * Every event after `sequence` (0: from the oldest kept), then every new one as it happens: a consumer that stored
     * the last sequence it handled resumes with no gap. Each subscription has its own stream, closed when disposed.
     */
    since(sequence: number): Event<HostEvent>;
    /**
     * Events after a sequence (0: from the oldest kept) and before another (`before`, undefined: up to the newest),
     * oldest first, at most `limit`; with `newestFirst` the newest first (page back by passing the last event's sequence
     * as `before`). The filter (types such as "BAN", a resource prefix such as "jails/", a principal, a jail, an
     * address, a time range) narrows it.
     */
    list(options?: EventFilter & {
        readonly after?: number;
        readonly before?: number;
        readonly newestFirst?: boolean;
        readonly limit?: number;
    }, token?: CancellationToken): Promise<EventPage>;
    /**
     * The stored events that pass the filter, as a file: CSV (default; safe to open in a spreadsheet) or JSON lines,
     * in pieces as they arrive. The export ends with the newest event recorded when it began.
     */
    export(options?: EventFilter & {
        readonly after?: number;
        readonly format?: "csv" | "jsonl";
    }, token?: CancellationToken): AsyncIterable<Uint8Array>;
    /** Bans and unbans per bucket of a window (default "day"), of one jail or all, every bucket included. */
    timeline(options?: {
        readonly window?: ActivityWindow;
        readonly jail?: string;
    }, token?: CancellationToken): Promise<BanTimeline>;
    /** The most banned addresses and networks (/24, /64) of a window (default "day"); at most `limit` (default 10) of each. */
    topOffenders(options?: {
        readonly window?: ActivityWindow;
        readonly jail?: string;
        readonly limit?: number;
    }, token?: CancellationToken): Promise<TopOffenders>;
}
/** The audit log of every call that tried a change: `client.audit`. */
export declare class Audit {
    #private;
    /** Every record that passes the filter, newest first (all pages). */
    records(filter?: AuditFilter, token?: CancellationToken): Promise<readonly AuditRecord[]>;
}

// ---- feeds.ts
import type { Event } from "./base/event.js";
import type { CancellationToken } from "./base/cancellation.js";
import type { FeedFormat, FeedInfo, FeedRefresh, HostEvent } from "./api.js";
/** A feed's settings, as {@link Feeds.create} and {@link Feeds.update} take them. */
export interface FeedSettings {
    /** An https://, http:// or file:/// URL (a path on the server's host, in a folder of its feeds.fileRoots). */
    readonly source?: string;
    readonly format?: FeedFormat;
    /** Seconds between refreshes, 10 to 604800; default 3600. */
    readonly intervalSeconds?: number;
    /** Up to this many random seconds added to each interval; default a tenth of the interval, at most 300. */
    readonly jitterSeconds?: number;
    /** Seconds one read of the list may take, 1 to 600; default 30. */
    readonly timeoutSeconds?: number;
    /** Attempts after a failed one (unreachable, timeout, 5xx), 1, 2, 4… seconds apart; default 2. */
    readonly retries?: number;
    /** The largest list read, in bytes; default 64 MiB. */
    readonly maxBytes?: number;
    /** A list that would take away more than this share of the sets' entries is refused (0 to 1); default 0.5. */
    readonly maxShrink?: number;
    /** PEM CA certificates for an https source ("" in an update: the system's again). */
    readonly ca?: string;
    /** crowdsec: the bouncer API key (`cscli bouncers add`); stored by the server, never returned. */
    readonly apiKey?: string;
    /** crowdsec: an absolute path on the server's host of a file holding the API key, in place of apiKey. */
    readonly apiKeyFile?: string;
    /** crowdsec: PEM client certificate and key for a Local API that authenticates bouncers by TLS. */
    readonly clientCertificate?: string;
    readonly clientKey?: string;
    /** crowdsec: ms between two reads of the decision stream, 100 to 60000; default 1000. */
    readonly pollIntervalMs?: number;
}
/** What {@link Feeds.create} makes: the settings, the set to fill and an optional idempotency key. */
export interface FeedCreateOptions extends FeedSettings {
    readonly source: string;
    readonly format: FeedFormat;
    /** The hash:net set of the list's IPv4 part (at most 28 characters); the IPv6 part goes to `ipset` + "-v6". */
    readonly ipset: string;
    /** Idempotency key: a retried create with the same key returns the first result instead of AlreadyExists. */
    readonly requestId?: string;
}
/** Published blocklists that fill sets, refreshed on a schedule: `client.feeds`. */
export declare class Feeds {
    #private;
    /** Creates a feed and its two sets; its first refresh starts at once. Fails with AlreadyExists when either set exists. */
    create(feed: string, options: FeedCreateOptions, token?: CancellationToken): Promise<FeedInfo>;
    /** Every feed with its last refresh (all pages). */
    list(token?: CancellationToken): Promise<readonly FeedInfo[]>;
    /** A feed with its last refresh. */
    get(feed: string, token?: CancellationToken): Promise<FeedInfo>;
    /** Changes the settings given; a new source, format or CA makes the next refresh (at once) read the list whole. */
    update(feed: string, settings: FeedSettings, token?: CancellationToken): Promise<FeedInfo>;
    /** Deletes a feed and destroys its sets; refused (FailedPrecondition) while a firewall rule uses one of them. */
    delete(feed: string, token?: CancellationToken): Promise<void>;
    /**
     * Refreshes a feed now and resolves when it is done. A list the source says is unchanged is not read (`changed`
     * false) unless `force`; a refused list (reason FEED_UNAVAILABLE, FEED_TOO_LARGE, FEED_INVALID, FEED_SHRANK) rejects,
     * and the sets stay as they were.
     */
    refresh(feed: string, options?: {
        readonly force?: boolean;
    }, token?: CancellationToken): Promise<FeedRefresh>;
    /** Fires when a feed's sets took a new list (a FEED_REFRESHED event: counts in its attributes). */
    readonly onDidRefresh: Event<HostEvent>;
    /** Fires when a feed's refresh failed and its sets stayed as they were (a FEED_FAILED event: `reason`, `detail`). */
    readonly onDidFail: Event<HostEvent>;
}

// ---- firewall.ts
import type { CancellationToken } from "./base/cancellation.js";
import type { ChainInfo, FirewallRule, PanicMode, RuleInput, RulesetInput } from "./api.js";
/** Where a rule lives: an address family and a chain of the filter table. */
export interface ChainRef {
    /** "ipv4" (default) or "ipv6". */
    readonly family?: "ipv4" | "ipv6";
    readonly chain: string;
}
/** Options of {@link Firewall.add} and {@link Firewall.delete}. */
export interface ChangeOptions {
    /** 1-based position to insert at (default: append). */
    readonly position?: number;
    /** Seconds until the change is rolled back unless confirmed (safe mode); 0/undefined = for good. */
    readonly confirmWithin?: number;
    /** Apply even if it would cut this client off the API. */
    readonly allowLockout?: boolean;
}
/** Options of {@link Firewall.apply}. */
export interface ApplyOptions {
    /** "ipv4" (default) or "ipv6". */
    readonly family?: "ipv4" | "ipv6";
    /** Safe mode: seconds until the previous table comes back unless {@link Firewall.confirm} is called. */
    readonly confirmWithin?: number;
    /** Apply even if it would cut this client off the API (only with confirmWithin). */
    readonly allowLockout?: boolean;
    /**
     * "table" (default): the ruleset is the whole filter table. "managed": it replaces only the rules and chains
     * Portcullis manages; rules and chains of other tools (Docker, fail2ban, Kubernetes) stay as and where they are.
     */
    readonly scope?: "table" | "managed";
    /**
     * Scope "table": replace the rules and chains of other tools too. Without it, an apply that would remove or change
     * any of them is refused (`FOREIGN_RULES`).
     */
    readonly replaceForeign?: boolean;
    /** Only compute what the apply would change ({@link ApplyResult.diff}); nothing is applied. */
    readonly dryRun?: boolean;
}
/** What {@link Firewall.apply} did (or, with `dryRun`, would do). */
export interface ApplyResult {
    readonly ruleCount: number;
    /** Safe mode: when the previous table comes back unless confirmed. */
    readonly rollbackAt?: Date;
    /** With `dryRun`: the changes the apply would make. */
    readonly diff?: RulesetDiff;
}
/** What an apply changes, as `-A CHAIN …` rule lines. */
export interface RulesetDiff {
    /** Managed rules added. */
    readonly added: readonly string[];
    /** Managed rules removed. */
    readonly removed: readonly string[];
    /** Managed rules replaced by another at the same place. */
    readonly changed: readonly {
        readonly before: string;
        readonly after: string;
    }[];
    /** How many managed rules stay as they are. */
    readonly unchanged: number;
    /** Rules of other tools that stay as they are. */
    readonly foreignKept: readonly string[];
    /** Rules of other tools the apply removes (scope "table": or changes). */
    readonly foreignRemoved: readonly string[];
    /** Chains created. */
    readonly chainsCreated: readonly string[];
    /** Chains deleted. */
    readonly chainsDeleted: readonly string[];
}
/** A whole filter table as the kernel has it (see {@link Firewall.export}). */
export interface RulesetExport {
    /** The table as `iptables-save` prints it (without counters). */
    readonly text: string;
    readonly chains: readonly ChainInfo[];
    readonly rules: readonly FirewallRule[];
}
/** iptables/ip6tables rules of the filter table: `client.firewall`. */
export declare class Firewall {
    #private;
    /** Every rule of a chain, in order, with counters (all pages). */
    rules(where: ChainRef, token?: CancellationToken): Promise<readonly FirewallRule[]>;
    /** Adds a managed rule (appended, or inserted at `position`); refused if it would cut this client off the API. */
    add(where: ChainRef, rule: RuleInput, options?: ChangeOptions, token?: CancellationToken): Promise<FirewallRule>;
    /** The chains of the filter table, built-in first as iptables lists them. */
    chains(family?: "ipv4" | "ipv6", token?: CancellationToken): Promise<readonly ChainInfo[]>;
    /** The whole filter table: text, chains and rules (`rules[i].spec` is what {@link Firewall.apply} takes back). */
    export(family?: "ipv4" | "ipv6", token?: CancellationToken): Promise<RulesetExport>;
    /**
     * Replaces the whole filter table at once (nothing is half-applied), or with `scope: "managed"` only the rules and
     * chains Portcullis manages. A whole-table apply that would remove or change rules of other tools (Docker,
     * fail2ban) is refused unless `replaceForeign`. `dryRun` answers the diff without applying. With `confirmWithin`,
     * the previous table comes back by itself unless {@link Firewall.confirm} is called in time.
     */
    apply(ruleset: RulesetInput, options?: ApplyOptions, token?: CancellationToken): Promise<ApplyResult>;
    /** Keeps the changes made in safe mode (an apply, add or delete with `confirmWithin`): cancels their rollback. */
    confirm(family?: "ipv4" | "ipv6", token?: CancellationToken): Promise<void>;
    /** Whether panic mode is on, and the management addresses it leaves the API to. */
    panicMode(token?: CancellationToken): Promise<PanicMode>;
    /** Panic mode on: every packet is dropped in both families but the API's own, from the management addresses (admin). */
    enablePanicMode(token?: CancellationToken): Promise<PanicMode>;
    /** Panic mode off: the rulesets saved when it began come back (admin). */
    disablePanicMode(token?: CancellationToken): Promise<PanicMode>;
    /** Deletes a rule by its id. */
    delete(where: ChainRef, id: string, options?: Omit<ChangeOptions, "position">, token?: CancellationToken): Promise<void>;
}

// ---- fleet.ts
import type { CancellationToken } from "./base/cancellation.js";
import type { BanSearch, FleetNode } from "./api.js";
/** The fleet the server belongs to (its `cluster` section): `client.fleet`. Outside a fleet every call fails with FailedPrecondition. */
export declare class Fleet {
    #private;
    /** Every host with a heartbeat, by name: version, lag behind the stream of shared bans, bans applied and refused. */
    nodes(token?: CancellationToken): Promise<readonly FleetNode[]>;
    /** Which hosts block an address, and since when; waits up to `timeoutMs` (default 2000) for their answers. */
    searchBans(address: string, options?: {
        readonly timeoutMs?: number;
    }, token?: CancellationToken): Promise<BanSearch>;
}

// ---- host.ts
import type { CancellationToken } from "./base/cancellation.js";
import type { ActivityWindow, AddressReport, CallerIdentity, HostOverview, JailActivity } from "./api.js";
/** The host as a whole, and the caller's place in it: `client.host`. */
export declare class Host {
    #private;
    /** Who the server takes the caller to be: certificate name, role, and the address the connection comes from. */
    caller(token?: CancellationToken): Promise<CallerIdentity>;
    /** The host at a glance: bans, jails, sets, rules, fail2ban and the fleet. */
    overview(token?: CancellationToken): Promise<HostOverview>;
    /** Each jail's bans and unbans over a window (default "day"), with fail2ban's failure and ban counters. */
    jailActivity(window?: ActivityWindow, token?: CancellationToken): Promise<readonly JailActivity[]>;
    /**
     * Everything about one address now: the jails that ban it, the managed sets and rules that hold or match it, the
     * allowlist and ignoreip entries that protect it, and its newest events (at most `eventLimit`, default 50).
     */
    inspect(address: string, options?: {
        readonly eventLimit?: number;
    }, token?: CancellationToken): Promise<AddressReport>;
}

// ---- index.ts
export { createClient, type ClientOptions, type PortcullisClient } from "./client.js";
export { Audit, Events, type EventPage } from "./events.js";
export type { ActivityWindow, AddressReport, AuditFilter, AuditRecord, AllowlistEntry, BanEvent, BanOptions, BanSearch, BanTerms, BanTimeline, BouncerInfo, BouncerKey, CallerIdentity, ChainInfo, EventFilter, FeedFormat, FeedInfo, FeedRefresh, FeedStatus, FleetNode, HostBan, HostOverview, FirewallRule, HostEvent, IpsetEntry, IpsetInfo, JailActivity, JailStatus, Offender, PanicMode, PortSpec, RuleInput, RulesetInput, RuleTarget, TopOffenders } from "./api.js";
export { Firewall, type ApplyOptions, type ApplyResult, type ChainRef, type ChangeOptions, type RulesetDiff, type RulesetExport } from "./firewall.js";
export { Jails } from "./jails.js";
export { Fleet } from "./fleet.js";
export { Host } from "./host.js";
export { Feeds, type FeedCreateOptions, type FeedSettings } from "./feeds.js";
export { Bouncers } from "./bouncers.js";
export { Ipsets, type AddOptions, type CreateOptions } from "./ipsets.js";
export { Disposable } from "./base/disposable.js";
export { EventEmitter, type Event, type EventEmitterOptions } from "./base/event.js";
export { CancellationToken, CancellationTokenSource } from "./base/cancellation.js";
export { PortcullisError, type ErrorCode, type ErrorReason } from "./errors.js";

// ---- ipsets.ts
import type { CancellationToken } from "./base/cancellation.js";
import type { BanOptions, IpsetEntry, IpsetInfo } from "./api.js";
/** Options of {@link Ipsets.add}. */
export interface AddOptions {
    /** Seconds until the entries expire (the set must support timeouts); 0 = permanent. */
    readonly timeout?: number;
    readonly comment?: string;
    /** Also on every host of the fleet (the server needs a `cluster` section); default false. */
    readonly fleet?: boolean;
}
/** What {@link Ipsets.create} makes. */
export interface CreateOptions {
    /** "hash:ip" (default), "hash:net", "hash:ip,port" or "hash:net,port". */
    readonly type?: "hash:ip" | "hash:net" | "hash:ip,port" | "hash:net,port";
    /** "inet" (default) or "inet6". */
    readonly family?: "inet" | "inet6";
    /** Entries can expire: the default timeout in seconds (0 = entries are permanent unless given one). */
    readonly timeout?: number;
    /** Entries can carry a comment. */
    readonly comments?: boolean;
    /** The most entries the set holds before it grows (or refuses more); the kernel's default is 65536. */
    readonly maxelem?: number;
    /** A batch that would pass maxelem grows the set (a larger copy swapped in) instead of being refused; default true. */
    readonly autoGrow?: boolean;
    /** The largest maxelem growth may reach; default 16777216. */
    readonly growLimit?: number;
    /** Idempotency key: a retried create with the same key returns the first result instead of AlreadyExists. */
    readonly requestId?: string;
}
/** The host's IP sets: `client.ipsets`. */
export declare class Ipsets {
    #private;
    /** Creates a managed set (restored after a reboot). Fails with AlreadyExists when there is one of that name. */
    create(set: string, options?: CreateOptions, token?: CancellationToken): Promise<IpsetInfo>;
    /** Every set on the host (managed or not), with entry counts (all pages). */
    list(token?: CancellationToken): Promise<readonly IpsetInfo[]>;
    /** Destroys a set; refused (FailedPrecondition) while a firewall rule uses it. */
    delete(set: string, token?: CancellationToken): Promise<void>;
    /** Sets in the `ipset save` format (`create` and `add` lines): the given ones, or every set. */
    export(sets?: readonly string[], token?: CancellationToken): Promise<string>;
    /** A set, with its entry count. */
    get(set: string, token?: CancellationToken): Promise<IpsetInfo>;
    /**
     * Adds addresses or networks (one call, applied together); returns how many entries were added or refreshed (a
     * network in a set of single addresses is one entry per address).
     */
    add(set: string, elements: readonly string[], options?: AddOptions, token?: CancellationToken): Promise<number>;
    /** Removes an entry (with `fleet`, on every host of the fleet). */
    remove(set: string, element: string, options?: BanOptions, token?: CancellationToken): Promise<void>;
    /** Whether the kernel set matches an address (a network's addresses match their network's entry). */
    test(set: string, element: string, token?: CancellationToken): Promise<boolean>;
    /** Every entry of a set (all pages). */
    entries(set: string, token?: CancellationToken): Promise<readonly IpsetEntry[]>;
    /**
     * The entries of a set that an address or network is equal to, inside or covered by (by the address or network an
     * entry starts with; any spelling of the address), or, for other text, whose element starts with it (all pages).
     */
    findEntries(set: string, filter: string, token?: CancellationToken): Promise<readonly IpsetEntry[]>;
}

// ---- jails.ts
import type { Event } from "./base/event.js";
import type { CancellationToken } from "./base/cancellation.js";
import type { AllowlistEntry, BanEvent, BanOptions, BanTerms, JailStatus } from "./api.js";
/** The host's fail2ban jails: `client.jails`. */
export declare class Jails {
    #private;
    /** Every jail with its counters, banned addresses and settings. */
    list(token?: CancellationToken): Promise<readonly JailStatus[]>;
    /** What `fail2ban-client status <jail>` shows, plus the jail's settings. */
    status(jail: string, token?: CancellationToken): Promise<JailStatus>;
    /**
     * Bans an address in a jail (or in every jail when `jail` is "-"); resolves once the ban is in force. Returns the
     * jails it is banned in. With `duration`, the server lifts the ban when it ends (also across its restarts).
     */
    ban(jail: string, address: string, options?: BanTerms, token?: CancellationToken): Promise<readonly string[]>;
    /** Lifts a ban in a jail (or in every jail with "-"). Returns the jails it was banned in. */
    unban(jail: string, address: string, options?: BanOptions, token?: CancellationToken): Promise<readonly string[]>;
    /**
     * Bans many addresses in one jail (checked whole first: one invalid or protected address bans none); resolves once
     * they are in force. Returns how many were not banned before.
     */
    banMany(jail: string, addresses: readonly string[], options?: BanTerms, token?: CancellationToken): Promise<number>;
    /** Reports a failed login an application saw; enough of them within the jail's findtime ban the address. */
    reportFailure(jail: string, address: string, message?: string, token?: CancellationToken): Promise<void>;
    /** The host allowlist: addresses and networks no jail bans. */
    readonly allowlist: {
        /** Every entry. */
        list: (token?: CancellationToken) => Promise<readonly AllowlistEntry[]>;
        /**
         * Adds (or renews) an entry, optionally for `timeout` seconds; the jail bans it covers are lifted. Returns the
         * entry and the lifted bans as `{ jail, address }`.
         */
        add: (network: string, options?: {
            comment?: string;
            timeout?: number;
        }, token?: CancellationToken) => Promise<{
            entry: AllowlistEntry;
            lifted: ReadonlyArray<{
                jail: string;
                address: string;
            }>;
        }>;
        /** Removes an entry. */
        remove: (network: string, token?: CancellationToken) => Promise<void>;
    };
    /** Fires for every ban in any jail, whoever made it (fail2ban, the API), from the moment of subscribing. */
    readonly onDidBan: Event<BanEvent>;
    /** Fires for every lifted ban in any jail (expiry, the API). */
    readonly onDidUnban: Event<BanEvent>;
}
