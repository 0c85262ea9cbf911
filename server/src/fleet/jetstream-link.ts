import { readFileSync } from "node:fs";
import { connect, credsAuthenticator, type NatsConnection, type Msg } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type Consumer, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { ClusterConfig } from "../config.js";
import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";

const NANOS_PER_MS = 1_000_000;
const DAY_MS = 86_400_000;
/** JetStream drops a re-published message id seen within this window (the outbox may publish a batch twice). */
const DUPLICATE_WINDOW_MS = 120_000;
const DRAIN_MS = 2_000;

/** What the link holds once NATS answered and the stream, the node's consumer and the heartbeat bucket exist. */
export interface Linked {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly consumer: Consumer;
  readonly kv: KV;
  /** The heartbeat bucket's stream and the subject prefix of its keys (`$KV.<bucket>.`), to list keys in one request. */
  readonly kvStream: string;
  readonly kvPrefix: string;
}

/**
 * The fleet's connection to NATS: mTLS or a credentials file when configured, reconnecting for ever; the replicated
 * stream of shared bans, this node's durable consumer and the heartbeat bucket, each created if missing (idempotent:
 * every node does it on start). Until NATS answers, `linked` is undefined and callers queue or answer UNAVAILABLE.
 */
export class JetStreamLink {
  readonly #config: ClusterConfig;
  readonly #log: Logger;
  #linked: Linked | undefined;
  #nc: NatsConnection | undefined;
  #connected = false;
  #closed = false;
  readonly #listeners = new Set<(linked: Linked) => void>();
  readonly #services: Array<{ subject: string; handle: (msg: Msg) => void }> = [];

  constructor(config: ClusterConfig, log: Logger) {
    this.#config = config;
    this.#log = log;
  }

  get subjects(): { bans: string; search: string } {
    return { bans: `${this.#config.subject}.bans`, search: `${this.#config.subject}.search` };
  }

  /** The link, when NATS is reachable now. */
  get linked(): Linked | undefined {
    return this.#linked !== undefined && !this.#linked.nc.isClosed() && this.#connected ? this.#linked : undefined;
  }

  /** Calls the listener each time the link is (re)established, and once at once if it is up. */
  onLinked(listener: (linked: Linked) => void): () => void {
    this.#listeners.add(listener);
    if (this.linked !== undefined) listener(this.linked);
    return () => this.#listeners.delete(listener);
  }

  /** Connects in the background; the server serves meanwhile (shared bans wait in the outbox). */
  start(): void {
    void this.#run().catch((error: unknown) => this.#log.error({ err: error }, "fleet link stopped"));
  }

  async #run(): Promise<void> {
    const nc = await connect({
      servers: this.#config.servers,
      name: `portcullis-${this.#config.node}`,
      waitOnFirstConnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 5_000,
      maxPingOut: 2,
      ...this.#auth(),
    });
    if (this.#closed) {
      await nc.close();
      return;
    }
    this.#nc = nc;
    this.#connected = true;
    for (const { subject, handle } of this.#services) nc.subscribe(subject, {
      callback: (error, msg) => {
        if (error === null) handle(msg);
      },
    });
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === "disconnect") {
          this.#connected = false;
          this.#log.warn({ server: status.server }, "fleet: NATS connection lost; shared bans wait in the outbox");
        } else if (status.type === "reconnect") {
          this.#connected = true;
          this.#log.info({ server: status.server }, "fleet: NATS connection back");
          if (this.#linked !== undefined) this.#notify(this.#linked);
        }
      }
    })();
    // The stream and consumer need a JetStream meta leader: retried until the cluster has one.
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        this.#linked = await this.#ensure(nc);
        this.#log.info({ stream: this.#config.stream, node: this.#config.node }, "fleet: linked to NATS JetStream");
        this.#notify(this.#linked);
        return;
      } catch (error) {
        if (attempt % 20 === 0) this.#log.warn({ err: error }, "fleet: JetStream not ready yet; retrying");
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  #notify(linked: Linked): void {
    for (const listener of this.#listeners) {
      try {
        listener(linked);
      } catch (error) {
        this.#log.error({ err: error }, "fleet link listener failed");
      }
    }
  }

  #auth(): Record<string, unknown> {
    const { tls, credentials } = this.#config;
    return {
      ...(tls === undefined ? {} : { tls: { caFile: tls.ca, ...(tls.cert === undefined ? {} : { certFile: tls.cert, keyFile: tls.key }) } }),
      ...(credentials === undefined ? {} : { authenticator: credsAuthenticator(readFileSync(credentials)) }),
    };
  }

  async #ensure(nc: NatsConnection): Promise<Linked> {
    const jsm = await jetstreamManager(nc, { timeout: 5_000 });
    const stream = this.#config.stream;
    const replicas = this.#config.replicas ?? Math.min(3, clusterSize(nc));
    try {
      await jsm.streams.info(stream);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await jsm.streams.add({
        name: stream,
        subjects: [this.subjects.bans],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        num_replicas: replicas,
        discard: DiscardPolicy.Old,
        max_age: this.#config.maxAgeDays * DAY_MS * NANOS_PER_MS,
        max_bytes: this.#config.maxBytes,
        duplicate_window: DUPLICATE_WINDOW_MS * NANOS_PER_MS,
      });
      this.#log.info({ stream, replicas }, "fleet: stream created");
    }
    const durable = `node-${this.#config.node}`;
    try {
      await jsm.consumers.info(stream, durable);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await jsm.consumers.add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: 30_000 * NANOS_PER_MS,
        max_ack_pending: 1_000,
      });
    }
    const js = jetstream(nc, { timeout: 5_000 });
    const consumer = await js.consumers.get(stream, durable);
    const kv = await new Kvm(nc).create(this.#config.bucket, { replicas, history: 1, ttl: DAY_MS });
    return { nc, js, jsm, consumer, kv, kvStream: `KV_${this.#config.bucket}`, kvPrefix: `$KV.${this.#config.bucket}.` };
  }

  /** Answers requests on a subject (ban searches); call before start. Subscriptions survive reconnects. */
  serve(subject: string, handle: (msg: Msg) => void): void {
    this.#services.push({ subject, handle });
  }

  /** NATS, or UNAVAILABLE saying why not. */
  require(): Linked {
    const linked = this.linked;
    if (linked === undefined) throw new ServerError("FLEET_UNAVAILABLE", `NATS (${this.#config.servers.join(", ")}) is not reachable from this host now; shared bans made meanwhile are published when it is back`, {});
    return linked;
  }

  /** Drains the connection (pending publishes and acks go out), for at most DRAIN_MS: NATS may be unreachable. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    const nc = this.#nc;
    if (nc === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([nc.drain().catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, DRAIN_MS)))]);
    clearTimeout(timer);
    if (!nc.isClosed()) await nc.close().catch(() => undefined);
  }
}

/** The servers of the cluster this connection knows of (its own and those it advertised). */
function clusterSize(nc: NatsConnection): number {
  const info = (nc as unknown as { info?: { connect_urls?: string[] } }).info;
  return Math.max(1, info?.connect_urls?.length ?? 1);
}

function isNotFound(error: unknown): boolean {
  return error instanceof Error && /not found/i.test(error.message);
}
