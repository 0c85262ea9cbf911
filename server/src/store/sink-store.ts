import type { Db } from "./database.js";

/**
 * Where each SIEM sink is in the event log: the last sequence it delivered, and the batch it is delivering (recorded
 * before the batch is sent, cleared when it is acknowledged).
 */
export class SinkStore {
  readonly #get;
  readonly #put;
  readonly #send;

  constructor(db: Db) {
    this.#get = db.prepare<[string], { sequence: number; in_flight: number | null }>("SELECT sequence, in_flight FROM sink_positions WHERE name = ?");
    this.#put = db.prepare("INSERT INTO sink_positions (name, sequence) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET sequence = excluded.sequence, in_flight = NULL");
    this.#send = db.prepare("UPDATE sink_positions SET in_flight = ? WHERE name = ?");
  }

  position(name: string): number | undefined {
    return this.#get.get(name)?.sequence;
  }

  /** The last sequence of the batch sent and not acknowledged yet, if any. */
  inFlight(name: string): number | undefined {
    return this.#get.get(name)?.in_flight ?? undefined;
  }

  /** Records a delivery up to `sequence`; the batch in flight, if any, is done with. */
  setPosition(name: string, sequence: number): void {
    this.#put.run(name, sequence);
  }

  /** Records, before sending, that the batch after the position up to `sequence` is on its way. */
  setInFlight(name: string, sequence: number): void {
    this.#send.run(sequence, name);
  }
}
