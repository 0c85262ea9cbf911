import { createHash } from "node:crypto";
import forge from "node-forge";

/**
 * A client certificate as one PKCS#12 file, the form browsers import (Firefox and Chrome through NSS): the
 * certificate, its private key and the CA chain, protected by a password. The key is encrypted with PBES2 (PBKDF2 with
 * HMAC-SHA-256, AES-256-CBC) and the whole file carries an HMAC-SHA-256 integrity MAC — what OpenSSL 3 writes by
 * default. node-forge's own PKCS#12 writer only knows RSA keys and SHA-1 MACs, so the structure (RFC 7292) is put
 * together here from forge's ASN.1 and PBE primitives; our keys are ECDSA P-256.
 */

const { asn1, pki } = forge;
/** For both the key's PBKDF2 and the MAC's key derivation: a stolen file costs a guesser that much per password. */
const ITERATIONS = 100_000;
const SALT_BYTES = 16;

export interface Pkcs12Contents {
  /** The client certificate (PEM). */
  readonly certificate: string;
  /** Its private key, PKCS#8 (PEM "PRIVATE KEY"). */
  readonly privateKey: string;
  /** The certificates that issued it, nearest first (PEM). */
  readonly chain: readonly string[];
  /** The name browsers show for the certificate. */
  readonly friendlyName: string;
}

/** The PKCS#12 (PFX) file's bytes. */
export function encodePkcs12(contents: Pkcs12Contents, password: string): Buffer {
  if (password === "") throw new TypeError("a PKCS#12 bundle needs a password");
  const certificate = derOf(contents.certificate, "CERTIFICATE");
  // Pairs the key with its certificate (what browsers and OpenSSL match them by).
  const localKeyId = createHash("sha1").update(certificate, "binary").digest("binary");
  const attributes = sequenceOf(asn1.Type.SET, [
    attribute(pki.oids.friendlyName!, asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BMPSTRING, false, contents.friendlyName)),
    attribute(pki.oids.localKeyId!, octets(localKeyId)),
  ]);
  const certificateBags = [certificate, ...contents.chain.map((pem) => derOf(pem, "CERTIFICATE"))].map((der, index) =>
    sequence([
      oid(pki.oids.certBag!),
      explicit([sequence([oid(pki.oids.x509Certificate!), explicit([octets(der)])])]),
      ...(index === 0 ? [attributes] : []),
    ]));
  const shroudedKey = pki.encryptPrivateKeyInfo(asn1.fromDer(derOf(contents.privateKey, "PRIVATE KEY")), forge.util.encodeUtf8(password), {
    algorithm: "aes256",
    prfAlgorithm: "sha256",
    count: ITERATIONS,
    saltSize: SALT_BYTES,
  });
  const keyBag = sequence([oid(pki.oids.pkcs8ShroudedKeyBag!), explicit([shroudedKey]), attributes]);
  const authenticatedSafe = sequence([dataContent(sequence(certificateBags)), dataContent(sequence([keyBag]))]);
  const safeDer = asn1.toDer(authenticatedSafe).getBytes();

  const macSalt = forge.random.getBytesSync(SALT_BYTES);
  // RFC 7292 B.2 key derivation (ID 3: MAC key), with the password as BMPString, as the MAC requires.
  const macKey = forge.pkcs12.generateKey(password, forge.util.createBuffer(macSalt, "raw"), 3, ITERATIONS, 32, forge.md.sha256.create());
  const hmac = forge.hmac.create();
  hmac.start(forge.md.sha256.create(), macKey.getBytes());
  hmac.update(safeDer);
  const macData = sequence([
    sequence([sequence([oid(pki.oids.sha256!), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, "")]), octets(hmac.digest().getBytes())]),
    octets(macSalt),
    integer(ITERATIONS),
  ]);
  const pfx = sequence([integer(3), sequence([oid(pki.oids.data!), explicit([octets(safeDer)])]), macData]);
  return Buffer.from(asn1.toDer(pfx).getBytes(), "binary");
}

/** The DER bytes (a forge binary string) of the first PEM block of that type. */
function derOf(pem: string, type: string): string {
  const block = forge.pem.decode(pem).find((candidate) => candidate.type === type);
  if (block === undefined) throw new TypeError(`no ${type} in the PEM text`);
  return block.body;
}

type Node = forge.asn1.Asn1;

function sequence(items: Node[]): Node {
  return sequenceOf(asn1.Type.SEQUENCE, items);
}

function sequenceOf(type: forge.asn1.Type, items: Node[]): Node {
  return asn1.create(asn1.Class.UNIVERSAL, type, true, items);
}

/** [0] EXPLICIT, as PKCS#7 and PKCS#12 wrap their contents. */
function explicit(items: Node[]): Node {
  return asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, items);
}

function oid(value: string): Node {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(value).getBytes());
}

function octets(bytes: string): Node {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes);
}

function integer(value: number): Node {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(value).getBytes());
}

function attribute(id: string, value: Node): Node {
  return sequence([oid(id), sequenceOf(asn1.Type.SET, [value])]);
}

/** A PKCS#7 ContentInfo of type data, holding the DER of `content`. */
function dataContent(content: Node): Node {
  return sequence([oid(pki.oids.data!), explicit([octets(asn1.toDer(content).getBytes())])]);
}
