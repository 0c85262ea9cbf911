/** setTimeout's longest delay (a signed 32-bit number of ms): a timer for a later time fires then, to look again. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The delay of a timer for `time` (ms since the epoch): 0 when it has come, at most what setTimeout takes. */
export function delayUntil(time: number): number {
  return Math.min(MAX_TIMER_MS, Math.max(0, time - Date.now()));
}
