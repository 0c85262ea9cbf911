import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseBansWithTime, parseBanTimeIncrement, parseJailStatus } from "../../server/src/drivers/parse/fail2ban-replies.js";

describe("fail2ban replies", () => {
  it("`get <jail> banip --with-time`: address, start in local time, duration (-1 for ever)", () => {
    const bans = parseBansWithTime([
      "192.0.2.100 \t2026-11-25 19:00:05 + 3600 = 2026-11-25 20:00:05",
      "2001:db8::100 \t2026-01-02 03:04:05 + -1 = 9999-12-31 23:59:59",
    ]);
    assert.deepEqual(bans, [
      { address: "192.0.2.100", bannedAt: new Date(2026, 10, 25, 19, 0, 5).getTime(), duration: 3600 },
      { address: "2001:db8::100", bannedAt: new Date(2026, 0, 2, 3, 4, 5).getTime(), duration: -1 },
    ]);
    assert.deepEqual(parseBansWithTime([]), []);
    assert.throws(() => parseBansWithTime(["192.0.2.1"]), /unexpected shape/);
    assert.throws(() => parseBansWithTime("192.0.2.1"), /unexpected shape/);
  });

  it("`status <jail> short`: counters and files, no ban list needed", () => {
    assert.deepEqual(parseJailStatus([
      ["Filter", [["Currently failed", 1], ["Total failed", 7], ["File list", ["/var/log/mail.log"]]]],
      ["Actions", [["Currently banned", 2], ["Total banned", 9]]],
    ]), { currentlyFailed: 1, totalFailed: 7, files: ["/var/log/mail.log"], currentlyBanned: 2, totalBanned: 9 });
    assert.throws(() => parseJailStatus([["Filter", []], ["Actions", []]]), /no "Currently failed"/);
  });

  it("`get <jail> bantime.<option>`: values from the configuration (bool, int) or from `set` (text), None for unset", () => {
    assert.deepEqual(parseBanTimeIncrement([true, "2", 86400, null, "1 5 30", true, null]), {
      enabled: true, factor: 2, maxTime: 86400, randomTime: 0, multipliers: [1, 5, 30], overallJails: true, formula: "",
    });
    assert.deepEqual(parseBanTimeIncrement([null, null, null, null, null, null, null]), {
      enabled: false, factor: 0, maxTime: 0, randomTime: 0, multipliers: [], overallJails: false, formula: "",
    });
    // fail2ban tests text for truth as Python does: "false" given through `fail2ban-client set` counts as on.
    assert.equal(parseBanTimeIncrement([false, null, null, "30", null, "false", "ban.Time * 3"]).overallJails, true);
    assert.equal(parseBanTimeIncrement([false, null, null, "30", null, "false", "ban.Time * 3"]).randomTime, 30);
    assert.equal(parseBanTimeIncrement([false, null, null, "30", null, "false", "ban.Time * 3"]).formula, "ban.Time * 3");
  });
});
