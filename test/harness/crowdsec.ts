// A CrowdSec Local API of the test's own (Debian's `crowdsec` package): `crowdsec -no-cs -no-capi` with its own
// config directory and SQLite database in a temp dir, on a loopback port of the test's choosing, driven with `cscli`.
// Never the system's /etc/crowdsec state; stopped by its PID.
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { get as httpsGet } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sh } from "./netns.js";

/** A port free on loopback now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** PEM texts of the TLS material of a Local API started with `tls`. */
export interface CrowdsecTls {
  readonly ca: string;
  /** A bouncer's client certificate (OU bouncer-ou, which the Local API accepts as a bouncer) and key. */
  readonly clientCertificate: string;
  readonly clientKey: string;
}

export class CrowdsecLapi {
  readonly dir: string;
  readonly port: number;
  readonly tls: CrowdsecTls | undefined;
  #child: ChildProcess | undefined;

  private constructor(dir: string, port: number, tls: CrowdsecTls | undefined) {
    this.dir = dir;
    this.port = port;
    this.tls = tls;
  }

  get url(): string {
    return `${this.tls === undefined ? "http" : "https"}://127.0.0.1:${this.port}`;
  }

  /**
   * Writes a config of its own, starts the LAPI, and registers a machine for cscli's decisions commands. With `tls`,
   * it serves HTTPS with a CA made here and accepts bouncers by client certificate (cscli, the test's own tool, skips
   * verifying that CA).
   */
  static async start(options: { tls?: boolean } = {}): Promise<CrowdsecLapi> {
    const dir = mkdtempSync(join(tmpdir(), "pc-crowdsec-"));
    const tls = options.tls === true ? makeTls(dir) : undefined;
    const lapi = new CrowdsecLapi(dir, await freePort(), tls);
    for (const sub of ["data", "hub", "notifications"]) mkdirSync(join(dir, sub));
    writeFileSync(join(dir, "config.yaml"), [
      "common:", "  daemonize: false", "  log_media: stdout", "  log_level: warning", `  working_dir: ${dir}`,
      "config_paths:", `  config_dir: ${dir}/`, `  data_dir: ${dir}/data/`, `  simulation_path: ${dir}/simulation.yaml`,
      `  hub_dir: ${dir}/hub/`, `  index_path: ${dir}/hub/.index.json`, `  notification_dir: ${dir}/notifications/`, "  plugin_dir: /usr/lib/crowdsec/plugins/",
      "cscli:", "  output: human", '  color: "no"',
      "db_config:", "  log_level: warning", "  type: sqlite", `  db_path: ${dir}/data/crowdsec.db`, "  use_wal: true",
      "api:", "  client:", `    insecure_skip_verify: ${tls !== undefined}`, `    credentials_path: ${dir}/local_api_credentials.yaml`,
      "  server:", "    log_level: warning", `    listen_uri: 127.0.0.1:${lapi.port}`, `    profiles_path: ${dir}/profiles.yaml`, "    trusted_ips:", "      - 127.0.0.1",
      ...(tls === undefined ? [] : [
        "    tls:", `      cert_file: ${dir}/server.crt`, `      key_file: ${dir}/server.key`, `      ca_cert_path: ${dir}/ca.crt`,
        "      client_verification: VerifyClientCertIfGiven", "      bouncers_allowed_ou:", "        - bouncer-ou", "      agents_allowed_ou:", "        - agent-ou",
      ]),
      "prometheus:", "  enabled: false", "",
    ].join("\n"));
    copyFileSync("/etc/crowdsec/profiles.yaml", join(dir, "profiles.yaml"));
    writeFileSync(join(dir, "simulation.yaml"), "simulation: off\n");
    writeFileSync(join(dir, "local_api_credentials.yaml"), `url: ${lapi.url}\nlogin: x\npassword: x\n`);
    await lapi.resume();
    lapi.cscli("machines", "add", "portcullis-test", "-a", "-f", join(dir, "local_api_credentials.yaml"), "--force");
    // cscli writes the URL as plain http; it talks to the Local API as it listens.
    const credentials = join(dir, "local_api_credentials.yaml");
    writeFileSync(credentials, readFileSync(credentials, "utf8").replace(/^url: .*$/m, `url: ${lapi.url}`));
    return lapi;
  }

