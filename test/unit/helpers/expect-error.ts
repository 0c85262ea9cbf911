import assert from "node:assert/strict";
import { ServerError, type Reason } from "../../../server/src/errors.js";

/** Asserts that fn throws a ServerError with this reason and exactly this metadata (and a message matching). */
export function expectError(fn: () => unknown, reason: Reason, metadata: Record<string, string>, message?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ServerError, `expected a ServerError, got ${String(error)}`);
    assert.equal(error.reason, reason, error.message);
    assert.deepEqual({ ...error.metadata }, metadata);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  });
}
