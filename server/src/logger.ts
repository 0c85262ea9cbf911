import { pino, type Logger } from "pino";
import pretty from "pino-pretty";

export type { Logger };

/**
 * Logs on stdout: JSON, one object per line (for log shippers; tests read the "listening" line to learn the bound
 * ports), or with format "pretty" readable lines for people (pino-pretty, synchronous, no colours when piped).
 * JSON lines are written asynchronously (lines that arrive during a write go out together in the next one; pino
 * flushes what is left when the process exits): every call logs a line, and a synchronous write per line cost the
 * server several per cent of its CPU under many concurrent calls.
 */
export function createLogger(level: string, format: "json" | "pretty" = "json"): Logger {
  const options = { level, base: { service: "portcullis" }, timestamp: pino.stdTimeFunctions.isoTime };
  return format === "pretty" ? pino(options, pretty({ sync: true, colorize: process.stdout.isTTY === true, ignore: "service" })) : pino(options, pino.destination({ dest: 1, sync: false }));
}
