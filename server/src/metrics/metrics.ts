// Prometheus metrics (prom-client) on a registry of our own: counters fed by the event log (what happened), histograms
// fed by the invoker and the executor (how long it took), and gauges read from the services when scraped (how things
// are now). Scraped at GET /metrics on the REST port (mTLS) and, optionally, on a plain loopback port.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { HostEvent } from "../events/event-model.js";
import type { CommandObserver } from "../drivers/exec.js";

/** What the invoker reports of each call. */
export interface CallObserver {
  callFinished(method: string, transport: string, code: string, seconds: number): void;
}

/** The state read at scrape time; each probe may fail without failing the scrape. */
export interface MetricsProbes {
  readonly ipsets: () => Promise<ReadonlyArray<{ name: string; entryCount: number }>>;
  readonly rules: () => Promise<ReadonlyArray<{ family: string; chain: string; count: number }>>;
  readonly fail2banUp: () => Promise<boolean>;
  readonly eventSequence: () => number;
  readonly eventSubscribers: () => number;
  readonly feeds: () => ReadonlyArray<{ name: string; lastSuccessAt?: number; entries: number; skipped: number }>;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Metrics implements CommandObserver, CallObserver {
  readonly registry = new Registry();
  readonly #rpc: Histogram<"method" | "transport" | "code">;
  readonly #commands: Histogram<"command">;
  readonly #commandFailures: Counter<"command">;
  readonly #bans: Counter<"jail" | "origin">;
  readonly #unbans: Counter<"jail" | "origin">;
  readonly #setAdds: Counter<"set" | "origin">;
  readonly #setRemoves: Counter<"set" | "origin">;
  readonly #rollbacks: Counter<"table">;
  readonly #repairs: Counter<"kind">;
  readonly #events: Counter<"type" | "origin">;
  readonly #feedRefreshes: Counter<"feed">;
  readonly #feedFailures: Counter<"feed" | "reason">;
  /** The services the state gauges read; set once they exist (the executor needs the metrics before them). */
  #probes: MetricsProbes | undefined;

  constructor() {
    const registers = [this.registry];
    const probe = <T>(read: (probes: MetricsProbes) => Promise<T>, fallback: T): Promise<T> =>
      this.#probes === undefined ? Promise.resolve(fallback) : read(this.#probes).catch(() => fallback);
    collectDefaultMetrics({ register: this.registry, prefix: "portcullis_" });
    this.#rpc = new Histogram({ name: "portcullis_rpc_duration_seconds", help: "API calls by method, transport (grpc, rest) and status code", labelNames: ["method", "transport", "code"], buckets: LATENCY_BUCKETS, registers });
    this.#commands = new Histogram({ name: "portcullis_kernel_command_duration_seconds", help: "Kernel tool runs (iptables, ipset, fail2ban-client, …) by command", labelNames: ["command"], buckets: LATENCY_BUCKETS, registers });
    this.#commandFailures = new Counter({ name: "portcullis_kernel_command_failures_total", help: "Kernel tool runs that failed (non-zero exit or could not start)", labelNames: ["command"], registers });
    this.#bans = new Counter({ name: "portcullis_jail_bans_total", help: "Bans by jail and origin (api, fail2ban)", labelNames: ["jail", "origin"], registers });
    this.#unbans = new Counter({ name: "portcullis_jail_unbans_total", help: "Unbans by jail and origin", labelNames: ["jail", "origin"], registers });
    this.#setAdds = new Counter({ name: "portcullis_set_entries_added_total", help: "Entries added to IP sets, by set and origin", labelNames: ["set", "origin"], registers });
    this.#setRemoves = new Counter({ name: "portcullis_set_entries_removed_total", help: "Entries removed from IP sets, by set and origin", labelNames: ["set", "origin"], registers });
    this.#rollbacks = new Counter({ name: "portcullis_safe_mode_rollbacks_total", help: "Safe-mode changes rolled back for want of confirmation", labelNames: ["table"], registers });
    this.#repairs = new Counter({ name: "portcullis_reconciliation_repairs_total", help: "Managed entries and rules put back after the kernel lost them", labelNames: ["kind"], registers });
    this.#events = new Counter({ name: "portcullis_events_total", help: "Events recorded in the event log, by type and origin", labelNames: ["type", "origin"], registers });
    this.#feedRefreshes = new Counter({ name: "portcullis_feed_refreshes_total", help: "Lists applied to a feed's sets (a list found unchanged is not counted), and for a crowdsec feed polls that changed them", labelNames: ["feed"], registers });
    this.#feedFailures = new Counter({ name: "portcullis_feed_failures_total", help: "Feed refreshes that failed, leaving the sets as they were, by reason (FEED_UNAVAILABLE, FEED_SHRANK, …; a crowdsec feed counts one per outage)", labelNames: ["feed", "reason"], registers });

    new Gauge({
      name: "portcullis_set_entries", help: "Entries per IP set", labelNames: ["set"], registers,
      async collect() {
        this.reset();
        for (const set of await probe((probes) => probes.ipsets(), [])) this.set({ set: set.name }, set.entryCount);
      },
    });
    new Gauge({
      name: "portcullis_rules", help: "Rules per chain of the filter table", labelNames: ["family", "chain"], registers,
      async collect() {
        this.reset();
        for (const chain of await probe((probes) => probes.rules(), [])) this.set({ family: chain.family, chain: chain.chain }, chain.count);
      },
    });
    new Gauge({
      name: "portcullis_fail2ban_up", help: "1 when fail2ban-server answers on its socket", registers,
      async collect() {
        this.set((await probe((probes) => probes.fail2banUp(), false)) ? 1 : 0);
      },
    });
    const probes = (): MetricsProbes | undefined => this.#probes;
    new Gauge({
      name: "portcullis_feed_last_success_timestamp_seconds", help: "When each feed's list was last read and applied, or found unchanged (Unix time)", labelNames: ["feed"], registers,
      collect() {
        this.reset();
        for (const feed of probes()?.feeds() ?? []) if (feed.lastSuccessAt !== undefined) this.set({ feed: feed.name }, feed.lastSuccessAt / 1000);
      },
    });
    new Gauge({
      name: "portcullis_feed_entries", help: "Entries each feed's two sets hold", labelNames: ["feed"], registers,
      collect() {
        this.reset();
        for (const feed of probes()?.feeds() ?? []) this.set({ feed: feed.name }, feed.entries);
      },
    });
    new Gauge({
      name: "portcullis_feed_skipped_entries", help: "Entries of each feed's list left out because the allowlist or a management address covers them", labelNames: ["feed"], registers,
      collect() {
        this.reset();
        for (const feed of probes()?.feeds() ?? []) this.set({ feed: feed.name }, feed.skipped);
      },
    });
    new Gauge({ name: "portcullis_event_log_sequence", help: "Sequence of the newest event in the log", registers, collect() { this.set(probes()?.eventSequence() ?? 0); } });
    new Gauge({ name: "portcullis_event_subscribers", help: "Open event streams (WatchEvents and /v1/events)", registers, collect() { this.set(probes()?.eventSubscribers() ?? 0); } });
  }

  /** From now on the state gauges read these. */
  readFrom(probes: MetricsProbes): void {
    this.#probes = probes;
  }

  callFinished(method: string, transport: string, code: string, seconds: number): void {
    this.#rpc.observe({ method, transport, code }, seconds);
  }

  commandFinished(command: string, seconds: number, ok: boolean): void {
    this.#commands.observe({ command }, seconds);
    if (!ok) this.#commandFailures.inc({ command });
  }

  /** Counts what an event says happened (subscribe it to the event log). */
  eventRecorded(event: HostEvent): void {
    this.#events.inc({ type: event.type, origin: event.origin });
    const [kind, name = ""] = event.resource.split("/");
    const count = Number(event.attributes.count ?? 1) || 0;
    switch (event.type) {
      case "BAN":
        if (kind === "jails") this.#bans.inc({ jail: name, origin: event.origin });
        break;
      case "UNBAN":
        if (kind === "jails") this.#unbans.inc({ jail: name, origin: event.origin });
        break;
      case "ENTRY_ADDED":
      case "ENTRIES_ADDED":
        if (event.attributes.import === undefined) this.#setAdds.inc({ set: name, origin: event.origin }, count);
        break;
      case "ENTRY_DELETED":
      case "ENTRIES_DELETED":
        this.#setRemoves.inc({ set: name, origin: event.origin }, count);
        break;
      case "RULESET_ROLLED_BACK":
        this.#rollbacks.inc({ table: event.resource });
        break;
      case "STATE_REPAIRED":
        this.#repairs.inc({ kind: kind === "ipsets" ? "ipset_entries" : kind === "feeds" ? "feed_entries" : "firewall_rules" }, count);
        break;
      case "FEED_REFRESHED":
        this.#feedRefreshes.inc({ feed: name });
        break;
      case "FEED_FAILED":
        this.#feedFailures.inc({ feed: name, reason: event.attributes.reason ?? "" });
        break;
      default:
        break;
    }
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
