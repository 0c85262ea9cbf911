import { ServerError } from "../errors.js";
import type { StoredEntry } from "../store/ipset-store.js";
import { expandElement, holdsSingleAddresses, normalizeElement, validateComment } from "./element.js";
import { validateTimeout } from "./ipset-definition.js";
import type { IpsetDefinition } from "./ipset-model.js";

// Entries as requests bring them, checked against their set and turned into the forms the store records (absolute
// expiry) and the kernel takes (remaining seconds), one at a time or as a batch in flat arrays.

/** An entry as clients see it; timeout is the remaining time in seconds, absent when permanent. */
export interface EntryView {
  readonly element: string;
  readonly timeout?: number;
  readonly comment?: string;
}

/** An entry a client asks to add; timeout absent = the set's default. */
export interface EntryInput {
  readonly element: string;
  readonly timeout?: number;
  readonly comment?: string;
}

/** A batch as the API hands it over: entries with their own options, and/or elements sharing timeout and comment. */
export interface BatchInput {
  readonly entries: readonly EntryInput[];
  readonly elements?: readonly string[];
  readonly timeout?: number;
  readonly comment?: string;
}

/** A validated batch in flat arrays. expiresAt: absolute ms, 0 = permanent; comments: undefined when none has one. */
export interface PreparedBatch {
  readonly elements: string[];
  readonly expiresAt: Float64Array;
  readonly comments: Array<string | undefined> | undefined;
}

/** The largest batch one call may carry (the proto documents it). */
export const MAX_BATCH = 2_000_000;

/** Validates one entry against its set and turns its relative timeout into an absolute expiry. */
export function prepareEntry(definition: IpsetDefinition, input: EntryInput, now: number, field: string): StoredEntry {
  const element = normalizeElementAt(definition, input.element, `${field}.element`);
  const expiresAt = expiryOf(definition, input.timeout, now, `${field}.timeout`);
  const comment = commentOf(definition, input.comment, `${field}.comment`);
  return { element, ...(expiresAt === 0 ? {} : { expiresAt }), ...(comment === undefined ? {} : { comment }) };
}

/** Absolute expiry (ms) for a requested timeout; 0 = permanent. Absent timeout = the set's default. */
function expiryOf(definition: IpsetDefinition, timeout: number | undefined, now: number, field: string): number {
  if (timeout !== undefined) {
    if (definition.timeout === undefined) {
      throw new ServerError("TIMEOUT_NOT_SUPPORTED", `set "${definition.name}" was created without timeout support; omit ${field} or recreate the set with a default timeout`, { field, ipset: definition.name });
    }
    validateTimeout(timeout, field);
  }
  const seconds = timeout ?? definition.timeout ?? 0;
  return seconds > 0 ? now + seconds * 1000 : 0;
}

/** The comment to record, or undefined for none ("" means none, as in proto3). */
export function commentOf(definition: IpsetDefinition, comment: string | undefined, field: string): string | undefined {
  if (comment === undefined || comment === "") return undefined;
  if (!definition.comments) {
    throw new ServerError("COMMENT_NOT_SUPPORTED", `set "${definition.name}" was created without comment support; omit ${field} or recreate the set with comments`, { field, ipset: definition.name });
  }
  validateComment(comment);
  return comment;
}

/**
 * Validates a whole batch into flat arrays (a million entries must not become a million objects). Field names for
 * errors are built only when an entry fails: `entries[i]`, `elements[i]`, or what `label` says (import lines).
 */
