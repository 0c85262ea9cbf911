import { readFile } from "node:fs/promises";
import * as x509 from "@peculiar/x509";
import { isNotFound, PUBLIC_MODE, SIGNING_ALGORITHM, toPem, writeFileAtomic } from "./pki-files.js";

// The CA's certificate revocation list: read, and re-signed with a higher CRL number (RFC 5280) on every change.

const DAY_MS = 86_400_000;
const CRL_VALID_DAYS = 365;
const OID_CRL_NUMBER = "2.5.29.20";

/** What signs the CRL: the CA's certificate (for the issuer name and key identifier) and private key. */
export interface CrlSigner {
  readonly cert: x509.X509Certificate;
  readonly key: CryptoKey;
}

export interface CrlState {
  readonly entries: readonly x509.X509CrlEntryParams[];
  readonly number: bigint;
  readonly nextUpdate: Date | undefined;
}

export async function readCrl(path: string): Promise<CrlState> {
  let pem: string;
  try {
    pem = await readFile(path, "utf8");
  } catch (err) {
    // A missing CRL (deleted by hand, or an older layout) is treated as empty and due for (re)creation.
    if (isNotFound(err)) return { entries: [], number: 0n, nextUpdate: undefined };
    throw err;
  }
  const crl = new x509.X509Crl(pem);
  const numberExt = crl.getExtension(OID_CRL_NUMBER);
  return {
    // Existing entries are passed back as-is so their revocation dates and reason codes survive re-signing.
    entries: crl.entries,
    number: numberExt ? decodeDerInteger(new Uint8Array(numberExt.value)) : 0n,
    nextUpdate: crl.nextUpdate,
  };
}

export async function writeCrl(
  path: string,
  ca: CrlSigner,
  entries: readonly x509.X509CrlEntryParams[],
  previousNumber: bigint,
): Promise<void> {
  const now = Date.now();
  const crl = await x509.X509CrlGenerator.create({
    // The CA's own encoded Name, so the CRL issuer matches the certificate issuer byte for byte.
    issuer: ca.cert.subjectName,
    thisUpdate: new Date(now),
    nextUpdate: new Date(now + CRL_VALID_DAYS * DAY_MS),
    entries: [...entries],
    signingKey: ca.key,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
      // RFC 5280 requires a monotonically increasing CRL number; the library has no helper class for it.
      new x509.Extension(OID_CRL_NUMBER, false, encodeDerInteger(previousNumber + 1n)),
    ],
  });
  // The library labels it "CRL"; OpenSSL (and so Node's tls `crl` option) only reads "X509 CRL".
  await writeFileAtomic(path, toPem(crl.rawData, "X509 CRL"), PUBLIC_MODE);
}

function encodeDerInteger(value: bigint): ArrayBuffer {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  // A set high bit would read as negative: DER needs a leading zero byte then.
  if (/^[89a-f]/.test(hex)) hex = `00${hex}`;
  const body = Buffer.from(hex, "hex");
  return new Uint8Array([0x02, body.length, ...body]).buffer;
}

function decodeDerInteger(der: Uint8Array): bigint {
  // Only short-form lengths are expected: CRL numbers are at most 20 octets (RFC 5280 §5.2.3).
  if (der[0] !== 0x02 || der[1] === undefined || der[1] > 0x7f || der.length !== der[1] + 2) return 0n;
  return der.length > 2 ? BigInt(`0x${Buffer.from(der.subarray(2)).toString("hex")}`) : 0n;
}
