"""infra/gcp: the Terraform parses (python-hcl2), names entry points that exist with the right
signature, grants least privilege covering every call the stores make, and build.sh produces
a source directory that imports with no other cloud's SDK."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.terraform import load_terraform

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra" / "gcp"
MAIN = ROOT / "handlers" / "gcp" / "main.py"


@pytest.fixture(scope="module")
def tf() -> dict[str, Any]:
    return load_terraform(INFRA)


def _resolve(value: str, tf: dict[str, Any]) -> str:
    m = re.fullmatch(r"\$\{local\.(\w+)\}", value)
    return tf["locals"][m.group(1)] if m else value


def _decorated(path: Path) -> dict[str, str]:
    """Function name → functions_framework decorator (http / cloud_event)."""
    out = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            for dec in node.decorator_list:
                if (
                    isinstance(dec, ast.Attribute)
                    and isinstance(dec.value, ast.Name)
                    and (dec.value.id == "functions_framework")
                ):
                    out[node.name] = dec.attr
    return out


def test_functions_are_2nd_gen_with_existing_entry_points(tf: dict[str, Any]) -> None:
    functions = tf["resource"]["google_cloudfunctions2_function"]
    assert set(functions) == {"webhook", "resync"}
    decorated = _decorated(MAIN)
    for name, fn in functions.items():
        build = fn["build_config"][0]
        entry = _resolve(build["entry_point"], tf)
        assert build["runtime"].startswith("python3")
        # resync is pushed to by our own Pub/Sub subscription (dead-letter policy): the functions
        # framework turns the raw push into the CloudEvent the entry point takes.
        kind = "cloud_event" if name == "resync" else "http"
        assert decorated.get(entry) == kind, f"{name}: entry point {entry!r} is not a {kind} function"
    push = tf["resource"]["google_pubsub_subscription"]["resync"]
    assert "google_pubsub_topic.sync" in push["topic"]
    assert push["push_config"][0]["push_endpoint"].endswith("/${google_pubsub_topic.sync.id}")


def test_scheduler_publishes_a_resync_to_the_topic(tf: dict[str, Any]) -> None:
    job = tf["resource"]["google_cloud_scheduler_job"]["resync"]
    target = job["pubsub_target"][0]
    assert "google_pubsub_topic.sync" in target["topic_name"]
    assert "resync" in target["data"]


def test_webhook_secret_and_runtime_secrets_come_from_secret_manager(tf: dict[str, Any]) -> None:
    secrets = tf["resource"]["google_secret_manager_secret"]
    assert set(secrets) == {"webhook"}  # the age key is read (data), the fingerprint key made by the code
    assert set(tf["data"]["google_secret_manager_secret"]) == {"age_key"}
    webhook = tf["resource"]["google_cloudfunctions2_function"]["webhook"]["service_config"][0]
    assert [s["key"] for s in webhook["secret_environment_variables"]] == ["WEBHOOK_SECRET"]
    assert "SMF_HANDOFF_TOPIC" in webhook["environment_variables"]
    resync = tf["resource"]["google_cloudfunctions2_function"]["resync"]["service_config"][0]
    keys = {s["key"] for s in resync["secret_environment_variables"]}
    assert keys == {"WEBHOOK_SECRET", "SOPS_AGE_KEY"}
    text = (INFRA / "main.tf").read_text()
    assert "age_key" not in re.findall(r'resource "google_secret_manager_secret_version" "(\w+)"', text)


#: Every SDK method the stores call → the IAM permission it needs.
PERMISSIONS = {
    "list_secrets": "secretmanager.secrets.list", "get_secret": "secretmanager.secrets.get",
    "create_secret": "secretmanager.secrets.create", "update_secret": "secretmanager.secrets.update",
    "delete_secret": "secretmanager.secrets.delete", "add_secret_version": "secretmanager.versions.add",
    "access_secret_version": "secretmanager.versions.access",
    "list_secret_versions": "secretmanager.versions.list",
    "disable_secret_version": "secretmanager.versions.disable",
    "destroy_secret_version": "secretmanager.versions.destroy",
    "list_parameters": "parametermanager.parameters.list", "get_parameter": "parametermanager.parameters.get",
    "create_parameter": "parametermanager.parameters.create",
    "update_parameter": "parametermanager.parameters.update",
    "delete_parameter": "parametermanager.parameters.delete",
    "create_parameter_version": "parametermanager.parameterVersions.create",
    "list_parameter_versions": "parametermanager.parameterVersions.list",
    "get_parameter_version": "parametermanager.parameterVersions.get",
    "delete_parameter_version": "parametermanager.parameterVersions.delete",
    "render_parameter_version": "parametermanager.parameterVersions.render",
}  # fmt: skip


def test_least_privilege_covers_every_store_call(tf: dict[str, Any]) -> None:
    role = tf["resource"]["google_project_iam_custom_role"]["secret_sync"]
    granted = set(
        re.findall(r"\b((?:secretmanager|parametermanager)\.[A-Za-z]+\.[a-z]+)\b", str(role["permissions"]))
    )
    used = set()
    for module in ("gcp_secret_manager", "gcp_parameter_manager"):
        src = (ROOT / "core" / "stores" / f"{module}.py").read_text()
        used |= set(
            re.findall(r'"((?:list|get|create|update|delete|add|access|disable|destroy|render)_\w+)"', src)
        )
    used &= set(PERMISSIONS)
    assert used, "no store calls found"
    missing = {PERMISSIONS[m] for m in used} - granted
    assert not missing, f"custom role lacks {sorted(missing)}"
    assert not {p for p in granted if p.endswith(("setIamPolicy", "getIamPolicy"))}
    roles = [m["role"] for kind in ("google_project_iam_member",)
             for m in tf["resource"].get(kind, {}).values()]  # fmt: skip
    assert not {
        "roles/owner",
        "roles/editor",
        "roles/secretmanager.admin",
        "roles/parametermanager.admin",
    } & set(roles)


def test_build_produces_a_deployable_directory(tmp_path: Path) -> None:
    out = tmp_path / "fn"
    subprocess.run(["bash", str(INFRA / "build.sh"), str(out)], check=True, capture_output=True, timeout=60)
    assert (out / "main.py").is_file() and (out / "core" / "__init__.py").is_file()
    reqs = "\n".join(
        ln for ln in (out / "requirements.txt").read_text().lower().splitlines() if not ln.startswith("#")
    )
    assert "functions-framework" in reqs and "boto3" not in reqs and "azure" not in reqs
    script = (
        "import sys, json; sys.path.insert(0, '.'); import main; "
        "import core; print(json.dumps([main.__file__, core.__file__, "
        "[m for m in sys.modules if m.startswith(('boto', 'azure'))]]))"
    )
    res = subprocess.run([sys.executable, "-c", script], cwd=out, capture_output=True, text=True, timeout=60,
                         check=True)  # fmt: skip
    file, core_file, foreign = json.loads(res.stdout.strip().splitlines()[-1])
    assert Path(file).parent == out and Path(core_file).parent == out / "core"
    assert foreign == []
