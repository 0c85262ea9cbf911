import type { TLSSocket } from "node:tls";
import type { Logger } from "../logger.js";
import { ServerError } from "../errors.js";

/** Node's verification codes for a certificate no trusted CA issued: what TLS calls `unknown_ca`. */
const UNKNOWN_ISSUER: ReadonlySet<string> = new Set([
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
]);

/**
 * Why the client certificate of a TLS connection is refused, naming what was presented; undefined when it verified.
 * Node checks a presented certificate only after the handshake and can then only drop the connection — no TLS alert,
 * so the client would learn nothing. Our listeners therefore ask for a certificate without rejecting at the handshake
 * and answer every request of such a connection with this error (UNAUTHENTICATED, 401). The words in parentheses are
 * the TLS alert the refusal stands for.
 */
export function certificateRefusal(socket: TLSSocket): ServerError | undefined {
  if (socket.authorized) return undefined;
  const certificate = socket.getPeerX509Certificate();
  if (certificate === undefined) {
    return new ServerError("CERTIFICATE_REQUIRED", "no client certificate was presented (certificate required); connect with one signed by the server's CA");
  }
  const subject = oneLine(certificate.subject);
  const issuer = oneLine(certificate.issuer);
  const verification = String(socket.authorizationError ?? "UNKNOWN");
  const presented = `the client certificate "${subject}" (issuer "${issuer}")`;
  const metadata = { subject, issuer, verification, fingerprint: certificate.fingerprint256 };
  if (verification === "CERT_REVOKED") {
    // Its chain verified, so its name is ours: the refusal is audited under it.
    const principal = /^CN=(.*)$/m.exec(certificate.subject)?.[1] ?? "";
    return new ServerError("CERTIFICATE_REVOKED", `${presented} has been revoked (certificate revoked); ask an admin for a new one`, { ...metadata, principal });
  }
  if (verification === "CERT_HAS_EXPIRED") {
    return new ServerError("CERTIFICATE_INVALID", `${presented} expired on ${certificate.validTo} (certificate expired); ask an admin for a new one`, metadata);
  }
  if (verification === "CERT_NOT_YET_VALID") {
    return new ServerError("CERTIFICATE_INVALID", `${presented} is not valid before ${certificate.validFrom} (certificate not yet valid); check the clocks`, metadata);
  }
  if (UNKNOWN_ISSUER.has(verification)) {
    return new ServerError("CERTIFICATE_INVALID", `${presented} is not signed by this server's CA (unknown ca); use a certificate this server's CA issued (portcullis certs issue)`, metadata);
  }
  return new ServerError("CERTIFICATE_INVALID", `${presented} failed verification: ${verification} (bad certificate)`, metadata);
}

/** One log line per refused connection, with what it presented and from where. */
export function logCertificateRefusal(log: Logger, transport: string, socket: TLSSocket, refusal: ServerError): void {
  log.warn({ transport, remote: socket.remoteAddress, reason: refusal.reason, ...refusal.metadata }, "client certificate refused");
}

/** "CN=mallory\nO=admin" (Node's form) → "CN=mallory, O=admin", bounded: it is the client's text. */
function oneLine(name: string): string {
  return name.split("\n").join(", ").slice(0, 300);
}
