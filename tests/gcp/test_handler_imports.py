"""Cold start: the GCP function imports no other cloud's SDK (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("main", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
import core.stores.gcp_secret_manager, core.stores.gcp_parameter_manager  # the stores, lazily
print(json.dumps({
    "entry_points": [n for n in ("webhook", "resync") if callable(getattr(mod, n, None))],
    "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore", "azure", "aiobotocore")),
    "gcp_sdk_loaded": any(m.startswith("google.cloud.secretmanager") for m in sys.modules),
}))
"""


def test_gcp_function_imports_only_its_own_cloud() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT / "handlers" / "gcp" / "main.py")],
                         capture_output=True, text=True, cwd=str(ROOT), check=True, timeout=120)  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["entry_points"] == ["webhook", "resync"]
    assert result["modules"] == []
    assert result["gcp_sdk_loaded"] is False  # SDKs load when a client is first made
