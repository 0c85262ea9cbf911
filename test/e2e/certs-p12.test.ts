import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";
import { rest } from "../harness/rest.js";

const BIN = resolve(import.meta.dirname, "../../server/bin/portcullis");
const execFileAsync = promisify(execFile);

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

  it("writes <name>.p12 beside the PEM files, readable by its owner only, encrypted with AES-256 and a SHA-256 MAC", async () => {
    const issued = await issue(["--name", "alice", "--role", "operator", "--p12", "--password-file", passwordFile, "--json"]);
    assert.equal(issued.code, 0, issued.stderr);
    const paths = JSON.parse(issued.stdout) as { bundle: string; p12: string };
    p12 = paths.p12;
    assert.equal(p12, join(f.server.dataDir, "pki/clients/alice/alice.p12"));
    assert.equal(statSync(p12).mode & 0o777, 0o600);
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

  it("asks for the password on the terminal, twice and without echo, when no file is given", async () => {
    const typed = await issueOnTerminal("bob", ["s3cret-bob", "s3cret-bob"]);
    assert.equal(typed.code, 0, typed.output);
    assert.match(typed.output, /bob\.p12 password: \r?\n.*bob\.p12 password \(again\): /s);
    assert.doesNotMatch(typed.output, /s3cret-bob/, "nothing typed is echoed");
    const bobPassword = join(scratch, "bob-password");
    writeFileSync(bobPassword, "s3cret-bob\n");
    execFileSync("openssl", ["pkcs12", "-in", join(f.server.dataDir, "pki/clients/bob/bob.p12"), "-passin", `file:${bobPassword}`, "-noout"], { stdio: "pipe" });

    const differ = await issueOnTerminal("carol", ["one-password", "another-one"]);
    assert.equal(differ.code, 2, differ.output);
    assert.match(differ.output, /the two carol\.p12 passwords differ; nothing was written/);
    assert.equal(existsSync(join(f.server.dataDir, "pki/clients/carol")), false);
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

  /** `certs issue --p12` on a pseudo-terminal (util-linux `script`), typing each answer after its prompt. */
  async function issueOnTerminal(name: string, answers: readonly string[]): Promise<{ code: number; output: string }> {
    const command = [process.execPath, BIN, "certs", "issue", "--name", name, "--role", "viewer", "--p12", "--data-dir", f.server.dataDir].map((word) => `'${word}'`).join(" ");
    const child = spawn("script", ["-qefc", command, "/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number>((resolvePromise) => child.once("exit", (code) => resolvePromise(code ?? -1)));
    for (const [index, answer] of answers.entries()) {
      const prompt = index === 0 ? "password: " : "(again): ";
      for (let waited = 0; !output.endsWith(prompt) && waited < 10_000; waited += 20) await sleep(20);
      child.stdin.write(`${answer}\r`);
    }
    const code = await exited;
    child.stdin.end();
    return { code, output };
  }
});
