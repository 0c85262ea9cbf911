// A batch cut short by kill -9 is all or nothing once the server is back: the kernel and the store hold none of it or
// all of it, and agree; a retry with the batch's request_id applies it at most once.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { AddressFamily } from "../../server/src/gen/portcullis/v1/common.js";
import { IpsetType } from "../../server/src/gen/portcullis/v1/ipset.js";
import type { IpsetTestClient } from "../harness/grpc-clients.js";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";

const N = 200_000;
const elements = Array.from({ length: N }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);

describe("a batch cut by kill -9: none or all of it after the restart", () => {
  let f: ServerFixture;
  let client: IpsetTestClient;
  before(async () => {
    f = await startServerFixture();
    client = f.client;
  });
  after(async () => f?.close());

  const remainingTimeout = (set: string, element: string): number =>
    Number(new RegExp(`^add ${set} ${element.replace(/\./g, "\\.")} timeout (\\d+)$`, "m").exec(f.netns.exec("ipset", ["save", set]))?.[1] ?? -1);

  for (const delay of [100, 400, 800, 1300, 4000]) {
    it(`killed ${delay} ms into a batch of ${N}`, async () => {
      const set = `crash${delay}`;
      await client.call("createIpset", { ipsetId: set, ipset: { name: "", type: IpsetType.IPSET_TYPE_HASH_IP, typeName: "", family: AddressFamily.ADDRESS_FAMILY_INET, hashsize: 0, maxelem: 0, comments: false, range: "", memoryBytes: 0, references: 0, entryCount: 0, managed: false, defaultTimeout: 0 }, requestId: "" });
      const request = { parent: `ipsets/${set}`, entries: [], elements, timeout: 600, comment: "", requestId: `batch-${set}` };
      const first = client.call("batchAddEntries", request).then(() => "acknowledged", (error: { code?: number }) => `failed ${error.code}`);
      await sleep(delay);
      await f.server.kill("SIGKILL");
      const outcome = await first;
      await f.server.restart();
      client = f.clientAs("admin");

      const kernel = f.netns.setEntries(set);
      const listed = (await client.call("listEntries", { parent: `ipsets/${set}`, pageSize: 1, pageToken: "", filter: "" })).totalSize;
      assert.ok(kernel === 0 || kernel === N, `killed after ${delay} ms (${outcome}): the kernel holds ${kernel} entries, not 0 or ${N}`);
      assert.equal(listed, kernel, "the store agrees with the kernel");
      assert.equal((await client.call("getIpset", { name: `ipsets/${set}` })).entryCount, kernel);
      if (outcome === "acknowledged") assert.equal(kernel, N, "an acknowledged batch survives");

      // The retry: applied now if it was rolled back, answered from the first time (not applied again) if not.
      const before = kernel === N ? remainingTimeout(set, "10.0.0.1") : -1;
      if (kernel === N) await sleep(1100);
      const retried = await client.call("batchAddEntries", request);
      assert.equal(retried.addedCount, N);
      assert.equal(f.netns.setEntries(set), N);
      assert.equal((await client.call("listEntries", { parent: `ipsets/${set}`, pageSize: 1, pageToken: "", filter: "" })).totalSize, N);
      if (before > 0) assert.ok(remainingTimeout(set, "10.0.0.1") < before, "the retry of a batch that was applied does not apply it again (no refreshed timeouts)");
      // The next restart need not read this set back.
      await client.call("deleteIpset", { name: `ipsets/${set}` });
    });
  }
});
