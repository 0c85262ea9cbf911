import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { EventType, type Event } from "../../server/src/gen/portcullis/v1/events.js";
import { startJailHosts, type JailHosts } from "./jail-hosts.js";
import { EventTestClient, FleetTestClient, IpsetTestClient, JailTestClient } from "./grpc-clients.js";
import type { NatsCluster } from "./nats.js";

/** One Portcullis node of a test fleet: a victim running fail2ban (jail `dovecot`, Portcullis action) and an attacker. */
export interface FleetHost {
  readonly name: string;
  readonly setup: JailHosts;
  jails: JailTestClient;
  ipsets: IpsetTestClient;
  events: EventTestClient;
  fleet: FleetTestClient;
  /** Stops the server (SIGTERM), keeping its data dir, namespaces and fail2ban. */
  stop(): Promise<void>;
  /** Starts it again on the same data dir (new ports) and reconnects the clients. */
  restart(): Promise<void>;
  /** Events of a type recorded so far (ListEvents). */
  listEvents(type: EventType): Promise<Event[]>;
  /** The server's last log lines about the fleet (for a test's failure message). */
  fleetLog(): string;
}

export interface Fleet {
  readonly hosts: FleetHost[];
  close(): Promise<void>;
}

/**
 * Portcullis nodes sharing bans through the NATS cluster, each managing its own victim namespace. `cluster` settings
 * beyond servers and node go into every node's config (e.g. share lists, tls), or those a function returns for the
 * node's name (e.g. its own credentials). `close` removes all of it, also when starting failed half way.
 */
export async function startFleet(nats: NatsCluster, names: readonly string[], cluster: Record<string, unknown> | ((name: string) => Record<string, unknown>) = {}, bantime = 600, linkWithinMs = 30_000): Promise<Fleet> {
  const dir = mkdtempSync(join(tmpdir(), "pc-fleet-"));
  const hosts: FleetHost[] = [];
  const close = async (): Promise<void> => {
    for (const host of hosts) for (const client of [host.jails, host.ipsets, host.events, host.fleet]) client.close();
    await Promise.all(hosts.map((host) => host.setup.close()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // The first host alone (a cold start compiles the server's TypeScript, which three at once on a small machine can
    // stretch past the server's start timeout), then the others together.
    const startHost = async (name: string, i: number): Promise<void> => {
      const config = join(dir, `${name}.yaml`);
      // Each node is given the servers starting from a different one, as a real fleet spreads its connections.
      const servers = nats.urls.map((_, j) => nats.urls[(i + j) % nats.urls.length]!);
      writeFileSync(config, JSON.stringify({ cluster: { servers, node: name, heartbeatSeconds: 1, ...(typeof cluster === "function" ? cluster(name) : cluster) } }));
      const setup = await startJailHosts(["maxretry = 5", "findtime = 600", `bantime = ${bantime}`], (socket) => `portcullis.py[socket="${socket}"]`, ["--config", config]);
      const server = setup.f.server;
      const host: FleetHost = {
        name,
        setup,
        jails: new JailTestClient(server.address, server.credentials()),
        ipsets: new IpsetTestClient(server.address, server.credentials()),
        events: new EventTestClient(server.address, server.credentials()),
        fleet: new FleetTestClient(server.address, server.credentials()),
        stop: () => server.kill("SIGTERM"),
        async restart() {
          await server.restart();
          for (const client of [host.jails, host.ipsets, host.events, host.fleet]) client.close();
          host.jails = new JailTestClient(server.address, server.credentials());
          host.ipsets = new IpsetTestClient(server.address, server.credentials());
          host.events = new EventTestClient(server.address, server.credentials());
          host.fleet = new FleetTestClient(server.address, server.credentials());
        },
        async listEvents(type) {
          return (await host.events.call("listEvents", { afterSequence: 0, pageSize: 10_000, types: [type], resourcePrefix: "", principal: "", jail: "", address: "" })).events;
        },
        fleetLog: () => server.output.split("\n").filter((line) => /fleet|nats|jetstream/i.test(line)).slice(-20).join("\n"),
      };
      hosts.push(host);
    };
    await startHost(names[0]!, 0);
    const started = await Promise.allSettled(names.slice(1).map((name, i) => startHost(name, i + 1)));
    const failed = started.find((result) => result.status === "rejected");
    if (failed !== undefined) throw failed.reason;
    hosts.sort((a, b) => names.indexOf(a.name) - names.indexOf(b.name));
    // Linked once every node's heartbeat is in the bucket (linkWithinMs 0: do not wait).
    for (const deadline = Date.now() + linkWithinMs; linkWithinMs > 0; await sleep(100)) {
      const listed = await hosts[0]!.fleet.call("listNodes", {}).catch(() => ({ nodes: [] }));
      if (names.every((name) => listed.nodes.some((node) => node.name === `nodes/${name}` && node.online))) break;
      if (Date.now() > deadline) throw new Error(`the fleet did not link: ${JSON.stringify(listed.nodes.map((node) => node.name))}`);
    }
    return { hosts, close };
  } catch (error) {
    await close();
    throw error;
  }
}
