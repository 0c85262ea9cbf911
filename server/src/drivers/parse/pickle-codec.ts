/**
 * The pickle subset spoken on fail2ban-server's unix socket. Pure: bytes in, values out.
 *
 * fail2ban-server calls `pickle.loads` on whatever arrives, so `encodeCommand` is a security boundary: it only ever
 * writes a list of str, from strings it has checked. `decodeReply` is a small pickle VM for the opcodes Python emits
 * for fail2ban's replies; it never resolves a global outside an allow-list and never calls anything: the few allowed
 * "callables" (str, list, an exception class, …) are interpreted into plain JavaScript values.
 */

/** fail2ban's message terminator (protocol.py CSPROTO.END); the server splits its input on it. */
export const F2B_END = Buffer.from("<F2B_END_COMMAND>", "latin1");
/** Sent alone (followed by F2B_END), asks the server to close the connection (CSPROTO.CLOSE). */
export const F2B_CLOSE = Buffer.from("<F2B_CLOSE_COMMAND>", "latin1");

/**
 * A decoded Python value:
 * - None → null; bool → boolean; float → number; int → number when it is a safe integer, bigint otherwise;
 * - str → string (lone surrogates, which Python allows, are kept as lone UTF-16 surrogates); bytes → Uint8Array;
 * - list and tuple → array (fail2ban's status replies are lists of (label, value) tuples);
 * - dict → Map; set and frozenset → Set (keys and members compare like JavaScript's Map/Set: tuples by identity);
 * - an exception instance → PickleException.
 */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | Map<PickleValue, PickleValue>
  | Set<PickleValue>
  | PickleException;

/** An exception the server pickled, e.g. `{ exception: "UnknownJailException", args: ["nojail"] }`. */
export interface PickleException {
  /** The class name without its module. */
  readonly exception: string;
  readonly args: PickleValue[];
}

/** Tells an exception from the other object-shaped values. */
export function isPickleException(value: PickleValue | undefined): value is PickleException {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Map) && !(value instanceof Set) && !(value instanceof Uint8Array);
}

export class PickleError extends Error {
  /** True when the input ended early: more bytes may complete it (the socket client keeps reading then). */
  readonly truncated: boolean;

