// The optional plain-HTTP metrics listener, for a Prometheus on the same host (config metrics.address, loopback only;
// the same metrics are on the REST port behind mTLS for everyone else).
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../logger.js";
import { listenAt } from "../listen-address.js";
import type { Metrics } from "./metrics.js";

export interface RunningMetricsServer {
  readonly address: string;
  close(): Promise<void>;
}

export async function startMetricsServer(address: string, metrics: Metrics, log: Logger): Promise<RunningMetricsServer> {
  const server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("only GET /metrics here\n");
      return;
    }
    metrics.scrape().then(
      ({ contentType, body }) => res.writeHead(200, { "content-type": contentType }).end(body),
      (error: unknown) => {
        log.error({ err: error }, "metrics scrape failed");
        res.writeHead(500, { "content-type": "text/plain" }).end("scrape failed\n");
      },
    );
  });
  await listenAt(server, address);
  const bound = server.address() as AddressInfo;
  return {
    address: `${bound.family === "IPv6" ? `[${bound.address}]` : bound.address}:${bound.port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
