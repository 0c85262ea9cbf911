import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

// A batch of a million entries leaves a few hundred MB of garbage behind; an idle server would keep that heap (and
// RSS) until some later allocation triggers a collection. Collecting once after such a batch returns it promptly.
setFlagsFromString("--expose-gc");
const collect = runInNewContext("gc") as (() => void) | undefined;

let scheduled = false;

/** Runs a full garbage collection soon (once per burst), after the reply to a large request has gone out. */
export function releaseMemorySoon(): void {
  if (collect === undefined || scheduled) return;
  scheduled = true;
  setTimeout(() => {
    scheduled = false;
    collect();
  }, 100).unref();
}
