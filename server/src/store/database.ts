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
  `CREATE TABLE firewall_chains (
     family TEXT NOT NULL,
     table_name TEXT NOT NULL,
     chain TEXT NOT NULL,
     policy TEXT,                       -- built-in chains whose policy Portcullis set; NULL for user chains it created
     PRIMARY KEY (family, table_name, chain)
   ) WITHOUT ROWID;
   CREATE TABLE firewall_rules (
     id TEXT PRIMARY KEY,
     family TEXT NOT NULL,
     table_name TEXT NOT NULL,
     chain TEXT NOT NULL,
     seq INTEGER NOT NULL,              -- order among the managed rules of the chain
     spec TEXT NOT NULL,                -- JSON RuleSpec
     created_at INTEGER NOT NULL
   );
   CREATE INDEX firewall_rules_chain ON firewall_rules(family, table_name, chain, seq);
   CREATE TABLE firewall_rollbacks (
     family TEXT NOT NULL,
     table_name TEXT NOT NULL,
     deadline INTEGER NOT NULL,         -- ms since the epoch
     kernel TEXT NOT NULL,              -- iptables-save text of the table before the change
     managed TEXT NOT NULL,             -- JSON of the managed chains and rules before the change
     PRIMARY KEY (family, table_name)
   ) WITHOUT ROWID;
   CREATE TABLE firewall_panic (
     family TEXT PRIMARY KEY,
     kernel TEXT NOT NULL               -- filter table before panic mode
   ) WITHOUT ROWID;`,
  `CREATE TABLE events (
     sequence INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so a subscriber's last sequence stays meaningful
     time INTEGER NOT NULL,
     type TEXT NOT NULL,
     resource TEXT NOT NULL,
     principal TEXT NOT NULL,
     origin TEXT NOT NULL,
     attributes TEXT NOT NULL           -- JSON object of strings
   );
   CREATE INDEX events_time ON events(time);`,
  `CREATE TABLE jail_bans (             -- the bans fail2ban reported last, to turn its changes into events
     jail TEXT NOT NULL,
     address TEXT NOT NULL,
     since INTEGER NOT NULL,
     PRIMARY KEY (jail, address)
   ) WITHOUT ROWID;`,
  // A table's managed rules are written as a new generation next to the current one and published by switching the
  // pointer: an ApplyRuleset stores its rules while the kernel is still parsing them, and undoing is one row.
  `ALTER TABLE firewall_rules ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE firewall_generations (
     family TEXT NOT NULL,
     table_name TEXT NOT NULL,
     generation INTEGER NOT NULL,
     PRIMARY KEY (family, table_name)
   ) WITHOUT ROWID;`,
  // Every rule query names the generation: the index leads with it (listing, next seq, deleting a generation).
  `DROP INDEX firewall_rules_chain;
   CREATE INDEX firewall_rules_generation ON firewall_rules(family, table_name, generation, chain, seq);`,
  `CREATE TABLE allowlist (              -- the host allowlist: addresses and networks no jail bans
     network TEXT PRIMARY KEY,          -- canonical address or CIDR network
     comment TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER,                -- ms since the epoch; NULL = never
     created_by TEXT NOT NULL
   ) WITHOUT ROWID;
   CREATE TABLE allowlist_ignoreip (     -- jails whose ignoreip got an entry from the allowlist (only those are taken back)
     network TEXT NOT NULL,
     jail TEXT NOT NULL,
     PRIMARY KEY (network, jail)
   ) WITHOUT ROWID;`,
  `CREATE TABLE sink_positions (         -- per SIEM sink: the last event sequence it delivered
     name TEXT PRIMARY KEY,
     sequence INTEGER NOT NULL
   ) WITHOUT ROWID;`,
  // Fleet mode: shared bans made here wait in the outbox until JetStream has them (NATS may be down); every shared
  // ban seen, made here or received, is kept by id so that a redelivery never applies it twice.
  `CREATE TABLE fleet_outbox (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     operation TEXT NOT NULL            -- JSON FleetOperation
   );
   CREATE TABLE fleet_operations (
     id TEXT PRIMARY KEY,               -- the operation's id, the same on every host
     op TEXT NOT NULL,                  -- ban | unban
     kind TEXT NOT NULL,                -- jail | set
     target TEXT NOT NULL,              -- the jail or set
     address TEXT NOT NULL,
     expires_at INTEGER,                -- ms since the epoch; NULL = never (or the jail's own bantime)
     origin_node TEXT NOT NULL,
     outcome TEXT NOT NULL,             -- origin (made here) | applied | unchanged | refused
     applied_at INTEGER NOT NULL,
     active INTEGER NOT NULL            -- 1 while a ban of ours is in force here (until its expiry or an unban)
   ) WITHOUT ROWID;
   CREATE INDEX fleet_operations_active ON fleet_operations(expires_at) WHERE active = 1;
   CREATE INDEX fleet_operations_address ON fleet_operations(address);
   ALTER TABLE audit_log ADD COLUMN origin_node TEXT;`,
  // A rule is stored as its JSON spec or as its canonical line (ApplyRuleset: 10k specs as JSON cost the apply more
  // than the kernel's parsing of them); the spec is the line parsed again. SQLite cannot drop NOT NULL in place.
  `CREATE TABLE firewall_rules_new (
     id TEXT PRIMARY KEY,
     family TEXT NOT NULL,
     table_name TEXT NOT NULL,
     chain TEXT NOT NULL,
     seq INTEGER NOT NULL,              -- order among the managed rules of the chain
     spec TEXT,                         -- JSON RuleSpec, or NULL when line is set
     line TEXT,                         -- the canonical rule line (renderRuleLine) when spec is NULL
     created_at INTEGER NOT NULL,
     generation INTEGER NOT NULL DEFAULT 0,
     CHECK ((spec IS NULL) <> (line IS NULL))
   );
   INSERT INTO firewall_rules_new (id, family, table_name, chain, seq, spec, created_at, generation)
     SELECT id, family, table_name, chain, seq, spec, created_at, generation FROM firewall_rules;
   DROP TABLE firewall_rules;
   ALTER TABLE firewall_rules_new RENAME TO firewall_rules;
   CREATE INDEX firewall_rules_generation ON firewall_rules(family, table_name, generation, chain, seq);`,
  `CREATE TABLE ipset_batches (           -- batches being applied: their entries are rolled back if the server stops first
     id INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: entries keep the id of the batch that first recorded them
     ipset TEXT NOT NULL REFERENCES ipsets(name) ON UPDATE CASCADE ON DELETE CASCADE,
     started_at INTEGER NOT NULL
   );
   ALTER TABLE ipset_entries ADD COLUMN batch INTEGER;  -- the batch that recorded the entry; NULL for single adds`,
  // A sink's batch is recorded before it is sent, so that after a crash the same batch (same range) goes again.
  `ALTER TABLE sink_positions ADD COLUMN in_flight INTEGER;  -- last sequence of the batch sent, not yet acknowledged`,
  // Event filters (principal, jail, address) read an index instead of every event's JSON; the jail and address are
  // computed as subjectOf (events/event-model.ts) computes them for new events. Inspecting an address finds its jails'
  // bans by address.
  `ALTER TABLE events ADD COLUMN jail TEXT;     -- the jail the event is about
   ALTER TABLE events ADD COLUMN address TEXT;  -- the address or network it is about (an element without its port part)
   UPDATE events SET
     jail = coalesce(json_extract(attributes, '$.jail'),
       CASE WHEN resource GLOB 'jails/?*' THEN substr(resource, 7, instr(substr(resource, 7) || '/', '/') - 1) END),
     address = (SELECT CASE WHEN instr(about, ',') > 0 THEN substr(about, 1, instr(about, ',') - 1) ELSE about END
       FROM (SELECT coalesce(json_extract(attributes, '$.address'), json_extract(attributes, '$.element'), json_extract(attributes, '$.network')) AS about));
   UPDATE events SET jail = NULL WHERE jail = '';
   UPDATE events SET address = NULL WHERE address = '';
   CREATE INDEX events_principal ON events(principal);
   CREATE INDEX events_jail ON events(jail) WHERE jail IS NOT NULL;
   CREATE INDEX events_address ON events(address) WHERE address IS NOT NULL;
   CREATE INDEX jail_bans_address ON jail_bans(address);`,
  // Feeds: settings, the state of their refreshes (validators, times, counts: a restart neither refetches every list
  // at once nor forgets what the sources said), and each feed's last good list as one text (megabytes in one row:
  // a rowid table, which keeps large rows out of the b-tree's interior pages).
  `CREATE TABLE feeds (
     name TEXT PRIMARY KEY,
     definition TEXT NOT NULL,          -- JSON FeedDefinition without the name
     state TEXT NOT NULL,               -- JSON FeedState
     created_at INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE TABLE feed_lists (
     feed TEXT PRIMARY KEY REFERENCES feeds(name) ON DELETE CASCADE,
     elements TEXT NOT NULL,            -- canonical addresses and networks, one per line
     saved_at INTEGER NOT NULL
   );`,
  // CrowdSec bouncers: their keys (SHA-256 only), and per bouncer the decisions it was last sent, so that a poll after
  // a restart of either side sends exactly what changed since (nothing missed, nothing twice).
  `CREATE TABLE bouncers (
     name TEXT PRIMARY KEY,
     key_hash BLOB NOT NULL UNIQUE,     -- SHA-256 of the API key
     created_at INTEGER NOT NULL,
     last_pull_at INTEGER,              -- ms since the epoch; NULL before its first pull
     version TEXT                       -- User-Agent of its last pull
   ) WITHOUT ROWID;
   CREATE TABLE bouncer_decisions (
     bouncer TEXT NOT NULL REFERENCES bouncers(name) ON DELETE CASCADE,
     id INTEGER NOT NULL,               -- the decision's id (see bouncers/decision-model.ts)
     decision TEXT NOT NULL,            -- JSON of what a deletion repeats: origin, scenario, scope, value
     PRIMARY KEY (bouncer, id)
   ) WITHOUT ROWID;`,
  // BanIp with a duration: Portcullis lifts the ban at its own expiry (jails/ban-expiry.ts), after restarts too. The
  // column lives on the ban's row, so that any end of the ban (an unban, fail2ban's expiry) forgets it.
  `ALTER TABLE jail_bans ADD COLUMN expires_at INTEGER;  -- ms since the epoch when Portcullis lifts it; NULL = fail2ban's bantime
   CREATE INDEX jail_bans_expiry ON jail_bans(expires_at) WHERE expires_at IS NOT NULL;`,
  // An ApplyRuleset's staged generation from just before the kernel's commit until it is published: a server that
  // stops in between finds it at its next start and keeps it if the kernel holds it (firewall/interrupted-changes.ts).
  `CREATE TABLE firewall_sealed (
     family TEXT NOT NULL,
     table_name TEXT NOT NULL,
     generation INTEGER NOT NULL,       -- the staged generation of firewall_rules
     chains TEXT NOT NULL,              -- JSON ManagedChain[] the table's chains become
     dropped TEXT NOT NULL,             -- JSON ids of staged rules that stay another tool's (an apply repeating them)
     PRIMARY KEY (family, table_name)
   ) WITHOUT ROWID;`,
  // The same for a change of single rules (create, replace, delete): recorded before the kernel's commit, applied to
  // the store after it, finished or dropped at the next start if a stop came in between.
  `CREATE TABLE firewall_sealed_rules (
     family TEXT NOT NULL,
     table_name TEXT NOT NULL,
     change TEXT NOT NULL,              -- JSON RuleChange (store/firewall-store.ts)
     PRIMARY KEY (family, table_name)
   ) WITHOUT ROWID;`,
];

