"""Cold start: what the Lambda function's push path loads, in a fresh interpreter.

Not timed (timings are bench/bench_coldstart.py's); this pins the modules whose absence the
cold-start figures in docs/benchmarks.md rely on: no X-Ray SDK unless tracing is on, no
powertools event-handler resolver, no other cloud's SDK, none of the heavy optional
libraries the dev environment happens to have installed (rich, pydantic, ...).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Packages a push must never load with tracing off (with their submodules). `google` and
#: `google.cloud` themselves are not listed: the dev venv's functions-framework .pth creates
#: those empty namespace modules at interpreter start; every Google library lives below them.
FORBIDDEN = ("aws_xray_sdk", "rich", "pydantic", "azure", "grpc", "moto", "requests", "google.api_core",
             "google.auth", "google.protobuf", "aws_lambda_powertools.event_handler",
             "aws_lambda_powertools.utilities.parser")  # fmt: skip

# The push path as bench/bench_coldstart.py imports it, plus loading a config (a push parses
# one: YAML, the registry's store options) and the dotenv SOPS format a push decrypts.
SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import handlers.aws_lambda
import core.intake, core.sync, core.stores.aws_secrets_manager, core.stores.aws_parameter_store
import core.sops, core.sops.formats.dotenv, core.git_fetch
from core.config import parse_config_text
parse_config_text(sys.argv[2])
print(json.dumps(sorted(sys.modules)))
"""

CONFIG = """\
apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata: {name: orders-dev}
spec:
  sourceRef: {url: "https://github.com/acme/orders.git", branch: main}
  provider: {type: aws, aws: {region: eu-west-1}}
  secrets: {environment: dev}
  configs: {enabled: true}
"""


def loaded(**env: str) -> list[str]:
    base = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "eu-west-1", "LANG": "C.UTF-8",
            "AWS_LAMBDA_FUNCTION_NAME": "secret-manager-functions-prod-webhook",
            "POWERTOOLS_TRACE_DISABLED": "true"}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT), CONFIG], capture_output=True, text=True,
                         env={**base, **env}, cwd=str(ROOT), timeout=120, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def forbidden(modules: list[str]) -> list[str]:
    return [m for m in modules
            if m.startswith("google.cloud.") or any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]  # fmt: skip


def test_push_path_loads_no_tracing_sdk_resolver_or_other_cloud() -> None:
    modules = loaded(SMF_TRACING="false")
    assert forbidden(modules) == []
    # what the push does need is there: the check above is not vacuous
    assert {"aws_lambda_powertools.logging", "aws_lambda_powertools.metrics", "yaml"} <= set(modules)
    # the SOPS formats a dotenv push does not use stay unloaded
    assert not {"core.sops.formats.ini", "core.sops.formats.yaml_emit", "core.sops.formats.binary"} & set(
        modules
    )


def test_tracing_on_loads_the_xray_sdk() -> None:
    """The same check sees the X-Ray SDK as soon as tracing is asked for."""
    modules = loaded(SMF_TRACING="true", POWERTOOLS_TRACE_DISABLED="false")
    assert "aws_xray_sdk" in forbidden(modules)
