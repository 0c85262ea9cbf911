import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Metadata, status } from "@grpc/grpc-js";
import { Disposable } from "@portcullis/sdk/base/disposable.js";
import { EventEmitter } from "@portcullis/sdk/base/event.js";
import { CancellationToken, CancellationTokenSource } from "@portcullis/sdk/base/cancellation.js";
import { PortcullisError } from "@portcullis/sdk/errors.js";
import { toGrpcError } from "../../server/src/grpc/grpc-errors.js";
import { ServerError } from "../../server/src/errors.js";

describe("SDK primitives (VS Code style)", () => {
  it("Disposable: disposes once; from() disposes all, even after one throws", () => {
    let count = 0;
    const one = new Disposable(() => count++);
    one.dispose();
    one.dispose();
    assert.equal(count, 1);
    const order: string[] = [];
    const all = Disposable.from({ dispose: () => order.push("a") }, { dispose: () => { throw new Error("b"); } }, { dispose: () => order.push("c") });
    assert.throws(() => all.dispose(), /^Error: b$/);
    assert.deepEqual(order, ["a", "c"]);
  });

  it("EventEmitter: listeners in order, with thisArgs; unsubscribe; a throwing listener does not stop the others; first/last hooks", () => {
    const hooks: string[] = [];
    const errors: unknown[] = [];
    const emitter = new EventEmitter<number>({ onFirstListenerAdd: () => hooks.push("first"), onLastListenerRemove: () => hooks.push("last"), onListenerError: (error) => errors.push(error) });
    const seen: string[] = [];
    const owner = { name: "owner" };
    const bag: Disposable[] = [];
    const a = emitter.event(function (this: typeof owner, value) { seen.push(`${this.name}:${value}`); }, owner, bag);
    emitter.event(() => { throw new Error("boom"); });
    emitter.event((value) => seen.push(`b:${value}`));
    emitter.fire(1);
    assert.deepEqual(seen, ["owner:1", "b:1"]);
    assert.equal(errors.length, 1);
    assert.equal(bag[0], a);
    a.dispose();
    emitter.fire(2);
    assert.deepEqual(seen, ["owner:1", "b:1", "b:2"]);
    emitter.dispose();
    emitter.fire(3);
    assert.deepEqual(seen, ["owner:1", "b:1", "b:2"], "nothing after dispose");
    assert.deepEqual(hooks, ["first", "last"]);
    assert.equal(emitter.hasListeners, false);
  });

  it("CancellationTokenSource: cancel fires once; late listeners hear it; parents cancel children; None never cancels", async () => {
    const source = new CancellationTokenSource();
    let heard = 0;
    source.token.onCancellationRequested(() => heard++);
    assert.equal(source.token.isCancellationRequested, false);
    source.cancel();
    source.cancel();
    assert.equal(source.token.isCancellationRequested, true);
    assert.equal(heard, 1);
    let late = 0;
    source.token.onCancellationRequested(() => late++);
    await sleep(5);
    assert.equal(late, 1);
    const parent = new CancellationTokenSource();
    const child = new CancellationTokenSource(parent.token);
    parent.cancel();
    assert.equal(child.token.isCancellationRequested, true);
    assert.equal(new CancellationTokenSource(CancellationToken.Cancelled).token.isCancellationRequested, true);
    assert.equal(CancellationToken.None.isCancellationRequested, false);
  });

  it("PortcullisError: code, message, reason and metadata from the server's status details; instanceof works", () => {
    const wire = toGrpcError(new ServerError("JAIL_NOT_FOUND", "there is no jail nojail; fail2ban has dovecot", { jail: "nojail" }));
    const error = PortcullisError.fromServiceError({ code: wire.code, details: wire.details, metadata: wire.metadata as Metadata });
    assert.ok(error instanceof PortcullisError && error instanceof Error);
    assert.deepEqual([error.code, error.reason, error.message, error.metadata], ["NotFound", "JAIL_NOT_FOUND", "there is no jail nojail; fail2ban has dovecot", { jail: "nojail" }]);
    const bare = PortcullisError.fromServiceError({ code: status.UNAVAILABLE, details: "No connection established", metadata: new Metadata() });
    assert.deepEqual([bare.code, bare.reason], ["Unavailable", ""]);
  });
});
