// `portcullis doctor`: what a server on this host needs, checked one by one, with what to do about each problem.
import { X509Certificate } from "node:crypto";
import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { Executor } from "../drivers/exec.js";
import { Fail2banClient } from "../drivers/fail2ban-client.js";
import Database from "better-sqlite3";
import { EventStore } from "../store/event-store.js";

export type CheckStatus = "ok" | "warn" | "fail";

export interface Check {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
}

const DAY_MS = 86_400_000;
/** How far back the doctor reports state the kernel refused. */
const REFUSED_STATE_DAYS = 7;
/** Certificates closer than this to expiry are reported. */
const EXPIRY_WARNING_DAYS = 30;

/** Runs every check; none throws (a check that cannot run is a failed check). */
export async function runDoctor(config: Config, log: Logger): Promise<Check[]> {
  const exec = new Executor(log, config.netns);
  const checks: Check[] = [];
  const add = (name: string, status: CheckStatus, detail: string): void => void checks.push({ name, status, detail });

  if (config.netns !== undefined) {
    const namespaces = await new Executor(log).run("ip", ["netns", "list"]).catch(() => undefined);
    const found = namespaces?.stdout.split("\n").some((line) => line.split(" ")[0] === config.netns) ?? false;
    add("network namespace", found ? "ok" : "fail", found ? `${config.netns} (every kernel command runs in it)` : `${config.netns} does not exist; create it (ip netns add ${config.netns}) or drop netns`);
  }

  // The tools, with their versions.
  const version = async (name: string, file: string, args: string[], required: boolean): Promise<void> => {
    try {
      const result = await exec.run(file, args, { timeoutMs: 10_000 });
      const line = `${result.stdout}${result.stderr}`.trim().split("\n")[0] ?? "";
      add(name, result.exitCode === 0 ? "ok" : required ? "fail" : "warn", result.exitCode === 0 ? line : `${file} ${args.join(" ")} exited with ${result.exitCode}: ${line}`);
    } catch {
      add(name, required ? "fail" : "warn", `${file} is not installed (Debian: apt-get install ${name.startsWith("fail2ban") ? "fail2ban" : name.startsWith("ip6") ? "iptables" : name})`);
    }
  };
  await version("iptables", "iptables", ["--version"], true);
  await version("ip6tables", "ip6tables", ["--version"], true);
  await version("ipset", "ipset", ["version"], true);
  await version("fail2ban-client", "fail2ban-client", ["--version"], false);

  // The kernel answers (reads only).
  const reads = async (name: string, file: string, args: string[], what: string): Promise<void> => {
    const result = await exec.run(file, args, { timeoutMs: 10_000 }).catch((error: unknown) => ({ exitCode: -1, stdout: "", stderr: String(error) }));
    add(name, result.exitCode === 0 ? "ok" : "fail", result.exitCode === 0 ? what : `${file} ${args.join(" ")} failed: ${result.stderr.trim().split("\n")[0] ?? ""} (root and CAP_NET_ADMIN needed)`);
  };
  await reads("iptables kernel", "iptables-save", ["-t", "filter"], "the filter table can be read");
  await reads("ipset kernel", "ipset", ["list", "-n"], "IP sets can be listed");
  // Informational: the reads above prove the support; modules built into the kernel are not listed here.
  const modules = ["ip_set", "xt_set", "nf_tables", "x_tables", "ip_tables"].filter((module) => existsSync(`/sys/module/${module}`));
  add("kernel modules", "ok", `${modules.length > 0 ? `loaded: ${modules.join(", ")}` : "none loaded as modules"} (built-in ones are not listed; the tools load the others on first use)`);

  // fail2ban-server on its socket.
  const fail2ban = new Fail2banClient(config.fail2ban.socket, log);
  try {
    const answer = await fail2ban.send(["version"], 5000);
    add("fail2ban socket", "ok", `fail2ban ${String(answer)} answers on ${config.fail2ban.socket}`);
  } catch (error) {
    add("fail2ban socket", "fail", `${config.fail2ban.socket}: ${error instanceof Error ? error.message : String(error)} (start fail2ban, or set fail2ban.socket)`);
  } finally {
    fail2ban.close();
  }

  checkCertificates(config, add);
  checkDataDir(config, add);
  await checkClock(config, exec, add);
  return checks;
}

function checkCertificates(config: Config, add: (name: string, status: CheckStatus, detail: string) => void): void {
  const pki = join(config.dataDir, "pki");
  const files = { ca: config.tls.ca ?? join(pki, "ca.crt"), cert: config.tls.cert ?? join(pki, "server.crt") };
  if (!existsSync(files.ca) || !existsSync(files.cert)) {
    add("certificates", config.tls.ca === undefined ? "warn" : "fail", `${files.cert} not found${config.tls.ca === undefined ? "; `portcullis serve` or `portcullis certs init` creates the CA and certificates" : ""}`);
    return;
  }
  let ca: X509Certificate;
  let server: X509Certificate;
  try {
    ca = new X509Certificate(readFileSync(files.ca));
    server = new X509Certificate(readFileSync(files.cert));
  } catch (error) {
    add("certificates", "fail", `cannot read ${files.ca} or ${files.cert}: ${(error as Error).message}`);
    return;
  }
  const expiry = (name: string, certificate: X509Certificate, path: string): void => {
    const days = Math.floor((Date.parse(certificate.validTo) - Date.now()) / DAY_MS);
    const status: CheckStatus = days < 0 ? "fail" : days < EXPIRY_WARNING_DAYS ? "warn" : "ok";
    add(name, status, `${path}: ${days < 0 ? `expired on ${certificate.validTo}` : `valid until ${certificate.validTo} (${days} days)`}${status === "ok" ? "" : "; issue a new one and send the server SIGHUP"}`);
  };
  expiry("CA certificate", ca, files.ca);
  expiry("server certificate", server, files.cert);
  if (!server.verify(ca.publicKey)) add("server certificate", "fail", `${files.cert} was not issued by ${files.ca}: clients that trust the CA will refuse the server`);
  const clients = join(pki, "clients");
  if (existsSync(clients)) {
    const expired = readdirSync(clients).filter((name) => {
      const file = join(clients, name, "client.crt");
      return existsSync(file) && Date.parse(new X509Certificate(readFileSync(file)).validTo) < Date.now();
    });
    if (expired.length > 0) add("client certificates", "warn", `expired: ${expired.join(", ")} (portcullis certs issue --force)`);
  }
}

