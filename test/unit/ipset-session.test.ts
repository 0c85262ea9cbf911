import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { DirectStarter, Executor } from "../../server/src/drivers/exec.js";
import { IpsetSession } from "../../server/src/drivers/ipset-session.js";
import { createLogger } from "../../server/src/logger.js";
import type { ProcessStarter, StartedProcess } from "../../server/src/drivers/process-starter.js";
import { Netns } from "../harness/netns.js";

const log = createLogger("silent");

/** Starts programs with a PATH of /usr/bin only: stdbuf is there, ipset (/usr/sbin) is not. */
class WithoutIpset implements ProcessStarter {
  readonly #direct = new DirectStarter();
  start(file: string, args: readonly string[]): StartedProcess {
    return this.#direct.start("env", ["PATH=/usr/bin", file, ...args]);
  }
  close(): void {}
}

describe("IpsetSession: one long-lived `ipset -` answering each command on its own", () => {
  const netns = new Netns();
  const exec = new Executor(log, netns.name);
  const session = new IpsetSession(exec, log);
  after(() => {
    session.close();
    netns.destroy();
  });

  it("answers commands written together each with their own stderr, in order", async () => {
    assert.equal(await session.run("create pc-s hash:ip"), "");
    const answers = await Promise.all([
      session.run("add pc-s 192.0.2.1"),
      session.run("test pc-s 192.0.2.1"),
      session.run("test pc-s 192.0.2.2"),
      session.run("add pc-none 192.0.2.1"),
      session.run("del pc-s 192.0.2.1"),
      session.run("test pc-s 192.0.2.1"),
    ]);
    assert.equal(answers[0], "");
    assert.match(answers[1]!, /192\.0\.2\.1 is in set pc-s/);
    assert.match(answers[2]!, /192\.0\.2\.2 is NOT in set pc-s/);
    assert.match(answers[3]!, /set with the given name does not exist/);
    assert.equal(answers[4], "");
    assert.match(answers[5]!, /192\.0\.2\.1 is NOT in set pc-s/);
    assert.equal(netns.setEntries("pc-s"), 0);
  });

  it("reports ipset missing as KERNEL_UNAVAILABLE, not as a session to retry", async () => {
    const missing = new IpsetSession(new Executor(log, undefined, undefined, new WithoutIpset()), log);
    try {
      await assert.rejects(missing.run("list -n"), { reason: "KERNEL_UNAVAILABLE" });
    } finally {
      missing.close();
    }
  });
});
