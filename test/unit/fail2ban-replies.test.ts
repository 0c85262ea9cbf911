import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseBansWithTime, parseJailStatus } from "../../server/src/drivers/parse/fail2ban-replies.js";

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
});
