// IpsetDriver.restore against a real kernel (a throwaway namespace): small batches go through the long-lived ipset
// session without starting a process, large ones through one `ipset restore`; either way every line is applied, and
// a batch ipset refuses part of fails with the same error as before.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { IpsetDriver } from "../../server/src/drivers/ipset-driver.js";
import { Executor } from "../../server/src/drivers/exec.js";
import { HelperStarter } from "../../server/src/drivers/process-starter.js";
import type { ServerError } from "../../server/src/errors.js";
import { createLogger } from "../../server/src/logger.js";
import type { CommandObserver } from "../../server/src/drivers/exec.js";
import { Netns } from "../harness/netns.js";

const log = createLogger("silent");

describe("IpsetDriver: batches through the session or one restore process", () => {
  let netns: Netns;
  let exec: Executor;
  let ipset: IpsetDriver;
  /** The programs started (by name) and the session's turns, as the metrics see them. */
  const commands: string[] = [];
  before(() => {
    netns = new Netns("pc-batches");
    exec = new Executor(log, netns.name, { commandFinished: (command) => void commands.push(command) } satisfies CommandObserver, new HelperStarter(log, netns.name));
    ipset = new IpsetDriver(exec, log);
    netns.exec("ipset", ["create", "small", "hash:ip", "timeout", "0"]);
    netns.exec("ipset", ["create", "tiny", "hash:ip", "maxelem", "4"]);
  });
  after(() => {
    ipset.close();
    exec.close();
    netns.destroy();
  });

  const lines = (set: string, from: number, n: number, extra = ""): string[] => Array.from({ length: n }, (_, i) => `add ${set} 10.${(from + i) >> 16 & 255}.${(from + i) >> 8 & 255}.${(from + i) & 255}${extra}\n`);

  it("applies up to 1,000 lines through the session (no process), in chunks as the service streams them", async () => {
    commands.length = 0;
    const batch = lines("small", 0, 1000, " timeout 600");
    await ipset.restore([batch.slice(0, 400).join(""), batch.slice(400).join("")]);
    assert.equal(netns.setEntries("small"), 1000);
    assert.deepEqual(commands, ["ipset session"]);
  });

  it("applies more than 1,000 lines through one restore process, the chunks read before it included", async () => {
    commands.length = 0;
    async function* chunks(): AsyncGenerator<string> {
      for (let from = 0; from < 5000; from += 700) yield lines("small", 10_000 + from, Math.min(700, 5000 - from)).join("");
    }
    await ipset.restore(chunks());
    assert.equal(netns.setEntries("small"), 6000);
    assert.deepEqual(commands, ["ipset"]);
  });

  it("refuses a batch the set cannot take with the same error as restore (IPSET_FULL), and the session serves on", async () => {
    commands.length = 0;
    await assert.rejects(ipset.restore([lines("tiny", 0, 10).join("")]), (error: ServerError) => error.reason === "IPSET_FULL");
    // The session found a refusal; restore ran the batch again to name it.
    assert.deepEqual(commands, ["ipset session", "ipset"]);
    await assert.rejects(ipset.restore(["add missing 192.0.2.1\nadd missing 192.0.2.2\n"]), (error: ServerError) => error.reason === "IPSET_NOT_FOUND");
    await ipset.add("small", { element: "192.0.2.9", timeout: 60 });
    assert.equal(netns.setEntries("small"), 6001);
  });

  it("deletes in batches the same way (absent entries are no error)", async () => {
    commands.length = 0;
    await ipset.restore([lines("small", 0, 500).map((line) => line.replace(/^add/, "del")).join(""), "del small 192.0.2.250\n"]);
    assert.equal(netns.setEntries("small"), 5501);
    assert.deepEqual(commands, ["ipset session"]);
  });
});
