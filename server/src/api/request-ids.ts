import { createHash } from "node:crypto";
import { ServerError } from "../errors.js";
import type { RequestStore } from "../store/request-store.js";

/** A generated message type's codec (ts-proto), to keep an answer as it was sent. */
export interface MessageCodec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(bytes: Uint8Array): T;
}

/**
 * AIP-155: a write that carries a request_id is done once. A retry with the same id and the same request gets the
 * first answer without doing it again; the same id with another request is refused. Without an id, `run` runs.
 */
export async function onceFor<R extends { requestId?: string }, T>(requests: RequestStore, method: string, request: R, codec: MessageCodec<T>, run: () => Promise<T>): Promise<T> {
  if (request.requestId === undefined || request.requestId === "") return run();
  const fingerprint = createHash("sha256").update(JSON.stringify({ ...request, requestId: "" })).digest("hex");
  const seen = requests.get(request.requestId);
  if (seen !== undefined) {
    if (seen.method !== method || seen.fingerprint !== fingerprint) {
      throw new ServerError("REQUEST_ID_REUSED", "request_id was already used for a different request; use a new id per distinct request", { field: "request_id" });
    }
    return codec.decode(seen.response);
  }
  const answer = await run();
  requests.put(request.requestId, method, fingerprint, codec.encode(answer).finish());
  return answer;
}
