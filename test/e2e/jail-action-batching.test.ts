// The Portcullis fail2ban action, loaded into a real fail2ban-server, talking to a stand-in for Portcullis's action
// socket that records each request: a ban that comes alone is handed over by itself, at once; the bans made while a
// request is out go in few, full requests (each request costs fail2ban's jail thread a round trip and the GIL). How
// few on a machine of a given speed is the jail benchmark's business (bench/jails.ts), not this test's.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { Fail2banServer } from "../harness/fail2ban.js";
import { waitFor } from "../harness/wait.js";

interface Request {
  readonly op: string;
  readonly items?: ReadonlyArray<{ op: string; ip: string }>;
}

describe("the Portcullis fail2ban action batches what fail2ban bans at once", () => {
  let fail2ban: Fail2banServer;
  let stub: Server;
  const requests: Request[] = [];
  /** While set, the next batch request is answered only when the test says (as a Portcullis busy enforcing would). */
  let hold: { answer?: () => void } | undefined;
  const items = (): number => requests.reduce((sum, request) => sum + (request.items?.length ?? 0), 0);

  before(async () => {
    let socket = "";
    fail2ban = new Fail2banServer({
      expectedJails: "batching",
      jails: ({ dir, mailLog }) => {
        socket = join(dir, "stub.sock");
        return ["[DEFAULT]", "backend = polling", `logpath = ${mailLog}`, "filter = dovecot", "[batching]", "enabled = true", "bantime = 600", `action = portcullis.py[socket="${socket}", timeout="60"]`, ""].join("\n");
      },
    });
    // Answers every request as Portcullis does when all is enforced.
    stub = createServer((connection) => {
      let buffer = "";
      connection.on("data", (chunk) => {
        buffer += chunk.toString();
        for (let at = buffer.indexOf("\n"); at >= 0; at = buffer.indexOf("\n")) {
          const request = JSON.parse(buffer.slice(0, at)) as Request & { id: number };
          buffer = buffer.slice(at + 1);
          // Bans and unbans come in "batch" requests (the jail's "start" may come at any time after fail2ban answers).
          if (request.op === "batch") requests.push(request);
          const answer = (): void => void connection.write(`${JSON.stringify({ id: request.id, ok: true })}\n`);
          if (request.op === "batch" && hold !== undefined && hold.answer === undefined) hold.answer = answer;
          else answer();
        }
      });
    });
    await new Promise<void>((resolve) => stub.listen(socket, resolve));
    await fail2ban.start();
  });
  after(async () => {
    await fail2ban?.destroy();
    stub?.close();
  });

  it("hands a ban that comes alone over by itself", async () => {
    requests.length = 0;
    assert.equal(await fail2ban.ask(["set", "batching", "banip", "192.0.2.1"]), 1);
    await waitFor("the ban handed over", () => items() >= 1, { every: 5 });
    assert.deepEqual(requests.map((request) => request.items?.map((item) => item.ip)), [["192.0.2.1"]]);
  });

  it("hands 2,000 bans from four banip requests, made while a request is out, over in full requests, each ban once", async () => {
    requests.length = 0;
    const addresses = Array.from({ length: 2000 }, (_, i) => `10.7.${i >> 8}.${i & 255}`);
    // The first request stays out (the action waits up to its timeout, 60 s here) while fail2ban bans them all: its
    // action queues each ban before banip answers.
    hold = {};
    for (let i = 0; i < addresses.length; i += 500) assert.equal(await fail2ban.ask(["set", "batching", "banip", ...addresses.slice(i, i + 500)]), 500);
    const held = hold;
    hold = undefined;
    held.answer?.();
    await waitFor(() => `every ban handed over (${items()} so far)`, () => items() >= addresses.length, { every: 10 });
    const handed = requests.flatMap((request) => request.items?.map((item) => item.ip) ?? []);
    assert.deepEqual([...handed].sort(), [...addresses].sort());
    // What the first request did not take went in full requests of 500 (the last one takes the rest).
    const sizes = requests.map((request) => request.items?.length ?? 0);
    assert.ok(sizes.every((size) => size <= 500) && sizes.length <= addresses.length / 500 + 1, `requests of ${sizes.join(", ")} bans`);
  });
});
