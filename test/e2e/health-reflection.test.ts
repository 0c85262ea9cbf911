import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { loadPackageDefinition, type Client, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";

const require = createRequire(import.meta.url);
const reflectionProto = require.resolve("@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto");

type Ctor = new (address: string, credentials: ReturnType<ServerFixture["server"]["credentials"]>, options?: object) => Client & Record<string, (...args: unknown[]) => unknown>;
function serviceClient(protoFile: string, path: string[]): Ctor {
  let node: unknown = loadPackageDefinition(loadSync(protoFile, { keepCase: true, enums: String }));
  for (const key of path) node = (node as Record<string, unknown>)[key];
  return node as Ctor;
}

describe("generic gRPC tools work: standard health service and server reflection", () => {
  let f: ServerFixture;
  before(async () => (f = await startServerFixture()));
  after(async () => f?.close());

  it("answers grpc.health.v1.Health/Check with SERVING (over mTLS)", async () => {
    const Health = serviceClient(healthProtoPath, ["grpc", "health", "v1", "Health"]);
    const client = new Health(f.server.address, f.server.credentials(), { "grpc.ssl_target_name_override": "localhost" });
    try {
      for (const service of ["", "portcullis.v1.IpsetService"]) {
        const reply = await new Promise<{ status: string }>((resolve, reject) =>
          client.Check!({ service }, (error: ServiceError | null, response: { status: string }) => (error ? reject(error) : resolve(response))),
        );
        assert.equal(reply.status, "SERVING");
      }
    } finally {
      client.close();
    }
  });

  it("lists services and describes IpsetService through reflection (what grpcurl uses)", async () => {
    const Reflection = serviceClient(reflectionProto, ["grpc", "reflection", "v1", "ServerReflection"]);
    const client = new Reflection(f.server.address, f.server.credentials(), { "grpc.ssl_target_name_override": "localhost" });
    try {
      const ask = (request: object): Promise<Record<string, { service?: Array<{ name: string }>; file_descriptor_proto?: Buffer[] }>> =>
        new Promise((resolve, reject) => {
          const stream = client.ServerReflectionInfo!() as NodeJS.ReadWriteStream & { write(message: object): void };
          stream.on("data", (response: Record<string, never>) => {
            resolve(response);
            stream.end();
          });
          stream.on("error", reject);
          stream.write(request);
        });
      const services = await ask({ list_services: "*" });
      const names = services.list_services_response!.service!.map((service) => service.name);
      assert.ok(names.includes("portcullis.v1.IpsetService"), names.join(", "));
      assert.ok(names.includes("grpc.health.v1.Health"), names.join(", "));
      const file = await ask({ file_containing_symbol: "portcullis.v1.IpsetService" });
      const descriptors = file.file_descriptor_response!.file_descriptor_proto!.map((bytes) => Buffer.from(bytes).toString("latin1"));
      assert.ok(descriptors.some((text) => text.includes("BatchAddEntries") && text.includes("portcullis.v1")));
    } finally {
      client.close();
    }
  });
});
