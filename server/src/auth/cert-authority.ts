// Must be evaluated before @peculiar/x509: its dependency tsyringe throws at load time without a Reflect polyfill.
import "reflect-metadata";
import { randomBytes } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { isIP } from "node:net";
import { hostname as osHostname } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { ROLE_ORDER as ROLES, isRole, type Role } from "./roles.js";
import { encodePkcs12 } from "./pkcs12-bundle.js";
import { readCrl, writeCrl } from "./crl-file.js";
import { PRIVATE_MODE, PUBLIC_MODE, SIGNING_ALGORITHM, ensureDir, exists, isNotFound, readRequired, toPem, writeFileAtomic } from "./pki-files.js";

/**
 * The PKI of Portcullis. Identity is the client certificate: Subject CN is the principal, Subject O is the role.
 * Everything lives in one directory so that an operator can back it up, or swap in an external CA (then only
 * ca.key is missing and the functions that sign say so).
 */

// Node's WebCrypto implements everything we ask of @peculiar/x509 (ECDSA P-256 keys, SHA-256 signatures).
x509.cryptoProvider.set(globalThis.crypto);

export { ROLE_ORDER as ROLES, isRole, type Role } from "./roles.js";

export interface PkiPaths {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly crl: string;
  readonly clientsDir: string;
}

export interface ClientBundle {
  readonly bundleDir: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly caPath: string;
  /** `<name>.p12` in the bundle: written when a PKCS#12 password was given (for browsers). */
  readonly p12Path: string;
}

export interface InitOptions {
  /** Extra DNS names for the server certificate (the machine's hostname and localhost are always included). */
  readonly hostnames?: readonly string[];
  /** Extra IP addresses for the server certificate (127.0.0.1 and ::1 are always included). */
  readonly ips?: readonly string[];
  /** Principal name of the first admin client bundle. */
  readonly adminName?: string;
  readonly force?: boolean;
}

export interface InitResult {
  readonly created: boolean;
  readonly paths: PkiPaths;
  /** The admin bundle written by this call; absent when nothing was created. */
  readonly admin?: ClientBundle;
}

export interface IssueOptions {
  readonly name: string;
  readonly role: Role;
  readonly validDays?: number;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly force?: boolean;
  /** Also write the bundle as PKCS#12 (certificate, key, CA), encrypted with this password, for browsers. */
  readonly p12Password?: string;
}

/** Thrown by initCertificates when a CA is already there: replacing it silently would lock out every client. */
export class PkiAlreadyInitializedError extends Error {
  constructor(readonly caCertPath: string) {
    super(
      `a CA already exists at ${caCertPath}; refusing to overwrite it ` +
        `(force re-initialisation replaces the CA and invalidates every certificate it issued)`,
    );
    this.name = "PkiAlreadyInitializedError";
  }
}

export const CLIENT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;

const DAY_MS = 86_400_000;
const CA_VALID_DAYS = 3650;
const SERVER_VALID_DAYS = 730;
const CLIENT_VALID_DAYS = 365;
// Backdate notBefore a little so a peer whose clock is slightly behind does not see a "not yet valid" certificate.
const CLOCK_SKEW_MS = 5 * 60_000;
const KEY_ALGORITHM: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };

export function pkiPaths(pkiDir: string): PkiPaths {
  return {
    dir: pkiDir,
    caCert: join(pkiDir, "ca.crt"),
    caKey: join(pkiDir, "ca.key"),
    serverCert: join(pkiDir, "server.crt"),
    serverKey: join(pkiDir, "server.key"),
    crl: join(pkiDir, "crl.pem"),
    clientsDir: join(pkiDir, "clients"),
  };
}

