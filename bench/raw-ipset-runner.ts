import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";

const HELPER = resolve(import.meta.dirname, "raw-ipset.mjs");

/**
 * Runs bench/raw-ipset.mjs (the raw tools' side of a comparison) inside a namespace, one run at a time, in a process
 * group of its own so that `kill` ends it and the ipset it runs even in the middle of a run.
 */
export class RawIpsetRunner {
  #child: ChildProcess | undefined;

  /** Runs the helper with `args` in namespace `netns`; resolves with the JSON it prints. */
  run<T>(netns: string, args: readonly string[]): Promise<T> {
    return new Promise<T>((resolvePromise, reject) => {
      const child = spawn("ip", ["netns", "exec", netns, process.execPath, HELPER, ...args], { stdio: ["ignore", "pipe", "pipe"], detached: true });
      this.#child = child;
      let out = "";
      let err = "";
      child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
      child.stderr!.on("data", (chunk: Buffer) => (err += chunk.toString()));
      child.once("error", reject);
      child.once("exit", (code, signal) => {
        this.#child = undefined;
        if (code !== 0) return reject(new Error(`raw-ipset.mjs ${args.join(" ")} exited ${code ?? signal}: ${err}`));
        try {
          resolvePromise(JSON.parse(out) as T);
        } catch (error) {
          reject(new Error(`raw-ipset.mjs printed no JSON: ${out} ${err} (${String(error)})`));
        }
      });
    });
  }

  /** Ends a run in progress (its whole process group). */
  kill(): void {
    const child = this.#child;
    if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}
