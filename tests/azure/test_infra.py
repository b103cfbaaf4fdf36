"""infra/azure: the Terraform parses (python-hcl2), names function entry points, a route and
a queue that exist in the Functions app, grants exactly the two roles the stores need and the
one the fan-out run table needs, and
handlers/azure_functions/build.sh produces a package that imports on its own."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.terraform import load_terraform

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra" / "azure"
APP_DIR = ROOT / "handlers" / "azure_functions"


@pytest.fixture(scope="module")
def tf() -> dict[str, Any]:
    return load_terraform(INFRA)


@pytest.fixture(scope="module")
def app() -> Any:
    spec = importlib.util.spec_from_file_location("smf_azure_function_app_infra", APP_DIR / "function_app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def declared(app: Any) -> dict[str, Any]:
    """Function name → function, as the host indexes them (get_functions may run once)."""
    return {f.get_function_name(): f for f in app.app.get_functions()}


def _one(block: Any) -> dict[str, Any]:
    return block[0] if isinstance(block, list) else block


def test_functions_named_by_the_infra_exist(tf: dict[str, Any], app: Any, declared: dict[str, Any]) -> None:
    named = tf["locals"]["functions"]
    assert set(named.values()) == set(declared), "infra and function_app.py name different functions"
    # The webhook URL output points at the HTTP trigger's route.
    route = tf["locals"]["webhook_route"]
    http = [b for b in declared[named["webhook"]].get_bindings() if b.type == "httpTrigger"]
    assert http and http[0].route == route
    assert "/api/${local.webhook_route}" in tf["output"]["webhook_url"]["value"]
    # The queue the webhook writes and the worker reads is the one created here.
    assert tf["locals"]["queue_name"] == app.QUEUE_NAME
    assert tf["resource"]["azurerm_storage_queue"]["sync"]["name"] == "${local.queue_name}"
    queue_bindings = [
        b for f in declared.values() for b in f.get_bindings() if b.type in ("queue", "queueTrigger")
    ]
    assert {b.queue_name for b in queue_bindings} == {app.QUEUE_NAME}
    assert {b.connection for b in queue_bindings} == {"AzureWebJobsStorage"}


def test_function_app_settings_match_the_code(tf: dict[str, Any], declared: dict[str, Any]) -> None:
    fa = tf["resource"]["azurerm_function_app_flex_consumption"]["app"]
    assert fa["runtime_name"] == "python" and fa["runtime_version"] == "3.11"
    assert _one(fa["identity"])["type"] == "SystemAssigned"
    settings = fa["app_settings"]
    # The timer's schedule is the %SMF_RESYNC_SCHEDULE% app setting.
    timer = next(b for f in declared.values() for b in f.get_bindings() if b.type == "timerTrigger")
    assert timer.schedule == "%SMF_RESYNC_SCHEDULE%" and "SMF_RESYNC_SCHEDULE" in settings
    for name in ("SMF_CONFIG", "WEBHOOK_SECRET", "SMF_FINGERPRINT_KEY_NAME", "SMF_WEBHOOK_MODE"):
        assert name in settings
    # AzureWebJobsStorage (the bindings' connection) comes from storage_access_key.
    assert "AzureWebJobsStorage" not in settings and fa["storage_access_key"]
    # Secrets are Key Vault references, never literal values in the settings.
    assert settings["WEBHOOK_SECRET"].startswith("@Microsoft.KeyVault(SecretUri=")
    # No test-only switch is ever deployed.
    text = "".join(p.read_text() for p in INFRA.glob("*.tf"))
    assert "SMF_AZURE_TEST" not in text and "AZURE_APPCONFIG_CONNECTION_STRING" not in text


def test_exactly_the_three_roles(tf: dict[str, Any]) -> None:
    roles = tf["resource"]["azurerm_role_assignment"]
    got = {(r["role_definition_name"], r["scope"]) for r in roles.values()}
    table = (
        "${azurerm_storage_account.host.id}/tableServices/default/tables/${azurerm_storage_table.runs.name}"
    )
    assert got == {
        ("Key Vault Secrets Officer", "${var.key_vault_id}"),
        ("App Configuration Data Owner", "${var.app_configuration_id}"),
        ("Storage Table Data Contributor", table),  # the run table only, not the account
    }
    for r in roles.values():
        assert r["principal_id"] == "${azurerm_function_app_flex_consumption.app.identity[0].principal_id}"
    assert set(tf["resource"]) == {
        "azurerm_storage_account",
        "azurerm_storage_container",
        "azurerm_storage_queue",
        "azurerm_storage_table",  # fanned-out runs' records
        "azurerm_service_plan",
        "azurerm_function_app_flex_consumption",
        "azurerm_role_assignment",
        "azurerm_log_analytics_workspace",
        "azurerm_application_insights",
        "azurerm_monitor_scheduled_query_rules_alert_v2",  # the example sync alert (no role)
    }
    assert tf["resource"]["azurerm_service_plan"]["flex"]["sku_name"] == "FC1"


def test_fan_out_settings_name_the_run_table(tf: dict[str, Any]) -> None:
    from core import fanout, runstate

    settings = tf["resource"]["azurerm_function_app_flex_consumption"]["app"]["app_settings"]
    assert settings["SMF_RUNSTATE"] == "table"
    assert settings["SMF_RUNSTATE_TABLE"] == (
        "${azurerm_storage_account.host.primary_table_endpoint}${azurerm_storage_table.runs.name}"
    )
    assert tf["resource"]["azurerm_storage_table"]["runs"]["name"] == "${local.runs_table}"
    # What the settings become once Terraform fills them in, read as the app reads them.
    deployed = {**settings, "FUNCTIONS_WORKER_RUNTIME": "python",
                "SMF_RUNSTATE_TABLE": f"https://acmesmfsa.table.core.windows.net/{tf['locals']['runs_table']}"}  # fmt: skip
    state = runstate.from_env(deployed)
    assert isinstance(state, runstate.TableRunState) and state._client is None
    policy = fanout.FanoutPolicy.from_env(deployed)
    host = json.loads((APP_DIR / "host.json").read_text())
    timeout = sum(int(x) * m for x, m in zip(host["functionTimeout"].split(":"), (3600, 60, 1), strict=True))
    assert policy.item_seconds == timeout - 180 and policy.write_rate == 8
    assert host["extensions"]["queues"]["batchSize"] == 1  # one item per instance: the cap holds


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform not installed")
def test_terraform_fmt() -> None:
    out = subprocess.run(["terraform", "fmt", "-check", "-recursive", str(INFRA)], capture_output=True, text=True,
                         check=False)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def test_build_produces_a_package_that_imports_alone(tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    subprocess.run(["bash", str(APP_DIR / "build.sh"), str(out)], check=True, capture_output=True)
    assert {p.name for p in out.iterdir()} >= {"function_app.py", "host.json", "requirements.txt", "core"}
    assert (tmp_path / "azure-functions.zip").is_file()
    code = (
        "import sys, json; sys.path.insert(0, '.'); import function_app; "
        "print(json.dumps([f.get_function_name() for f in function_app.app.get_functions()]))"
    )
    res = subprocess.run(
        [sys.executable, "-I", "-c", code], cwd=out, capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stderr
    assert sorted(json.loads(res.stdout)) == ["resync", "sync_worker", "webhook"]
    # The package's requirements name no other cloud's SDK.
    reqs = (out / "requirements.txt").read_text()
    assert not re.search(r"^(boto3|google-|functions-framework|aws-)", reqs, re.M)
