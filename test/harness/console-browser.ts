import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import type { PortcullisProcess } from "./server.js";

/** Debian's chromium (never a downloaded browser). */
const CHROMIUM = "/usr/bin/chromium";
/** Chromium on Linux reads managed policies from here, at start. */
const POLICY_DIR = "/etc/chromium/policies/managed";

/**
 * Which certificate Chromium presents, by the host name the console is opened with: the admin's at 127.0.0.1, the
 * viewer's at localhost (both name the server's loopback address; its certificate has both). Certificates are told
 * apart by their Subject O, the role. The same for every test, so that policy files of tests running at the same time
 * (Chromium takes one file's value of a policy) never disagree.
 */
const POLICY = {
  AutoSelectCertificateForUrls: [
    JSON.stringify({ pattern: "https://127.0.0.1:*", filter: { SUBJECT: { O: "admin" } } }),
    JSON.stringify({ pattern: "https://localhost:*", filter: { SUBJECT: { O: "viewer" } } }),
  ],
};

export type ConsoleIdentity = "admin" | "viewer";

/** Run in every page before its own scripts. A string: tsx would wrap inner functions in a helper pages do not have. */
const TRAPS = `(() => {
  const calls = [];
  Object.defineProperty(window, "__xss", { value: calls, writable: false });
  for (const name of ["alert", "confirm", "prompt"]) {
    Object.defineProperty(window, name, { value: (...args) => void calls.push([name, ...args]), writable: false });
  }
  const blocked = [];
  Object.defineProperty(window, "__csp", { value: blocked, writable: false });
  document.addEventListener("securitypolicyviolation", (event) => void blocked.push(event.violatedDirective + " " + event.blockedURI));
})();`;

/**
 * A headless Chromium for console tests: a temporary HOME whose NSS database trusts the server's CA and holds an
 * admin's client certificate (and a viewer's, when named), each issued as a browser would get it (`portcullis certs
 * issue --p12`), chosen without a prompt by the managed policy above. The policy file is ours alone (unique name) and
 * removed by close(), as is HOME.
 */
export class ConsoleBrowser {
  readonly browser: Browser;
  readonly #server: PortcullisProcess;
  readonly #home: string;
  readonly #policyFile: string;

  private constructor(browser: Browser, server: PortcullisProcess, home: string, policyFile: string) {
    this.browser = browser;
    this.#server = server;
    this.#home = home;
    this.#policyFile = policyFile;
  }

  /**
   * `admin`: the principal of the browser's admin certificate (default `alice`); `viewer`: the principal of a viewer
   * certificate, for pages opened as "viewer". Both are issued here.
   */
  static async launch(server: PortcullisProcess, options: { admin?: string; viewer?: string } = {}): Promise<ConsoleBrowser> {
    const home = mkdtempSync(join(tmpdir(), "pc-chromium-"));
    const policyFile = join(POLICY_DIR, `portcullis-test-${process.pid}-${randomBytes(4).toString("hex")}.json`);
    try {
      const nss = join(home, ".pki", "nssdb");
      mkdirSync(nss, { recursive: true });
      const db = `sql:${nss}`;
      execFileSync("certutil", ["-N", "-d", db, "--empty-password"], { stdio: "pipe" });
      const caFile = join(home, "ca.crt");
      writeFileSync(caFile, server.bundle("admin").ca);
      execFileSync("certutil", ["-A", "-d", db, "-n", "portcullis-test-ca", "-t", "C,,", "-i", caFile], { stdio: "pipe" });
      await importClientCertificate(server, db, home, options.admin ?? "alice", "admin");
      if (options.viewer !== undefined) await importClientCertificate(server, db, home, options.viewer, "viewer");
      mkdirSync(POLICY_DIR, { recursive: true });
      writeFileSync(policyFile, JSON.stringify(POLICY));
      const browser = await chromium.launch({ executablePath: CHROMIUM, env: { ...process.env, HOME: home }, args: ["--no-first-run", "--disable-gpu"] });
      return new ConsoleBrowser(browser, server, home, policyFile);
    } catch (error) {
      rmSync(policyFile, { force: true });
      rmSync(home, { recursive: true, force: true });
      throw error;
    }
  }

  /** The console's address at `path` (under /console/), for the identity. */
  url(path = "", as: ConsoleIdentity = "admin"): string {
    const port = this.#server.restAddress.slice(this.#server.restAddress.lastIndexOf(":") + 1);
    return `https://${as === "admin" ? "127.0.0.1" : "localhost"}:${port}/console/${path}`;
  }

  /**
   * A fresh context and page (own cookies and storage) with a trap for injected script: `window.alert`, `confirm` and
   * `prompt` record their calls in `window.__xss` instead of showing anything; whatever the Content-Security-Policy
   * blocks is recorded in `window.__csp` (directive and what was blocked).
   */
  async newPage(): Promise<Page> {
    const context: BrowserContext = await this.browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
    await context.addInitScript(TRAPS);
    return await context.newPage();
  }

  async close(): Promise<void> {
    try {
      await this.browser.close();
    } finally {
      rmSync(this.#policyFile, { force: true });
      rmSync(this.#home, { recursive: true, force: true });
    }
  }
}

/** A client certificate for a browser (`certs issue --p12`), imported into the NSS database as a user would. */
async function importClientCertificate(server: PortcullisProcess, db: string, home: string, name: string, role: "admin" | "viewer"): Promise<void> {
  const passwordFile = join(home, `${name}.password`);
  writeFileSync(passwordFile, `${randomBytes(12).toString("hex")}\n`, { mode: 0o600 });
  await server.cli(["certs", "issue", "--name", name, "--role", role, "--p12", "--password-file", passwordFile]);
  execFileSync("pk12util", ["-i", join(server.dataDir, "pki", "clients", name, `${name}.p12`), "-d", db, "-w", passwordFile], { stdio: "pipe" });
}