  constructor(message: string, truncated = false) {
    super(message);
    this.name = "PickleError";
    this.truncated = truncated;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding

// Lone surrogates cannot be written as UTF-8: Buffer.from would silently turn them into U+FFFD.
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * A command as fail2ban-client sends it: a pickled list of str (protocol 2: PROTO, EMPTY_LIST, MARK, BINUNICODE…,
 * APPENDS, STOP). Throws on anything but strings, on NUL, on lone surrogates, and when the bytes would contain the
 * terminator: the server splits on it before unpickling, so an argument carrying `<F2B_END_COMMAND>` would smuggle a
 * second, hand-made pickle — arbitrary code — into the server. The check runs on the final bytes, so that no mix of
 * header and text can spell it either.
 */
export function encodeCommand(args: readonly string[]): Buffer {
  if (!Array.isArray(args) || args.length === 0) throw new PickleError("a fail2ban command is a non-empty list of strings");
  const parts: Buffer[] = [Buffer.from([0x80, 2, 0x5d, 0x28])];
  for (const [index, arg] of args.entries()) {
    if (typeof arg !== "string") throw new PickleError(`command argument ${index} is not a string`);
    if (arg.includes("\0")) throw new PickleError(`command argument ${index} contains NUL`);
    if (LONE_SURROGATE.test(arg)) throw new PickleError(`command argument ${index} is not well-formed Unicode`);
    const text = Buffer.from(arg, "utf8");
    const header = Buffer.alloc(5);
    header[0] = 0x58;
    header.writeUInt32LE(text.length, 1);
    parts.push(header, text);
  }
  parts.push(Buffer.from([0x65, 0x2e]));
  const bytes = Buffer.concat(parts);
  if (bytes.includes(F2B_END) || bytes.includes(F2B_CLOSE)) throw new PickleError("command arguments must not contain fail2ban's protocol markers");
  return bytes;
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

export interface DecodeLimits {
  /** Logical size of the result: 1 per value plus the length of each str/bytes, counted once per reference. */
  readonly maxSize?: number;
  /** Nesting depth of containers. */
  readonly maxDepth?: number;
}

const DEFAULT_MAX_SIZE = 64 * 1024 * 1024;
const DEFAULT_MAX_DEPTH = 64;
const MAX_LONG_BYTES = 1024;

/** What an allowed global stands for; nothing else may be called. */
type Callable = { readonly kind: "type"; readonly type: "str" | "list" | "tuple" | "set" | "frozenset" | "dict" } | { readonly kind: "exception"; readonly name: string };

const BUILTIN_EXCEPTIONS = [
  "Exception", "ArithmeticError", "AssertionError", "AttributeError", "BlockingIOError", "BrokenPipeError", "BufferError",
  "ChildProcessError", "ConnectionError", "ConnectionRefusedError", "ConnectionResetError", "EOFError", "FileExistsError",
  "FileNotFoundError", "ImportError", "IndexError", "InterruptedError", "IsADirectoryError", "KeyError", "LookupError",
  "MemoryError", "ModuleNotFoundError", "NameError", "NotADirectoryError", "NotImplementedError", "OSError",
  "OverflowError", "PermissionError", "ProcessLookupError", "RecursionError", "RuntimeError", "StopIteration",
  "SystemError", "TimeoutError", "TypeError", "UnboundLocalError", "UnicodeDecodeError", "UnicodeEncodeError",
  "UnicodeError", "ValueError", "ZeroDivisionError",
];

// builtins.str appears in every ban list: fail2ban's IPAddr pickles itself as str(address) (server/ipdns.py).
const ALLOWED_GLOBALS: ReadonlyMap<string, Callable> = new Map<string, Callable>([
  ...(["str", "list", "tuple", "set", "frozenset", "dict"] as const).map((type): [string, Callable] => [`builtins.${type}`, { kind: "type", type }]),
  ...BUILTIN_EXCEPTIONS.map((name): [string, Callable] => [`builtins.${name}`, { kind: "exception", name }]),
  ...[
    "fail2ban.exceptions.UnknownJailException",
    "fail2ban.exceptions.DuplicateJailException",
    "fail2ban.server.failregex.RegexException",
    "fail2ban.server.server.ServerInitializationError",
  ].map((path): [string, Callable] => [path, { kind: "exception", name: path.slice(path.lastIndexOf(".") + 1) }]),
]);

type Kind = "list" | "tuple" | "dict" | "set" | "frozenset" | "exception";

/** Bookkeeping per container: size and depth bound the result; sealed containers are never mutated again. */
interface Meta {
  readonly kind: Kind;
  size: number;
  depth: number;
  sealed: boolean;
}

type Item = PickleValue | Callable;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Decodes one pickle (as fail2ban-server writes a reply, without the terminator). Throws PickleError. */
export function decodeReply(bytes: Uint8Array, limits: DecodeLimits = {}): PickleValue {
  return new Unpickler(bytes, limits.maxSize ?? DEFAULT_MAX_SIZE, limits.maxDepth ?? DEFAULT_MAX_DEPTH).run();
}

class Unpickler {
  readonly #data: Uint8Array;
  readonly #view: DataView;
  readonly #maxSize: number;
  readonly #maxDepth: number;
  readonly #meta = new WeakMap<object, Meta>();
  readonly #callables = new WeakSet<object>();
  readonly #memo = new Map<number, Item>();
  #stack: Item[] = [];
  #marks: Item[][] = [];
  #pos = 0;

  constructor(data: Uint8Array, maxSize: number, maxDepth: number) {
    this.#data = data;
    this.#view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.#maxSize = maxSize;
    this.#maxDepth = maxDepth;
  }

  run(): PickleValue {
    for (;;) {
      const at = this.#pos;
      const op = this.#u8();
      switch (op) {
        case 0x80: { // PROTO
          const proto = this.#u8();
          if (proto > 5) throw new PickleError(`unsupported pickle protocol ${proto}`);
          break;
        }
        case 0x95: { // FRAME: only checked, so that a reply cut inside a frame reads as truncated
          const length = this.#u64();
          if (length > this.#data.length - this.#pos) throw new PickleError("input ends inside a frame", true);
          break;
        }
        case 0x2e: return this.#stop(); // STOP
        case 0x28: this.#marks.push(this.#stack); this.#stack = []; break; // MARK
        case 0x4e: this.#push(null); break; // NONE
        case 0x88: this.#push(true); break; // NEWTRUE
        case 0x89: this.#push(false); break; // NEWFALSE
        case 0x4a: this.#push(this.#view.getInt32(this.#take(4), true)); break; // BININT
        case 0x4b: this.#push(this.#u8()); break; // BININT1
        case 0x4d: this.#push(this.#view.getUint16(this.#take(2), true)); break; // BININT2
        case 0x8a: this.#push(this.#long(this.#u8())); break; // LONG1
        case 0x8b: this.#push(this.#long(this.#u32())); break; // LONG4
        case 0x47: this.#push(this.#view.getFloat64(this.#take(8), false)); break; // BINFLOAT (big-endian)
        case 0x8c: this.#push(this.#text(this.#u8())); break; // SHORT_BINUNICODE
        case 0x58: this.#push(this.#text(this.#u32())); break; // BINUNICODE
        case 0x8d: this.#push(this.#text(this.#u64())); break; // BINUNICODE8
        case 0x43: this.#push(this.#bytes(this.#u8())); break; // SHORT_BINBYTES
        case 0x42: this.#push(this.#bytes(this.#u32())); break; // BINBYTES
        case 0x8e: this.#push(this.#bytes(this.#u64())); break; // BINBYTES8
        case 0x5d: this.#push(this.#container([], "list")); break; // EMPTY_LIST
        case 0x61: { // APPEND
          const item = this.#pop();
          this.#extend(this.#list(), [item]);
          break;
        }
        case 0x65: { // APPENDS
          const items = this.#popMark();
          this.#extend(this.#list(), items);
          break;
        }
        case 0x29: this.#push(this.#tuple([])); break; // EMPTY_TUPLE
        case 0x85: this.#push(this.#tuple(this.#popN(1))); break; // TUPLE1
        case 0x86: this.#push(this.#tuple(this.#popN(2))); break; // TUPLE2
        case 0x87: this.#push(this.#tuple(this.#popN(3))); break; // TUPLE3
        case 0x74: this.#push(this.#tuple(this.#popMark())); break; // TUPLE
        case 0x7d: this.#push(this.#container(new Map<PickleValue, PickleValue>(), "dict")); break; // EMPTY_DICT
        case 0x73: { // SETITEM
          const items = this.#popN(2);
          this.#setItems(this.#top(), items);
          break;
        }
        case 0x75: { // SETITEMS
          const items = this.#popMark();
          this.#setItems(this.#top(), items);
          break;
        }
        case 0x8f: this.#push(this.#container(new Set<PickleValue>(), "set")); break; // EMPTY_SET
        case 0x90: { // ADDITEMS
          const items = this.#popMark();
          const set = this.#top();
          if (this.#kindOf(set) !== "set") throw new PickleError("ADDITEMS needs a set");
          this.#addItems(set as Set<PickleValue>, items);
          break;
        }
        case 0x91: this.#push(this.#addItems(this.#container(new Set<PickleValue>(), "frozenset"), this.#popMark())); break; // FROZENSET
        case 0x94: this.#memoize(this.#memo.size); break; // MEMOIZE
        case 0x71: this.#memoize(this.#u8()); break; // BINPUT
        case 0x72: this.#memoize(this.#u32()); break; // LONG_BINPUT
        case 0x68: this.#push(this.#recall(this.#u8())); break; // BINGET
        case 0x6a: this.#push(this.#recall(this.#u32())); break; // LONG_BINGET
        case 0x93: { // STACK_GLOBAL
          const [module, name] = this.#popN(2);
          if (typeof module !== "string" || typeof name !== "string") throw new PickleError("STACK_GLOBAL needs two strings");
          this.#push(this.#global(module, name));
          break;
        }
        case 0x63: this.#push(this.#global(this.#line(), this.#line())); break; // GLOBAL
        case 0x52: // REDUCE
        case 0x81: { // NEWOBJ: cls.__new__(cls, *args) gives the same value as cls(*args) for the allowed classes
          const [callable, args] = this.#popN(2);
          this.#push(this.#call(callable, args));
          break;
        }
        case 0x62: { // BUILD: an exception's __dict__ (e.g. __notes__) carries nothing we show
          const [target] = this.#popN(2);
          if (target === undefined || this.#kindOf(target) !== "exception") throw new PickleError("BUILD is only accepted on exceptions");
          this.#push(target);
          break;
        }
        default:
          throw new PickleError(`unsupported pickle opcode 0x${op.toString(16).padStart(2, "0")} at offset ${at}`);
      }
    }
  }

  #stop(): PickleValue {
    if (this.#pos !== this.#data.length) throw new PickleError("bytes after STOP");
    if (this.#marks.length !== 0 || this.#stack.length !== 1) throw new PickleError("STOP with an unbalanced stack");
    return this.#value(this.#stack[0]);
  }

  // --- reading -------------------------------------------------------------------------------------------------

  #take(length: number): number {
    if (length > this.#data.length - this.#pos) throw new PickleError("input ends early", true);
    const at = this.#pos;
    this.#pos += length;
    return at;
  }

  #u8(): number {
    return this.#data[this.#take(1)]!;
  }

  #u32(): number {
    return this.#view.getUint32(this.#take(4), true);
  }

  #u64(): number {
    const value = this.#view.getBigUint64(this.#take(8), true);
    // Anything this long cannot be in the input anyway; report it as such rather than lose precision.
    if (value > BigInt(this.#data.length)) throw new PickleError("length beyond the end of the input", true);
    return Number(value);
  }

  #slice(length: number): Uint8Array {
    const at = this.#take(length);
    return this.#data.subarray(at, at + length);
  }

  #line(): string {
    const end = this.#data.indexOf(0x0a, this.#pos);
    if (end < 0) throw new PickleError("input ends inside GLOBAL", true);
    const text = Buffer.from(this.#slice(end - this.#pos)).toString("latin1");
    this.#pos += 1;
    return text;
  }

  #text(length: number): string {
    const raw = this.#slice(length);
    try {
      return utf8.decode(raw);
    } catch {
      return decodeSurrogatePass(raw);
    }
  }

  #bytes(length: number): Uint8Array {
    return Uint8Array.from(this.#slice(length)); // a copy: the result must not keep the whole reply alive
  }

  /** Two's-complement little-endian, as LONG1/LONG4 carry it. */
  #long(length: number): number | bigint {
    // No fail2ban value comes near this; the cap keeps a hostile LONG4 from costing seconds of bigint arithmetic.
    if (length > MAX_LONG_BYTES) throw new PickleError(`integer longer than ${MAX_LONG_BYTES} bytes`);
    const raw = this.#slice(length);
    if (raw.length === 0) return 0;
    let value = BigInt(`0x${Buffer.from(raw).reverse().toString("hex")}`);
    if (raw[raw.length - 1]! & 0x80) value -= 1n << BigInt(raw.length * 8);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }

  // --- stack ---------------------------------------------------------------------------------------------------

  #push(item: Item): void {
    this.#stack.push(item);
  }

  #pop(): Item {
    if (this.#stack.length === 0) throw new PickleError("stack underflow");
    return this.#stack.pop()!;
  }

  #popN(count: number): Item[] {
    if (this.#stack.length < count) throw new PickleError("stack underflow");
    return this.#stack.splice(this.#stack.length - count, count);
  }

  #popMark(): Item[] {
    const items = this.#stack;
    const below = this.#marks.pop();
    if (below === undefined) throw new PickleError("no MARK on the stack");
    this.#stack = below;
    return items;
  }

  #top(): Item {
    const top = this.#stack[this.#stack.length - 1];
    if (top === undefined) throw new PickleError("stack underflow");
    return top;
  }

