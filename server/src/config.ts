import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import ipaddr from "ipaddr.js";
import { IPSET_NAME, JAIL_NAME } from "./names.js";

function isCidr(value: string): boolean {
  return ipaddr.isValid(value) || (value.includes("/") && (() => {
    try {
      ipaddr.parseCIDR(value);
      return true;
    } catch {
      return false;
    }
  })());
}

const NETNS = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
/** Plain-HTTP listeners (metrics) must stay on the machine: no certificates protect them. */
const LOOPBACK_HOST_PORT = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost):\d{1,5}$/;

const SINK_NAME = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "must be 1-64 letters, digits, _ . -");
/** Where a new sink starts: after the events already in the log ("now"), or from the oldest kept. */
const START_AT = z.enum(["now", "oldest"]).default("now");

/** SIEM sinks: each gets every event, in order, from its own position in the event log. */
const SinkSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("file"),
    name: SINK_NAME,
    path: z.string().min(1),
    /** Rotate before the file would pass this size. */
    maxBytes: z.number().int().min(4096).default(100 * 1024 * 1024),
    /** Rotated files kept (path.1 … path.N). */
    keep: z.number().int().min(1).max(100).default(5),
    startAt: START_AT,
  }).strict(),
  z.object({
    type: z.literal("syslog"),
    name: SINK_NAME,
    transport: z.enum(["udp", "tcp", "tls"]).default("udp"),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65_535).default(514),
    facility: z.number().int().min(0).max(23).default(16),
    appName: z.string().regex(/^[!-~]{1,48}$/, "must be 1-48 printable characters without spaces").default("portcullis"),
    ca: z.string().optional(),
    cert: z.string().optional(),
    key: z.string().optional(),
    startAt: START_AT,
  }).strict(),
  z.object({
    type: z.literal("webhook"),
    name: SINK_NAME,
    url: z.url({ protocol: /^https?$/ }),
    secret: z.string().min(16, "use at least 16 characters").optional(),
    timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
    ca: z.string().optional(),
    startAt: START_AT,
  }).strict(),
]);

/** A fleet node's name: a NATS consumer and KV key, so no dots, spaces or wildcards. */
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const NATS_URL = /^(nats|tls):\/\/(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
const LOOPBACK_NATS = /^(nats|tls):\/\/(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost):\d{1,5}$/;

/**
 * Fleet mode: bans shared with other hosts through NATS JetStream. Without this section nothing connects. NATS must be
 * reached with mTLS (`tls`) or a credentials file unless every server is on loopback.
 */
const ClusterSchema = z
  .object({
    servers: z.array(z.string().regex(NATS_URL, "must be nats://host:port or tls://host:port")).min(1),
    /** This host's name in the fleet (its durable consumer and heartbeat key). */
    node: z.string().regex(NODE_NAME, "must be 1-64 letters, digits, _ and - (no dots)"),
    tls: z.object({ ca: z.string().min(1), cert: z.string().min(1).optional(), key: z.string().min(1).optional() }).strict().optional(),
    /** A NATS credentials file (JWT and NKey seed), as `nsc` writes it. */
    credentials: z.string().min(1).optional(),
    /** Every ban and unban of these jails, and every entry of these sets, goes to the fleet. */
    share: z
      .object({
        jails: z.array(z.string().regex(JAIL_NAME, "must be a jail name")).default([]),
        sets: z.array(z.string().regex(IPSET_NAME, "must be an ipset name")).default([]),
      })
      .strict()
      .prefault({}),
    /** The JetStream stream of shared bans (created if missing). */
    stream: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).default("PORTCULLIS_BANS"),
    /** Subject prefix: bans go to `<subject>.bans`, ban searches to `<subject>.search`. */
    subject: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, "must be a NATS subject without wildcards").default("portcullis.fleet"),
    /** The KV bucket of heartbeats (created if missing). */
    bucket: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).default("portcullis-fleet-nodes"),
    /** Stream replicas; default min(3, servers in the NATS cluster). */
    replicas: z.number().int().min(1).max(5).optional(),
    /** How long the stream keeps bans: a host offline longer than this misses the oldest. */
    maxAgeDays: z.number().int().min(1).max(3650).default(30),
    maxBytes: z.number().int().min(1024 * 1024).default(1024 * 1024 * 1024),
    heartbeatSeconds: z.number().int().min(1).max(300).default(5),
  })
  .strict()
  .refine((cluster) => (cluster.tls?.cert === undefined) === (cluster.tls?.key === undefined), { message: "tls.cert and tls.key go together", path: ["tls"] })
  .refine((cluster) => cluster.tls !== undefined || cluster.credentials !== undefined || cluster.servers.every((url) => LOOPBACK_NATS.test(url)), {
    message: "NATS servers off this host need tls (mTLS) or credentials",
    path: ["servers"],
  });

