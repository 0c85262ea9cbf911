import { setTimeout as sleep } from "node:timers/promises";

/** How long a test waits for something that should happen by itself: long enough for any loaded machine. */
export const PATIENCE_MS = 30_000;

/**
 * Polls `probe` until it returns something other than undefined or false, and returns that; fails naming `what` (a
 * function: worded when it fails) once `within` ms have passed. The deadline only bounds a broken feature: a working
 * one is never timed, so a slow or loaded machine cannot fail the test.
 */
export async function waitFor<T>(what: string | (() => string), probe: () => T | undefined | false | Promise<T | undefined | false>, options: { within?: number; every?: number } = {}): Promise<T> {
  const deadline = Date.now() + (options.within ?? PATIENCE_MS);
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`${typeof what === "string" ? what : what()}: did not happen within ${options.within ?? PATIENCE_MS} ms (last: ${String(value)})`);
    await sleep(options.every ?? 50);
  }
}
