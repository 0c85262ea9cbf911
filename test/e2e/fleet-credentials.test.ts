import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { VictimAttacker } from "../harness/netns.js";
import { canConnect } from "../harness/tcp.js";
import { NatsCluster } from "../harness/nats.js";
import { NatsOperator } from "../harness/nats-operator.js";
import { startFleet, type Fleet } from "../harness/fleet-hosts.js";
import { rejectsWith } from "../harness/grpc-clients.js";
import { waitFor } from "../harness/wait.js";

const { victimV4, attackerV4 } = VictimAttacker;

/**
 * The permissions docs/fleet.md gives a node's NATS user (default subject and bucket names). Responses (`resp`, nsc's
 * --allow-pub-response) cover both acknowledging stream messages and answering ban searches: without them the search
 * misses the other node (and acks would need `$JS.ACK.>`).
 */
const nodePermissions = (node: string) => ({
  pub: { allow: ["portcullis.fleet.>", "$JS.API.>", `$KV.portcullis-fleet-nodes.${node}`] },
  sub: { allow: ["_INBOX.>", "portcullis.fleet.search"] },
  resp: { max: 1 },
});

describe("fleet mode with NATS credentials (decentralised JWT auth): each node has its own user credentials file", () => {
  const dir = mkdtempSync(join(tmpdir(), "pc-nats-creds-"));
  let operator: NatsOperator;
  let nats: NatsCluster | undefined;
  let fleet: Fleet | undefined;
  let stranger: Fleet | undefined;

  before(async () => {
    operator = await NatsOperator.create(dir);
    nats = await NatsCluster.start(1, undefined, operator.serverConfig);
  });
  after(async () => {
    await stranger?.close();
    await fleet?.close();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("two nodes whose users hold only the documented permissions link, share a ban enforced in the other's kernel, and answer ListNodes and SearchBans", async () => {
    const creds: Record<string, string> = { east: await operator.credentials("east", nodePermissions("east")), west: await operator.credentials("west", nodePermissions("west")) };
    fleet = await startFleet(nats!, ["east", "west"], (name) => ({ credentials: creds[name] }));
    const [east, west] = fleet.hosts as [Fleet["hosts"][0], Fleet["hosts"][0]];
    assert.equal(await canConnect(west.setup.hosts.attacker.name, victimV4, 143), true);

    await east.jails.call("banIp", { jail: "jails/dovecot", address: attackerV4, fleet: true });
    await waitFor("the ban made at east enforced at west", async () => !(await canConnect(west.setup.hosts.attacker.name, victimV4, 143)), { every: 100 });
    // Waits for every online host's answer, at most 10 s (the longest allowed), so a slow host still answers in time.
    const found = await east.fleet.call("searchBans", { address: attackerV4, timeoutMs: 10_000 });
    assert.deepEqual(found.answeredNodes, ["nodes/east", "nodes/west"]);
    assert.deepEqual(found.bans.map((ban) => ban.node).sort(), ["nodes/east", "nodes/west"]);
    // West acknowledged the message (its lag is 0 again): an ack is a reply, allowed by `resp`.
    let westView: unknown;
    await waitFor(() => `west's heartbeat showing the ban applied and nothing pending: ${JSON.stringify(westView)}`, async () => {
      const view = (await east.fleet.call("listNodes", {})).nodes.find((node) => node.name === "nodes/west");
      westView = view;
      return view?.online === true && view.lag === 0 && view.bansApplied >= 1;
    }, { every: 200 });

    await west.jails.call("unbanIp", { jail: "jails/dovecot", address: attackerV4, fleet: true });
    await waitFor("the unban made at west letting the attacker in at east", () => canConnect(east.setup.hosts.attacker.name, victimV4, 143), { every: 100 });
  });

  it("a node whose credentials are signed by an account the servers do not know is refused: fleet views answer UNAVAILABLE", async () => {
    const forged = await operator.credentials("forged", nodePermissions("forged"), NatsOperator.strangerAccount());
    await assert.rejects(startFleet(nats!, ["forged"], { credentials: forged }, 600, 5_000), /did not link/);
    stranger = await startFleet(nats!, ["forged"], { credentials: forged }, 600, 0);
    await rejectsWith(stranger.hosts[0]!.fleet.call("listNodes", {}), status.UNAVAILABLE, "FLEET_UNAVAILABLE");
  });
});