/** Paths of one client bundle. The name is validated first, so it can never escape the clients directory. */
export function clientBundlePaths(pkiDir: string, name: string): ClientBundle {
  assertClientName(name);
  const bundleDir = join(pkiPaths(pkiDir).clientsDir, name);
  return {
    bundleDir,
    certPath: join(bundleDir, "client.crt"),
    keyPath: join(bundleDir, "client.key"),
    caPath: join(bundleDir, "ca.crt"),
    p12Path: join(bundleDir, `${name}.p12`),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Public operations
// ---------------------------------------------------------------------------------------------------------------

export async function initCertificates(pkiDir: string, opts: InitOptions = {}): Promise<InitResult> {
  const paths = pkiPaths(pkiDir);
  if (!opts.force && (await exists(paths.caCert))) throw new PkiAlreadyInitializedError(paths.caCert);
  // Validate everything before the first write so a typo does not leave a half-built PKI behind.
  const adminName = opts.adminName ?? "admin";
  assertClientName(adminName);
  const extraIps = opts.ips ?? [];
  for (const ip of extraIps) if (isIP(ip) === 0) throw new TypeError(`invalid IP address for the server certificate: "${ip}"`);

  await ensureDir(paths.dir);
  const host = osHostname();
  const ca = await createCa(host);
  await writeFileAtomic(paths.caKey, await exportKeyPem(ca.key), PRIVATE_MODE);
  await writeServerCertificate(paths, ca, host, opts.hostnames ?? [], extraIps);
  await writeCrl(paths.crl, ca, [], 0n);
  // A fresh CA makes any old bundle of that name useless, so overwriting it is always right here.
  const admin = await writeClientBundle(pkiDir, ca, { name: adminName, role: "admin", force: true });
  // ca.crt is the "initialised" marker checked by ensureCertificates: writing it last means a crash midway is
  // retried on the next start instead of leaving a CA without server certificate or CRL.
  await writeFileAtomic(paths.caCert, ca.pem, PUBLIC_MODE);
  return { created: true, paths, admin };
}

/** First-start helper for `serve`: creates the PKI unless a CA (ours or an external one) is already in place. */
export async function ensureCertificates(pkiDir: string, opts: Omit<InitOptions, "force"> = {}): Promise<InitResult> {
  const paths = pkiPaths(pkiDir);
  if (await exists(paths.caCert)) return { created: false, paths };
  return initCertificates(pkiDir, { ...opts, force: false });
}

export async function issueClientCertificate(pkiDir: string, opts: IssueOptions): Promise<ClientBundle> {
  const ca = await loadCa(pkiPaths(pkiDir), "issue a client certificate");
  return writeClientBundle(pkiDir, ca, opts);
}

/** Adds the client's certificate serial to the CRL. Revoking an already revoked certificate changes nothing. */
export async function revokeCertificate(pkiDir: string, name: string): Promise<{ serialNumber: string }> {
  const bundle = clientBundlePaths(pkiDir, name);
  const certPem = await readFile(bundle.certPath, "utf8").catch((err: unknown) => {
    if (isNotFound(err)) throw new Error(`no client certificate named "${name}" (looked for ${bundle.certPath})`);
    throw err;
  });
  const serialNumber = certificateSerial(certPem);
  const paths = pkiPaths(pkiDir);
  const ca = await loadCa(paths, "revoke a certificate");
  const current = await readCrl(paths.crl);
  if (current.entries.some((e) => normalizeSerial(e.serialNumber) === serialNumber)) return { serialNumber };
  await writeCrl(paths.crl, ca, [...current.entries, { serialNumber, revocationDate: new Date() }], current.number);
  return { serialNumber };
}

/**
 * Re-signs the CRL (same entries) when its nextUpdate is less than `minDays` away: OpenSSL treats an expired CRL
 * as "unable to get certificate CRL" and would reject every client. Returns whether it was refreshed.
 */
export async function refreshCrlIfStale(pkiDir: string, minDays = 30): Promise<boolean> {
  const paths = pkiPaths(pkiDir);
  // Without our CA key we cannot sign; keeping an external CA's CRL fresh is the external CA's job.
  if (!(await exists(paths.caKey))) return false;
  const current = await readCrl(paths.crl);
  if (current.nextUpdate && current.nextUpdate.getTime() - Date.now() >= minDays * DAY_MS) return false;
  const ca = await loadCa(paths, "refresh the CRL");
  await writeCrl(paths.crl, ca, current.entries, current.number);
  return true;
}

/** Serials listed in a CRL, normalised with {@link normalizeSerial}. */
export function readRevokedSerials(crlPem: string): Set<string> {
  return new Set(new x509.X509Crl(crlPem).entries.map((e) => normalizeSerial(e.serialNumber)));
}

/** Serial of a certificate (PEM or DER), normalised so it compares equal to CRL entries and to Node's `tls` view. */
export function certificateSerial(certPemOrDer: string | Uint8Array): string {
  return normalizeSerial(parseCertificate(certPemOrDer).serialNumber);
}

/**
 * One spelling for serial numbers from every source: @peculiar/x509 gives lowercase hex, Node's `tls` uppercase hex
 * padded to whole bytes, `openssl` may add colons. Lowercase, no colons, no leading zeros.
 */
export function normalizeSerial(serial: string): string {
  return serial.replace(/:/g, "").toLowerCase().replace(/^0+(?=.)/, "");
}

/** The identity a client certificate carries. Throws when CN is missing or O is not a known role. */
export function identityOf(certPemOrDer: string | Uint8Array): { principal: string; role: Role } {
  const subject = parseCertificate(certPemOrDer).subjectName;
  const principal = subject.getField("CN")[0];
  const role = subject.getField("O")[0];
  if (!principal) throw new Error("client certificate has no Subject CN (principal name)");
  if (!isRole(role)) throw new Error(`client certificate Subject O "${role ?? ""}" is not one of ${ROLES.join(", ")}`);
  return { principal, role };
}

// ---------------------------------------------------------------------------------------------------------------
// Certificate construction
// ---------------------------------------------------------------------------------------------------------------

interface LoadedCa {
  readonly cert: x509.X509Certificate;
  readonly pem: string;
  readonly key: CryptoKey;
}

async function createCa(host: string): Promise<LoadedCa> {
  const keys = await generateKeys();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [`Portcullis CA ${host}`] }],
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + CA_VALID_DAYS * DAY_MS),
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, pem: toPem(cert.rawData, "CERTIFICATE"), key: keys.privateKey };
}

