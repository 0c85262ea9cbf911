/**
 * The text of `iptables-save -c` / `ip6tables-save -c`, parsed into structured rules. Checked against iptables 1.8.9
 * (nf_tables): a rule is printed as `[!] -s [!] -d [!] -i [!] -o [!] -p` first, then its matches in the order they were
 * given, then the target. Pure functions; their inverse is drivers/iptables-render.ts.
 */
import { createHash } from "node:crypto";
import { ServerError } from "../../errors.js";
import type { ConntrackState, Family, ParsedChain, ParsedRule, ParsedTable, Policy, PortRange, RuleSpec, SetDirection, Target } from "../../firewall/rule-model.js";
import { PORT_PROTOCOLS, STATE_ORDER } from "../iptables-vocabulary.js";
import { renderRuleLine } from "../iptables-render.js";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Fail = (message: string) => never;

/**
 * Splits a line the way iptables-restore does: blanks separate words, `"` opens and closes a quoted part, and
 * inside quotes a backslash takes the next character literally (iptables-save escapes `"`, `\` and `'` this way).
 */
function tokenize(text: string, failLine: Fail): string[] {
  const tokens: string[] = [];
  let current = "";
  let inToken = false;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (quoted) {
      if (c === "\\" && i + 1 < text.length) current += text.charAt(++i);
      else if (c === '"') {
        // A closing quote ends the word, as in iptables-restore.
        tokens.push(current);
        current = "";
        inToken = quoted = false;
      } else current += c;
    } else if (c === '"') {
      quoted = inToken = true;
    } else if (c === " " || c === "\t") {
      if (inToken) tokens.push(current);
      current = "";
      inToken = false;
    } else {
      current += c;
      inToken = true;
    }
  }
  if (quoted) failLine("unterminated double quote");
  if (inToken) tokens.push(current);
  return tokens;
}

interface Option {
  readonly name: string;
  readonly negate: boolean;
  readonly values: readonly string[];
}

/** How many words follow each option we interpret; other options take the words up to the next `-x`/`--x`/`!`. */
const PORT_OPTIONS = new Map([["--sport", 1], ["--dport", 1], ["--source-port", 1], ["--destination-port", 1]]);
const OPTION_ARITY: ReadonlyMap<string, ReadonlyMap<string, number>> = new Map([
  ["tcp", PORT_OPTIONS], ["udp", PORT_OPTIONS], ["sctp", PORT_OPTIONS], ["udplite", PORT_OPTIONS],
  ["multiport", new Map([["--sports", 1], ["--dports", 1], ["--ports", 1], ["--source-ports", 1], ["--destination-ports", 1]])],
  ["set", new Map([["--match-set", 2]])],
  ["conntrack", new Map([["--ctstate", 1]])],
  ["state", new Map([["--state", 1]])],
  // A comment can be any text, "-m" included: it is always exactly one word.
  ["comment", new Map([["--comment", 1]])],
  ["REJECT", new Map([["--reject-with", 1]])],
  ["LOG", new Map([["--log-prefix", 1], ["--log-level", 1]])],
]);

class Cursor {
  #at = 0;
  constructor(private readonly tokens: readonly string[]) {}

  get done(): boolean {
    return this.#at >= this.tokens.length;
  }

