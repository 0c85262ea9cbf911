// Blocks an address for ten minutes through Portcullis and prints the set's entries.
// Run from the repository root: node --import tsx examples/block-address.ts [address]
import { readFileSync } from "node:fs";
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { AddressFamily } from "@portcullis/sdk/gen/portcullis/v1/common.js";
import { Ipset, IpsetServiceClient, IpsetServiceService, IpsetType } from "@portcullis/sdk/gen/portcullis/v1/ipset.js";

const bundle = process.env.PORTCULLIS_BUNDLE ?? "var/pki/clients/admin"; // made by the first `serve`
const read = (file: string): Buffer => readFileSync(`${bundle}/${file}`);
const client = new IpsetServiceClient(process.env.PORTCULLIS_ADDRESS ?? "localhost:50051", credentials.createSsl(read("ca.crt"), read("client.key"), read("client.crt")));

/** Promise form of a unary RPC, typed from the generated service definition. */
type Rpc = typeof IpsetServiceService;
function call<K extends keyof Rpc>(method: K, request: Parameters<Rpc[K]["requestSerialize"]>[0]): Promise<ReturnType<Rpc[K]["responseDeserialize"]>> {
  const { path, requestSerialize, responseDeserialize } = IpsetServiceService[method] as Rpc[K] & { requestSerialize(value: typeof request): Buffer };
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(path, requestSerialize, responseDeserialize as (value: Buffer) => ReturnType<Rpc[K]["responseDeserialize"]>, request, (error, response) => (error ? reject(error) : resolve(response!))),
  );
}

const address = process.argv[2] ?? "192.0.2.100";
try {
  const ipset = Ipset.fromPartial({ type: IpsetType.IPSET_TYPE_HASH_IP, family: AddressFamily.ADDRESS_FAMILY_INET, defaultTimeout: 0, comments: true });
  await call("createIpset", { ipsetId: "blocklist", ipset, requestId: "" });
} catch (error) {
  if ((error as ServiceError).code !== status.ALREADY_EXISTS) throw error;
}
await call("addEntry", { parent: "ipsets/blocklist", entry: { name: "", element: address, timeout: 600, comment: "example" } });
const { matched } = await call("testEntry", { parent: "ipsets/blocklist", element: address });
const { entries } = await call("listEntries", { parent: "ipsets/blocklist", pageSize: 100, pageToken: "" });
console.log(`${address} blocked: ${matched}`);
for (const entry of entries) console.log(`${entry.element}\t${entry.timeout ?? "permanent"}s\t${entry.comment}`);
client.close();
