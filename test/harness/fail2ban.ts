import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Fail2banClient } from "../../server/src/drivers/fail2ban-client.js";
import { createLogger } from "../../server/src/logger.js";
import { Netns } from "./netns.js";

const log = createLogger("silent");

/** What a test's jail.local says, given the server's paths. */
export type JailConfig = (paths: { dir: string; mailLog: string; dummyTarget: string }) => string;

/** The default: two jails whose actions only write to a temp file or do nothing (no firewall at all). */
const HARMLESS_JAILS: JailConfig = ({ mailLog, dummyTarget }) => [
  "[DEFAULT]", "backend = polling", `logpath = ${mailLog}`, "filter = dovecot",
  "[dovecot]", "enabled = true", `action = dummy[target="${dummyTarget}"]`,
  // No shell per ban, so thousands of bans take a moment.
  "[bulk]", "enabled = true", "action = noop", "",
].join("\n");

/**
 * A real fail2ban-server in a throwaway network namespace, with its own config dir (two jails whose actions only write
 * to a temp file or do nothing: the host firewall is never touched), socket, pid file, log and database.
 */
export class Fail2banServer {
  readonly dir = mkdtempSync(join(tmpdir(), "pc-f2b-"));
  readonly socket = join(this.dir, "f2b.sock");
  readonly mailLog = join(this.dir, "mail.log");
  readonly dummyTarget = join(this.dir, "dummy.txt");
  /** fail2ban's own database (its `dbfile`). */
  readonly databaseFile = join(this.dir, "fail2ban.sqlite3");
  readonly netns: Netns;
  readonly #ownNetns: boolean;
  readonly #expectedJails: string;
  #child: ChildProcess | undefined;
  #output = "";

  /**
   * `netns`: run inside this namespace (e.g. a victim whose firewall the jails' actions change); by default a fresh one.
   * `expectedJails`: the "Jail list" the server reports when ready, e.g. "bulk, dovecot".
   */
  constructor(options: { netns?: Netns; jails?: JailConfig; expectedJails?: string } = {}) {
    const conf = join(this.dir, "conf");
    mkdirSync(join(conf, "filter.d"), { recursive: true });
    mkdirSync(join(conf, "action.d"));
    copyFileSync("/etc/fail2ban/fail2ban.conf", join(conf, "fail2ban.conf"));
    for (const filter of ["common.conf", "dovecot.conf"]) copyFileSync(`/etc/fail2ban/filter.d/${filter}`, join(conf, "filter.d", filter));
    // Actions run inside the server's namespace (it is started there), so iptables actions change only that one.
    for (const action of readdirSync("/etc/fail2ban/action.d").filter((name) => name === "dummy.conf" || name.startsWith("iptables"))) {
      copyFileSync(`/etc/fail2ban/action.d/${action}`, join(conf, "action.d", action));
    }
    writeFileSync(join(conf, "action.d", "noop.conf"), "[Definition]\nactionban =\nactionunban =\n");
    // The Portcullis action, as an installation copies it (`action = portcullis.py[socket=…]`).
    copyFileSync(new URL("../../server/fail2ban/action.d/portcullis.py", import.meta.url), join(conf, "action.d", "portcullis.py"));
    writeFileSync(join(conf, "fail2ban.local"), `[Definition]\nallowipv6 = auto\nlogtarget = ${join(this.dir, "fail2ban.log")}\ndbfile = ${this.databaseFile}\n`);
    writeFileSync(this.mailLog, "");
    writeFileSync(join(conf, "jail.local"), (options.jails ?? HARMLESS_JAILS)({ dir: this.dir, mailLog: this.mailLog, dummyTarget: this.dummyTarget }));
    this.#expectedJails = options.expectedJails ?? "bulk, dovecot";
    this.#ownNetns = options.netns === undefined;
    try {
      this.netns = options.netns ?? new Netns("pc-f2b");
    } catch (error) {
      rmSync(this.dir, { recursive: true, force: true });
      throw error;
    }
  }

  async start(): Promise<void> {
    this.#output = "";
    const child = spawn("ip", ["netns", "exec", this.netns.name, "fail2ban-server", "-f", "-x", "-c", join(this.dir, "conf"), "-s", this.socket, "-p", join(this.dir, "f2b.pid")], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#child = child;
    child.stdout!.on("data", (chunk: Buffer) => (this.#output += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (this.#output += chunk.toString()));
    // Ready when both jails answer; a separate client, so the one under test sees only the test's commands.
    const probe = new Fail2banClient(this.socket, log);
    try {
      for (const deadline = Date.now() + 30_000; ; await sleep(100)) {
        if (child.exitCode !== null) throw new Error(`fail2ban-server exited (${child.exitCode}): ${this.#output}`);
        if (Date.now() > deadline) throw new Error(`fail2ban-server did not start: ${this.#output}`);
        const status = await probe.send(["status"], 2000).catch(() => undefined);
        if (JSON.stringify(status)?.includes(this.#expectedJails)) return;
      }
    } finally {
      probe.close();
    }
  }

  /** Stops the server by its PID (SIGTERM: a clean shutdown that removes the socket; SIGKILL leaves it behind). */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  }

  /** fail2ban's configuration directory for this server (`-c`). */
  get configDir(): string {
    return join(this.dir, "conf");
  }

  /** Asks the running server directly (not through Portcullis), e.g. `get dovecot bantime`. */
  async ask(command: string[]): Promise<unknown> {
    const probe = new Fail2banClient(this.socket, log);
    try {
      return await probe.send(command, 5000);
    } finally {
      probe.close();
    }
  }

  async destroy(): Promise<void> {
    await this.stop().catch(() => undefined);
    if (this.#ownNetns) this.netns.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}


/** `count` failed IMAP logins from `attacker`, as dovecot logs them (the dovecot filter's lines). */
export function dovecotFailures(attacker: string, victim: string, count: number): string {
  const line = `${syslogTime(new Date())} mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=${attacker}, lip=${victim}, session=<x>\n`;
  return line.repeat(count);
}

/** "Nov 25 17:27:00", as syslog writes it (a space-padded day). */
function syslogTime(date: Date): string {
  const month = date.toLocaleString("en-US", { month: "short" });
  const time = date.toTimeString().slice(0, 8);
  return `${month} ${String(date.getDate()).padStart(2, " ")} ${time}`;
}
