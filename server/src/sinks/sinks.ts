import type { SinkConfig } from "../config.js";
import { FileSink } from "./file-sink.js";
import type { EventSink } from "./sink.js";
import { SyslogSink } from "./syslog-sink.js";
import { WebhookSink } from "./webhook-sink.js";

/** The sink a config entry describes. */
export function createSink(config: SinkConfig): EventSink {
  switch (config.type) {
    case "file":
      return new FileSink({ path: config.path, maxBytes: config.maxBytes, keep: config.keep });
    case "syslog":
      return new SyslogSink({
        transport: config.transport, host: config.host, port: config.port, facility: config.facility, appName: config.appName,
        ...(config.ca === undefined ? {} : { ca: config.ca }), ...(config.cert === undefined ? {} : { cert: config.cert }), ...(config.key === undefined ? {} : { key: config.key }),
      });
    case "webhook":
      return new WebhookSink({ url: config.url, timeoutMs: config.timeoutMs, ...(config.secret === undefined ? {} : { secret: config.secret }), ...(config.ca === undefined ? {} : { ca: config.ca }) });
  }
}