/** The server's configuration; every key can come from the file, a PORTCULLIS_* variable or a flag. */
const ConfigSchema = z
  .object({
    /** Where state (SQLite) and, by default, certificates live. */
    dataDir: z.string().min(1).default("./var"),
    /** Run every kernel command inside this network namespace (tests, demo). */
    netns: z.string().regex(NETNS, "must be a network namespace name such as pc-demo").optional(),
    grpc: z
      .object({ address: z.string().regex(HOST_PORT, "must be host:port, e.g. 127.0.0.1:50051").default("127.0.0.1:50051") })
      .strict()
      .prefault({}),
    /** The REST gateway (HTTPS with the same client certificates). */
    rest: z
      .object({ address: z.string().regex(HOST_PORT, "must be host:port, e.g. 127.0.0.1:8443").default("127.0.0.1:8443") })
      .strict()
      .prefault({}),
    /** The web console served at /console/ on the REST port: the folder `npm run build` fills (console/dist). */
    console: z
      .object({ dir: z.string().min(1).optional() })
      .strict()
      .prefault({}),
    /** Certificate files; unset ones default to <dataDir>/pki, created on first start. */
    tls: z
      .object({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional(), crl: z.string().optional() })
      .strict()
      .prefault({}),
    firewall: z
      .object({
        /** Addresses that keep reaching the API in panic mode. */
        managementAddresses: z.array(z.string().refine(isCidr, "must be an address or CIDR")).default(["127.0.0.1/32", "::1/128"]),
      })
      .strict()
      .prefault({}),
    fail2ban: z
      .object({
        socket: z.string().min(1).default("/var/run/fail2ban/fail2ban.sock"),
        /** fail2ban's configuration directory: UpdateJail writes its drop-ins under `jail.d/` here. */
        configDir: z.string().min(1).default("/etc/fail2ban"),
        /** The socket the Portcullis fail2ban action talks to (default <dataDir>/fail2ban-action.sock). */
        actionSocket: z.string().min(1).optional(),
        /** How often the jails' ban lists are compared, to report fail2ban's own bans and expiries as events. */
        pollIntervalMs: z.number().int().min(100).max(60_000).default(500),
      })
      .strict()
      .prefault({}),
    /** Event log retention: the oldest events go first once either bound is passed. */
    events: z
      .object({ maxEvents: z.number().int().min(1000).default(1_000_000), maxAgeDays: z.number().int().min(1).max(3650).default(30) })
      .strict()
      .prefault({}),
    sinks: z.array(SinkSchema).default([]).refine((sinks) => new Set(sinks.map((sink) => sink.name)).size === sinks.length, "sink names must be unique (each keeps its own position)"),
    /** Prometheus metrics: always at GET /metrics on the REST port (mTLS); also on this plain loopback port if set. */
    metrics: z
      .object({ address: z.string().regex(LOOPBACK_HOST_PORT, "must be a loopback host:port, e.g. 127.0.0.1:9464 (plain HTTP never leaves the host)").optional() })
      .strict()
      .prefault({}),
    cluster: ClusterSchema.optional(),
    /**
     * The CrowdSec bouncer API (`GET /v1/decisions/stream`, `GET /v1/decisions`) on its own HTTPS port, with the
     * server's certificate and bouncer API keys only (`portcullis bouncers add`). Off unless an address is set.
     */
    bouncer: z
      .object({
        address: z.string().regex(HOST_PORT, "must be host:port, e.g. 127.0.0.1:8081").optional(),
        /** Sets whose entries are published as decisions too, besides every jail's bans. */
        sets: z.array(z.string().regex(IPSET_NAME, "must be an ipset name")).default([]),
      })
      .strict()
      .prefault({}),
    /**
     * Feeds: the folders whose files a feed may read (a file:// source, a crowdsec feed's api_key_file). An admin of
     * the API is not root on the host: without this, a feed could read any file the server can.
     */
    feeds: z
      .object({ fileRoots: z.array(z.string().refine((path) => path.startsWith("/"), "must be an absolute path")).default(["/etc/portcullis/feeds"]) })
      .strict()
      .prefault({}),
    reconcile: z.object({ intervalSeconds: z.number().int().min(0).max(86_400).default(60) }).strict().prefault({}),
    log: z
      .object({
        level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
        /** json: one JSON object per line (for log shippers); pretty: colourless human-readable lines. */
        format: z.enum(["json", "pretty"]).default("json"),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;
export type SinkConfig = z.infer<typeof SinkSchema>;
export type ClusterConfig = z.infer<typeof ClusterSchema>;

/** Flags as given on the command line (only those present). */
export interface ConfigFlags {
  config?: string;
  dataDir?: string;
  netns?: string;
  grpcAddress?: string;
  restAddress?: string;
  metricsAddress?: string;
  logLevel?: string;
  logFormat?: string;
}

export class ConfigError extends Error {}

/** Variables and the config keys they set (the flags use the same names in kebab-case). */
const ENVIRONMENT: ReadonlyArray<[string, string[], "string" | "number" | "list"]> = [
  ["PORTCULLIS_DATA_DIR", ["dataDir"], "string"],
  ["PORTCULLIS_NETNS", ["netns"], "string"],
  ["PORTCULLIS_GRPC_ADDRESS", ["grpc", "address"], "string"],
  ["PORTCULLIS_REST_ADDRESS", ["rest", "address"], "string"],
  ["PORTCULLIS_CONSOLE_DIR", ["console", "dir"], "string"],
  ["PORTCULLIS_TLS_CA", ["tls", "ca"], "string"],
  ["PORTCULLIS_TLS_CERT", ["tls", "cert"], "string"],
  ["PORTCULLIS_TLS_KEY", ["tls", "key"], "string"],
  ["PORTCULLIS_TLS_CRL", ["tls", "crl"], "string"],
  ["PORTCULLIS_RECONCILE_INTERVAL_SECONDS", ["reconcile", "intervalSeconds"], "number"],
  ["PORTCULLIS_LOG_LEVEL", ["log", "level"], "string"],
  ["PORTCULLIS_LOG_FORMAT", ["log", "format"], "string"],
  ["PORTCULLIS_METRICS_ADDRESS", ["metrics", "address"], "string"],
  ["PORTCULLIS_BOUNCER_ADDRESS", ["bouncer", "address"], "string"],
  ["PORTCULLIS_BOUNCER_SETS", ["bouncer", "sets"], "list"],
  ["PORTCULLIS_FEEDS_FILE_ROOTS", ["feeds", "fileRoots"], "list"],
  ["PORTCULLIS_FIREWALL_MANAGEMENT_ADDRESSES", ["firewall", "managementAddresses"], "list"],
  ["PORTCULLIS_FAIL2BAN_SOCKET", ["fail2ban", "socket"], "string"],
  ["PORTCULLIS_FAIL2BAN_CONFIG_DIR", ["fail2ban", "configDir"], "string"],
  ["PORTCULLIS_FAIL2BAN_ACTION_SOCKET", ["fail2ban", "actionSocket"], "string"],
];

/** Precedence: flags, then environment, then the config file (YAML or JSON), then defaults. */
export function loadConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env): Config {
  const file = flags.config ?? env.PORTCULLIS_CONFIG;
  let raw: Record<string, unknown> = {};
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      throw new ConfigError(`cannot read config file ${file}: ${(error as Error).message}`);
    }
    const parsed: unknown = parseYaml(text);
    if (parsed !== null && (typeof parsed !== "object" || Array.isArray(parsed))) throw new ConfigError(`config file ${file} must hold a mapping of keys`);
    raw = (parsed ?? {}) as Record<string, unknown>;
  }
  for (const [variable, path, kind] of ENVIRONMENT) {
    const value = env[variable];
    if (value !== undefined && value !== "") setPath(raw, path, kind === "number" ? Number(value) : kind === "list" ? value.split(",").map((item) => item.trim()) : value);
  }
  if (flags.dataDir !== undefined) setPath(raw, ["dataDir"], flags.dataDir);
  if (flags.netns !== undefined) setPath(raw, ["netns"], flags.netns);
  if (flags.grpcAddress !== undefined) setPath(raw, ["grpc", "address"], flags.grpcAddress);
  if (flags.restAddress !== undefined) setPath(raw, ["rest", "address"], flags.restAddress);
  if (flags.metricsAddress !== undefined) setPath(raw, ["metrics", "address"], flags.metricsAddress);
  if (flags.logLevel !== undefined) setPath(raw, ["log", "level"], flags.logLevel);
  if (flags.logFormat !== undefined) setPath(raw, ["log", "format"], flags.logFormat);

  const result = ConfigSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const key = issue.path.join(".");
      return issue.code === "unrecognized_keys" ? `unknown key ${[...issue.path, ...issue.keys].join(".")}` : `${key}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration${file === undefined ? "" : ` (${file})`}: ${problems.join("; ")}`);
  }
  return { ...result.data, dataDir: resolve(result.data.dataDir) };
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== "object" || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}
