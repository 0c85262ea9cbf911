import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { openDatabase } from "../../server/src/store/database.js";
import { JailBanStore } from "../../server/src/store/jail-ban-store.js";
import { AllowlistStore } from "../../server/src/store/allowlist-store.js";
import { Allowlist } from "../../server/src/jails/allowlist.js";
import { JailService, PORTCULLIS_ACTION } from "../../server/src/jails/jail-service.js";
import { BanExpiry } from "../../server/src/jails/ban-expiry.js";
import { EventLog } from "../../server/src/events/event-log.js";
import { EventStore } from "../../server/src/store/event-store.js";
import { createLogger } from "../../server/src/logger.js";
import type { Fail2banClient } from "../../server/src/drivers/fail2ban-client.js";
import type { Fail2banCli } from "../../server/src/drivers/fail2ban-cli.js";
import type { PickleValue } from "../../server/src/drivers/parse/pickle-codec.js";
import type { FleetSharing } from "../../server/src/fleet/fleet.js";
import type { ApiCall } from "../../server/src/events/api-call.js";
import type { EventInput } from "../../server/src/events/event-model.js";

const JAIL = "dovecot";
const addresses = (count: number): string[] => Array.from({ length: count }, (_, i) => `10.9.${i >> 8}.${i & 255}`);

/**
 * fail2ban as JailService sees it, for a jail with the Portcullis action: `banip` answers at once, and the action
 * reports the chunk in the kernel 30 ms later (as its sender thread does), through JailService.enforced. The jail is
 * shared with a fleet that notes each chunk it is handed.
 */
function setup(options: { failBanip?: number } = {}) {
  const db = openDatabase(":memory:");
  const log: string[] = [];
  let banips = 0;
  let service: JailService | undefined;
  const fail2ban = {
    send: async (command: readonly string[]): Promise<PickleValue> => {
      const [verb, , key, ...rest] = command;
      if (verb === "status") return [["Number of jail", 1], ["Jail list", JAIL]];
      if (verb === "get") return ({ maxretry: 5, findtime: 600, bantime: 600, ignoreip: [], actions: [PORTCULLIS_ACTION] } as Record<string, PickleValue>)[key!] ?? null;
      if (verb === "set" && key === "banip") {
        banips++;
        if (banips === options.failBanip) throw new Error("fail2ban went away");
        const n = banips;
        log.push(`banip ${n}`);
        setTimeout(() => {
          log.push(`enforced ${n}`);
          service!.enforced(JAIL, "ban", rest);
        }, 30);
        return rest.length;
      }
      throw new Error(`unexpected command ${command.join(" ")}`);
    },
  } as unknown as Fail2banClient;
  const bans = new JailBanStore(db);
  const shared: string[][] = [];
  const fleet: FleetSharing = {
    nodes: undefined,
    scope: () => true,
    attributes: () => ({ scope: "fleet" }),
    shareBans: async (jails, addresses) => {
      assert.deepEqual(jails, [{ jail: JAIL, banTime: 600 }]);
      log.push(`shared ${shared.length + 1}`);
      shared.push([...addresses]);
    },
    shareUnbans: async () => assert.fail("no unbans here"),
    shareSetChange: async () => assert.fail("no sets here"),
  };
  const events: EventInput[] = [];
  const call: ApiCall = { principal: "tester", role: "operator", method: "portcullis.v1.JailService/BatchBanIp", record: (event) => void events.push(event) };
  service = new JailService({ fail2ban, bans, configDir: "/nonexistent", cli: undefined as unknown as Fail2banCli, allowlist: new Allowlist(new AllowlistStore(db)), fleet, expiry: new BanExpiry({ store: bans, events: new EventLog(new EventStore(db)), log: createLogger("silent") }) });
  return { service, bans, log, shared, call, events };
}

describe("BatchBanIp in chunks", () => {
  it("fail2ban gets the next chunk while the previous one's enforcement is awaited; each chunk is handed on once enforced", async () => {
    const { service, log, shared, call, events } = setup();
    const all = addresses(1200);
    const fresh = await service.batchBan(JAIL, all, call, { fleet: true });
    assert.equal(fresh.length, 1200);
    assert.deepEqual(events.map((event) => event.resource), all.map((address) => `jails/${JAIL}/bans/${address}`));
    assert.deepEqual(events[0]!.attributes, { jail: JAIL, address: all[0], scope: "fleet" });
    assert.deepEqual(shared, [all.slice(0, 500), all.slice(500, 1000), all.slice(1000)]);
    // Overlapped: the second banip goes out before the first chunk's report; nothing is shared before its report.
    assert.ok(log.indexOf("banip 2") < log.indexOf("enforced 1"), log.join(", "));
    for (const n of [1, 2, 3]) assert.ok(log.indexOf(`enforced ${n}`) < log.indexOf(`shared ${n}`), log.join(", "));
    assert.equal(log.at(-1), "shared 3", "the call returns only once every chunk is enforced");
  });

  it("a failure midway: what was enforced is kept and handed on, the rest is not recorded as banned", async () => {
    const { service, bans, log, shared, call } = setup({ failBanip: 2 });
    const all = addresses(1200);
    await assert.rejects(service.batchBan(JAIL, all, call, { fleet: true }), /fail2ban went away/);
    assert.deepEqual(shared, [all.slice(0, 500)], "the first chunk was enforced before the call failed");
    assert.deepEqual([...bans.addresses(JAIL)].sort(), [...all.slice(0, 500)].sort());
    await sleep(50);
    assert.deepEqual(log, ["banip 1", "enforced 1", "shared 1"]);
  });
});
