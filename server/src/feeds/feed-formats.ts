import { ServerError } from "../errors.js";
import type { FeedFormat } from "./feed-model.js";

/** Hears each address or network a list holds (unchecked text), with its line number (item number for JSON). */
export type TokenSink = (token: string, line: number) => void;

/** Reads a list in pieces as they arrive; `end` after the last. */
export interface ListReader {
  push(text: string): void;
  end(): void;
}

/** JSON lists are parsed whole: a document larger than this would double the memory of the largest text lists. */
const MAX_JSON_CHARS = 256 * 1024 * 1024;

/** A reader of one format that hands each address or network it finds to `sink`. */
export function listReader(format: FeedFormat, sink: TokenSink): ListReader {
  // A crowdsec feed's decisions are never a list (CrowdsecFollower applies them).
  if (format === "crowdsec") throw new Error("a crowdsec feed is a decision stream, not a list");
  return format === "json" ? new JsonReader(sink) : new LineReader(lineToken(format), sink);
}

/** The address or network of one line of a line format, or undefined when the line has none (blank, a comment). */
type LineToken = (line: string) => string | undefined;

function lineToken(format: Exclude<FeedFormat, "json" | "crowdsec">): LineToken {
  switch (format) {
    // One address or network per line, `#` and `;` comments (whole lines or trailing); more words after the first
    // (a date, a count) are ignored.
    case "plain":
      return (line) => firstWord(line, commentStart(line, "#", ";"));
    // Spamhaus DROP/EDROP: `1.10.16.0/20 ; SBL256894`, and `;` comment lines.
    case "spamhaus":
      return (line) => firstWord(line, commentStart(line, ";", "#"));
    // FireHOL netsets: `#` comment lines, one address or network per line.
    case "netset":
      return (line) => firstWord(line, commentStart(line, "#"));
    // `ipset save`: `add SET ELEMENT [options]`; create lines, COMMIT and comments hold no element.
    case "ipset-save":
      return (line) => {
        const words = line.trim().split(/\s+/);
        return words[0] === "add" && words.length >= 3 ? words[2] : undefined;
      };
  }
}

function commentStart(line: string, first: string, second?: string): number {
  const a = line.indexOf(first);
  const b = second === undefined ? -1 : line.indexOf(second);
  if (a < 0) return b < 0 ? line.length : b;
  return b < 0 || a < b ? a : b;
}

/** The first blank-separated word of line[0, end), or undefined when there is none. */
function firstWord(line: string, end: number): string | undefined {
  let start = 0;
  while (start < end && isBlank(line.charCodeAt(start))) start++;
  if (start === end) return undefined;
  let stop = start;
  while (stop < end && !isBlank(line.charCodeAt(stop))) stop++;
  return start === 0 && stop === line.length ? line : line.slice(start, stop);
}

function isBlank(code: number): boolean {
  return code === 32 || code === 9 || code === 13 || code === 11 || code === 12 || code === 0xfeff;
}

/** Splits pieces of text into lines (a line may span pieces), CRLF or LF. */
class LineReader implements ListReader {
  readonly #token: LineToken;
  readonly #sink: TokenSink;
  #rest = "";
  #line = 0;

  constructor(token: LineToken, sink: TokenSink) {
    this.#token = token;
    this.#sink = sink;
  }

  push(text: string): void {
    const data = this.#rest === "" ? text : this.#rest + text;
    let start = 0;
    for (let end = data.indexOf("\n"); end >= 0; end = data.indexOf("\n", start)) {
      this.#take(data.slice(start, end));
      start = end + 1;
    }
    this.#rest = data.slice(start);
  }

  end(): void {
    if (this.#rest !== "") this.#take(this.#rest);
    this.#rest = "";
  }

  #take(line: string): void {
    this.#line++;
    const token = this.#token(line);
    if (token !== undefined) this.#sink(token, this.#line);
  }
}

/** A JSON array of strings; an item that is not a string is handed on as "" (so it is counted as not an address). */
class JsonReader implements ListReader {
  readonly #sink: TokenSink;
  readonly #parts: string[] = [];
  #length = 0;

  constructor(sink: TokenSink) {
    this.#sink = sink;
  }

  push(text: string): void {
    this.#length += text.length;
    if (this.#length > MAX_JSON_CHARS) throw new ServerError("FEED_TOO_LARGE", `a JSON list is parsed whole and may have at most ${MAX_JSON_CHARS} characters; use a line format for larger lists`, {});
    this.#parts.push(text);
  }

  end(): void {
    let document: unknown;
    try {
      document = JSON.parse(this.#parts.join(""));
    } catch {
      throw new ServerError("FEED_INVALID", "the list is not valid JSON; the feed's format is JSON (an array of strings)", {});
    }
    this.#parts.length = 0;
    if (!Array.isArray(document)) throw new ServerError("FEED_INVALID", "the list is JSON but not an array; the feed's format is JSON (an array of strings)", {});
    document.forEach((item: unknown, i) => this.#sink(typeof item === "string" ? item.trim() : "", i + 1));
  }
}
