import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The jail options UpdateJail changes, by fail2ban's names, in the order the drop-in lists them. */
export const TUNING_KEYS = [
  "maxretry",
  "findtime",
  "bantime",
  "bantime.increment",
  "bantime.factor",
  "bantime.maxtime",
  "bantime.rndtime",
  "bantime.multipliers",
  "bantime.overalljails",
] as const;
export type TuningKey = (typeof TUNING_KEYS)[number];

/**
 * Option values as fail2ban takes them (validated text); null removes the option (fail2ban's default applies).
 * Options not present stay as they are.
 */
export type JailTuning = Partial<Record<TuningKey, string | null>>;

const KNOWN: ReadonlySet<string> = new Set(TUNING_KEYS);

/**
 * A jail's drop-in `jail.d/portcullis-{jail}.local` in fail2ban's configuration directory: fail2ban reads jail.d's
 * `.local` files last, so what UpdateJail wrote there wins over jail.conf and jail.local after a restart or reload.
 * The file is Portcullis's alone (the jail name was validated before it is used in the path).
 */
export class JailDropIn {
  readonly #file: string;
  readonly #jail: string;

  constructor(configDir: string, jail: string) {
    this.#jail = jail;
    this.#file = join(configDir, "jail.d", `portcullis-${jail}.local`);
  }

  get path(): string {
    return this.#file;
  }

  /** What the file sets now (nothing when there is no file). */
  read(): JailTuning {
    let text: string;
    try {
      text = readFileSync(this.#file, "utf8");
    } catch {
      return {};
    }
    const tuning: JailTuning = {};
    for (const line of text.split("\n")) {
      const match = /^\s*([a-z.]+)\s*=\s*(.*?)\s*$/.exec(line);
      if (match !== null && KNOWN.has(match[1]!)) tuning[match[1] as TuningKey] = match[2]!;
    }
    return tuning;
  }

  /** Replaces the file atomically (a reader never sees half of it); nothing left to set removes it. */
  write(tuning: JailTuning): void {
    const lines = TUNING_KEYS.filter((key) => typeof tuning[key] === "string").map((key) => `${key} = ${tuning[key]}`);
    if (lines.length === 0) {
      rmSync(this.#file, { force: true });
      return;
    }
    mkdirSync(join(this.#file, ".."), { recursive: true });
    const text = `# Written by Portcullis (UpdateJail); changes made through its API are kept here.\n[${this.#jail}]\n${lines.join("\n")}\n`;
    const temporary = `${this.#file}.${process.pid}.tmp`;
    writeFileSync(temporary, text, { mode: 0o644 });
    renameSync(temporary, this.#file);
  }
}
