import { Netns } from "./netns.js";
import { PortcullisProcess } from "./server.js";
import { IpsetTestClient } from "./ipset-client.js";

/** A namespace with a Portcullis server managing it and an admin client; `close` removes all of it. */
export interface ServerFixture {
  readonly netns: Netns;
  readonly server: PortcullisProcess;
  readonly client: IpsetTestClient;
  clientAs(name: string): IpsetTestClient;
  close(): Promise<void>;
}

export async function startServerFixture(netns: Netns = new Netns(), env: Record<string, string> = {}): Promise<ServerFixture> {
  let server: PortcullisProcess | undefined;
  try {
    server = await PortcullisProcess.start(netns.name, { env });
  } catch (error) {
    netns.destroy();
    throw error;
  }
  const clients: IpsetTestClient[] = [];
  const clientAs = (name: string): IpsetTestClient => {
    const client = new IpsetTestClient(server!.address, server!.credentials(name));
    clients.push(client);
    return client;
  };
  const client = clientAs("admin");
  return {
    netns,
    server,
    client,
    clientAs,
    async close() {
      for (const c of clients) c.close();
      await server!.stop();
      netns.destroy();
    },
  };
}
