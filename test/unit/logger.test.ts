// Log formats: JSON lines for shippers (the default), readable lines with --log-format pretty.
import { it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";

const logger = resolve(import.meta.dirname, "../../server/src/logger.ts");
const logOnce = (format: string): string =>
  execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", `const { createLogger } = await import(${JSON.stringify(logger)}); createLogger("info", ${JSON.stringify(format)}).info({ method: "BanIp", ms: 2.5 }, "rpc");`], { encoding: "utf8" });

it("json: one object per line with time, level, service, the fields and the message", () => {
  const line = JSON.parse(logOnce("json")) as Record<string, unknown>;
  assert.deepEqual([line.level, line.service, line.method, line.ms, line.msg], [30, "portcullis", "BanIp", 2.5, "rpc"]);
  assert.match(String(line.time), /^\d{4}-\d\d-\d\dT/);
});

it("pretty: a readable line (level, message) and the fields below it, no JSON, no colour codes when piped", () => {
  const text = logOnce("pretty");
  assert.match(text, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: rpc\n\s+method: "BanIp"\n\s+ms: 2\.5\n$/);
  assert.doesNotMatch(text, /\u001b\[/);
});
