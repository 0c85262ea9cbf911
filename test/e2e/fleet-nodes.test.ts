import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { loadConfig } from "../../server/src/config.js";
import { JetStreamLink } from "../../server/src/fleet/jetstream-link.js";
import { FleetNodes } from "../../server/src/fleet/fleet-nodes.js";
import { FleetStore } from "../../server/src/store/fleet-store.js";
import { JailBanStore } from "../../server/src/store/jail-ban-store.js";
import { openDatabase } from "../../server/src/store/database.js";
import { createLogger } from "../../server/src/logger.js";
import { NatsCluster } from "../harness/nats.js";
import { PATIENCE_MS, waitFor } from "../harness/wait.js";

/**
 * ListNodes against a real NATS while heartbeats replace the bucket's entries all the time: every listing ends. (Read
 * through kv.keys(), some never did: its consumer missed the end of the listing when an entry was replaced during it.)
 */
describe("fleet: listing the hosts while their heartbeats land", () => {
  const dir = mkdtempSync(join(tmpdir(), "pc-fleet-nodes-"));
  let nats: NatsCluster | undefined;
  let link: JetStreamLink | undefined;

  before(async () => {
    nats = await NatsCluster.start(1);
  });
  after(async () => {
    await link?.close();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers 1,500 listings, none hanging, naming every host once", { timeout: 240_000 }, async () => {
    writeFileSync(join(dir, "config.json"), JSON.stringify({ cluster: { servers: nats!.urls, node: "alpha", heartbeatSeconds: 1 } }));
    const cluster = loadConfig({ dataDir: dir }, { PORTCULLIS_CONFIG: join(dir, "config.json") }).cluster!;
    const log = createLogger("silent");
    link = new JetStreamLink(cluster, log);
    link.start();
    await waitFor("the link to NATS", () => link!.linked !== undefined);
    const { kv } = link.require();
    const db = openDatabase(":memory:");
    const nodes = new FleetNodes({ link, node: "alpha", version: "1.0.0", heartbeatSeconds: 1, store: new FleetStore(db), jailBans: new JailBanStore(db), log });
    const hosts = ["alpha", "bravo", "charlie", "delta"];
    const beat = (): string => JSON.stringify({ version: "1.0.0", heartbeatAt: Date.now(), startedAt: Date.now(), lag: 0, bansApplied: 0, bansRefused: 0 });
    for (const host of hosts) await kv.put(host, beat());

    // Heartbeats replacing the entries as fast as NATS takes them, while four listers list.
    let listing = true;
    const churn = (async () => {
      for (let i = 0; listing; i++) await kv.put(hosts[i % hosts.length]!, beat());
    })();
    let hung = 0;
    let listed = 0;
    try {
      await Promise.all(Array.from({ length: 4 }, async () => {
        while (listed < 1_500) {
          listed++;
          // A listing that has not ended after this long never will (the bug read the keys through a consumer that
          // could miss the listing's end); a slow machine only makes each one slower.
          const giveUp = new AbortController();
          const timer = sleep(PATIENCE_MS, "hung", { signal: giveUp.signal }).catch(() => "ended");
          const result = await Promise.race([nodes.list(), timer]);
          giveUp.abort();
          if (typeof result === "string") hung++;
          else assert.deepEqual(result.map((node) => node.name), hosts);
        }
      }));
    } finally {
      listing = false;
      await churn;
      db.close();
    }
    assert.equal(hung, 0, `${hung} of ${listed} listings did not end within ${PATIENCE_MS / 1000} s`);
  });
});
