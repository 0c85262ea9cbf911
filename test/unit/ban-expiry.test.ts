// BanExpiry against a real SQLite store and a stand-in for the jail service's unban: what it lifts, what it keeps.
import { it } from "node:test";
import assert from "node:assert/strict";
import { openDatabase } from "../../server/src/store/database.js";
import { JailBanStore } from "../../server/src/store/jail-ban-store.js";
import { EventStore } from "../../server/src/store/event-store.js";
import { EventLog } from "../../server/src/events/event-log.js";
import { BanExpiry } from "../../server/src/jails/ban-expiry.js";
import { ServerError } from "../../server/src/errors.js";
import { createLogger } from "../../server/src/logger.js";
import { waitFor } from "../harness/wait.js";

function setup(unban: (jail: string, address: string) => Promise<string[]>) {
  const db = openDatabase(":memory:");
  const store = new JailBanStore(db);
  const events = new EventLog(new EventStore(db));
  const expiry = new BanExpiry({ store, events, log: createLogger("silent") });
  const asked: string[] = [];
  expiry.start({
    unbanHere: async (jail, address) => {
      asked.push(`${jail} ${address}`);
      return unban(jail, address);
    },
  });
  const unbans = () => events.list(0, 100, { types: ["UNBAN"] }).events.map((event) => [event.resource, event.attributes.reason, event.principal]);
  return { store, expiry, asked, unbans };
}

it("lifts a ban when its expiry comes, with an UNBAN event of the system; a ban whose expiry was cleared stays", async () => {
  const { store, expiry, asked, unbans } = setup(async (jail, address) => {
    store.record(jail, [], [address]);
    return [jail];
  });
  store.record("sshd", ["192.0.2.1", "192.0.2.2"], []);
  expiry.set("sshd", ["192.0.2.1", "192.0.2.2"], Date.now() + 150);
  expiry.set("sshd", ["192.0.2.2"], undefined);
  await waitFor("the lift", () => asked.length > 0, { within: 5000, every: 10 });
  assert.deepEqual(asked, ["sshd 192.0.2.1"]);
  assert.deepEqual(unbans(), [["jails/sshd/bans/192.0.2.1", "expired", "system"]]);
  assert.equal(store.nextExpiry(), undefined);
  assert.deepEqual(store.list("sshd"), ["192.0.2.2"]);
  expiry.close();
});

it("a ban already gone (unbanned, jail stopped) is forgotten without an event; a failing fail2ban keeps the expiry for a retry", async () => {
  const gone = setup(async () => {
    throw new ServerError("BAN_NOT_FOUND", "not banned");
  });
  gone.store.record("sshd", ["192.0.2.1"], []);
  gone.expiry.set("sshd", ["192.0.2.1"], Date.now());
  await waitFor("the try", () => gone.asked.length > 0, { within: 5000, every: 10 });
  await waitFor("the row dropped", () => gone.store.list("sshd").length === 0, { within: 5000, every: 10 });
  assert.deepEqual(gone.unbans(), []);
  gone.expiry.close();

  const down = setup(async (jail, address) => {
    // As JailBans.unbanHere does when fail2ban fails: the row is put back, without its expiry.
    down.store.record(jail, [], [address]);
    down.store.record(jail, [address], []);
    throw new ServerError("FAIL2BAN_UNAVAILABLE", "fail2ban is down");
  });
  const expiresAt = Date.now();
  down.store.record("sshd", ["192.0.2.1"], []);
  down.expiry.set("sshd", ["192.0.2.1"], expiresAt);
  await waitFor("the try", () => down.asked.length > 0, { within: 5000, every: 10 });
  await waitFor("the expiry restored", () => down.store.nextExpiry() === expiresAt, { within: 5000, every: 10 });
  assert.deepEqual(down.unbans(), []);
  assert.equal(down.asked.length, 1, "retried later, not at once");
  down.expiry.close();
});
