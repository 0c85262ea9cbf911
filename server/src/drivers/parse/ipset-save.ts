/**
 * The text formats of the ipset tool: `ipset save` (also our import format and what `ipset restore` reads) and
 * `ipset list -terse`. Pure functions; elements are checked for syntax only, their meaning is element.ts's business.
 */
import { ServerError, type Reason } from "../../errors.js";
import { MAX_TIMEOUT_SECONDS, type Family, type IpsetDefinition, type KernelEntry, type KernelIpset } from "../../ipsets/ipset-model.js";

export interface ParsedAdd {
  readonly set: string;
  readonly entry: KernelEntry;
  /** 1-based line of the `add` in the text. */
  readonly line: number;
  /**
   * A hash:net-style exception entry: packets matching it are treated as NOT in the set. KernelEntry cannot express
   * that, so it is reported here for callers to refuse or skip rather than mistake for an ordinary entry.
   */
  readonly nomatch?: true;
}

export interface ParsedSave {
  sets: IpsetDefinition[];
  adds: ParsedAdd[];
}

/** ipset's limits: 31-byte set names, timeouts of at most MAX_TIMEOUT_SECONDS. */
const MAX_NAME_BYTES = 31;
const MAX_UINT32 = 4294967295;

const MODELED_CREATE_OPTIONS: ReadonlySet<string> = new Set(["family", "hashsize", "maxelem", "size", "timeout", "comment", "range"]);
/** Create options we do not model, with whether they take a value; options unknown to us are skipped one token at a time. */
const IGNORED_CREATE_OPTIONS: ReadonlyMap<string, boolean> = new Map([
  ["bucketsize", true], ["initval", true], ["netmask", true], ["bitmask", true], ["markmask", true],
  ["counters", false], ["skbinfo", false], ["forceadd", false],
]);
/** Add options we do not model. Unknown add options are errors: they decide how the rest of the line reads. */
const IGNORED_ADD_OPTIONS: ReadonlyMap<string, boolean> = new Map([
  ["packets", true], ["bytes", true], ["skbmark", true], ["skbprio", true], ["skbqueue", true], ["wildcard", false],
]);

type Fail = (message: string) => never;

function failer(reason: Reason, line: number, prefix = ""): Fail {
  return (message) => {
    throw new ServerError(reason, `${prefix}line ${line}: ${message}`, { line: String(line) });
  };
}

/** Splits on blanks; a token starting with `"` runs to the next `"` (ipset's comment quoting, no escapes). */
function tokenize(text: string, fail: Fail): string[] {
  const tokens: string[] = [];
  let i = 0;
  const blank = (c: string | undefined): boolean => c === " " || c === "\t";
  while (i < text.length) {
    if (blank(text[i])) {
      i++;
      continue;
    }
    if (text[i] === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) fail("unterminated double quote; close the quoted text with a second \"");
      if (end + 1 < text.length && !blank(text[end + 1])) fail("a closing double quote must be followed by a blank or the end of the line");
      tokens.push(text.slice(i + 1, end));
      i = end + 1;
      continue;
    }
    let end = i;
    while (end < text.length && !blank(text[end])) end++;
    const token = text.slice(i, end);
    if (token.includes('"')) fail(`unexpected double quote in ${token}; quote whole words only, as in comment "some text"`);
    tokens.push(token);
    i = end;
  }
  return tokens;
}

function parseInteger(option: string, value: string | undefined, max: number, fail: Fail): number {
  const number = Number(value);
  if (value === undefined || !/^\d+$/.test(value) || number > max) {
    fail(`${option} needs a whole number 0-${max}${value === undefined ? "" : `, got ${value}`}`);
  }
  return number;
}

function checkSetName(name: string | undefined, command: string, fail: Fail): string {
  if (name === undefined || name === "") fail(`${command} needs a set name`);
  if (name.startsWith("-")) fail(`expected a set name after ${command}, got the option ${name}; options such as -exist are not accepted`);
  if (Buffer.byteLength(name, "utf8") > MAX_NAME_BYTES) fail(`set name ${name} is longer than ${MAX_NAME_BYTES} bytes`);
  return name;
}

