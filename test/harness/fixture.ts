import { Netns } from "./netns.js";
import { PortcullisProcess } from "./server.js";
import { FirewallTestClient, IpsetTestClient } from "./grpc-clients.js";

/** A namespace with a Portcullis server managing it and an admin client; `close` removes all of it. */
export interface ServerFixture {
  readonly netns: Netns;
  readonly server: PortcullisProcess;
  readonly client: IpsetTestClient;
  /** FirewallService as admin. */
  readonly firewall: FirewallTestClient;
  clientAs(name: string): IpsetTestClient;
  firewallAs(name: string): FirewallTestClient;
  close(): Promise<void>;
}

export async function startServerFixture(netns: Netns = new Netns(), env: Record<string, string> = {}, extraArgs: string[] = []): Promise<ServerFixture> {
  let server: PortcullisProcess | undefined;
  try {
    server = await PortcullisProcess.start(netns.name, { env, extraArgs });
  } catch (error) {
    netns.destroy();
    throw error;
  }
  const clients: Array<{ close(): void }> = [];
  const clientAs = (name: string): IpsetTestClient => {
    const client = new IpsetTestClient(server!.address, server!.credentials(name));
    clients.push(client);
    return client;
  };
  const firewallAs = (name: string): FirewallTestClient => {
    const client = new FirewallTestClient(server!.address, server!.credentials(name));
    clients.push(client);
    return client;
  };
  const client = clientAs("admin");
  const firewall = firewallAs("admin");
  return {
    netns,
    server,
    client,
    firewall,
    clientAs,
    firewallAs,
    async close() {
      for (const c of clients) c.close();
      await server!.stop();
      netns.destroy();
    },
  };
}
