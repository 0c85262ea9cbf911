import type { BinaryWriter } from "@bufbuild/protobuf/wire";
import { FastWriter } from "./fast-writer.js";

/** The part of a ts-proto message's functions (`MessageFns<T>`) encodeMessage needs. */
export interface MessageEncoder<T> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
}

// One writer for every call: encoding is synchronous, and finish() copies the bytes out, so its scratch buffer is
// free again when encodeMessage returns. A nested call (an encode that somehow encodes) gets its own writer.
const shared = new FastWriter(64 * 1024);
let sharedBusy = false;

/**
 * Encodes a message the way `fns.encode(message).finish()` does (byte for byte), much faster: with a FastWriter
 * instead of BinaryWriter. The Buffer returned is the message's alone (never reused or overwritten).
 */
export function encodeMessage<T>(fns: MessageEncoder<T>, message: T): Buffer {
  if (sharedBusy) {
    const writer = new FastWriter();
    fns.encode(message, writer as unknown as BinaryWriter);
    return writer.finish();
  }
  sharedBusy = true;
  try {
    fns.encode(message, shared as unknown as BinaryWriter);
    return shared.finish();
  } catch (error) {
    shared.reset(); // an invalid value threw half-way: drop what was written
    throw error;
  } finally {
    sharedBusy = false;
  }
}
