import { Client, credentials as grpcCredentials, Metadata, status, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { CancellationToken } from "../base/cancellation.js";
import { PortcullisError } from "../errors.js";

/** A generated unary or server-streaming method definition (ts-proto `outputServices=grpc-js`). */
interface MethodDefinition {
  readonly path: string;
  readonly requestSerialize: (value: never) => Buffer;
  readonly responseSerialize: (value: never) => Buffer;
  readonly responseDeserialize?: (bytes: Buffer) => unknown;
}

/** Where and how to connect: PEM contents, not paths (see createClient for those). */
export interface ChannelOptions {
  readonly address: string;
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Name the server certificate must carry when the address is an IP (default "localhost"). */
  readonly serverName?: string;
  /** Default deadline of a call, in milliseconds. */
  readonly deadlineMs: number;
}

const RETRY_DELAYS_MS = [100, 300, 1000];

/**
 * One gRPC channel with mTLS for every service; calls take a CancellationToken and map errors to PortcullisError.
 * Reads (`idempotent`) are retried on UNAVAILABLE with backoff; writes are not (a retried write could apply twice).
 */
export class Channel {
  readonly #client: Client;
  readonly #deadlineMs: number;
  /** Awaited before every write (the event stream's start, so that subscribers see what the client changes next). */
  beforeWrite: () => Promise<void> = async () => undefined;

  constructor(options: ChannelOptions) {
    this.#deadlineMs = options.deadlineMs;
    this.#client = new Client(options.address, grpcCredentials.createSsl(options.ca, options.key, options.cert), {
      "grpc.ssl_target_name_override": options.serverName ?? "localhost",
      "grpc-node.flow_control_window": 16 * 1024 * 1024,
      "grpc.max_receive_message_length": 256 * 1024 * 1024,
      "grpc.max_send_message_length": 256 * 1024 * 1024,
    });
  }

  /** Calls a unary method of a generated service definition. */
  async unary<Q, R>(service: Record<string, MethodDefinition>, method: string, request: Q, token: CancellationToken = CancellationToken.None, idempotent = false): Promise<R> {
    const definition = service[method]!;
    if (!idempotent) await this.beforeWrite();
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#once<Q, R>(definition, request, token);
      } catch (error) {
        const retry = idempotent && error instanceof PortcullisError && error.code === "Unavailable" && attempt < RETRY_DELAYS_MS.length && !token.isCancellationRequested;
        if (!retry) throw error;
        await new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS_MS[attempt]));
      }
    }
  }

  #once<Q, R>(definition: MethodDefinition, request: Q, token: CancellationToken): Promise<R> {
    if (token.isCancellationRequested) return Promise.reject(new PortcullisError("Cancelled", "the call was cancelled before it started"));
    return new Promise((resolve, reject) => {
      const call = this.#client.makeUnaryRequest(
        definition.path,
        definition.requestSerialize as (value: Q) => Buffer,
        definition.responseDeserialize as (bytes: Buffer) => R,
        request,
        new Metadata(),
        { deadline: Date.now() + this.#deadlineMs },
        (error: ServiceError | null, response?: R) => {
          subscription.dispose();
          if (error !== null) reject(PortcullisError.fromServiceError(error));
          else resolve(response!);
        },
      );
      const subscription = token.onCancellationRequested(() => call.cancel());
    });
  }

  /** Every page of a paginated list method (AIP-158: page_token in, next_page_token out), read in order. */
  async *pages<Q, R extends { nextPageToken: string }>(service: Record<string, MethodDefinition>, method: string, request: (pageToken: string) => Q, token?: CancellationToken): AsyncIterable<R> {
    let pageToken = "";
    do {
      const page = await this.unary<Q, R>(service, method, request(pageToken), token, true);
      yield page;
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
  }

  /** Opens a server stream; `onItem` gets each item; the returned handle cancels it. */
  stream<Q, I>(service: Record<string, MethodDefinition>, method: string, request: Q, onItem: (item: I) => void, onEnd: (error: PortcullisError | undefined) => void): { cancel(): void } {
    const definition = service[method]!;
    const call: ClientReadableStream<I> = this.#client.makeServerStreamRequest(
      definition.path,
      definition.requestSerialize as (value: Q) => Buffer,
      definition.responseDeserialize as (bytes: Buffer) => I,
      request,
      new Metadata(),
      {},
    );
    let ended = false;
    const end = (error: PortcullisError | undefined): void => {
      if (ended) return;
      ended = true;
      onEnd(error);
    };
    call.on("data", onItem);
    call.on("error", (error: ServiceError) => end(error.code === status.CANCELLED ? undefined : PortcullisError.fromServiceError(error)));
    call.on("end", () => end(undefined));
    return { cancel: () => call.cancel() };
  }

  close(): void {
    this.#client.close();
  }
}
