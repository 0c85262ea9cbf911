#!/usr/bin/env bash
# Installs what is missing, then runs every check and test (real kernel, inside throwaway network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent typecheck
npm test
