import { request } from "node:https";
import type { PortcullisProcess } from "./server.js";

export interface RestReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  readonly json: any;
}

/**
 * One HTTPS request to a server's REST gateway with a client certificate (`as`: the bundle's name; null: none).
 * `body` is sent as JSON unless it is a string.
 */
export function rest(server: PortcullisProcess, method: string, path: string, body?: unknown, options: { as?: string | null | { cert: Buffer; key: Buffer }; headers?: Record<string, string> } = {}): Promise<RestReply> {
  const bundle = options.as === null ? undefined : typeof options.as === "object" ? options.as : server.bundle(options.as ?? "admin");
  const [host, port] = [server.restAddress.slice(0, server.restAddress.lastIndexOf(":")), Number(server.restAddress.slice(server.restAddress.lastIndexOf(":") + 1))];
  const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request({
      host,
      port,
      method,
      path,
      servername: "localhost",
      ca: server.bundle("admin").ca,
      ...(bundle === undefined ? {} : { cert: bundle.cert, key: bundle.key }),
      headers: { ...(payload === undefined ? {} : { "content-type": "application/json", "content-length": String(Buffer.byteLength(payload)) }), ...options.headers },
    }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on("error", reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}
