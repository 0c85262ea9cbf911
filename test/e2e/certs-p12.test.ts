import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { rest } from "../harness/rest.js";

const ROOT = resolve(import.meta.dirname, "../..");
const BIN = join(ROOT, "server/bin/portcullis");
const readme = readFileSync(join(ROOT, "README.md"), "utf8");
const execFileAsync = promisify(execFile);

/**
 * A shell command on a pseudo-terminal (util-linux `script`), as a person types it: each answer, then Enter, once its
 * prompt has been printed.
 */
async function onTerminal(command: string, cwd: string, env: Record<string, string>, answers: ReadonlyArray<readonly [string, string]>): Promise<{ code: number; output: string }> {
  const child = spawn("script", ["-qefc", command, "/dev/null"], { cwd, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number>((resolvePromise) => child.once("exit", (code) => resolvePromise(code ?? -1)));
  let seen = 0;
  for (const [prompt, answer] of answers) {
    for (let waited = 0; output.indexOf(prompt, seen) === -1 && waited < 20_000; waited += 20) await sleep(20);
    seen = output.indexOf(prompt, seen) + prompt.length;
    child.stdin.write(`${answer}\r`);
  }
  const code = await exited;
  child.stdin.end();
  return { code, output };
}

/**
 * `certs issue --p12` writes the client certificate as a password-protected PKCS#12 bundle, the form browsers import:
 * NSS (the certificate store of Firefox and Chrome on Linux) and OpenSSL both take it, and the certificate that comes
 * back out of NSS connects to a real server with its role.
 */
describe("certs issue --p12: a browser's client certificate bundle", () => {
  let f: ServerFixture;
  const scratch = mkdtempSync(join(tmpdir(), "pc-p12-"));
  const passwordFile = join(scratch, "password");
  const PASSWORD = "correct horse battery";
  let p12 = "";
  const issue = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    execFileAsync(process.execPath, [BIN, "certs", "issue", ...args, "--data-dir", f.server.dataDir], { encoding: "utf8" }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );
  /** A fresh NSS database, as a browser profile holds (no password of its own). */
  const nssDatabase = (name: string): string => {
    const dir = join(scratch, name);
    mkdirSync(dir);
    execFileSync("certutil", ["-N", "-d", `sql:${dir}`, "--empty-password"]);
    return dir;
  };

  before(async () => {
    f = await startServerFixture();
    writeFileSync(passwordFile, `${PASSWORD}\nthe second line is not part of it\n`);
    assert.equal((await rest(f.server, "POST", "/v1/ipsets", { ipsetId: "p12_bans", ipset: { type: "IPSET_TYPE_HASH_IP", family: "ADDRESS_FAMILY_INET" } })).status, 200);
  });
  after(async () => {
    await f?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("the README's commands work as written: certs issue --p12 asks for a password, certutil and pk12util import", async () => {
    const section = readme.slice(readme.indexOf("### In a browser: the console"));
    const command = /^(node server\/bin\/portcullis certs issue --name alice --role operator --p12)\s+#/m.exec(section)?.[1];
    const block = /```sh\n(mkdir -p ~\/\.pki\/nssdb[\s\S]*?pk12util -i [\s\S]*?)```/.exec(section)?.[1];
    assert.ok(command !== undefined && block !== undefined, "the README shows how to make and import a browser certificate");
    // From a directory whose server/ is the repository's and var/ the test server's data dir, as in the demo.
    const cwd = join(scratch, "readme");
    mkdirSync(cwd);
    symlinkSync(join(ROOT, "server"), join(cwd, "server"));
    symlinkSync(f.server.dataDir, join(cwd, "var"));
    const issued = await onTerminal(command, cwd, {}, [["password: ", PASSWORD], ["(again): ", PASSWORD]]);
    assert.equal(issued.code, 0, issued.output);
    assert.doesNotMatch(issued.output, new RegExp(PASSWORD), `nothing typed is echoed: ${JSON.stringify(issued.output)}`);
    p12 = join(f.server.dataDir, "pki/clients/alice/alice.p12");
    assert.match(issued.output, /client bundle for alice \(operator\): .*alice\.p12 for browsers/);
    // Chrome's NSS database in a home of the test's own.
    const home = join(scratch, "home");
    mkdirSync(home);
    const imported = await onTerminal(`bash -e -c '${block.replaceAll("'", "'\\''")}'`, cwd, { HOME: home }, [["Enter password for PKCS12 file: ", PASSWORD]]);
    assert.equal(imported.code, 0, imported.output);
    assert.match(imported.output, /PKCS12 IMPORT SUCCESSFUL/);
    const listed = execFileSync("certutil", ["-L", "-d", `sql:${join(home, ".pki/nssdb")}`], { encoding: "utf8" });
    assert.match(listed, /^Portcullis CA\s+C,,\s*$/m, "the CA, trusted to identify servers");
    assert.match(listed, /^alice \(operator, Portcullis CA [^)]+\)\s+u,u,u$/m, "the certificate, with its key");
  });

  it("writes <name>.p12 beside the PEM files, readable by its owner only, encrypted with AES-256 and a SHA-256 MAC", async () => {
    assert.equal(statSync(p12).mode & 0o777, 0o600);
    // --password-file, for scripts; --json names the file.
    const issued = await issue(["--name", "erin", "--role", "viewer", "--p12", "--password-file", passwordFile, "--json"]);
    assert.equal(issued.code, 0, issued.stderr);
    const erin = (JSON.parse(issued.stdout) as { p12: string }).p12;
    assert.equal(erin, join(f.server.dataDir, "pki/clients/erin/erin.p12"));
    assert.equal(statSync(erin).mode & 0o777, 0o600);
    execFileSync("openssl", ["pkcs12", "-in", erin, "-passin", `file:${passwordFile}`, "-noout"], { stdio: "pipe" });
    // openssl prints what -info found on stderr.
    const found = spawnSync("openssl", ["pkcs12", "-in", p12, "-passin", `file:${passwordFile}`, "-noout", "-info"], { encoding: "utf8" });
    assert.equal(found.status, 0, found.stderr);
    assert.match(found.stderr, /^MAC: sha256, Iteration \d+$/m);
    assert.match(found.stderr, /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration \d+, PRF hmacWithSHA256/);
    assert.equal(found.stderr.match(/^Certificate bag$/gm)?.length, 2, "the certificate and the CA");
    const wrong = join(scratch, "wrong");
    writeFileSync(wrong, "not the password\n");
    assert.throws(() => execFileSync("openssl", ["pkcs12", "-in", p12, "-passin", `file:${wrong}`, "-noout"], { stdio: "pipe" }), "a wrong password does not open it");
  });

  it("imports into an NSS database with pk12util: the certificate with its key, named for its role and CA", () => {
    const nss = nssDatabase("nss-import");
    execFileSync("pk12util", ["-i", p12, "-d", `sql:${nss}`, "-w", passwordFile], { stdio: "pipe" });
    const certificates = execFileSync("certutil", ["-L", "-d", `sql:${nss}`], { encoding: "utf8" });
    assert.match(certificates, /^alice \(operator, Portcullis CA [^)]+\)\s+u,u,u$/m, certificates);
    assert.match(certificates, /^Portcullis CA \S+\s+,,\s*$/m, "the CA comes along (trusting it is a separate step)");
    const keys = execFileSync("certutil", ["-K", "-d", `sql:${nss}`], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    assert.match(keys, /^<\s*0> ec\s+[0-9a-f]+\s+alice \(operator, Portcullis CA [^)]+\)$/m, keys);
    const refused = nssDatabase("nss-wrong");
    const wrong = join(scratch, "wrong-nss");
    writeFileSync(wrong, "not the password\n");
    assert.throws(() => execFileSync("pk12util", ["-i", p12, "-d", `sql:${refused}`, "-w", wrong], { stdio: "pipe" }), /Incorrect password/);
    assert.doesNotMatch(execFileSync("certutil", ["-L", "-d", `sql:${refused}`], { encoding: "utf8" }), /alice/);
  });

  it("the certificate and key taken back out of NSS connect to the server over mTLS, as an operator", async () => {
    const nss = join(scratch, "nss-import");
    const nickname = /^(alice \(operator, Portcullis CA [^)]+\))/m.exec(execFileSync("certutil", ["-L", "-d", `sql:${nss}`], { encoding: "utf8" }))![1]!;
    const exported = join(scratch, "exported.p12");
    execFileSync("pk12util", ["-o", exported, "-n", nickname, "-d", `sql:${nss}`, "-w", passwordFile], { stdio: "pipe" });
    const pem = execFileSync("openssl", ["pkcs12", "-in", exported, "-passin", `file:${passwordFile}`, "-nodes"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/.exec(pem)![0];
    const cert = /subject=O ?= ?operator, CN ?= ?alice\n(?:issuer=.*\n)?(-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n)/.exec(pem)![1]!;
    const as = { cert: Buffer.from(cert), key: Buffer.from(key) };
    const added = await rest(f.server, "POST", "/v1/ipsets/p12_bans/entries", { entry: { element: "192.0.2.80" } }, { as });
    assert.equal(added.status, 200, added.text);
    assert.match(f.netns.exec("ipset", ["save", "p12_bans"]), /^add p12_bans 192\.0\.2\.80$/m);
    const adminOnly = await rest(f.server, "POST", "/v1/ipsets", { ipsetId: "p12_other", ipset: { type: "IPSET_TYPE_HASH_IP", family: "ADDRESS_FAMILY_INET" } }, { as });
    assert.deepEqual([adminOnly.status, adminOnly.json.reason], [403, "ROLE_REQUIRED"]);
    assert.match(adminOnly.json.detail, /certificate "alice" has role operator/);
  });

  it("on the terminal: two entries that differ write nothing; typed ahead, the second entry still answers the second question", async () => {
    const differ = await issueOnTerminal("carol", ["one-password\r", "another-one\r"]);
    assert.equal(differ.code, 2, differ.output);
    assert.match(differ.output, /the two carol\.p12 passwords differ; nothing was written/);
    assert.equal(existsSync(join(f.server.dataDir, "pki/clients/carol")), false);
    // Both lines pasted at once, after the first prompt.
    const pasted = await issueOnTerminal("bob", ["s3cret-bob\rs3cret-bob\r"]);
    assert.equal(pasted.code, 0, pasted.output);
    assert.doesNotMatch(pasted.output, /s3cret-bob/, "nothing typed is echoed");
    const bobPassword = join(scratch, "bob-password");
    writeFileSync(bobPassword, "s3cret-bob\n");
    execFileSync("openssl", ["pkcs12", "-in", join(f.server.dataDir, "pki/clients/bob/bob.p12"), "-passin", `file:${bobPassword}`, "-noout"], { stdio: "pipe" });
  });

  it("a missing or empty password file, or --password-file alone, is a usage error naming the cause; nothing is written", async () => {
    const empty = join(scratch, "empty");
    writeFileSync(empty, "\nsecond line\n");
    const cases: Array<[string[], RegExp]> = [
      [["--p12", "--password-file", empty], /the password file .*empty has no password: write it on the file's first line/],
      [["--p12", "--password-file", join(scratch, "missing")], /cannot read the password file .*missing \(ENOENT\)/],
      [["--password-file", passwordFile], /--password-file goes with --p12/],
    ];
    for (const [args, message] of cases) {
      const refused = await issue(["--name", "dave", "--role", "viewer", ...args]);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, message);
    }
    // Without a terminal, nothing to ask on.
    const noTerminal = await issue(["--name", "dave", "--role", "viewer", "--p12"]);
    assert.equal(noTerminal.code, 2);
    assert.match(noTerminal.stderr, /no terminal to ask for the dave\.p12 password: give it with --password-file FILE/);
    assert.equal(existsSync(join(f.server.dataDir, "pki/clients/dave")), false);
  });

  /** `certs issue --name NAME --p12` on a pseudo-terminal, typing each answer after a prompt. */
  function issueOnTerminal(name: string, answers: readonly string[]): Promise<{ code: number; output: string }> {
    const command = [process.execPath, BIN, "certs", "issue", "--name", name, "--role", "viewer", "--p12", "--data-dir", f.server.dataDir].map((word) => `'${word}'`).join(" ");
    return onTerminal(command, scratch, {}, answers.map((answer, index) => [index === 0 ? "password: " : "(again): ", answer.replace(/\r$/, "")]));
  }
});
