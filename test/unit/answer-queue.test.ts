import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AnswerQueue, type Waiter } from "../../server/src/drivers/answer-queue.js";

interface Command extends Waiter<string> {
  readonly name: string;
}

/** A command whose outcome is recorded in `log` as "name: answer" or "name! error". */
function command(name: string, log: string[]): Command {
  return { name, resolve: (answer) => log.push(`${name}: ${answer}`), reject: (error) => log.push(`${name}! ${error.message}`) };
}

describe("answer queue", () => {
  it("gives answers to the commands in the order they were written", () => {
    const log: string[] = [];
    const queue = new AnswerQueue<Command, string>(60_000, () => assert.fail("no timeout"));
    queue.written(command("a", log));
    queue.written(command("b", log));
    assert.equal(queue.length, 2);
    assert.equal(queue.oldest?.name, "a");
    assert.equal(queue.answer("first"), true);
    assert.equal(queue.oldest?.name, "b");
    assert.equal(queue.answer("second"), true);
    assert.equal(queue.answer("unasked"), false, "an answer nobody waits for is reported");
    assert.deepEqual(log, ["a: first", "b: second"]);
    assert.equal(queue.length, 0);
  });

  it("refuses every waiting command, oldest first, with one error or one per command", () => {
    const log: string[] = [];
    const queue = new AnswerQueue<Command, string>(60_000, () => assert.fail("no timeout"));
    queue.written(command("a", log));
    queue.written(command("b", log));
    queue.rejectAll((item) => new Error(`died under ${item.name}`));
    queue.written(command("c", log));
    queue.rejectAll(new Error("gone"));
    assert.deepEqual(log, ["a! died under a", "b! died under b", "c! gone"]);
    assert.equal(queue.length, 0);
  });

  it("reports a command not answered within the deadline, and none that was answered", async () => {
    const log: string[] = [];
    const timedOut: string[] = [];
    let stuck!: () => void;
    const reported = new Promise<void>((resolve) => (stuck = resolve));
    const queue = new AnswerQueue<Command, string>(20, (item) => {
      timedOut.push(item.name);
      stuck();
    });
    queue.written(command("answered", log));
    queue.written(command("stuck", log));
    queue.answer("ok");
    // Both deadlines are the same length and started in this order: the answered one's would have fired first.
    await reported;
    assert.deepEqual(timedOut, ["stuck"]);
    queue.rejectAll(new Error("killed"));
    assert.deepEqual(log, ["answered: ok", "stuck! killed"]);
  });
});
