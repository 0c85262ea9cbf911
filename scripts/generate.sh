#!/usr/bin/env bash
# Regenerates everything under sdk/src/gen from proto/ (the contract). Never edit gen/ by hand. server/src/gen is a link
# to it: the server's path to the generated code, which the SDK does not export.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-sdk/src/gen}
buf lint
if [ "$out" = sdk/src/gen ]; then
  buf generate
else
  # Freshness check: generate into another folder, leaving the committed code alone.
  buf generate --template "$(sed "s#out: sdk/src/gen#out: $out#" buf.gen.yaml)"
fi
# google/api's HTTP annotations only shape the REST projection (read from the descriptor set below): nothing imports
# the TypeScript ts-proto makes of them and of descriptor.proto.
rm -rf "$out/google/api" "$out/google/protobuf/descriptor.ts"
# The descriptor set the server serves through gRPC reflection (grpcurl, grpc_health_probe).
buf build -o "$out/portcullis.binpb"
# The REST projection (OpenAPI 3.1) of the same contract.
# Its TypeScript types (openapi-typescript), for code and tests that speak REST: a spec change that breaks them fails
# to compile.
if [ "$out" = sdk/src/gen ]; then
  node --import tsx scripts/generate-openapi.ts "$out/portcullis.binpb" openapi/portcullis.v1.yaml
  openapi-typescript openapi/portcullis.v1.yaml -o server/src/rest/gen/openapi.d.ts --silent
else
  node --import tsx scripts/generate-openapi.ts "$out/portcullis.binpb" "$out/openapi.yaml"
  openapi-typescript "$out/openapi.yaml" -o "$out/openapi.d.ts" --silent
fi
