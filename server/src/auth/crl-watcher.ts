import { readFileSync, watchFile, unwatchFile, existsSync } from "node:fs";
import type { Logger } from "../logger.js";
import { normalizeSerial, readRevokedSerials } from "./cert-authority.js";

/**
 * Keeps the certificate revocation list current without a restart: `portcullis certs revoke` rewrites the file,
 * the watcher reloads it, hands the PEM to the TLS layer (new handshakes check it) and keeps the revoked serials for
 * the per-call check (which also covers connections opened before the revocation).
 */
export class CrlWatcher {
  readonly #path: string | undefined;
  readonly #log: Logger;
  #pem: string | undefined;
  #serials = new Set<string>();
  readonly #listeners: Array<(pem: string | undefined) => void> = [];

  constructor(path: string | undefined, log: Logger) {
    this.#path = path;
    this.#log = log;
    this.#load();
    if (path !== undefined) {
      watchFile(path, { interval: 500, persistent: false }, () => {
        if (this.#load()) for (const listener of this.#listeners) listener(this.#pem);
      });
    }
  }

  get pem(): string | undefined {
    return this.#pem;
  }

  /** Whether a certificate serial (hex, any case, leading zeros allowed) is revoked. */
  isRevoked(serialHex: string): boolean {
    return this.#serials.has(normalizeSerial(serialHex));
  }

  /** Reads the file now (a certificate reload, SIGHUP), without notifying the listeners. */
  reload(): void {
    this.#load();
  }

  onChange(listener: (pem: string | undefined) => void): void {
    this.#listeners.push(listener);
  }

  close(): void {
    if (this.#path !== undefined) unwatchFile(this.#path);
  }

  /** Reloads; returns whether the content changed. A bad file keeps the previous list (and is logged). */
  #load(): boolean {
    if (this.#path === undefined || !existsSync(this.#path)) return false;
    try {
      const pem = readFileSync(this.#path, "utf8");
      if (pem === this.#pem) return false;
      this.#serials = readRevokedSerials(pem);
      this.#pem = pem;
      this.#log.info({ path: this.#path, revoked: this.#serials.size }, "certificate revocation list loaded");
      return true;
    } catch (error) {
      this.#log.error({ path: this.#path, err: error }, "cannot read the certificate revocation list; keeping the previous one");
      return false;
    }
  }
}
