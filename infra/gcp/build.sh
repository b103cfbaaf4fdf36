#!/usr/bin/env bash
# Assemble the Cloud Run functions source directory: main.py at the top (the runtime loads
# main.py), the core package next to it, and the GCP-only requirements (no AWS/Azure SDKs)
# from the lock (exact versions with hashes: Cloud Build's pip installs exactly those).
#   infra/gcp/build.sh [OUT_DIR]     (default: build/gcp-function at the repository root)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${1:-$ROOT/build/gcp-function}"
rm -rf "$OUT"
mkdir -p "$OUT"
cp "$ROOT/handlers/gcp/main.py" "$OUT/main.py"
cp -r "$ROOT/core" "$OUT/core"
find "$OUT/core" -name '__pycache__' -type d -prune -exec rm -rf {} +
cp "$ROOT/infra/gcp/requirements.lock" "$OUT/requirements.txt"  # refresh: ./dev lock
echo "$OUT"
