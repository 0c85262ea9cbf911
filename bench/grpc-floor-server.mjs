// The concurrency row's reference (bench/run.ts): a grpc-js server with the same mTLS (the Portcullis server's own CA,
// certificate and key) and the same server options, whose one method answers at once with the request's bytes. Run
// with `node grpc-floor-server.mjs PKI_DIR`; prints the loopback address it listens on, then serves until killed.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Server, ServerCredentials } from "@grpc/grpc-js";

const pki = process.argv[2];
const same = (bytes) => bytes;
const definition = { echo: { path: "/portcullis.bench.Floor/Echo", requestStream: false, responseStream: false, requestSerialize: same, requestDeserialize: same, responseSerialize: same, responseDeserialize: same } };
const server = new Server({ "grpc.keepalive_permit_without_calls": 1, "grpc.enable_channelz": 0 });
server.addService(definition, { echo: (call, callback) => callback(null, call.request) });
const credentials = ServerCredentials.createSsl(readFileSync(join(pki, "ca.crt")), [{ private_key: readFileSync(join(pki, "server.key")), cert_chain: readFileSync(join(pki, "server.crt")) }], true);
server.bindAsync("127.0.0.1:0", credentials, (error, port) => {
  if (error) throw error;
  process.stdout.write(`127.0.0.1:${port}\n`);
});
