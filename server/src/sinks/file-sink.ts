import { appendFile, open, rename, stat, truncate } from "node:fs/promises";
import type { HostEvent } from "../events/event-model.js";
import { eventJson, type EventSink } from "./sink.js";

/** Bytes read from a file's end to find its last line: events are far smaller than this. */
const TAIL_BYTES = 64 * 1024;

/**
 * Events as JSON lines appended to a file, rotated by size: `events.jsonl` → `events.jsonl.1` → … → `.<keep>` (the
 * oldest is dropped), as logrotate would. A batch is never split across two files.
 */
export class FileSink implements EventSink {
  readonly #path: string;
  readonly #maxBytes: number;
  readonly #keep: number;

  constructor(options: { path: string; maxBytes: number; keep: number }) {
    this.#path = options.path;
    this.#maxBytes = options.maxBytes;
    this.#keep = options.keep;
  }

  async deliver(events: readonly HostEvent[]): Promise<void> {
    let text = "";
    for (const event of events) text += `${eventJson(event)}\n`;
    const size = await stat(this.#path).then((info) => info.size, () => 0);
    if (size > 0 && size + Buffer.byteLength(text) > this.#maxBytes) await this.#rotate();
    await appendFile(this.#path, text, { mode: 0o640 });
  }

  /**
   * The file is its own record of what was written: a server killed between the append and storing its position
   * resumes after the file's last line, not before it. A line cut short by the kill is removed (it is written again).
   */
  async lastDelivered(): Promise<number | undefined> {
    for (const file of [this.#path, `${this.#path}.1`]) {
      const sequence = await lastSequenceIn(file);
      if (sequence !== undefined) return sequence;
    }
    return undefined;
  }

  async #rotate(): Promise<void> {
    for (let i = this.#keep - 1; i >= 1; i--) await rename(`${this.#path}.${i}`, `${this.#path}.${i + 1}`).catch(() => undefined);
    await rename(this.#path, `${this.#path}.1`);
  }

  async close(): Promise<void> {}
}

/** The sequence on a file's last complete line; a torn last line is truncated away. Undefined for a missing/empty file. */
async function lastSequenceIn(path: string): Promise<number | undefined> {
  const handle = await open(path, "r").catch(() => undefined);
  if (handle === undefined) return undefined;
  let tail: Buffer;
  let start: number;
  try {
    const size = (await handle.stat()).size;
    start = Math.max(0, size - TAIL_BYTES);
    tail = Buffer.alloc(size - start);
    await handle.read(tail, 0, tail.length, start);
  } finally {
    await handle.close();
  }
  // Offsets in bytes, not characters: the tail may begin inside a multi-byte character.
  const end = tail.lastIndexOf(0x0a);
  if (end < tail.length - 1) await truncate(path, start + end + 1);
  const last = tail.subarray(tail.lastIndexOf(0x0a, end - 1) + 1, Math.max(end, 0)).toString("utf8");
  if (last === "") return undefined;
  try {
    const sequence = (JSON.parse(last) as { sequence?: unknown }).sequence;
    return typeof sequence === "number" ? sequence : undefined;
  } catch {
    return undefined;
  }
}
