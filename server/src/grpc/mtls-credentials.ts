import { ServerCredentials } from "@grpc/grpc-js";
import type { SecureContextOptions } from "node:tls";

/**
 * Server credentials that require a client certificate from our CA and can be updated live (new CRL, rotated
 * server certificate): grpc-js re-applies the context to its listening servers through its watcher mechanism.
 */
export class MtlsServerCredentials extends ServerCredentials {
  constructor(context: SecureContextOptions) {
    super({ requestCert: true, rejectUnauthorized: true, minVersion: "TLSv1.2" }, context);
  }

  update(context: SecureContextOptions): void {
    this.updateSecureContextOptions(context);
  }

  _equals(other: ServerCredentials): boolean {
    return this === other;
  }
}
