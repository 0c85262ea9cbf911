// The public surface of @portcullis/sdk.
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
