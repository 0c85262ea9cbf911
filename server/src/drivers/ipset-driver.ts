import type { Logger } from "../logger.js";
import { ServerError, type Reason } from "../errors.js";
import type { Executor } from "./exec.js";
import { IpsetSession } from "./ipset-session.js";
import { parseIpsetSave, parseIpsetTerse, renderAddLine } from "./parse/ipset-save.js";
import type { IpsetDefinition, KernelEntry, KernelIpset } from "../ipsets/ipset-model.js";

/** An entry as sent to the kernel: element plus the timeout (seconds) and comment to apply. */
export interface EntryToApply {
  readonly element: string;
  readonly timeout?: number;
  readonly comment?: string;
}

// ipset's messages (libipset/errcode.c and the kernel's) mapped to our reasons; anything else is unexpected.
const KNOWN_ERRORS: ReadonlyArray<[RegExp, Reason]> = [
  [/set with the given name does not exist|the second set does not exist/i, "IPSET_NOT_FOUND"],
  [/in use by a kernel component|set is referenced|in use by another system/i, "IPSET_IN_USE"],
  [/same name already exists|set with the same name already exists/i, "IPSET_ALREADY_EXISTS"],
  [/type does not match|cannot be swapped/i, "IPSET_INCOMPATIBLE"],
  [/hash is full|maximal number of elements|list is full/i, "IPSET_FULL"],
  // Elements the kernel refuses whatever the set holds: list:set members that are list:sets or missing, zero addresses.
  [/list:set type cannot be added|as element does not exist|Null-valued element|cannot be stored in/i, "INVALID_ELEMENT"],
];

/** A line of a batch the kernel refused, with why. */
export interface RefusedLine {
  readonly index: number;
  readonly error: ServerError;
}

/** Lines a batch may have to go through the session rather than a `restore` process (see `restore`). */
const SESSION_BATCH_MAX = 1_000;

/** Runs ipset: structural changes and reads as processes, entry changes through one long-lived session. */
export class IpsetDriver {
  readonly #exec: Executor;
  readonly #log: Logger;
  readonly #session: IpsetSession;

  constructor(exec: Executor, log: Logger) {
    this.#exec = exec;
    this.#log = log;
    this.#session = new IpsetSession(exec, log);
  }

  close(): void {
    this.#session.close();
  }

  /** Every set in the kernel with its counters. */
  async list(): Promise<KernelIpset[]> {
    const result = await this.#run(["list", "-terse"]);
    return parseIpsetTerse(result);
  }

  /** One set with its counters, or undefined if the kernel has no such set. */
  async get(name: string): Promise<KernelIpset | undefined> {
    const result = await this.#exec.run("ipset", ["list", "-terse", name]);
    if (result.exitCode !== 0) {
      if (/does not exist/i.test(result.stderr)) return undefined;
      throw this.#error(result.stderr, "list", name);
    }
    return parseIpsetTerse(result.stdout)[0];
  }

  /** `ipset save` text of the named sets (all sets when none given). */
  async save(names: readonly string[] = []): Promise<string> {
    if (names.length === 0) return this.#run(["save"]);
    const parts = await Promise.all(names.map((name) => this.#run(["save", name])));
    return parts.join("");
  }

  /**
   * The kernel's entries of one set, with remaining timeouts. Exception (`nomatch`) entries of hash:net sets are
   * left out: they mean "not in the set", which an entry list cannot say.
   */
  async entries(name: string): Promise<KernelEntry[]> {
    return parseIpsetSave(await this.#run(["save", name])).adds.filter((add) => add.nomatch !== true).map((add) => add.entry);
  }

  async create(definition: IpsetDefinition): Promise<void> {
    await this.#run(["create", definition.name, definition.typeName, ...createOptions(definition)]);
  }

  async destroy(name: string): Promise<void> {
    await this.#run(["destroy", name]);
  }

  async flush(name: string): Promise<void> {
    await this.#run(["flush", name]);
  }

  async rename(from: string, to: string): Promise<void> {
    await this.#run(["rename", from, to]);
  }

  async swap(a: string, b: string): Promise<void> {
    await this.#run(["swap", a, b]);
  }

  /** Adds or refreshes one entry (idempotent). */
  async add(set: string, entry: EntryToApply): Promise<void> {
    const stderr = await this.#session.run(renderAddLine(set, entry));
    if (stderr !== "") throw this.#sessionError(stderr, "add", set);
  }

  /** Removes one entry; absent entries are not an error. */
  async delete(set: string, element: string): Promise<void> {
    const stderr = await this.#session.run(`del ${set} ${element}`);
    if (stderr !== "") throw this.#sessionError(stderr, "del", set);
  }

  /** Whether the kernel set matches the element. */
  async test(set: string, element: string): Promise<boolean> {
    const stderr = await this.#session.run(`test ${set} ${element}`);
    if (/is NOT in set/.test(stderr)) return false;
    if (/is in set/.test(stderr)) return true;
    throw this.#sessionError(stderr, "test", set);
  }

  /**
   * Applies many lines (`add …`/`del …`/`create …`, in text chunks of whole lines). Up to SESSION_BATCH_MAX lines go
   * through the long-lived session, written at once: starting a process costs more than a few hundred entries (a
   * jail's bans as fail2ban reports them, a fleet message). More go to one `ipset -exist restore` process, the bulk
   * path (about 150k entries per second), streamed, so a million entries never sit in one string. The first chunks
   * are read (and so produced) before either is chosen.
   */
  async restore(lines: AsyncIterable<string> | Iterable<string>): Promise<void> {
    const source = Symbol.asyncIterator in lines ? lines[Symbol.asyncIterator]() : lines[Symbol.iterator]();
    const head: string[] = [];
    let count = 0;
    for (;;) {
      const next = await source.next();
      if (next.done === true) return this.#sessionBatch(head.join(""));
      head.push(next.value);
      for (let at = next.value.indexOf("\n"); at >= 0; at = next.value.indexOf("\n", at + 1)) count++;
      if (count > SESSION_BATCH_MAX) break;
    }
    await this.#restoreProcess((async function* () {
      yield* head;
      for (let next = await source.next(); next.done !== true; next = await source.next()) yield next.value;
    })());
  }

