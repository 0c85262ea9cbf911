import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import * as x509 from "@peculiar/x509";

// Files of the PKI directory: written whole or not at all, with exact modes (keys 0600, the directory 0700).

/** Every signature of the PKI: certificates and the CRL. */
export const SIGNING_ALGORITHM: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
export const PRIVATE_MODE = 0o600;
export const PUBLIC_MODE = 0o644;
export const DIR_MODE = 0o700;

export async function readRequired(path: string, missingMessage: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if (isNotFound(err)) throw new Error(missingMessage);
    throw err;
  }
}

/** PEM with a final newline, so files concatenate cleanly (e.g. into a CA bundle) and satisfy line-based tools. */
export function toPem(der: ArrayBuffer, label: string): string {
  return `${x509.PemConverter.encode(der, label)}\n`;
}

/** Write to a temp file in the same directory, fsync, then rename: readers never see a partial file. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fh = await open(tmp, "wx", mode);
    try {
      await fh.writeFile(data);
      await fh.chmod(mode); // open()'s mode is filtered by the umask; make the final mode exact
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: DIR_MODE });
  // mkdir leaves an existing directory's mode alone (and the umask applies to new ones): enforce 0700.
  await chmod(dir, DIR_MODE);
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof Error && "code" in err && err.code === "ENOENT";
}
