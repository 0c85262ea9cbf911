import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { connect as connectTcp, type Socket } from "node:net";
import { hostname } from "node:os";
import { connect as connectTls } from "node:tls";
import type { HostEvent } from "../events/event-model.js";
import { eventJson, type EventSink } from "./sink.js";

export interface SyslogOptions {
  readonly transport: "udp" | "tcp" | "tls";
  readonly host: string;
  readonly port: number;
  /** Syslog facility number (default 16, local0). */
  readonly facility: number;
  readonly appName: string;
  /** TLS: the collector's CA (PEM file) and, if it asks for one, our client certificate and key. */
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/** RFC 5424 structured-data id: a private one under the documentation enterprise number (RFC 5612). */
const SD_ID = "portcullis@32473";
/** Severities: notice for what a SIEM acts on, informational for the rest. */
const NOTICE = new Set(["BAN", "UNBAN", "RULESET_ROLLED_BACK", "PANIC_ENABLED", "PANIC_DISABLED", "STATE_REPAIRED", "STATE_REFUSED", "FAIL2BAN_DOWN", "FAIL2BAN_UP"]);

/** SD-PARAM values escape `"`, `\` and `]` (RFC 5424 6.3.3). */
const sdValue = (value: string): string => value.replace(/["\\\]]/g, (char) => `\\${char}`);

/** One event as an RFC 5424 message: MSGID is the event type, the SD element carries the fields, MSG the JSON. */
export function syslogMessage(event: HostEvent, options: { facility: number; appName: string; hostname: string }): string {
  const severity = NOTICE.has(event.type) ? 5 : 6;
  const sd = `[${SD_ID} sequence="${event.sequence}" resource="${sdValue(event.resource)}" principal="${sdValue(event.principal)}" origin="${event.origin}"]`;
  return `<${options.facility * 8 + severity}>1 ${new Date(event.time).toISOString()} ${options.hostname} ${options.appName} ${process.pid} ${event.type} ${sd} ${eventJson(event)}`;
}

/**
 * Events to a syslog collector: UDP datagrams (fire and forget), or TCP/TLS with octet-counting framing (RFC 6587),
 * reconnecting when the collector comes back. A batch is delivered when the socket took all of it.
 */
export class SyslogSink implements EventSink {
  readonly #options: SyslogOptions;
  readonly #hostname = hostname().split(".")[0] || "-";
  #udp: UdpSocket | undefined;
  #stream: Socket | undefined;

  constructor(options: SyslogOptions) {
    this.#options = options;
  }

  async deliver(events: readonly HostEvent[]): Promise<void> {
    const messages = events.map((event) => syslogMessage(event, { ...this.#options, hostname: this.#hostname }));
    if (this.#options.transport === "udp") {
      const socket = (this.#udp ??= createSocket(this.#options.host.includes(":") ? "udp6" : "udp4"));
      for (const message of messages) {
        await new Promise<void>((resolve, reject) => socket.send(message, this.#options.port, this.#options.host, (error) => (error ? reject(error) : resolve())));
      }
      return;
    }
    const stream = this.#stream ?? (await this.#connect());
    const framed = messages.map((message) => `${Buffer.byteLength(message)} ${message}`).join("");
    await new Promise<void>((resolve, reject) => {
      stream.write(framed, (error) => {
        if (error) {
          stream.destroy();
          reject(error);
        } else resolve();
      });
    });
  }

  /** Opens the stream; a collector that closes or fails it is reconnected at the next delivery. */
  async #connect(): Promise<Socket> {
    const { host, port } = this.#options;
    const stream = await new Promise<Socket>((resolve, reject) => {
      const socket = this.#options.transport === "tls"
        ? connectTls({
            host,
            port,
            servername: host,
            ...(this.#options.ca === undefined ? {} : { ca: readFileSync(this.#options.ca) }),
            ...(this.#options.cert === undefined ? {} : { cert: readFileSync(this.#options.cert) }),
            ...(this.#options.key === undefined ? {} : { key: readFileSync(this.#options.key) }),
          }, () => resolve(socket))
        : connectTcp({ host, port }, () => resolve(socket));
      socket.once("error", reject);
    });
    const forget = (): void => {
      if (this.#stream === stream) this.#stream = undefined;
      stream.destroy();
    };
    stream.on("error", forget);
    stream.on("end", forget);
    stream.on("close", forget);
    this.#stream = stream;
    return stream;
  }

  async close(): Promise<void> {
    this.#udp?.close();
    this.#stream?.end();
  }
}