async function writeServerCertificate(
  paths: PkiPaths,
  ca: LoadedCa,
  host: string,
  extraNames: readonly string[],
  extraIps: readonly string[],
): Promise<void> {
  const dnsNames = unique([host, "localhost", ...extraNames]);
  const ips = unique(["127.0.0.1", "::1", ...extraIps]);
  const { pem, keyPem } = await signLeaf(ca, {
    subject: [{ CN: [host] }],
    validDays: SERVER_VALID_DAYS,
    eku: x509.ExtendedKeyUsage.serverAuth,
    san: [
      ...dnsNames.map((value) => ({ type: "dns" as const, value })),
      ...ips.map((value) => ({ type: "ip" as const, value })),
    ],
  });
  await writeFileAtomic(paths.serverKey, keyPem, PRIVATE_MODE);
  await writeFileAtomic(paths.serverCert, pem, PUBLIC_MODE);
}

async function writeClientBundle(pkiDir: string, ca: LoadedCa, opts: IssueOptions): Promise<ClientBundle> {
  const bundle = clientBundlePaths(pkiDir, opts.name);
  if (!isRole(opts.role)) throw new TypeError(`invalid role "${String(opts.role)}": expected one of ${ROLES.join(", ")}`);
  if (opts.p12Password === "") throw new TypeError("the PKCS#12 password is empty: browsers' bundles need one");
  if (!opts.force && (await exists(bundle.bundleDir))) {
    throw new Error(`a client bundle named "${opts.name}" already exists at ${bundle.bundleDir}; revoke it or force re-issue`);
  }
  const { pem, keyPem } = await signLeaf(ca, {
    subject: [{ O: [opts.role] }, { CN: [opts.name] }],
    validDays: opts.validDays ?? CLIENT_VALID_DAYS,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    eku: x509.ExtendedKeyUsage.clientAuth,
  });
  await ensureDir(pkiPaths(pkiDir).clientsDir);
  await ensureDir(bundle.bundleDir);
  await writeFileAtomic(bundle.keyPath, keyPem, PRIVATE_MODE);
  await writeFileAtomic(bundle.certPath, pem, PUBLIC_MODE);
  await writeFileAtomic(bundle.caPath, ca.pem, PUBLIC_MODE);
  if (opts.p12Password !== undefined) {
    // Named so that a browser's certificate list tells which server's CA and which role it is for.
    const friendlyName = `${opts.name} (${opts.role}, ${ca.cert.subjectName.getField("CN")[0] ?? "Portcullis"})`;
    await writeFileAtomic(bundle.p12Path, encodePkcs12({ certificate: pem, privateKey: keyPem, chain: [ca.pem], friendlyName }, opts.p12Password), PRIVATE_MODE);
  } else {
    // A re-issue without one must not leave the old certificate's bundle beside the new one.
    await rm(bundle.p12Path, { force: true });
  }
  return bundle;
}

