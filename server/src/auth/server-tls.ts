import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createSecureContext } from "node:tls";
import { ConfigError, type Config } from "../config.js";
import type { Logger } from "../logger.js";
import { clientBundlePaths, ensureCertificates, pkiPaths, refreshCrlIfStale } from "./cert-authority.js";

/** The server's TLS material: the configured files, or the data dir's own PKI. */
export interface ResolvedTls {
  readonly crl: string | undefined;
  context(crlPem: string | undefined): { ca: string; cert: string; key: string; crl?: string };
  /** Reads the files again (a rotated certificate or CA); throws, keeping the current ones, if they do not load. */
  reload(): void;
}

/** Configured certificate files, or the data dir's own PKI (created on first start, CRL kept fresh). */
export async function resolveTls(config: Config, log: Logger): Promise<ResolvedTls> {
  const paths = pkiPaths(join(config.dataDir, "pki"));
  const own = config.tls.ca === undefined && config.tls.cert === undefined && config.tls.key === undefined;
  if (own) {
    const result = await ensureCertificates(paths.dir);
    if (result.created) {
      const admin = clientBundlePaths(paths.dir, "admin");
      log.warn({ pki: paths.dir, adminBundle: admin.bundleDir }, `created a CA and certificates; the admin client bundle is in ${admin.bundleDir}`);
    }
    await refreshCrlIfStale(paths.dir);
  } else if (config.tls.ca === undefined || config.tls.cert === undefined || config.tls.key === undefined) {
    throw new ConfigError("tls.ca, tls.cert and tls.key must be configured together");
  }
  const files = {
    ca: config.tls.ca ?? paths.caCert,
    cert: config.tls.cert ?? paths.serverCert,
    key: config.tls.key ?? paths.serverKey,
  };
  const crl = config.tls.crl ?? (own ? paths.crl : undefined);
  const read = () => {
    const pem = { ca: readFileSync(files.ca, "utf8"), cert: readFileSync(files.cert, "utf8"), key: readFileSync(files.key, "utf8") };
    createSecureContext(pem); // a key that does not match its certificate, or broken PEM, fails here
    return pem;
  };
  let pem = read();
  return {
    crl,
    context: (crlPem) => ({ ...pem, ...(crlPem === undefined ? {} : { crl: crlPem }) }),
    reload: () => {
      pem = read();
    },
  };
}

