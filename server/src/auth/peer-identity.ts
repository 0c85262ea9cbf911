import type { PeerCertificate } from "node:tls";
import { ServerError } from "../errors.js";
import type { Principal } from "./principal.js";
import type { CrlWatcher } from "./crl-watcher.js";
import { isRole } from "./roles.js";

/**
 * The caller's identity from its verified client certificate: CN = principal, O = role. The TLS layer has already
 * checked the chain, dates and (for new connections) the CRL; the revocation check here also catches connections
 * opened before a revocation.
 */
export function principalOf(certificate: PeerCertificate | undefined, crl: CrlWatcher): Principal {
  if (certificate === undefined || certificate.subject === undefined || Object.keys(certificate).length === 0) {
    throw new ServerError("CERTIFICATE_REQUIRED", "a client certificate signed by the server's CA is required");
  }
  if (crl.isRevoked(certificate.serialNumber)) {
    throw new ServerError("CERTIFICATE_REVOKED", `certificate "${first(certificate.subject.CN)}" has been revoked; ask an admin for a new one`, { principal: first(certificate.subject.CN) });
  }
  const name = first(certificate.subject.CN);
  const role = first(certificate.subject.O);
  if (name === "" || !isRole(role)) {
    throw new ServerError("ROLE_REQUIRED", `certificate "${name}" names no Portcullis role; its subject O must be viewer, operator or admin`, { has: role, principal: name });
  }
  return { name, role };
}

function first(value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value[0] : value) ?? "";
}