/** The options of a `create` line or a `Header:` line, into a definition. */
function parseDefinition(name: string, typeName: string, options: readonly string[], fail: Fail): IpsetDefinition {
  let family: Family | undefined;
  let hashsize: number | undefined;
  let maxelem: number | undefined;
  let timeout: number | undefined;
  let comments = false;
  let range: string | undefined;
  const seen = new Set<string>();
  for (let i = 0; i < options.length; i++) {
    const option = options[i] ?? "";
    const value = (): string => {
      const next = options[++i];
      if (next === undefined) fail(`option ${option} needs a value`);
      return next;
    };
    if (MODELED_CREATE_OPTIONS.has(option) || IGNORED_CREATE_OPTIONS.has(option)) {
      if (seen.has(option)) fail(`option ${option} is given twice`);
      seen.add(option);
    }
    switch (option) {
      case "family": {
        const given = value();
        if (given !== "inet" && given !== "inet6") fail(`family must be inet or inet6, got ${given}`);
        family = given;
        break;
      }
      case "hashsize":
        hashsize = parseInteger(option, value(), MAX_UINT32, fail);
        break;
      case "maxelem":
      case "size": // list:set calls its capacity "size"
        if (seen.has(option === "size" ? "maxelem" : "size")) fail("give only one of maxelem and size");
        maxelem = parseInteger(option, value(), MAX_UINT32, fail);
        break;
      case "timeout":
        timeout = parseInteger(option, value(), MAX_TIMEOUT_SECONDS, fail);
        break;
      case "comment":
        comments = true;
        break;
      case "range":
        range = value();
        break;
      default:
        // Unknown options are skipped (newer ipset versions add some); known valued ones consume their value.
        if (IGNORED_CREATE_OPTIONS.get(option) === true) value();
    }
  }
  return {
    name,
    typeName,
    ...(family === undefined ? {} : { family }),
    ...(hashsize === undefined ? {} : { hashsize }),
    ...(maxelem === undefined ? {} : { maxelem }),
    ...(timeout === undefined ? {} : { timeout }),
    comments,
    ...(range === undefined ? {} : { range }),
  };
}

function parseAdd(tokens: readonly string[], line: number, fail: Fail): ParsedAdd {
  const set = checkSetName(tokens[1], "add", fail);
  const element = tokens[2];
  if (element === undefined || element === "") fail(`add needs an element after the set name, as in add ${set} 192.0.2.1`);
  let timeout: number | undefined;
  let comment: string | undefined;
  let nomatch = false;
  const seen = new Set<string>();
  for (let i = 3; i < tokens.length; i++) {
    const option = tokens[i] ?? "";
    const value = (): string => {
      const next = tokens[++i];
      if (next === undefined) fail(`option ${option} needs a value`);
      return next;
    };
    if (seen.has(option)) fail(`option ${option} is given twice`);
    seen.add(option);
    if (option === "timeout") timeout = parseInteger(option, value(), MAX_TIMEOUT_SECONDS, fail);
    else if (option === "comment") comment = value();
    else if (option === "nomatch") nomatch = true;
    else if (IGNORED_ADD_OPTIONS.has(option)) {
      if (IGNORED_ADD_OPTIONS.get(option) === true) value();
    } else fail(`unknown option ${option}; an add line is: add SET ELEMENT [timeout SECONDS] [comment "TEXT"]`);
  }
  const entry: KernelEntry = {
    element,
    ...(timeout === undefined ? {} : { timeout }),
    ...(comment === undefined ? {} : { comment }),
  };
  return { set, entry, line, ...(nomatch ? { nomatch: true as const } : {}) };
}

/** Parses `ipset save` text: `create` and `add` lines only, blank lines and `#` comments ignored. */
export function parseIpsetSave(text: string): ParsedSave {
  const sets: IpsetDefinition[] = [];
  const adds: ParsedAdd[] = [];
  const createdOn = new Map<string, number>();
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const fail: Fail = failer("INVALID_IMPORT", line);
    const tokens = tokenize(trimmed, fail);
    const command = tokens[0] ?? "";
    if (command === "create") {
      const name = checkSetName(tokens[1], "create", fail);
      const typeName = tokens[2];
      if (typeName === undefined || typeName === "") fail(`create needs a set type after the name, as in create ${name} hash:ip`);
      const first = createdOn.get(name);
      if (first !== undefined) fail(`set ${name} is created twice (first on line ${first})`);
      createdOn.set(name, line);
      sets.push(parseDefinition(name, typeName, tokens.slice(3), fail));
    } else if (command === "add") {
      adds.push(parseAdd(tokens, line, fail));
    } else {
      fail(`unsupported command ${command}; only create and add lines (the output of ipset save) are accepted`);
    }
  }
  return { sets, adds };
}

const TERSE_FIELDS = ["Name", "Type", "Header", "Size in memory", "References", "Number of entries"] as const;

/**
 * Parses `ipset list -terse` output (one block per set, blocks separated by blank lines). This text only ever comes
 * from the tool, so surprises are reported as KERNEL_COMMAND_FAILED rather than blamed on the client.
 */