  #memoize(index: number): void {
    // The memo is bounded by the input: each entry costs at least one opcode byte.
    this.#memo.set(index, this.#top());
  }

  #recall(index: number): Item {
    const item = this.#memo.get(index);
    if (item === undefined) throw new PickleError(`memo entry ${index} is missing`);
    return item;
  }

  // --- values --------------------------------------------------------------------------------------------------

  /** A stack item as a value: callables may sit on the stack but never end up inside the result. */
  #value(item: Item | undefined): PickleValue {
    if (item === undefined) throw new PickleError("stack underflow");
    if (typeof item === "object" && item !== null && this.#callables.has(item)) throw new PickleError("a class cannot be part of a value");
    return item as PickleValue;
  }

  #global(module: string, name: string): Callable {
    const callable = ALLOWED_GLOBALS.get(`${module}.${name}`);
    if (callable === undefined) throw new PickleError(`global ${JSON.stringify(`${module}.${name}`.slice(0, 100))} is not allowed`);
    // A fresh object each time, so that #value can recognise it by identity.
    const copy = { ...callable };
    this.#callables.add(copy);
    return copy;
  }

  #kindOf(value: Item): Kind | undefined {
    return typeof value === "object" && value !== null ? this.#meta.get(value)?.kind : undefined;
  }

  #container<T extends object>(value: T, kind: Kind): T {
    this.#meta.set(value, { kind, size: 1, depth: 1, sealed: false });
    return value;
  }

  /** Records that `parent` now holds `child`: sealing the child first makes cycles impossible (a self-append fails). */
  #adopt(parent: object, child: PickleValue): void {
    const meta = this.#meta.get(parent)!;
    let size = 1;
    let depth = 0;
    if (typeof child === "string") size += child.length;
    else if (child instanceof Uint8Array) size += child.byteLength;
    else if (typeof child === "object" && child !== null) {
      const childMeta = this.#meta.get(child)!;
      childMeta.sealed = true;
      size = childMeta.size;
      depth = childMeta.depth;
    }
    if (meta.sealed) throw new PickleError("a container was changed after it was used");
    meta.size += size;
    meta.depth = Math.max(meta.depth, depth + 1);
    if (meta.size > this.#maxSize) throw new PickleError(`reply larger than ${this.#maxSize}`);
    if (meta.depth > this.#maxDepth) throw new PickleError(`reply nested deeper than ${this.#maxDepth}`);
  }

  /** The list APPEND/APPENDS extend: tuples are immutable. */
  #list(): PickleValue[] {
    const list = this.#top();
    if (this.#kindOf(list) !== "list") throw new PickleError("APPEND needs a list");
    return list as PickleValue[];
  }

  /** Appends to a list, or fills a new tuple. */
  #extend(list: PickleValue[], items: readonly Item[]): PickleValue[] {
    for (const item of items) {
      const value = this.#value(item);
      this.#adopt(list, value);
      list.push(value);
    }
    return list;
  }

  #tuple(items: readonly Item[]): PickleValue[] {
    return this.#extend(this.#container<PickleValue[]>([], "tuple"), items);
  }

  #setItems(dict: Item, items: readonly Item[]): Map<PickleValue, PickleValue> {
    if (this.#kindOf(dict) !== "dict" || items.length % 2 !== 0) throw new PickleError("SETITEM(S) needs a dict and key/value pairs");
    const map = dict as Map<PickleValue, PickleValue>;
    for (let i = 0; i < items.length; i += 2) {
      const key = this.#hashable(this.#value(items[i]));
      const value = this.#value(items[i + 1]);
      this.#adopt(map, key);
      this.#adopt(map, value);
      map.set(key, value);
    }
    return map;
  }

  #addItems(set: Set<PickleValue>, items: readonly Item[]): Set<PickleValue> {
    for (const item of items) {
      const value = this.#hashable(this.#value(item));
      this.#adopt(set, value);
      set.add(value);
    }
    return set;
  }

  /** Python refuses unhashable keys and members; so do we, rather than build what Python never could. */
  #hashable(value: PickleValue): PickleValue {
    const kind = this.#kindOf(value);
    if (kind === "list" || kind === "dict" || kind === "set") throw new PickleError(`a ${kind} cannot be a dict key or set member`);
    return value;
  }

  /** REDUCE/NEWOBJ on an allowed class, interpreted: nothing is ever called. */
  #call(callable: Item | undefined, args: Item | undefined): PickleValue {
    if (callable === undefined || typeof callable !== "object" || callable === null || !this.#callables.has(callable)) {
      throw new PickleError("REDUCE needs an allowed class");
    }
    if (args === undefined || this.#kindOf(args) !== "tuple") throw new PickleError("REDUCE needs an argument tuple");
    const argv = args as PickleValue[];
    const c = callable as Callable;
    if (c.kind === "exception") {
      const exception: PickleException = this.#container({ exception: c.name, args: argv }, "exception");
      this.#adopt(exception, argv);
      return exception;
    }
    if (argv.length > 1) throw new PickleError(`${c.type}() takes at most one argument here`);
    const [arg] = argv;
    switch (c.type) {
      case "str":
        if (arg === undefined) return "";
        if (typeof arg === "string") return arg;
        if (typeof arg === "bigint" || (typeof arg === "number" && Number.isInteger(arg))) return String(arg);
        throw new PickleError("str() is only accepted on a string or an integer");
      case "list":
      case "tuple":
        return this.#extend(this.#container<PickleValue[]>([], c.type), this.#iterate(arg));
      case "set":
      case "frozenset":
        return this.#addItems(this.#container(new Set<PickleValue>(), c.type), this.#iterate(arg));
      case "dict": {
        const pairs: PickleValue[] = [];
        if (arg instanceof Map) for (const [key, value] of arg) pairs.push(key, value);
        else {
          for (const pair of this.#iterate(arg)) {
            if (!Array.isArray(pair) || pair.length !== 2) throw new PickleError("dict() needs key/value pairs");
            pairs.push(pair[0]!, pair[1]!);
          }
        }
        return this.#setItems(this.#container(new Map<PickleValue, PickleValue>(), "dict"), pairs);
      }
    }
  }

  #iterate(arg: PickleValue | undefined): PickleValue[] {
    if (arg === undefined) return [];
    if (Array.isArray(arg)) return arg;
    if (arg instanceof Set) return [...arg];
    if (arg instanceof Map) return [...arg.keys()];
    throw new PickleError("only lists, tuples, sets and dicts can be iterated here");
  }
}

