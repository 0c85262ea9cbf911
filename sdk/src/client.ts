import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { Disposable } from "./base/disposable.js";
import { Channel } from "./transport/channel.js";
import { EventStream } from "./transport/event-stream.js";
import { Ipsets } from "./ipsets.js";
import { Jails } from "./jails.js";
import { Firewall } from "./firewall.js";
import { Fleet } from "./fleet.js";
import { Host } from "./host.js";
import { Feeds } from "./feeds.js";
import { Bouncers } from "./bouncers.js";
import { Audit, Events } from "./events.js";
import { PortcullisError } from "./errors.js";

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
export function createClient(options: ClientOptions = {}): PortcullisClient {
  const resolved = { ...fromEnvironment(), ...fromProfile(options.profile), ...definedOnly(options) };
  const bundle = resolved.bundle;
  const pem = (value: string | undefined, file: string, what: string): Buffer => {
    const given = value ?? (bundle === undefined ? undefined : join(bundle, file));
    if (given === undefined) throw new PortcullisError("InvalidArgument", `no ${what}: give ${what}, bundle, a profile or PORTCULLIS_BUNDLE`);
    return given.trimStart().startsWith("-----BEGIN") ? Buffer.from(given) : readFileSync(given);
  };
  const channel = new Channel({
    address: resolved.address ?? "localhost:50051",
    ca: pem(resolved.ca, "ca.crt", "ca"),
    cert: pem(resolved.cert, "client.crt", "cert"),
    key: pem(resolved.key, "client.key", "key"),
    deadlineMs: resolved.deadlineMs ?? 30_000,
  });
  const stream = new EventStream(channel);
  channel.beforeWrite = () => stream.ready();
  const disposable = new Disposable(() => {
    stream.dispose();
    channel.close();
  });
  return Object.freeze({
    jails: new Jails(channel, stream.event),
    ipsets: new Ipsets(channel),
    firewall: new Firewall(channel),
    events: new Events(channel, stream.event),
    audit: new Audit(channel),
    fleet: new Fleet(channel),
    host: new Host(channel),
    feeds: new Feeds(channel, stream.event),
    bouncers: new Bouncers(channel),
    dispose: () => disposable.dispose(),
  });
}

function fromEnvironment(): ClientOptions {
  const env = process.env;
  return definedOnly({ address: env.PORTCULLIS_ADDRESS, bundle: env.PORTCULLIS_BUNDLE, ca: env.PORTCULLIS_CA, cert: env.PORTCULLIS_CERT, key: env.PORTCULLIS_KEY });
}

function fromProfile(name: string | undefined): ClientOptions {
  const file = join(homedir(), ".config", "portcullis", "config.json");
  if (!existsSync(file)) {
    if (name !== undefined) throw new PortcullisError("InvalidArgument", `profile ${name} asked for, but ${file} does not exist`);
    return {};
  }
  const profiles = (JSON.parse(readFileSync(file, "utf8")) as { profiles?: Record<string, ClientOptions> }).profiles ?? {};
  const profile = profiles[name ?? "default"];
  if (profile === undefined && name !== undefined) throw new PortcullisError("InvalidArgument", `${file} has no profile ${name}; it has ${Object.keys(profiles).join(", ") || "none"}`);
  return definedOnly(profile ?? {});
}

function definedOnly<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as T;
}
