import { pino, type Logger } from "pino";

export type { Logger };

/** Structured JSON logs on stdout (one object per line); tests read the "listening" line to learn the bound port. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: "portcullis" }, timestamp: pino.stdTimeFunctions.isoTime });
}