/**
 * UTF-8 with Python's "surrogatepass": the pickler writes a lone surrogate (from surrogateescape'd log bytes, say) as
 * its three-byte form, which a strict decoder rejects. JavaScript strings can hold lone surrogates, so keep them.
 */
function decodeSurrogatePass(raw: Uint8Array): string {
  const units: number[] = [];
  for (let i = 0; i < raw.length; ) {
    const b0 = raw[i]!;
    const need = b0 < 0x80 ? 0 : b0 >= 0xc2 && b0 < 0xe0 ? 1 : b0 >= 0xe0 && b0 < 0xf0 ? 2 : b0 >= 0xf0 && b0 < 0xf5 ? 3 : -1;
    if (need < 0) throw new PickleError("invalid UTF-8 in a string");
    let cp = need === 0 ? b0 : b0 & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const b = raw[i + k];
      if (b === undefined || (b & 0xc0) !== 0x80) throw new PickleError("invalid UTF-8 in a string");
      cp = (cp << 6) | (b & 0x3f);
    }
    const min = [0, 0x80, 0x800, 0x10000][need]!;
    if (cp < min || cp > 0x10ffff) throw new PickleError("invalid UTF-8 in a string");
    if (cp >= 0x10000) units.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
    else units.push(cp);
    i += need + 1;
  }
  let text = "";
  for (let i = 0; i < units.length; i += 8192) text += String.fromCharCode(...units.slice(i, i + 8192));
  return text;
}
