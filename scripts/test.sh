#!/usr/bin/env bash
# Installs what is missing, then runs every check and test (real kernel, inside throwaway network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent typecheck
# Tests run the server as deployed: the compiled bundle (server/bin/portcullis falls back to tsx only when it is stale).
npm run --silent build
npm test
