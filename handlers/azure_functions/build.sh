#!/usr/bin/env bash
# Assemble the Azure Functions app package: function_app.py, host.json, requirements.txt
# and the core/ package side by side (the layout the Python v2 programming model expects),
# zipped for `az functionapp deployment source config-zip --build-remote true`.
#
#   handlers/azure_functions/build.sh [OUT_DIR]      # default: dist/azure-functions
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/dist/azure-functions}"
rm -rf "$out"
mkdir -p "$out"
cp "$here/function_app.py" "$here/host.json" "$here/.funcignore" "$out/"
# The remote build (Oryx) pip-installs requirements.txt: ship the lock (pins + hashes; ./dev lock).
cp "$here/requirements.lock" "$out/requirements.txt"
if [ -f "$here/smf-config.yaml" ]; then cp "$here/smf-config.yaml" "$out/"; fi
(cd "$root" && find core -name '*.py' -not -path '*/__pycache__/*' -print0 | xargs -0 -I{} install -D -m 0644 {} "$out/{}")
(cd "$out" && python3 -m zipfile -c "../azure-functions.zip" .)
echo "package: $out  zip: $(dirname "$out")/azure-functions.zip"