  /** A batch through the session; if ipset refused any of it, again through `restore`, which names the line. */
  async #sessionBatch(text: string): Promise<void> {
    const lines = text.split("\n").filter((line) => line !== "");
    if (lines.length === 0) return;
    const stderr = await this.#session.runBatch(lines);
    if (stderr === "") return;
    this.#session.recycle();
    this.#log.debug({ stderr: stderr.slice(0, 500), lines: lines.length }, "ipset refused part of a batch; applying it with restore for the exact error");
    await this.#restoreProcess([text]);
  }

  /**
   * Applies whole lines (no newlines), going on past lines the kernel refuses: `ipset restore` stops at the first
   * refusal and names its line, so the rest is restored again from the line after it, up to `maxRefused` times.
   * For repairs from the store, where one bad record must not keep the others out of the kernel.
   */
  async restoreSkipping(lines: readonly string[], maxRefused: number): Promise<RefusedLine[]> {
    const refused: RefusedLine[] = [];
    for (let from = 0; from < lines.length;) {
      const result = await this.#exec.run("ipset", ["-exist", "restore"], { input: chunkLines(lines, from), timeoutMs: 600_000 });
      if (result.exitCode === 0) break;
      const line = /Error in line (\d+):/.exec(result.stderr);
      if (line === null || refused.length >= maxRefused) throw this.#error(result.stderr, "restore");
      const index = from + Number(line[1]) - 1;
      refused.push({ index, error: this.#error(result.stderr, "restore") });
      from = index + 1;
    }
    return refused;
  }

  async #restoreProcess(lines: AsyncIterable<string> | Iterable<string>): Promise<void> {
    const result = await this.#exec.run("ipset", ["-exist", "restore"], { input: lines, timeoutMs: 600_000 });
    if (result.exitCode !== 0) throw this.#error(result.stderr, "restore");
  }

  async #run(args: string[]): Promise<string> {
    const result = await this.#exec.run("ipset", args);
    if (result.exitCode !== 0) throw this.#error(result.stderr, args[0] ?? "", args[1]);
    return result.stdout;
  }

  /** An error the session answered; one nothing explains replaces the session, so no state it left stays behind. */
  #sessionError(stderr: string, command: string, set: string): ServerError {
    const error = this.#error(stderr, command, set);
    if (error.reason === "KERNEL_COMMAND_FAILED") this.#session.recycle();
    return error;
  }

  #error(stderr: string, command: string, set?: string): ServerError {
    const metadata: Record<string, string> = set === undefined ? {} : { ipset: set };
    for (const [pattern, reason] of KNOWN_ERRORS) {
      if (pattern.test(stderr)) return new ServerError(reason, describe(reason, set), metadata);
    }
    this.#log.error({ command, set, stderr: stderr.slice(0, 2000) }, "ipset command failed");
    return new ServerError("KERNEL_COMMAND_FAILED", `ipset ${command} failed; see the server log`, metadata);
  }
}

function* chunkLines(lines: readonly string[], from: number): Generator<string> {
  for (let i = from; i < lines.length; i += 2_000) yield `${lines.slice(i, i + 2_000).join("\n")}\n`;
}

function describe(reason: Reason, set: string | undefined): string {
  const name = set === undefined ? "the set" : `set "${set}"`;
  switch (reason) {
    case "IPSET_NOT_FOUND": return `${name} does not exist in the kernel`;
    case "IPSET_IN_USE": return `${name} is in use by a kernel component (an iptables rule or a list:set); remove the reference first`;
    case "IPSET_ALREADY_EXISTS": return `${name} already exists`;
    case "IPSET_INCOMPATIBLE": return "the sets are not of the same type and family";
    case "IPSET_FULL": return `${name} is full (maxelem reached); create it with a larger maxelem`;
    case "INVALID_ELEMENT": return `the kernel refused an element of ${name}: a list:set takes existing sets of other types, and no set takes the all-zero address`;
    default: return `ipset refused the change to ${name}`;
  }
}

/** `ipset create` options for a definition, in the order `ipset save` prints them. */
export function createOptions(definition: IpsetDefinition): string[] {
  const options: string[] = [];
  if (definition.range !== undefined) options.push("range", definition.range);
  if (definition.family !== undefined) options.push("family", definition.family);
  if (definition.hashsize !== undefined) options.push("hashsize", String(definition.hashsize));
  if (definition.maxelem !== undefined) options.push(definition.typeName === "list:set" ? "size" : "maxelem", String(definition.maxelem));
  if (definition.timeout !== undefined) options.push("timeout", String(definition.timeout));
  if (definition.comments) options.push("comment");
  return options;
}
