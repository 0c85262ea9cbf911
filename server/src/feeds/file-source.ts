import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { checkFileRoots } from "./file-roots.js";
import type { SourceValidators } from "./feed-model.js";
import { limitedText, readSignal, tooLarge, unavailable, type FeedSource, type ReadOptions, type SourceRead } from "./feed-source.js";

/**
 * A list in a file on the server's host (`file:///path`). Its size and modification time (to the nanosecond) stand
 * for an ETag: a file that has not changed since the last refresh is not read again.
 */
export class FileSource implements FeedSource {
  readonly #path: string;
  readonly #roots: readonly string[];

  constructor(url: URL, roots: readonly string[]) {
    this.#path = fileURLToPath(url);
    this.#roots = roots;
  }

  async read(validators: SourceValidators, options: ReadOptions): Promise<SourceRead> {
    checkFileRoots({ source: pathToFileURL(this.#path).href }, this.#roots);
    const { signal, failure } = readSignal(options);
    let etag: string;
    try {
      const info = await stat(this.#path, { bigint: true });
      if (!info.isFile()) throw unavailable(`${this.#path} is not a regular file`, false);
      if (info.size > BigInt(options.maxBytes)) throw tooLarge(options.maxBytes);
      etag = `"${info.size}-${info.mtimeNs}"`;
    } catch (error) {
      if ((error as { code?: unknown }).code === "ENOENT") throw unavailable(`${this.#path} does not exist`, false);
      throw failure(error);
    }
    if (validators.etag === etag) return { kind: "unchanged", validators };
    return { kind: "list", text: limitedText(() => createReadStream(this.#path, { signal, highWaterMark: 256 * 1024 }), options.maxBytes, failure), validators: { etag } };
  }
}
