import { z } from "zod";

/**
 * One shared ban or unban as it travels between hosts: the same id on every host (idempotence), the absolute expiry
 * (every host lifts it at the same moment), and who made it where (events and audit name them).
 */
export interface FleetOperation {
  readonly id: string;
  readonly op: "ban" | "unban";
  /** A jail ban (`jails/{jail}/bans/{address}`) or a set entry (`ipsets/{set}/entries/{element}`). */
  readonly kind: "jail" | "set";
  readonly target: string;
  /** The address (jails) or element (sets), canonical as the origin host wrote it. */
  readonly address: string;
  /** ms since the epoch; absent = never (sets) or the jail's own bantime. */
  readonly expiresAt?: number;
  readonly node: string;
  readonly principal: string;
  readonly role: string;
  /** The RPC that made it at the origin, e.g. `portcullis.v1.JailService/BanIp` (or `fail2ban` for a detection). */
  readonly method: string;
  readonly time: number;
}

/** The resource an operation names, as events and audit records write it. */
export function resourceOf(operation: Pick<FleetOperation, "kind" | "target" | "address">): string {
  return operation.kind === "jail" ? `jails/${operation.target}/bans/${operation.address}` : `ipsets/${operation.target}/entries/${operation.address}`;
}

/** Operations per stream message: one JetStream publish carries a batch (a BatchBanIp becomes a few messages). */
export const OPERATIONS_PER_MESSAGE = 500;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}$/;
const NODE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

// Another host wrote it: everything is checked here, and addresses again by the domain that applies them.
const OperationSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9-]{1,64}$/),
  op: z.enum(["ban", "unban"]),
  kind: z.enum(["jail", "set"]),
  target: z.string().regex(NAME),
  address: z.string().min(2).max(60).regex(/^[0-9A-Fa-f.:/]+$/),
  expiresAt: z.number().int().positive().optional(),
  node: z.string().regex(NODE),
  principal: z.string().max(200),
  role: z.string().max(20),
  method: z.string().max(200),
  time: z.number().int().positive(),
}).strict();

const MessageSchema = z.object({ v: z.literal(1), operations: z.array(OperationSchema).min(1).max(OPERATIONS_PER_MESSAGE) }).strict();

/**
 * A stream message's id (its Nats-Msg-Id, which the stream's duplicate window keys on): the publishing node, its first
 * operation's id and the count, so that a node recognises its own messages without decoding them.
 */
export function messageId(node: string, firstId: string, count: number): string {
  return `${node}/${firstId}/${count}`;
}

/** The publishing node and first operation id of a message id, if it is one of ours. */
export function parseMessageId(id: string | undefined): { node: string; firstId: string } | undefined {
  const [node, firstId, count, extra] = (id ?? "").split("/");
  return node === undefined || firstId === undefined || count === undefined || extra !== undefined ? undefined : { node, firstId };
}

export function encodeMessage(operations: readonly FleetOperation[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ v: 1, operations }));
}

/** The operations of a stream message, or a reason it is not one (a newer format, or garbage). */
export function decodeMessage(data: Uint8Array): FleetOperation[] | { problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(data));
  } catch {
    return { problem: "not JSON" };
  }
  const parsed = MessageSchema.safeParse(json);
  if (!parsed.success) return { problem: parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).slice(0, 3).join("; ") };
  return parsed.data.operations.map(({ expiresAt, ...rest }) => (expiresAt === undefined ? rest : { ...rest, expiresAt }));
}
