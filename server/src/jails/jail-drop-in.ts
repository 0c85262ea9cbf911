import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The settings UpdateJail changes, as fail2ban's jail options name them. */
export interface JailTuning {
  readonly maxretry?: number;
  readonly findtime?: number;
  readonly bantime?: number;
}

const KEYS = ["maxretry", "findtime", "bantime"] as const;

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
    const tuning: Record<string, number> = {};
    for (const line of text.split("\n")) {
      const match = /^\s*(maxretry|findtime|bantime)\s*=\s*(-?\d+)\s*$/.exec(line);
      if (match !== null) tuning[match[1]!] = Number(match[2]);
    }
    return tuning;
  }

  /** Replaces the file atomically (a reader never sees half of it); an empty tuning removes it. */
  write(tuning: JailTuning): void {
    const lines = KEYS.filter((key) => tuning[key] !== undefined).map((key) => `${key} = ${tuning[key]}`);
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
