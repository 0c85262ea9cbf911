// The statements of the generation writer (generation-writer.ts), shared by its worker thread (generation-worker.ts).

/** One chunk of a staged generation (ApplyRuleset): its rules as parallel arrays (cheap to pass to a thread). */
export interface RuleRows {
  readonly family: string;
  readonly table: string;
  readonly generation: number;
  readonly now: number;
  readonly ids: readonly string[];
  readonly chains: readonly string[];
  readonly seqs: readonly number[];
  readonly lines: readonly string[];
}

/** A job for the worker thread; it answers each with `{ id }`, or `{ id, error }` when nothing of it was written. */
export type GenerationJob =
  | ({ readonly op: "insert" } & RuleRows)
  | { readonly op: "delete"; readonly family: string; readonly table: string; readonly generation: number };

export interface GenerationReply {
  readonly id: number;
  readonly error?: string;
}

/**
 * A chunk of staged rules, each stored by its canonical line (the spec is that line parsed again when read), from
 * the JSON text of `[[id, chain, seq, line], …]`: one statement, no call per row.
 */
export const INSERT_ROWS =
  "INSERT INTO firewall_rules (id, family, table_name, chain, seq, line, created_at, generation) " +
  "SELECT value ->> 0, ?, ?, value ->> 1, value ->> 2, value ->> 3, ?, ? FROM json_each(?)";

/** The JSON text INSERT_ROWS reads. */
export function rowsJson(job: RuleRows): string {
  return JSON.stringify(job.ids.map((id, i) => [id, job.chains[i], job.seqs[i], job.lines[i]]));
}

/** Rows of an old generation deleted per transaction: 10k at once held the database ≈ 40 ms. */
export const DELETE_BATCH = 500;
export const DELETE_BATCH_SQL = `DELETE FROM firewall_rules WHERE rowid IN (SELECT rowid FROM firewall_rules WHERE family = ? AND table_name = ? AND generation = ? LIMIT ${DELETE_BATCH})`;
