import type { Logger } from "../logger.js";
import type { Executor } from "./exec.js";

/**
 * Asks the kernel for the nftables ruleset generation (one NFT_MSG_GETGEN netlink request) for each line it reads,
 * and prints it, or `stale` once it no longer runs in the network namespace of the name it was given (deleted, or
 * deleted and made again). Node cannot open netlink sockets; python3 (which fail2ban needs anyway) can.
 */
const GENERATION_SOURCE = `
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
while sys.stdin.readline():
    seq += 1
    # nlmsghdr (length, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN, NLM_F_REQUEST, seq, port), nfgenmsg
    sock.send(struct.pack("=IHHIIBBH", 20, (10 << 8) | 16, 1, seq, 0, 0, 0, 0))
    reply = sock.recv(65536)
    generation = None
    length, kind = struct.unpack_from("=IH", reply, 0)
    offset = 20
    while kind == (10 << 8) | 15 and offset + 4 <= length:  # NFT_MSG_NEWGEN: its attributes
        size, attribute = struct.unpack_from("=HH", reply, offset)
        if attribute == 1 and size == 8:  # NFTA_GEN_ID, big-endian
            generation = struct.unpack_from(">I", reply, offset + 4)[0]
        if size < 4:
            break
        offset += (size + 3) & ~3
    print(generation if generation is not None and same_netns() else "stale", flush=True)
`;

const ANSWER_TIMEOUT_MS = 2_000;

/**
 * The nftables ruleset generation of the namespace: a number the kernel increases with every committed change of any
 * table of any family, whoever makes it (iptables, Docker, fail2ban, Portcullis). While it has not moved, no rule
 * anywhere has changed. Read by a long-lived python3 process; undefined when it cannot be read (then callers read the
 * table itself).
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

  read(): Promise<number | undefined> {
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
      reader.waiting.push((generation) => {
        clearTimeout(timer);
        resolve(generation);
      });
      reader.child.stdin.write("\n");
    });
  }

  close(): void {
    this.#unavailable = true;
    if (this.#reader !== undefined) this.#stop(this.#reader);
  }

  #start(): Reader {
    const child = this.#exec.spawn("python3", ["-c", GENERATION_SOURCE, ...(this.#exec.netns === undefined ? [] : [this.#exec.netns])]);
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
        const generation = /^\d+$/.test(answer) ? Number(answer) : undefined;
        reader.answered = true;
        // A stale reader answers no more: the next read starts one in the namespace of that name now.
        if (generation === undefined) this.#stop(reader);
        reader.waiting.shift()?.(generation);
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
  readonly waiting: Array<(generation: number | undefined) => void>;
  answered: boolean;
  /** Killed here (stale, timed out, closed), not ended by itself. */
  stopped: boolean;
}
