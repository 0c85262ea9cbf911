#!/usr/bin/env bash
# Regenerates everything under sdk/src/gen from proto/ (the contract). Never edit gen/ by hand.
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
# The descriptor set the server serves through gRPC reflection (grpcurl, grpc_health_probe).
buf build -o "$out/portcullis.binpb"
