import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { loadPackageDefinition, type Client, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";

const require = createRequire(import.meta.url);
const BIN = resolve(import.meta.dirname, "../../server/bin/portcullis");
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

  it("portcullis healthcheck (the image's HEALTHCHECK) exits 0 on SERVING, 1 when the server is unreachable", async () => {
    const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      new Promise((resolvePromise) => execFile(BIN, ["healthcheck", "--data-dir", f.server.dataDir, ...args], { encoding: "utf8" }, (error, stdout, stderr) =>
        resolvePromise({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr })));
    const serving = await run(["--address", f.server.address]);
    assert.deepEqual([serving.code, serving.stdout], [0, `${f.server.address}: SERVING\n`]);
    const jail = await run(["--address", f.server.address, "--service", "portcullis.v1.JailService"]);
    assert.equal(jail.code, 0);
    const down = await run(["--address", "127.0.0.1:1"]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^portcullis: 127\.0\.0\.1:1: .*UNAVAILABLE/);
  });

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