export function prepareBatch(definition: IpsetDefinition, input: BatchInput, now: number, label?: (index: number) => string): PreparedBatch {
  const shared = input.elements ?? [];
  const total = input.entries.length + shared.length;
  checkBatchSize(total);
  const elements = new Array<string>(total);
  const expiresAt = new Float64Array(total);
  let comments: Array<string | undefined> | undefined;
  let i = 0;
  const fieldOf = (index: number): string => label?.(index) ?? (index < input.entries.length ? `entries[${index}]` : `elements[${index - input.entries.length}]`);
  try {
    for (; i < input.entries.length; i++) {
      const entry = input.entries[i]!;
      elements[i] = normalizeElement(definition, entry.element);
      expiresAt[i] = entry.timeout === undefined && definition.timeout === undefined ? 0 : expiryOf(definition, entry.timeout, now, "timeout");
      const comment = commentOf(definition, entry.comment, "comment");
      if (comment !== undefined) (comments ??= new Array<string | undefined>(total))[i] = comment;
    }
    if (shared.length > 0) {
      const sharedExpiry = expiryOf(definition, input.timeout, now, "timeout");
      const sharedComment = commentOf(definition, input.comment, "comment");
      if (sharedComment !== undefined) comments ??= new Array<string | undefined>(total);
      for (; i < total; i++) {
        elements[i] = normalizeElement(definition, shared[i - input.entries.length]!);
        expiresAt[i] = sharedExpiry;
        if (sharedComment !== undefined) comments![i] = sharedComment;
      }
    }
  } catch (error) {
    if (!(error instanceof ServerError)) throw error;
    const field = error.metadata.field === undefined || error.metadata.field === "element" ? fieldOf(i) : `${fieldOf(i)}.${error.metadata.field}`;
    throw new ServerError(error.reason, `${fieldOf(i)}: ${error.message}`, { ...error.metadata, field });
  }
  return expandBatch(definition.typeName, { elements, expiresAt, comments });
}

/** The batch with each network in a set of single addresses replaced by its addresses (see expandElement). */
function expandBatch(typeName: string, batch: PreparedBatch): PreparedBatch {
  const { elements, expiresAt, comments } = batch;
  if (!holdsSingleAddresses(typeName) || !elements.some((element) => element.includes("/"))) return batch;
  const expanded: string[] = [];
  const expiries: number[] = [];
  const notes: Array<string | undefined> = [];
  for (let i = 0; i < elements.length; i++) {
    for (const element of expandElement(typeName, elements[i]!)) {
      expanded.push(element);
      expiries.push(expiresAt[i]!);
      notes.push(comments?.[i]);
    }
  }
  checkBatchSize(expanded.length);
  return { elements: expanded, expiresAt: Float64Array.from(expiries), comments: comments === undefined ? undefined : notes };
}

export function normalizeElementAt(definition: IpsetDefinition, raw: string, field: string): string {
  try {
    return normalizeElement(definition, raw);
  } catch (error) {
    if (error instanceof ServerError) throw new ServerError(error.reason, `${field}: ${error.message}`, { ...error.metadata, field });
    throw error;
  }
}

/** The kernel form of a recorded entry: remaining seconds for timeout sets (0 = permanent), none otherwise. */
export function toApply(definition: IpsetDefinition, entry: StoredEntry, now: number): { element: string; timeout?: number; comment?: string } {
  const timeout = definition.timeout === undefined ? undefined : entry.expiresAt === undefined ? 0 : Math.max(1, Math.ceil((entry.expiresAt - now) / 1000));
  return { element: entry.element, ...(timeout === undefined ? {} : { timeout }), ...(entry.comment === undefined ? {} : { comment: entry.comment }) };
}

export function toView(entry: StoredEntry, now: number): EntryView {
  return {
    element: entry.element,
    ...(entry.expiresAt === undefined ? {} : { timeout: Math.max(0, Math.ceil((entry.expiresAt - now) / 1000)) }),
    ...(entry.comment === undefined ? {} : { comment: entry.comment }),
  };
}

export function checkBatchSize(size: number): void {
  if (size > MAX_BATCH) throw new ServerError("BATCH_TOO_LARGE", `a batch holds at most ${MAX_BATCH} entries; split it into several calls`, { size: String(size) });
}
