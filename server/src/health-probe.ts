// `portcullis healthcheck`: asks a running server's gRPC health service (grpc.health.v1) whether it is SERVING, over
// mTLS with a client bundle; the container image's HEALTHCHECK runs it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { credentials as grpcCredentials, loadPackageDefinition, type Client, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";

type HealthClient = Client & {
  check(request: { service: string }, options: { deadline: number }, callback: (error: ServiceError | null, reply?: { status: string }) => void): void;
};

/** SERVING, NOT_SERVING, … as the server answers; throws when it cannot be reached. */
export async function probeHealth(address: string, bundleDir: string, service = "", timeoutMs = 5000): Promise<string> {
  const health = (loadPackageDefinition(loadSync(healthProtoPath, { enums: String })) as unknown as { grpc: { health: { v1: { Health: new (address: string, credentials: ReturnType<typeof grpcCredentials.createSsl>, options: object) => HealthClient } } } }).grpc.health.v1.Health;
  const pem = (file: string): Buffer => readFileSync(join(bundleDir, file));
  const client = new health(address, grpcCredentials.createSsl(pem("ca.crt"), pem("client.key"), pem("client.crt")), { "grpc.ssl_target_name_override": "localhost" });
  try {
    return await new Promise<string>((resolve, reject) => {
      client.check({ service }, { deadline: Date.now() + timeoutMs }, (error, reply) => (error ? reject(error) : resolve(reply?.status ?? "UNKNOWN")));
    });
  } finally {
    client.close();
  }
}

/** The address to probe for a listen address: a wildcard listener is asked on loopback. */
export function probeAddress(listen: string): string {
  return listen.replace(/^0\.0\.0\.0:/, "127.0.0.1:").replace(/^\[::\]:/, "[::1]:");
}
