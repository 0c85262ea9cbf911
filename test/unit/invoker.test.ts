import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { openDatabase } from "../../server/src/store/database.js";
import { AuditStore } from "../../server/src/store/audit-store.js";
import { EventStore } from "../../server/src/store/event-store.js";
import { GroupCommit } from "../../server/src/store/group-commit.js";
import { EventLog } from "../../server/src/events/event-log.js";
import { Invoker } from "../../server/src/api/invoker.js";
import { operation } from "../../server/src/api/operation.js";
import { ServerError } from "../../server/src/errors.js";
import { createLogger } from "../../server/src/logger.js";

/** The events a domain call records through its ApiCall are the Invoker's to write, with the call's audit record. */
function setup() {
  const db = openDatabase(":memory:");
  const audit = new AuditStore(db);
  const eventStore = new EventStore(db);
  const events = new EventLog(eventStore);
  const groups: number[] = [];
  const commit = new GroupCommit(db);
  const invoker = new Invoker(audit, events, createLogger("silent"), undefined, async (work) => {
    groups.push(1);
    await commit.write(work);
  });
  return { invoker, events, audit, groups };
}

const principal = { name: "alice", role: "operator" as const, address: "192.0.2.7" };

describe("Invoker and the events a domain call records", () => {
  it("a successful call's events are written in order, under the caller's name with origin api, in the commit of its audit record", async () => {
    const { invoker, events, audit, groups } = setup();
    const op = operation("operator", () => "jails/sshd", async (_request: object, call) => {
      assert.deepEqual([call.principal, call.role, call.method, call.address], ["alice", "operator", "portcullis.v1.JailService/BanIp", "192.0.2.7"]);
      call.record({ type: "BAN", resource: "jails/sshd/bans/192.0.2.1", attributes: { jail: "sshd", address: "192.0.2.1" } });
      call.record({ type: "BAN", resource: "jails/sshd/bans/192.0.2.2", attributes: { jail: "sshd", address: "192.0.2.2" } });
      return { jails: ["jails/sshd"] };
    });
    await invoker.invoke("portcullis.v1.JailService/BanIp", op, principal, {}, "grpc");
    const written = events.list(0, 10, {}).events;
    assert.deepEqual(written.map((event) => [event.type, event.resource, event.principal, event.origin]), [
      ["BAN", "jails/sshd/bans/192.0.2.1", "alice", "api"],
      ["BAN", "jails/sshd/bans/192.0.2.2", "alice", "api"],
    ]);
    assert.deepEqual(audit.page(0, 10, {}).map((record) => [record.method, record.code]), [["portcullis.v1.JailService/BanIp", "OK"]]);
    assert.equal(groups.length, 1, "events and audit record go in one commit");
  });

  it("a call that fails after recording writes no event, and is audited with its reason", async () => {
    const { invoker, events, audit } = setup();
    const op = operation("operator", () => "jails/sshd", async (_request: object, call) => {
      call.record({ type: "BAN", resource: "jails/sshd/bans/192.0.2.1", attributes: {} });
      throw new ServerError("ACTION_TIMEOUT", "the action did not report", {});
    });
    await assert.rejects(invoker.invoke("portcullis.v1.JailService/BanIp", op, principal, {}, "rest"), (error: ServerError) => error.reason === "ACTION_TIMEOUT");
    assert.deepEqual(events.list(0, 10, {}).events, []);
    assert.deepEqual(audit.page(0, 10, {}).map((record) => [record.code, record.detail]), [["UNAVAILABLE", "ACTION_TIMEOUT"]]);
  });
});