function checkDataDir(config: Config, add: (name: string, status: CheckStatus, detail: string) => void): void {
  const dir = config.dataDir;
  if (!existsSync(dir)) {
    add("data dir", "warn", `${dir} does not exist yet (created on first start)`);
    return;
  }
  const info = statSync(dir);
  const uid = process.getuid?.() ?? info.uid;
  if (info.uid !== uid) add("data dir", "fail", `${dir} belongs to uid ${info.uid}, not to this user (uid ${uid})`);
  else if ((info.mode & 0o002) !== 0) add("data dir", "fail", `${dir} is writable by everyone (mode ${(info.mode & 0o777).toString(8)}); chmod 700 ${dir}`);
  else if ((info.mode & 0o077) !== 0) add("data dir", "warn", `${dir} is open to group or others (mode ${(info.mode & 0o777).toString(8)}): it holds the CA key; chmod 700 ${dir}`);
  else add("data dir", "ok", `${dir} (mode ${(info.mode & 0o777).toString(8)})`);
  const caKey = join(dir, "pki", "ca.key");
  if (existsSync(caKey) && (statSync(caKey).mode & 0o077) !== 0) add("CA key", "fail", `${caKey} is readable by group or others; chmod 600 ${caKey}`);
  const db = join(dir, "portcullis.db");
  if (existsSync(db)) {
    try {
      accessSync(db, constants.R_OK | constants.W_OK);
      add("state database", "ok", db);
    } catch {
      add("state database", "fail", `${db} is not readable and writable by this user`);
      return;
    }
    checkRefusedState(db, add);
  }
}

/** Recorded state the kernel would not take, which the server reported (STATE_REFUSED events) and left out. */
function checkRefusedState(file: string, add: (name: string, status: CheckStatus, detail: string) => void): void {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const refused = new EventStore(db).recent("STATE_REFUSED", Date.now() - REFUSED_STATE_DAYS * DAY_MS, 1000);
    if (refused.length === 0) {
      add("refused state", "ok", `nothing recorded was refused by the kernel in the last ${REFUSED_STATE_DAYS} days`);
      return;
    }
    const shown = refused.slice(0, 10).map((event) => [event.resource, event.attributes["element"], event.attributes["reason"] ?? (event.attributes["rolled_back"] === "true" ? `${event.attributes["count"]} entries of an interrupted batch rolled back` : undefined)].filter((part) => part !== undefined).join(" "));
    add("refused state", "warn", `${refused.length}${refused.length === 1000 ? "+" : ""} record(s) left out in the last ${REFUSED_STATE_DAYS} days (STATE_REFUSED events, newest first): ${shown.join("; ")}${refused.length > shown.length ? "; and more" : ""}. Re-add what is still wanted through the API`);
  } catch (error) {
    // An older database without the events table, or one being migrated: not a problem for this check to report.
    add("refused state", "warn", `cannot read the event log in ${file}: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    db?.close();
  }
}

async function checkClock(config: Config, exec: Executor, add: (name: string, status: CheckStatus, detail: string) => void): Promise<void> {
  const caFile = config.tls.ca ?? join(config.dataDir, "pki", "ca.crt");
  if (existsSync(caFile)) {
    const notBefore = Date.parse(new X509Certificate(readFileSync(caFile)).validFrom);
    if (Date.now() < notBefore) {
      add("clock", "fail", `the clock (${new Date().toISOString()}) is before the CA's start (${new Date(notBefore).toISOString()}): certificates look not yet valid`);
      return;
    }
  }
  const synced = await exec.run("timedatectl", ["show", "-p", "NTPSynchronized", "--value"], { timeoutMs: 5000 }).catch(() => undefined);
  const answer = synced?.exitCode === 0 ? synced.stdout.trim() : undefined;
  if (answer === "yes") add("clock", "ok", `${new Date().toISOString()}, synchronised (NTP)`);
  else if (answer === "no") add("clock", "warn", `${new Date().toISOString()}, not synchronised: bans and certificates depend on the time; enable NTP (timedatectl set-ntp true)`);
  else add("clock", "warn", `${new Date().toISOString()}; cannot tell whether it is synchronised (no timedatectl)`);
}

/** The report for people: one line per check, then the count of problems. */
export function doctorReport(checks: readonly Check[]): string {
  const width = Math.max(...checks.map((check) => check.name.length));
  const mark: Record<CheckStatus, string> = { ok: "ok  ", warn: "warn", fail: "FAIL" };
  const failures = checks.filter((check) => check.status === "fail").length;
  const warnings = checks.filter((check) => check.status === "warn").length;
  return `${checks.map((check) => `${mark[check.status]}  ${check.name.padEnd(width)}  ${check.detail}`).join("\n")}\n\n${failures === 0 ? "no problems" : `${failures} problem${failures === 1 ? "" : "s"}`}${warnings === 0 ? "" : `, ${warnings} warning${warnings === 1 ? "" : "s"}`}\n`;
}