  peek(ahead = 0): string | undefined {
    return this.tokens[this.#at + ahead];
  }

  take(): string | undefined {
    return this.tokens[this.#at++];
  }

  /** The `[!] --name value…` options after `-m NAME` or `-j NAME`. */
  options(module: string): Option[] {
    const arity = OPTION_ARITY.get(module);
    const options: Option[] = [];
    for (;;) {
      const negate = this.peek() === "!";
      const name = this.peek(negate ? 1 : 0);
      if (name === undefined || !name.startsWith("--")) return options;
      this.#at += negate ? 2 : 1;
      const values: string[] = [];
      const count = arity?.get(name);
      for (let next = this.peek(); next !== undefined; next = this.peek()) {
        if (count === undefined ? next.startsWith("-") || next === "!" : values.length === count) break;
        values.push(next);
        this.#at++;
      }
      options.push({ name, negate, values });
    }
  }
}

/** True when every option was understood; all are applied, so the spec keeps what could be read. */
function every(options: readonly Option[], apply: (option: Option) => boolean): boolean {
  return options.map(apply).every(Boolean);
}

type Draft = Mutable<Omit<RuleSpec, "target">>;

function parsePortList(text: string): PortRange[] | undefined {
  const ranges = text.split(",").map((part) => {
    const bounds = part.split(":");
    if (bounds.length > 2 || !bounds.every((bound) => /^\d{1,5}$/.test(bound) && Number(bound) <= 65535)) return undefined;
    return { first: Number(bounds[0]), last: Number(bounds[1] ?? bounds[0]) };
  });
  return ranges.every((range) => range !== undefined) ? (ranges as PortRange[]) : undefined;
}

function applyPorts(draft: Draft, option: Option, names: { source: readonly string[]; destination: readonly string[] }): boolean {
  const key = names.source.includes(option.name) ? "sourcePort" : names.destination.includes(option.name) ? "destinationPort" : undefined;
  const ports = option.values.length === 1 ? parsePortList(option.values[0] ?? "") : undefined;
  if (key === undefined || draft[key] !== undefined || ports === undefined) return false;
  draft[key] = { ports, negate: option.negate };
  return true;
}

/** Applies one `-m NAME` match to the draft; false when any part of it is not modeled. */
function applyMatch(draft: Draft, comments: string[], name: string | undefined, options: readonly Option[]): boolean {
  switch (name) {
    case "tcp":
    case "udp":
    case "sctp":
    case "udplite":
      return draft.protocol === name && draft.protocolNegate !== true &&
        every(options, (option) => applyPorts(draft, option, { source: ["--sport", "--source-port"], destination: ["--dport", "--destination-port"] }));
    case "multiport":
      // --ports (either direction) has no place in the model.
      return PORT_PROTOCOLS.has(draft.protocol ?? "") && draft.protocolNegate !== true &&
        every(options, (option) => applyPorts(draft, option, { source: ["--sports", "--source-ports"], destination: ["--dports", "--destination-ports"] }));
    case "set":
      return every(options, (option) => {
        const [set, dimensions] = option.values;
        const directions = dimensions?.split(",") ?? [];
        if (option.name !== "--match-set" || set === undefined || draft.matchSet !== undefined) return false;
        if (!directions.every((direction): direction is SetDirection => direction === "src" || direction === "dst")) return false;
        draft.matchSet = { set, directions, negate: option.negate };
        return true;
      });
    case "conntrack":
    case "state":
      return every(options, (option) => {
        const states = option.values[0]?.split(",") ?? [];
        const known = states.every((state): state is ConntrackState => (STATE_ORDER as readonly string[]).includes(state));
        if (option.name !== (name === "conntrack" ? "--ctstate" : "--state") || option.negate || !known || draft.states !== undefined) return false;
        draft.states = states;
        return true;
      });
    case "comment":
      return every(options, (option) => {
        const [comment] = option.values;
        if (option.name !== "--comment" || option.negate || comment === undefined) return false;
        comments.push(comment);
        return true;
      });
    default:
      return false;
  }
}

function parseTarget(jump: "-j" | "-g", name: string | undefined, options: readonly Option[], chains: { has(name: string): boolean }): { target: Target; modeled: boolean } {
  if (name === undefined) return { target: { kind: "OTHER", name: "" }, modeled: false };
  const plain = options.length === 0;
  if (jump === "-g") return { target: { kind: "JUMP", chain: name, goto: true }, modeled: plain };
  switch (name) {
    case "ACCEPT":
    case "DROP":
    case "RETURN":
      return { target: { kind: name }, modeled: plain };
    case "REJECT": {
      const option = options[0];
      const rejectWith = option?.name === "--reject-with" && !option.negate ? option.values[0] : undefined;
      return { target: { kind: "REJECT", ...(rejectWith === undefined ? {} : { rejectWith }) }, modeled: options.length === (rejectWith === undefined ? 0 : 1) };
    }
    case "LOG": {
      let prefix: string | undefined;
      let level: string | undefined;
      const modeled = every(options, (option) => {
        const [value] = option.values;
        if (option.negate || value === undefined) return false;
        if (option.name === "--log-prefix" && prefix === undefined) prefix = value;
        else if (option.name === "--log-level" && level === undefined) level = value;
        else return false;
        return true;
      });
      return { target: { kind: "LOG", ...(prefix === undefined ? {} : { prefix }), ...(level === undefined ? {} : { level }) }, modeled };
    }
    default:
      // DOCKER, f2b-sshd, … are chains of the table; MASQUERADE, DNAT, CT, … are targets we only show.
      return { target: chains.has(name) ? { kind: "JUMP", chain: name, goto: false } : { kind: "OTHER", name }, modeled: plain };
  }
}

/** The words after `-A CHAIN` as a spec; never throws: what it does not understand makes the rule unmodeled. */
function parseRuleWords(words: readonly string[], chains: { has(name: string): boolean }): { spec: RuleSpec; modeled: boolean } {
  const draft: Draft = {};
  const comments: string[] = [];
  let target: Target | undefined;
  let modeled = true;
  const cursor = new Cursor(words);
  while (!cursor.done) {
    const negate = cursor.peek() === "!";
    if (negate) cursor.take();
    const flag = cursor.take();
    if (flag === "-s" || flag === "-d") {
      const address = cursor.take();
      const key = flag === "-s" ? "source" : "destination";
      if (address === undefined || draft[key] !== undefined) modeled = false;
      else draft[key] = { address, negate };
    } else if (flag === "-i" || flag === "-o") {
      const name = cursor.take();
      const key = flag === "-i" ? "inInterface" : "outInterface";
      if (name === undefined || draft[key] !== undefined) modeled = false;
      else draft[key] = { name, negate };
    } else if (flag === "-p") {
      const protocol = cursor.take();
      if (protocol === undefined || draft.protocol !== undefined) modeled = false;
      else {
        draft.protocol = protocol;
        if (negate) draft.protocolNegate = true;
      }
    } else if (flag === "-m" && !negate) {
      const name = cursor.take();
      if (!applyMatch(draft, comments, name, cursor.options(name ?? ""))) modeled = false;
    } else if ((flag === "-j" || flag === "-g") && !negate && target === undefined) {
      const name = cursor.take();
      const parsed = parseTarget(flag, name, cursor.options(name ?? ""), chains);
      target = parsed.target;
      modeled &&= parsed.modeled;
    } else {
      // -f, a second target, or anything newer than this parser.
      modeled = false;
    }
  }
  if (comments[0] !== undefined) draft.comment = comments[0];
  if (comments.length > 1 || target === undefined) modeled = false;
  const spec: RuleSpec = { ...draft, target: target ?? { kind: "OTHER", name: "" } };
  return { spec, modeled };
}

interface OpenTable {
  readonly name: string;
  readonly chains: ParsedChain[];
  readonly rules: ParsedRule[];
  /** Rules seen so far per declared chain. */
  readonly counts: Map<string, number>;
}

const excerpt = (line: string): string => (line.length > 60 ? `${line.slice(0, 60)}…` : line);

type ParsedBody = ReturnType<typeof parseRuleWords> & { readonly chain: string; readonly key: string };

/** A rule line's body (`-A CHAIN …`) parsed; `chains` tells a jump (`-j NAME` of a declared chain) from an unknown target. */
function parseRuleBody(body: string, chains: { has(name: string): boolean }, failLine: Fail): ParsedBody {
  const words = tokenize(body, failLine);
  const [flag, chain] = words;
  if (flag !== "-A" || chain === undefined) failLine(`"${excerpt(body)}" is neither a rule (-A CHAIN …), a chain (:CHAIN …) nor COMMIT`);
  const parsed = { ...parseRuleWords(words.slice(2), chains), chain };
  return { ...parsed, key: parsed.modeled ? canonicalKey(chain, parsed.spec) ?? body : body };
}

/** A chain line of a dump: `:NAME POLICY [packets:bytes]` (POLICY `-` for a user chain; counters only with -c). */
export const CHAIN_LINE = /^:(\S+)\s+(\S+)(?:\s+\[(\d+):(\d+)\])?$/;

/** Every name is a chain: a stored managed rule's `-j NAME` that is no built-in target can only be a jump. */
const ANY_CHAIN = { has: (): boolean => true };

/**
 * The spec of a line renderRuleLine made (`-A CHAIN …`): the inverse of rendering, as ApplyRuleset's stored rules
 * need it. Throws INVALID_DUMP for a line that is not a fully modeled rule.
 */
export function parseRuleLine(line: string): { chain: string; spec: RuleSpec } {
  const parsed = parseRuleBody(line, ANY_CHAIN, (message) => {
    throw new ServerError("INVALID_DUMP", `stored rule line: ${message}`, {});
  });
  if (!parsed.modeled) throw new ServerError("INVALID_DUMP", `stored rule line is not a modeled rule: "${excerpt(line)}"`, {});
  return { chain: parsed.chain, spec: parsed.spec };
}

/**
 * Parses `iptables-save [-c]` / `ip6tables-save [-c]` output. Throws INVALID_DUMP only for text that is broken as a
 * whole (rule outside a table, undeclared chain, unterminated quote, missing COMMIT); matches and targets it does
 * not know only make their rule `modeled: false`, with `text` as the faithful form.
 */
export function parseIptablesSave(text: string): ParsedTable[] {
  const tables: ParsedTable[] = [];
  let open: OpenTable | undefined;
  const lines = text.split("\n");
  // One function for every line (not a closure per line): a 10k-rule dump is parsed on every listing.
  let index = 0;
  const failLine: Fail = (message) => {
    throw new ServerError("INVALID_DUMP", `iptables-save output, line ${index + 1}: ${message}`, { line: String(index + 1) });
  };
  for (; index < lines.length; index++) {
    const raw = lines[index]!;
    const line = raw.length > 0 && (raw.charCodeAt(0) <= 32 || raw.charCodeAt(raw.length - 1) <= 32) ? raw.trim() : raw;
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("*")) {
      if (open !== undefined) failLine(`table ${open.name} has no COMMIT before ${excerpt(line)}`);
      const name = line.slice(1).trim();
      if (!/^\S+$/.test(name)) failLine(`"${excerpt(line)}" is not a table line`);
      open = { name, chains: [], rules: [], counts: new Map() };
      continue;
    }
    if (open === undefined) failLine(`"${excerpt(line)}" is outside a table (no *TABLE line before it)`);
    if (line === "COMMIT") {
      tables.push({ name: open.name, chains: open.chains, rules: open.rules });
      open = undefined;
      continue;
    }
    if (line.startsWith(":")) {
      const match = CHAIN_LINE.exec(line);
      const [, name = "", policy = "", packets = "0", bytes = "0"] = match ?? [];
      if (match === null || !["ACCEPT", "DROP", "-"].includes(policy)) failLine(`"${excerpt(line)}" is not a chain line (:CHAIN POLICY [packets:bytes])`);
      if (open.counts.has(name)) failLine(`chain ${name} is declared twice`);
      open.counts.set(name, 0);
      open.chains.push({
        name,
        builtin: policy !== "-",
        ...(policy === "-" ? {} : { policy: policy as Policy }),
        packets: Number(packets),
        bytes: Number(bytes),
      });
      continue;
    }
    const counted = line.startsWith("[") ? /^\[(\d+):(\d+)\]\s+(.*)$/.exec(line) : null;
    if (counted === null && line.startsWith("[")) failLine(`"${excerpt(line)}" has malformed counters; expected [packets:bytes]`);
    const body = counted?.[3] ?? line;
    const parsed = parseRuleBody(body, open.counts, failLine);
    const chain = parsed.chain;
    const count = open.counts.get(chain);
    if (count === undefined) failLine(`rule for chain ${chain}, which the table does not declare`);
    open.counts.set(chain, count + 1);
    open.rules.push({
      chain,
      position: count + 1,
      spec: parsed.spec,
      key: parsed.key,
      text: body,
      modeled: parsed.modeled,
      packets: Number(counted?.[1] ?? 0),
      bytes: Number(counted?.[2] ?? 0),
    });
  }
  if (open !== undefined) {
    throw new ServerError("INVALID_DUMP", `iptables-save output ends inside table ${open.name} (no COMMIT)`, { line: String(lines.length) });
  }
  return tables;
}

/**
 * The id of a rule Portcullis does not manage: a hash of where it is and what it says, with `occurrence` = how many
 * identical unmanaged lines come before it in the chain, so that it survives other rules moving. (Managed rules carry
 * the id recorded when they were created: see firewall/rule-identity.ts.)
 */
export function unmanagedRuleId(family: Family, table: string, chain: string, text: string, occurrence: number): string {
  const digest = createHash("sha256").update(`${family}|${table}|${chain}|${text}|${occurrence}`).digest("hex");
  return `x${digest.slice(0, 11)}`;
}

/** The canonical line of a modeled rule (what renderRuleLine makes of its spec); undefined if it cannot be rendered. */
function canonicalKey(chain: string, spec: RuleSpec): string | undefined {
  try {
    return renderRuleLine(chain, spec);
  } catch {
    return undefined;
  }
}