interface LeafSpec {
  readonly subject: x509.JsonName;
  readonly validDays: number;
  readonly notBefore?: Date | undefined;
  readonly notAfter?: Date | undefined;
  readonly eku: x509.ExtendedKeyUsage;
  readonly san?: x509.JsonGeneralNames;
}

async function signLeaf(ca: LoadedCa, spec: LeafSpec): Promise<{ pem: string; keyPem: string }> {
  if (!(Number.isFinite(spec.validDays) && spec.validDays > 0)) {
    throw new TypeError(`validDays must be a positive number, got ${spec.validDays}`);
  }
  const notBefore = spec.notBefore ?? new Date(Date.now() - CLOCK_SKEW_MS);
  const notAfter = spec.notAfter ?? new Date(notBefore.getTime() + CLOCK_SKEW_MS + spec.validDays * DAY_MS);
  if (!(notAfter.getTime() > notBefore.getTime())) throw new TypeError("notAfter must be later than notBefore");
  const keys = await generateKeys();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([spec.eku]),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
  ];
  if (spec.san) extensions.push(new x509.SubjectAlternativeNameExtension(spec.san));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: spec.subject,
    issuer: ca.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions,
  });
  return { pem: toPem(cert.rawData, "CERTIFICATE"), keyPem: await exportKeyPem(keys.privateKey) };
}

// ---------------------------------------------------------------------------------------------------------------
// Keys, files and small helpers
// ---------------------------------------------------------------------------------------------------------------

async function loadCa(paths: PkiPaths, purpose: string): Promise<LoadedCa> {
  const [pem, keyPem] = await Promise.all([
    readRequired(paths.caCert, `cannot ${purpose}: CA certificate ${paths.caCert} not found (run init first)`),
    readRequired(
      paths.caKey,
      `cannot ${purpose}: CA private key ${paths.caKey} not found (with an external CA, sign with that CA instead)`,
    ),
  ]);
  const key = await crypto.subtle.importKey(
    "pkcs8",
    x509.PemConverter.decodeFirst(keyPem),
    KEY_ALGORITHM,
    false,
    ["sign"],
  );
  return { cert: new x509.X509Certificate(pem), pem, key };
}

function generateKeys(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"]);
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  return toPem(await crypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

/** 16 random bytes, high bit cleared (positive) and second-highest set (so DER keeps all 16 bytes, no padding). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString("hex");
}

function parseCertificate(certPemOrDer: string | Uint8Array): x509.X509Certificate {
  // Copying DER input narrows Buffer (whose backing store may be a SharedArrayBuffer) to the BufferSource it wants.
  return new x509.X509Certificate(typeof certPemOrDer === "string" ? certPemOrDer : new Uint8Array(certPemOrDer));
}

function assertClientName(name: string): void {
  if (typeof name !== "string" || !CLIENT_NAME_PATTERN.test(name)) {
    throw new TypeError(
      `invalid client name "${String(name)}": use 1-64 characters from A-Z a-z 0-9 _ . @ -, starting with a letter or digit`,
    );
  }
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
