import type { Logger } from "../logger.js";
import type { Family } from "../firewall/rule-model.js";
import type { Executor } from "./exec.js";

/**
 * Answers one request per line it reads, through netlink (Node cannot open netlink sockets; python3, which fail2ban
 * needs anyway, can):
 * - an empty line: the nftables ruleset generation (one NFT_MSG_GETGEN request);
 * - `counters FAMILY TABLE CHAIN=P1,P2,… …`: tab-separated, the generation before and after reading, every chain's
 *   counters (`NAME=packets:bytes …`, an NFT_MSG_GETCHAIN dump; a built-in chain's are its policy's), then for each
 *   chain asked for the counters of the rules at those positions (`packets:bytes …`, `-` past the end; an
 *   NFT_MSG_GETRULE dump of the chain read up to the last position asked for; a rule without a counter expression
 *   has 0:0, as iptables-save prints it).
 * FAMILY is the NFPROTO number (2 IPv4, 10 IPv6). The answer is `none` when the kernel refused the request or a change
 * interrupted the dump, and `stale` once the process no longer runs in the network namespace of the name it was given
 * (deleted, or deleted and made again).
 */
const NETLINK_SOURCE = `
import os, socket, struct, sys
netns = sys.argv[1] if len(sys.argv) > 1 else ""
def same_netns():
    try:
        return netns == "" or os.stat("/run/netns/" + netns).st_ino == os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return False
sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
sock.bind((0, 0))
seq = 0
def ask(kind, flags, family, body=b""):
    # nlmsghdr (length, NFNL_SUBSYS_NFTABLES << 8 | kind, flags, seq, port), nfgenmsg (family, version, res_id)
    global seq
    seq += 1
    sock.send(struct.pack("=IHHIIBBH", 20 + len(body), (10 << 8) | kind, flags, seq, 0, family, 0, 0) + body)
def name(kind, text):
    data = text.encode() + b"\\0"
    return struct.pack("=HH", 4 + len(data), kind) + data + b"\\0" * (-len(data) % 4)
def attrs(data, offset, end):
    while offset + 4 <= end:
        size, kind = struct.unpack_from("=HH", data, offset)
        if size < 4:
            return
        yield kind & 0x3fff, offset + 4, offset + size
        offset += (size + 3) & ~3
def answers():
    # (data, start, end) of each message answering the last request; at its end None when the kernel refused it or a
    # change interrupted the dump (read to its end all the same)
    broken = False
    while True:
        data = sock.recv(1 << 20)
        offset = 0
        while offset + 16 <= len(data):
            length, kind, flags, number = struct.unpack_from("=IHHI", data, offset)
            if length < 16:
                yield None
                return
            if number == seq:
                broken = broken or flags & 0x10 != 0  # NLM_F_DUMP_INTR
                if kind == 2 and struct.unpack_from("=i", data, offset + 16)[0] != 0:  # NLMSG_ERROR
                    yield None
                    return
                if kind in (2, 3):  # an acknowledgement, NLMSG_DONE
                    if broken:
                        yield None
                    return
                if not broken:
                    yield data, offset + 20, offset + length
            offset += (length + 3) & ~3
def counter(data, start, end):
    # NFTA_COUNTER_BYTES 1, NFTA_COUNTER_PACKETS 2, big-endian
    values = {kind: struct.unpack_from(">Q", data, at)[0] for kind, at, _ in attrs(data, start, end) if kind in (1, 2)}
    return "%d:%d" % (values.get(2, 0), values.get(1, 0))
def generation():
    ask(16, 1, 0)  # NFT_MSG_GETGEN: one NFT_MSG_NEWGEN answers it
    for message in answers():
        for kind, at, _ in attrs(*message) if message is not None else ():
            if kind == 1:  # NFTA_GEN_ID
                return struct.unpack_from(">I", message[0], at)[0]
        return None
    return None
def rules(family, table, chain, positions):
    global sock
    ask(7, 0x301, family, name(1, table) + name(2, chain))  # NFT_MSG_GETRULE dump of NFTA_RULE_TABLE, NFTA_RULE_CHAIN
    wanted = set(positions)
    found = {}
    count = 0
    for message in answers():
        if message is None:
            return None
        count += 1
        if count not in wanted:
            continue
        found[count] = "0:0"
        data = message[0]
        for kind, at, end in attrs(*message):
            if kind != 4:  # NFTA_RULE_EXPRESSIONS: NFTA_LIST_ELEMs of NFTA_EXPR_NAME 1, NFTA_EXPR_DATA 2
                continue
            for _, element, element_end in attrs(data, at, end):
                parts = {part: (a, b) for part, a, b in attrs(data, element, element_end)}
                if 1 in parts and 2 in parts and data[parts[1][0]:parts[1][1]].rstrip(b"\\0") == b"counter":
                    found[count] = counter(data, *parts[2])
        if len(found) == len(wanted):
            # the rest of the dump is not needed: a new socket drops it (a 10k-rule chain is read in 1 ms, not 20)
            sock.close()
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
            sock.bind((0, 0))
            break
    return " ".join(found.get(position, "-") for position in positions)
def chains(family, table):
    ask(4, 0x301, family, name(1, table))  # NFT_MSG_GETCHAIN dump: NFTA_CHAIN_NAME 3, NFTA_CHAIN_COUNTERS 8
    out = []
    for message in answers():
        if message is None:
            return None
        data = message[0]
        chain, counted = None, "0:0"
        for kind, at, end in attrs(*message):
            if kind == 3:
                chain = data[at:end].rstrip(b"\\0").decode()
            elif kind == 8:
                counted = counter(data, at, end)
        if chain is not None:
            out.append(chain + "=" + counted)
    return " ".join(out)
def counters(family, table, wanted):
    before = generation()
    parts = [chains(family, table)] + [rules(family, table, chain, [int(word) for word in positions.split(",")]) for chain, positions in wanted]
    after = generation()
    return None if before is None or after is None or None in parts else "\t".join([str(before), str(after)] + parts)
for line in sys.stdin:
    words = line.split()
    try:
        if not words:
            answer = generation()
        elif words[0] == "counters":
            answer = counters(int(words[1]), words[2], [word.rsplit("=", 1) for word in words[3:]])
        else:
            answer = None
    except (OSError, ValueError, IndexError, struct.error):
        answer = None
    print("stale" if not same_netns() else "none" if answer is None else answer, flush=True)
`;

