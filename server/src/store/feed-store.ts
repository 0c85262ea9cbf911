import { type Db, writeTransaction } from "./database.js";
import { setsOf, type FeedDefinition, type FeedState } from "../feeds/feed-model.js";

/**
 * Feeds: their settings, the state of their refreshes, and the last good list of each, kept whole as one text (one
 * canonical element per line) rather than as one row per entry — see FeedRefresher for why.
 */
export class FeedStore {
  readonly #db: Db;
  readonly #statements;
  /** Every feed's definition by name, read once: each set lookup of the ipset domain consults it (ownerOf). */
  #definitions: Map<string, FeedDefinition> | undefined;

  constructor(db: Db) {
    this.#db = db;
    this.#statements = {
      all: db.prepare<[], { name: string; definition: string }>("SELECT name, definition FROM feeds ORDER BY name"),
      insert: db.prepare("INSERT INTO feeds (name, definition, state, created_at) VALUES (?, ?, ?, ?)"),
      update: db.prepare("UPDATE feeds SET definition = ? WHERE name = ?"),
      delete: db.prepare("DELETE FROM feeds WHERE name = ?"),
      state: db.prepare<[string], { state: string }>("SELECT state FROM feeds WHERE name = ?"),
      putState: db.prepare("UPDATE feeds SET state = ? WHERE name = ?"),
      list: db.prepare<[string], string>("SELECT elements FROM feed_lists WHERE feed = ?").pluck(),
      putList: db.prepare("INSERT OR REPLACE INTO feed_lists (feed, elements, saved_at) VALUES (?, ?, ?)"),
    };
  }

  definitions(): FeedDefinition[] {
    return [...this.#cache().values()];
  }

  get(name: string): FeedDefinition | undefined {
    return this.#cache().get(name);
  }

  /** The feed (as `feeds/{feed}`) whose sets include `set`, if any. */
  ownerOf(set: string): string | undefined {
    for (const definition of this.#cache().values()) if (setsOf(definition).includes(set)) return `feeds/${definition.name}`;
    return undefined;
  }

  create(definition: FeedDefinition, state: FeedState): void {
    const { name, ...rest } = definition;
    this.#statements.insert.run(name, JSON.stringify(rest), JSON.stringify(state), Date.now());
    this.#definitions = undefined;
  }

  update(definition: FeedDefinition): void {
    const { name, ...rest } = definition;
    this.#statements.update.run(JSON.stringify(rest), name);
    this.#definitions = undefined;
  }

  /** Forgets a feed, its state and its list. */
  delete(name: string): void {
    this.#statements.delete.run(name);
    this.#definitions = undefined;
  }

  state(name: string): FeedState | undefined {
    const row = this.#statements.state.get(name);
    return row === undefined ? undefined : (JSON.parse(row.state) as FeedState);
  }

  putState(name: string, state: FeedState): void {
    this.#statements.putState.run(JSON.stringify(state), name);
  }

  /** The last good list: canonical elements, one per line; undefined before the first. */
  list(name: string): string | undefined {
    return this.#statements.list.get(name);
  }

  /** Records a list applied and the state it left, together. */
  putList(name: string, elements: string, state: FeedState): void {
    writeTransaction(this.#db, () => {
      this.#statements.putList.run(name, elements, Date.now());
      this.#statements.putState.run(JSON.stringify(state), name);
    });
  }

  #cache(): Map<string, FeedDefinition> {
    this.#definitions ??= new Map(this.#statements.all.all().map((row) => [row.name, Object.freeze({ name: row.name, ...(JSON.parse(row.definition) as Omit<FeedDefinition, "name">) })]));
    return this.#definitions;
  }
}
