import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

export type Db = Database.Database;

/** Versioned schema migrations; each runs once, in order, inside a transaction. Append only. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE ipsets (
     name TEXT PRIMARY KEY,
     definition TEXT NOT NULL,          -- JSON IpsetDefinition without the name
     created_at INTEGER NOT NULL
   );
   CREATE TABLE ipset_entries (
     ipset TEXT NOT NULL REFERENCES ipsets(name) ON UPDATE CASCADE ON DELETE CASCADE,
     element TEXT NOT NULL,
     expires_at INTEGER,                -- absolute expiry, ms since the epoch; NULL = permanent
     comment TEXT,
     PRIMARY KEY (ipset, element)
   ) WITHOUT ROWID;
   CREATE INDEX ipset_entries_expiry ON ipset_entries(expires_at) WHERE expires_at IS NOT NULL;
   CREATE TABLE request_ids (
     request_id TEXT PRIMARY KEY,
     method TEXT NOT NULL,
     fingerprint TEXT NOT NULL,
     response BLOB NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE audit_log (
     id INTEGER PRIMARY KEY,
     time INTEGER NOT NULL,
     principal TEXT NOT NULL,
     role TEXT NOT NULL,
     method TEXT NOT NULL,
     resource TEXT NOT NULL,
     code TEXT NOT NULL,
     detail TEXT
   );`,
];

/**
 * Opens the state database. WAL with synchronous=NORMAL: a committed transaction survives a crash or `kill -9` of
 * the server (it is in the WAL before the reply is sent); only an OS crash or power loss can lose the last commits.
 */
export function openDatabase(file: string): Db {
  if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const current = db.pragma("user_version", { simple: true }) as number;
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}