const ANSWER_TIMEOUT_MS = 2_000;

/** Packets and bytes of a rule, or of a built-in chain's policy. */
export interface Counter {
  readonly packets: number;
  readonly bytes: number;
}

const NFPROTO: Record<Family, number> = { ipv4: 2, ipv6: 10 };

/**
 * The nftables ruleset generation of the namespace: a number the kernel increases with every committed change of any
 * table of any family, whoever makes it (iptables, Docker, fail2ban, Portcullis). While it has not moved, no rule
 * anywhere has changed. Also the counters of chosen rules and of the chains, which iptables-save can only give with
 * every rule of the table. Read by a long-lived python3 process; undefined when it cannot be read (then callers read
 * the table itself).
 */
export class RulesetGeneration {
  readonly #exec: Executor;
  readonly #log: Logger;
  #reader: Reader | undefined;
  #unavailable = false;

  constructor(exec: Executor, log: Logger) {
    this.#exec = exec;
    this.#log = log;
  }

  async read(): Promise<number | undefined> {
    const answer = await this.#ask("");
    return answer !== undefined && /^\d+$/.test(answer) ? Number(answer) : undefined;
  }

  /**
   * The counters of every chain of a table and of the rules at chosen positions (from 1) of some chains, with the
   * generation before and after reading them; undefined when unreadable (or a chain name has whitespace).
   */
  async counters(family: Family, table: string, wanted: ReadonlyMap<string, readonly number[]>): Promise<{ before: number; after: number; chains: Map<string, Counter>; rules: Map<string, Counter[]> } | undefined> {
    if ([...wanted].some(([chain, positions]) => /\s/.test(chain) || positions.length === 0)) return undefined;
    const fields = (await this.#ask(`counters ${NFPROTO[family]} ${table} ${[...wanted].map(([chain, positions]) => `${chain}=${positions.join(",")}`).join(" ")}`))?.split("\t");
    if (fields === undefined || fields.length !== wanted.size + 3 || !/^\d+$/.test(fields[0]!) || !/^\d+$/.test(fields[1]!)) return undefined;
    const chains = new Map<string, Counter>();
    for (const word of fields[2] === "" ? [] : fields[2]!.split(" ")) {
      const at = word.lastIndexOf("=");
      const counter = parseCounter(word.slice(at + 1));
      if (at <= 0 || counter === undefined) return undefined;
      chains.set(word.slice(0, at), counter);
    }
    const rules = new Map<string, Counter[]>();
    for (const [i, [chain, positions]] of [...wanted].entries()) {
      const counters = fields[i + 3]!.split(" ").map(parseCounter);
      if (counters.length !== positions.length || counters.some((counter) => counter === undefined)) return undefined;
      rules.set(chain, counters as Counter[]);
    }
    return { before: Number(fields[0]), after: Number(fields[1]), chains, rules };
  }

  close(): void {
    this.#unavailable = true;
    if (this.#reader !== undefined) this.#stop(this.#reader);
  }

  /** One request line, its answer line; undefined when stale, timed out or unavailable. */
  #ask(request: string): Promise<string | undefined> {
    if (this.#unavailable) return Promise.resolve(undefined);
    let reader: Reader;
    try {
      reader = this.#reader ?? this.#start();
    } catch (error) {
      this.#log.warn({ err: error }, "cannot start the ruleset generation reader");
      return Promise.resolve(undefined);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#stop(reader), ANSWER_TIMEOUT_MS);
      reader.waiting.push((answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      reader.child.stdin.write(`${request}\n`);
    });
  }

  #start(): Reader {
    const child = this.#exec.spawn("python3", ["-c", NETLINK_SOURCE, ...(this.#exec.netns === undefined ? [] : [this.#exec.netns])]);
    const reader: Reader = { child, waiting: [], answered: false, stopped: false };
    this.#reader = reader;
    let stdout = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      stdout += chunk;
      let end: number;
      while ((end = stdout.indexOf("\n")) >= 0) {
        const answer = stdout.slice(0, end);
        stdout = stdout.slice(end + 1);
        reader.answered = true;
        // A stale reader answers no more: the next read starts one in the namespace of that name now.
        if (answer === "stale") this.#stop(reader);
        reader.waiting.shift()?.(answer === "stale" ? undefined : answer);
      }
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => this.#log.warn({ stderr: chunk.slice(0, 2000) }, "ruleset generation reader wrote to stderr"));
    child.stdin.on("error", () => undefined); // reported through its end below
    void child.ended.then((end) => {
      // One that could not start, or ended by itself before its first answer (no netlink here), is not tried again.
      if ((end.notStarted || (!reader.answered && !reader.stopped)) && !this.#unavailable) {
        this.#unavailable = true;
        this.#log.warn({ exitCode: end.exitCode }, "the ruleset generation cannot be read (python3 missing or failing): every ApplyRuleset reads the table for other tools' rules with iptables-save");
      }
      if (this.#reader === reader) this.#reader = undefined;
      for (const waiting of reader.waiting.splice(0)) waiting(undefined);
    });
    return reader;
  }

  #stop(reader: Reader): void {
    reader.stopped = true;
    if (this.#reader === reader) this.#reader = undefined;
    reader.child.kill("SIGKILL");
  }
}

interface Reader {
  readonly child: ReturnType<Executor["spawn"]>;
  /** Who waits for its answers, in the order of the requests. */
  readonly waiting: Array<(answer: string | undefined) => void>;
  answered: boolean;
  /** Killed here (stale, timed out, closed), not ended by itself. */
  stopped: boolean;
}

function parseCounter(word: string): Counter | undefined {
  const match = /^(\d+):(\d+)$/.exec(word);
  return match === null ? undefined : { packets: Number(match[1]), bytes: Number(match[2]) };
}