export function parseIpsetTerse(text: string): KernelIpset[] {
  const result: KernelIpset[] = [];
  let block = new Map<string, { value: string; line: number }>();
  let blockLine = 0;
  const finish = (): void => {
    if (block.size === 0) return;
    const fail: Fail = failer("KERNEL_COMMAND_FAILED", blockLine, "unexpected ipset list output, ");
    const field = (key: (typeof TERSE_FIELDS)[number]): { value: string; line: number } =>
      block.get(key) ?? fail(`the set block has no "${key}:" line`);
    const name = field("Name").value;
    const header = field("Header");
    const headerFail: Fail = failer("KERNEL_COMMAND_FAILED", header.line, "unexpected ipset list output, ");
    const definition = parseDefinition(name, field("Type").value, tokenize(header.value, headerFail), headerFail);
    const count = (key: "Size in memory" | "References" | "Number of entries"): number => {
      const { value, line } = field(key);
      return parseInteger(key, value, Number.MAX_SAFE_INTEGER, failer("KERNEL_COMMAND_FAILED", line, "unexpected ipset list output, "));
    };
    result.push({
      definition,
      memoryBytes: count("Size in memory"),
      references: count("References"),
      entryCount: count("Number of entries"),
    });
    block = new Map();
  };
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = index + 1;
    if (raw.trim() === "") {
      finish();
      continue;
    }
    const colon = raw.indexOf(":");
    if (colon < 0) failer("KERNEL_COMMAND_FAILED", line, "unexpected ipset list output, ")(`expected "Key: value", got ${raw}`);
    const key = raw.slice(0, colon).trim();
    // A Name: line starts a block even without a blank line before it.
    if (key === "Name") finish();
    if (block.size === 0) blockLine = line;
    block.set(key, { value: raw.slice(colon + 1).trim(), line });
  }
  finish();
  return result;
}

/** A word of a restore line: blanks or quotes would let a value spill into further options or lines. */
function word(value: string, reason: Reason, field: string): string {
  if (value === "" || /[\s"]/.test(value)) {
    throw new ServerError(reason, `${field} "${value}" cannot be written to an ipset line: it is empty or contains blanks or quotes`, { field, value });
  }
  return value;
}

/** A `create` line for `ipset restore`, options in the order `ipset save` prints them. */
export function renderCreateLine(def: IpsetDefinition): string {
  const parts = ["create", word(def.name, "INVALID_IPSET_NAME", "name"), word(def.typeName, "INVALID_IPSET_TYPE", "type")];
  if (def.family !== undefined) parts.push("family", def.family);
  if (def.range !== undefined) parts.push("range", word(def.range, "INVALID_IPSET_OPTION", "range"));
  if (def.hashsize !== undefined) parts.push("hashsize", String(def.hashsize));
  if (def.maxelem !== undefined) parts.push(def.typeName === "list:set" ? "size" : "maxelem", String(def.maxelem));
  if (def.timeout !== undefined) parts.push("timeout", String(def.timeout));
  if (def.comments) parts.push("comment");
  return parts.join(" ");
}

/**
 * ipset's global options (libipset's ipset_envopts), which its parser takes out of a line wherever they stand — even
 * from inside quotes, which only group blanks — with one extra leading dash allowed (`--quiet`).
 */
const GLOBAL_OPTIONS: ReadonlySet<string> = new Set(["o", "output", "s", "sorted", "q", "quiet", "r", "resolve", "!", "exist", "n", "name", "t", "terse", "f", "file"]);

/**
 * The ipset option a word would be read as, or undefined when it stays data. ipset has no escape for such a word, so
 * it cannot be written to a line at all (in the long-lived session, `-q` would silence every later answer).
 */
export function ipsetOptionIn(word: string): string | undefined {
  const match = /^--?(.+)$/.exec(word);
  return match !== null && GLOBAL_OPTIONS.has(match[1]!) ? word : undefined;
}

/**
 * An `add` line for `ipset restore` and the interactive `ipset -`. An empty comment is left out: the kernel stores
 * `comment ""` as no comment at all.
 */
export function renderAddLine(set: string, entry: { element: string; timeout?: number; comment?: string }): string {
  let line = `add ${word(set, "INVALID_IPSET_NAME", "name")} ${word(entry.element, "INVALID_ELEMENT", "element")}`;
  if (entry.timeout !== undefined) line += ` timeout ${entry.timeout}`;
  if (entry.comment !== undefined && entry.comment !== "") {
    if (/["\r\n\0]/.test(entry.comment) || ipsetOptionIn(entry.comment) !== undefined) {
      throw new ServerError("INVALID_COMMENT", "comment cannot be written to an ipset line: it contains double quotes, line breaks or NUL, or ipset would read it as an option", { field: "comment", value: entry.comment });
    }
    line += ` comment "${entry.comment}"`;
  }
  return line;
}
