import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { cp, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as tls from "node:tls";
import {
  PkiAlreadyInitializedError,
  ROLES,
  certificateSerial,
  clientBundlePaths,
  ensureCertificates,
  identityOf,
  initCertificates,
  issueClientCertificate,
  normalizeSerial,
  pkiPaths,
  readRevokedSerials,
  refreshCrlIfStale,
  revokeCertificate,
  type Role,
} from "../../server/src/auth/cert-authority.js";

const DAY_MS = 86_400_000;

/** Runs the openssl CLI with an argument array (never a shell string); failure is a result, not an exception. */
function openssl(args: string[]): { ok: boolean; output: string } {
  try {
    return { ok: true, output: execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }) };
  } catch (err) {
    const { stdout = "", stderr = "" } = err as { stdout?: string; stderr?: string };
    return { ok: false, output: `${stdout}${stderr}` };
  }
}

/** The CRL number as openssl reads it (it prints e.g. `crlNumber=0x03`). */
function crlNumber(crlPath: string): number {
  return Number.parseInt(openssl(["crl", "-in", crlPath, "-noout", "-crlnumber"]).output.trim().split("=")[1] ?? "", 16);
}

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

describe("cert-authority", () => {
  let root: string;
  let pki: string;
  let foreignPki: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "portcullis-pki-"));
    pki = join(root, "pki");
    foreignPki = join(root, "foreign");
    await initCertificates(pki, { hostnames: ["fw.example.test"], ips: ["192.0.2.10", "2001:db8::1"] });
    await initCertificates(foreignPki, {});
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("init creates the layout with private keys 0600 and directories 0700", async () => {
    const p = pkiPaths(pki);
    const admin = clientBundlePaths(pki, "admin");
    for (const key of [p.caKey, p.serverKey, admin.keyPath]) {
      assert.equal(await mode(key), 0o600, key);
      assert.match(await readFile(key, "utf8"), /^-----BEGIN PRIVATE KEY-----\n/);
    }
    for (const dir of [p.dir, p.clientsDir, admin.bundleDir]) assert.equal(await mode(dir), 0o700, dir);
    for (const cert of [p.caCert, p.serverCert, admin.certPath, admin.caPath]) {
      assert.match(await readFile(cert, "utf8"), /^-----BEGIN CERTIFICATE-----\n/);
    }
    assert.match(await readFile(p.crl, "utf8"), /^-----BEGIN X509 CRL-----\n/);
    assert.equal(readRevokedSerials(await readFile(p.crl, "utf8")).size, 0);
    assert.equal(await readFile(admin.caPath, "utf8"), await readFile(p.caCert, "utf8"));

    const ca = new X509Certificate(await readFile(p.caCert));
    assert.ok(ca.ca);
    assert.match(ca.subject, /^CN=Portcullis CA /);
    // Keys really are P-256 in PKCS#8: openssl reads them as EC keys on prime256v1.
    assert.match(openssl(["pkey", "-in", p.caKey, "-noout", "-text"]).output, /prime256v1|P-256/);
    assert.match(openssl(["x509", "-in", p.caCert, "-noout", "-text"]).output, /ecdsa-with-SHA256/);
  });

  it("init refuses to replace an existing CA; ensure is then a no-op", async () => {
    await assert.rejects(initCertificates(pki), PkiAlreadyInitializedError);
    const caBefore = await readFile(pkiPaths(pki).caCert, "utf8");
    const ensured = await ensureCertificates(pki);
    assert.equal(ensured.created, false);
    assert.equal(await readFile(pkiPaths(pki).caCert, "utf8"), caBefore);

    const fresh = await ensureCertificates(join(root, "ensured"), { adminName: "root@host" });
    assert.equal(fresh.created, true);
    assert.equal(identityOf(await readFile(clientBundlePaths(join(root, "ensured"), "root@host").certPath)).role, "admin");
  });

  it("server certificate carries localhost, loopback IPs and the extra names", async () => {
    const p = pkiPaths(pki);
    const server = new X509Certificate(await readFile(p.serverCert));
    for (const host of ["localhost", "fw.example.test"]) assert.equal(server.checkHost(host), host);
    for (const ip of ["127.0.0.1", "::1", "192.0.2.10", "2001:db8::1"]) assert.equal(server.checkIP(ip), ip);
    assert.deepEqual(server.keyUsage, ["1.3.6.1.5.5.7.3.1"]); // Node reports the EKU here: serverAuth only
    assert.ok(openssl(["verify", "-purpose", "sslserver", "-CAfile", p.caCert, p.serverCert]).ok);
  });

  it("issues an operator certificate whose CN/O carry the identity", async () => {
    const bundle = await issueClientCertificate(pki, { name: "alice", role: "operator" });
    const pem = await readFile(bundle.certPath, "utf8");
    assert.deepEqual(identityOf(pem), { principal: "alice", role: "operator" });
    const cert = new X509Certificate(pem);
    assert.deepEqual(cert.subject.split("\n").sort(), ["CN=alice", "O=operator"]);
    assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.2"]);
    const days = (Date.parse(cert.validTo) - Date.now()) / DAY_MS;
    assert.ok(days > 364 && days < 366, `validity ${days} days`);
    assert.equal(await mode(bundle.keyPath), 0o600);
    assert.ok(openssl(["verify", "-purpose", "sslclient", "-CAfile", pkiPaths(pki).caCert, bundle.certPath]).ok);
    // Serials are 16 random bytes, positive, and agree across our parser, Node and openssl.
    const serial = certificateSerial(pem);
    assert.match(serial, /^[4-7][0-9a-f]{31}$/);
    assert.equal(normalizeSerial(cert.serialNumber), serial);
    assert.equal(normalizeSerial(openssl(["x509", "-in", bundle.certPath, "-noout", "-serial"]).output.trim().split("=")[1] ?? ""), serial);
  });

  it("validates names and roles, and refuses to overwrite a bundle unless forced", async () => {
    for (const name of ["", "../evil", "-dash", "a b", "x".repeat(65), "é"]) {
      await assert.rejects(issueClientCertificate(pki, { name, role: "viewer" }), TypeError, name);
    }
    assert.deepEqual(ROLES, ["viewer", "operator", "admin"]);
    const role = "root" as Role; // a caller without types (CLI input) can still pass anything
    await assert.rejects(issueClientCertificate(pki, { name: "mallory", role }), TypeError);
    await issueClientCertificate(pki, { name: "dup", role: "viewer" });
    await assert.rejects(issueClientCertificate(pki, { name: "dup", role: "viewer" }), /already exists/);
    const reissued = await issueClientCertificate(pki, { name: "dup", role: "admin", force: true });
    assert.equal(identityOf(await readFile(reissued.certPath, "utf8")).role, "admin");
    await assert.rejects(revokeCertificate(pki, "nobody"), /no client certificate named "nobody"/);
  });

  it("writes a PKCS#12 bundle when given a password: Node's TLS (OpenSSL) opens it with that password only", async () => {
    const password = "pässwörd €"; // UTF-8 for the key's PBKDF2, BMPString for the MAC, as OpenSSL and NSS read them
    const bundle = await issueClientCertificate(pki, { name: "browser", role: "viewer", p12Password: password });
    assert.equal(await mode(bundle.p12Path), 0o600);
    const pfx = await readFile(bundle.p12Path);
    const context = tls.createSecureContext({ pfx, passphrase: password });
    assert.ok(context.context, "the certificate, key and CA load");
    assert.throws(() => tls.createSecureContext({ pfx, passphrase: "wrong" }), /mac verify failure|decrypt/i);
    // The certificate inside is the bundle's own, and the key matches it (a TLS server starts with them).
    const extracted = openssl(["pkcs12", "-in", bundle.p12Path, "-passin", `pass:${password}`, "-nokeys", "-clcerts"]);
    assert.ok(extracted.ok, extracted.output);
    assert.equal(new X509Certificate(extracted.output.slice(extracted.output.indexOf("-----BEGIN"))).fingerprint256, new X509Certificate(await readFile(bundle.certPath)).fingerprint256);
    await assert.rejects(issueClientCertificate(pki, { name: "nopass", role: "viewer", p12Password: "" }), /password is empty/);
    // Re-issued without one, the old certificate's bundle goes.
    await issueClientCertificate(pki, { name: "browser", role: "viewer", force: true });
    await assert.rejects(stat(bundle.p12Path), { code: "ENOENT" });
  });

  it("an expired certificate fails openssl verify", async () => {
    const now = Date.now();
    const bundle = await issueClientCertificate(pki, {
      name: "expired",
      role: "viewer",
      notBefore: new Date(now - 10 * DAY_MS),
      notAfter: new Date(now - DAY_MS),
    });
    const result = openssl(["verify", "-CAfile", pkiPaths(pki).caCert, bundle.certPath]);
    assert.equal(result.ok, false);
    assert.match(result.output, /expired/);
  });

  it("revocation shows in the CRL as seen by openssl, and is idempotent", async () => {
    const p = pkiPaths(pki);
    const bundle = await issueClientCertificate(pki, { name: "bob", role: "operator" });
    const crlCheck = (cert: string) => openssl(["verify", "-crl_check", "-CAfile", p.caCert, "-CRLfile", p.crl, cert]);
    assert.ok(crlCheck(bundle.certPath).ok);

    const { serialNumber } = await revokeCertificate(pki, "bob");
    assert.equal(serialNumber, certificateSerial(await readFile(bundle.certPath, "utf8")));
    const revoked = crlCheck(bundle.certPath);
    assert.equal(revoked.ok, false);
    assert.match(revoked.output, /certificate revoked/);
    assert.ok(crlCheck(clientBundlePaths(pki, "admin").certPath).ok);

    const crlAfterFirst = await readFile(p.crl, "utf8");
    assert.deepEqual(await revokeCertificate(pki, "bob"), { serialNumber });
    assert.equal(await readFile(p.crl, "utf8"), crlAfterFirst);

    // A second revocation keeps the first entry.
    await issueClientCertificate(pki, { name: "carol", role: "viewer" });
    const carol = await revokeCertificate(pki, "carol");
    assert.deepEqual(readRevokedSerials(await readFile(p.crl, "utf8")), new Set([serialNumber, carol.serialNumber]));
    assert.equal(crlCheck(bundle.certPath).ok, false);
    assert.equal(crlNumber(p.crl), 3); // init, bob, carol
  });

  it("refreshes a CRL close to nextUpdate, keeping entries and bumping the CRL number", async () => {
    const p = pkiPaths(pki);
    const before = readRevokedSerials(await readFile(p.crl, "utf8"));
    assert.equal(await refreshCrlIfStale(pki), false); // nextUpdate is a year away
    assert.equal(await refreshCrlIfStale(pki, 400), true);
    assert.deepEqual(readRevokedSerials(await readFile(p.crl, "utf8")), before);
    assert.equal(crlNumber(p.crl), 4);
    // -crl_check also checks the CRL's signature and dates ("CRL signature failure" / "CRL has expired").
    assert.ok(openssl(["verify", "-crl_check", "-CAfile", p.caCert, "-CRLfile", p.crl, p.serverCert]).ok);

    // Without ca.key (external CA) there is nothing we can sign with.
    const external = join(root, "external");
    await cp(pki, external, { recursive: true });
    await rm(pkiPaths(external).caKey);
    assert.equal(await refreshCrlIfStale(external, 400), false);
    await assert.rejects(issueClientCertificate(external, { name: "x", role: "viewer" }), /CA private key/);
  });

  describe("TLS handshake against a server using the CA and CRL", () => {
    type Verdict = { accepted: true; peerSerial: string } | { accepted: false; reason: string };
    // The strict server is the configuration that matters. Node destroys a rejected socket without keeping the
    // verify error (the server only sees "socket hang up"), so a lenient twin reports *why* via authorizationError.
    const servers: Record<"strict" | "lenient", { server: tls.Server; port: number }> = Object.create(null);
    let caPem: string;

    before(async () => {
      const p = pkiPaths(pki);
      caPem = await readFile(p.caCert, "utf8");
      const options: tls.TlsOptions = {
        ca: caPem,
        cert: await readFile(p.serverCert),
        key: await readFile(p.serverKey),
        crl: await readFile(p.crl),
        requestCert: true,
      };
      for (const kind of ["strict", "lenient"] as const) {
        const server = tls.createServer({ ...options, rejectUnauthorized: kind === "strict" });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        servers[kind] = { server, port: (server.address() as AddressInfo).port };
      }
    });

    after(async () => {
      for (const { server } of Object.values(servers)) await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    /**
     * The server's verdict decides: with TLS 1.3 the client finishes its side before the server checks its
     * certificate, so only `secureConnection` or `tlsClientError` on the server is reliable.
     */
    async function handshake(kind: "strict" | "lenient", bundleDir: string): Promise<Verdict> {
      const { server, port } = servers[kind];
      const verdict = new Promise<Verdict>((resolve) => {
        const onSecure = (socket: tls.TLSSocket) => {
          server.off("tlsClientError", onError);
          const peerSerial = socket.getPeerCertificate().serialNumber;
          socket.end();
          resolve(socket.authorized ? { accepted: true, peerSerial } : { accepted: false, reason: String(socket.authorizationError) });
        };
        const onError = (err: Error) => {
          server.off("secureConnection", onSecure);
          resolve({ accepted: false, reason: err.message });
        };
        server.once("secureConnection", onSecure);
        server.once("tlsClientError", onError);
      });
      const client = tls.connect({
        host: "127.0.0.1",
        port,
        ca: caPem,
        cert: await readFile(join(bundleDir, "client.crt")),
        key: await readFile(join(bundleDir, "client.key")),
      });
      client.on("error", () => undefined); // the verdict is taken on the server side
      try {
        return await verdict;
      } finally {
        client.destroy();
      }
    }

    it("accepts the admin client, and its serial as Node reports it matches certificateSerial", async () => {
      const admin = clientBundlePaths(pki, "admin");
      const result = await handshake("strict", admin.bundleDir);
      assert.ok(result.accepted, JSON.stringify(result));
      assert.equal(normalizeSerial(result.peerSerial), certificateSerial(await readFile(admin.certPath, "utf8")));
      assert.equal(readRevokedSerials(await readFile(pkiPaths(pki).crl, "utf8")).has(normalizeSerial(result.peerSerial)), false);
    });

    it("rejects a revoked client, whose Node-reported serial is in readRevokedSerials", async () => {
      const bob = clientBundlePaths(pki, "bob");
      assert.equal((await handshake("strict", bob.bundleDir)).accepted, false);
      assert.deepEqual(await handshake("lenient", bob.bundleDir), { accepted: false, reason: "CERT_REVOKED" });
      const nodeSerial = new X509Certificate(await readFile(bob.certPath)).serialNumber;
      assert.ok(readRevokedSerials(await readFile(pkiPaths(pki).crl, "utf8")).has(normalizeSerial(nodeSerial)));
    });

    it("rejects a client certificate from another CA", async () => {
      const foreign = clientBundlePaths(foreignPki, "admin").bundleDir;
      assert.equal((await handshake("strict", foreign)).accepted, false);
      const lenient = await handshake("lenient", foreign);
      assert.ok(!lenient.accepted && /^UNABLE_TO_(GET_ISSUER_CERT_LOCALLY|VERIFY_LEAF_SIGNATURE)$/.test(lenient.reason), JSON.stringify(lenient));
    });
  });

  it("normalizeSerial strips colons and leading zeros and lowercases", () => {
    assert.equal(normalizeSerial("00:0A:BC"), "abc");
    assert.equal(normalizeSerial("0ABC"), "abc");
    assert.equal(normalizeSerial("00"), "0");
  });
});