/**
 * Opens the state database. WAL with synchronous=NORMAL: a committed transaction survives a crash or `kill -9` of
 * the server (it is in the WAL before the reply is sent); only an OS crash or power loss can lose the last commits.
 * Write transactions go through `writeTransaction`.
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

type Runner = Database.Transaction<(work: () => unknown) => unknown>;
const runners = new WeakMap<Db, Runner>();

/**
 * Runs `work` in a write transaction (a savepoint inside another one) and returns what it returns; rolled back if it
 * throws. IMMEDIATE: another connection commits too (the generation writer's thread), and a deferred transaction that
 * reads before it writes would then fail at once (SQLITE_BUSY_SNAPSHOT) instead of waiting for the lock. One runner
 * per connection: better-sqlite3 builds four wrapped functions for every `db.transaction()`, a cost per call.
 */
export function writeTransaction<T>(db: Db, work: () => T): T {
  let runner = runners.get(db);
  if (runner === undefined) runners.set(db, (runner = db.transaction((run: () => unknown) => run())));
  return runner.immediate(work) as T;
}

function migrate(db: Db): void {
  const current = db.pragma("user_version", { simple: true }) as number;
  for (let version = current; version < MIGRATIONS.length; version++) {
    writeTransaction(db, () => {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    });
  }
}
