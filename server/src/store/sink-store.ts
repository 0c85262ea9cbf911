import type { Db } from "./database.js";

/** Where each SIEM sink is in the event log: the last sequence it delivered, written after each delivery. */
export class SinkStore {
  readonly #get;
  readonly #put;

  constructor(db: Db) {
    this.#get = db.prepare<[string], { sequence: number }>("SELECT sequence FROM sink_positions WHERE name = ?");
    this.#put = db.prepare("INSERT INTO sink_positions (name, sequence) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET sequence = excluded.sequence");
  }

  position(name: string): number | undefined {
    return this.#get.get(name)?.sequence;
  }

  setPosition(name: string, sequence: number): void {
    this.#put.run(name, sequence);
  }
}