  /** Starts the LAPI process (again, after `pause`) and waits until it answers. */
  async resume(): Promise<void> {
    const child = spawn("crowdsec", ["-c", join(this.dir, "config.yaml"), "-no-cs", "-no-capi"], { stdio: "ignore" });
    this.#child = child;
    for (const deadline = Date.now() + 20_000; ;) {
      if (child.exitCode !== null) throw new Error(`crowdsec exited with ${child.exitCode}`);
      const up = await this.#healthy();
      if (up) return;
      if (Date.now() > deadline) throw new Error("crowdsec's LAPI did not come up within 20 s");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  #healthy(): Promise<boolean> {
    if (this.tls === undefined) return fetch(`${this.url}/health`).then((response) => response.ok, () => false);
    return new Promise((resolve) => {
      const req = httpsGet(`${this.url}/health`, { ca: this.tls!.ca }, (response) => {
        response.resume();
        resolve(response.statusCode === 200);
      });
      req.on("error", () => resolve(false));
    });
  }

  /** Stops the LAPI process (by its PID); its database stays for `resume`. */
  async pause(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }

  /**
   * Runs cscli against this Local API. Its SQLite answers "database is locked" now and then when a write meets the
   * Local API's own (seen with a bouncer polling): such a command is run again, a few times, 200 ms apart.
   */
  cscli(...args: string[]): string {
    for (let attempt = 1; ; attempt++) {
      try {
        return sh("cscli", ["-c", join(this.dir, "config.yaml"), ...args]);
      } catch (error) {
        if (attempt >= 5 || !String((error as { stderr?: unknown }).stderr ?? "").includes("database is locked")) throw error;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
      }
    }
  }

  /** A new bouncer's API key. */
  bouncerKey(name: string): string {
    return this.cscli("bouncers", "add", name, "-o", "raw").trim();
  }

  /** `cscli decisions add`: an Ip (`--ip`) or a Range (`--range`), of `type` (ban unless given). */
  addDecision(value: string, duration: string, type = "ban"): void {
    this.cscli("decisions", "add", value.includes("/") ? "--range" : "--ip", value, "--duration", duration, "--type", type);
  }

  deleteDecision(value: string): void {
    this.cscli("decisions", "delete", value.includes("/") ? "--range" : "--ip", value);
  }

  async close(): Promise<void> {
    await this.pause();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A CA, the Local API's server certificate (127.0.0.1) and a bouncer's client certificate, made with openssl. */
function makeTls(dir: string): CrowdsecTls {
  const at = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): string => sh("openssl", args);
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", at("ca.key"), "-out", at("ca.crt"), "-days", "2", "-subj", "/CN=pc-crowdsec-test-ca");
  writeFileSync(at("san.ext"), "subjectAltName=IP:127.0.0.1\n");
  for (const [name, subject, extensions] of [["server", "/CN=127.0.0.1", [ "-extfile", at("san.ext")]], ["client", "/OU=bouncer-ou/CN=portcullis-tls", []]] as const) {
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", at(`${name}.key`), "-out", at(`${name}.csr`), "-subj", subject);
    openssl("x509", "-req", "-in", at(`${name}.csr`), "-CA", at("ca.crt"), "-CAkey", at("ca.key"), "-CAcreateserial", "-out", at(`${name}.crt`), "-days", "2", ...extensions);
  }
  return { ca: readFileSync(at("ca.crt"), "utf8"), clientCertificate: readFileSync(at("client.crt"), "utf8"), clientKey: readFileSync(at("client.key"), "utf8") };
}
