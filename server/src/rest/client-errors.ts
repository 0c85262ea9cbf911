import { STATUS_CODES, maxHeaderSize, type ServerResponse } from "node:http";
import type { Server } from "node:https";
import type { Socket } from "node:net";
import { ServerError } from "../errors.js";
import { problemOf } from "./problem.js";

/** How long a refused connection stays open for its answer to be read, at most. */
const LINGER_MS = 5_000;

/**
 * Requests Node's HTTP parser refuses before express sees them (headers over maxHeaderSize, text that is not HTTP,
 * a request that never finishes) are answered with problem JSON like every other refusal, with the status HTTP
 * defines for each, in place of Node's bare status line.
 */
export function answerClientErrors(server: Server): void {
  const answered = new WeakSet<Socket>();
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
    // The rest of a refused request keeps arriving (the parser refuses each chunk again): read and dropped, so that
    // closing the socket does not reset it before the client has read the answer.
    if (answered.has(socket)) return;
    // Never inside another response: one begun and not yet ended would be cut. One already ended (its 'finish' may
    // still be pending while the client's next request arrives) has all its bytes queued, so the answer follows it.
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    if (error.code === "ECONNRESET" || !socket.writable || (inFlight?.headersSent === true && !inFlight.writableEnded)) {
      socket.destroy();
      return;
    }
    const [status, refusal] = refusalOf(error.code);
    const body = JSON.stringify(problemOf(refusal, status));
    answered.add(socket);
    socket.setTimeout(LINGER_MS, () => socket.destroy());
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
}

function refusalOf(code: string | undefined): [number, ServerError] {
  switch (code) {
    case "HPE_HEADER_OVERFLOW":
      return [431, new ServerError("REQUEST_TOO_LARGE", `the request's header section is larger than the server reads (${maxHeaderSize} bytes); send fewer or shorter headers`, { field: "headers" })];
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return [413, new ServerError("REQUEST_TOO_LARGE", "the body's chunk extensions are larger than the server reads; send the body without them", { field: "body" })];
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return [408, new ServerError("MALFORMED_REQUEST", "the request did not arrive whole within the server's time limit; send it again", {})];
    default:
      return [400, new ServerError("MALFORMED_REQUEST", `the request is not valid HTTP/1.1 (${code ?? "unreadable"}); check the request line, header syntax and body framing`, {})];
  }
}
