import { appendFile, rename, stat } from "node:fs/promises";
import type { HostEvent } from "../events/event-model.js";
import { eventJson, type EventSink } from "./sink.js";

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

  async #rotate(): Promise<void> {
    for (let i = this.#keep - 1; i >= 1; i--) await rename(`${this.#path}.${i}`, `${this.#path}.${i + 1}`).catch(() => undefined);
    await rename(this.#path, `${this.#path}.1`);
  }

  async close(): Promise<void> {}
}
