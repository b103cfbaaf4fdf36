"""End to end through the Azure Functions app: a signed GitHub push → git daemon → SOPS
(real sops binary, age key kept in the fake Key Vault) → Key Vault + App Configuration fakes.

The functions are called the way the Functions host calls them (v2 programming model:
``function_app.<name>.build().get_user_function()``), with real `func.HttpRequest` /
`func.QueueMessage` objects.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from tests.azure.conftest import azure_config_text
from tests.fakes.azure_app_configuration import FakeAppConfiguration
from tests.fakes.azure_key_vault import FakeKeyVault
from tests.intake.payloads import ZERO, github_push
from tests.sops.conftest import AgeKey, Sops, make_age_key
from tests.support.leakcheck import LeakCheck

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "handlers" / "azure_functions"
HOOK_SECRET = "azure-hook-secret-5b1e"
AGE_SECRET_NAME = "smf-age-key"
ORDERS = "services/orders/deployment-configuration/profiles/dev"
PAYMENTS = "services/payments/deployment-configuration/profiles/dev"

ORDERS_ENV = 'DB_PASSWORD="orders db pa55word"\nAPI_TOKEN=tok-orders-123456\n'
PAYMENTS_YAML = "gateway:\n  api_key: payments-gateway-key-1\n  webhook_secret: payments-hook-secret-1\n"
SECRETS = ["orders db pa55word", "tok-orders-123456", "payments-gateway-key-1", "payments-hook-secret-1"]
AC = "azure-app-configuration"
KV = "azure-key-vault"


def load_app() -> Any:
    spec = importlib.util.spec_from_file_location("smf_azure_function_app", APP_DIR / "function_app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


APP = load_app()


class Out:
    """A `func.Out[str]` as the host passes for an output binding."""

    def __init__(self) -> None:
        self.value: str | None = None

    def set(self, value: str) -> None:
        self.value = value

    def get(self) -> str | None:
        return self.value


class World:
    """One test's repository, age key, fakes and function calls."""

    def __init__(self, git_server, key_vault, app_config, monkeypatch, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
        self.git = git_server
        self.kv: FakeKeyVault = key_vault
        self.ac: FakeAppConfiguration = app_config
        self.sops = Sops(tmp_path / "sops")
        self.sops.workdir.mkdir()
        self.key: AgeKey = make_age_key()
        self.caplog = caplog
        self.monkeypatch = monkeypatch
        self.responses: list[str] = []
        self.repo = None
        monkeypatch.setenv("WEBHOOK_SECRET", HOOK_SECRET)
        monkeypatch.setenv("SMF_WEBHOOK_MODE", "inline")
        monkeypatch.delenv("SOPS_AGE_KEY", raising=False)
        monkeypatch.delenv("SOPS_AGE_KEY_FILE", raising=False)
        # The age key lives in Key Vault, not in the function's environment.
        key_vault.seed(AGE_SECRET_NAME, self.key.secret)

    def enc(self, name: str, text: str) -> bytes:
        return self.sops.encrypt(name, text, recipients=[self.key])

    def files(
        self, orders_env: str = ORDERS_ENV, payments_yaml: str = PAYMENTS_YAML
    ) -> dict[str, bytes | str]:
        return {
            "README.md": "# configs\n",
            f"{ORDERS}/application.secrets.env": self.enc("application.secrets.env", orders_env),
            f"{ORDERS}/application.properties": "db.url=jdbc:postgresql://db/orders\nfeature.flag=on\n",
            f"{PAYMENTS}/application.secrets.yaml": self.enc("application.secrets.yaml", payments_yaml),
            f"{PAYMENTS}/application.config.yaml": "payments:\n  currency: EUR\n",
        }

    def setup(self, files: dict[str, bytes | str] | None = None, **config_kw: Any) -> str:
        self.repo = self.git.make_repo(files or self.files())
        text = azure_config_text(
            self.kv, self.ac, url=self.repo.url,
            app_config_extra="        keyVaultReferences: true\n",
            spec_extra=f"  decryption:\n    ageKeySecret: {AGE_SECRET_NAME}\n",
            **config_kw,
        ).replace("  secrets:\n    environment: dev\n", "  secrets:\n    environment: dev\n    basePath: services\n")  # fmt: skip
        self.monkeypatch.setenv("SMF_CONFIG", text)
        return self.repo.sha

    def push(self, before: str, after: str, **kw: Any) -> tuple[int, dict[str, Any], Out]:
        headers, body = github_push(self.repo.url, before=before, after=after, secret=HOOK_SECRET, **kw)
        req = func.HttpRequest(method="POST", url="/api/webhook", headers=headers, body=body)
        jobs = Out()
        resp = APP.webhook.build().get_user_function()(req, jobs)
        text = resp.get_body().decode()
        self.responses.append(text)
        return resp.status_code, json.loads(text), jobs

    def changes(self, doc: dict[str, Any], *, all_: bool = False) -> list[tuple[str, str, str]]:
        out = []
        for r in doc["results"]:
            for c in r["report"]["changes"]:
                if all_ or c["action"] != "unchanged":
                    out.append((c["action"], c["store"], c["name"]))
        return sorted(out)

    def appconfig(self) -> dict[str, str | None]:
        return {k: v["value"] for (k, label), v in self.ac.items().items() if label == "dev"}

    def leakcheck(self, *extra: str) -> None:
        LeakCheck([*SECRETS, self.key.secret, *extra]).scan(
            *self.responses, self.caplog.text, where="function output"
        )


@pytest.fixture
def world(git_server, key_vault, app_config, monkeypatch, tmp_path, caplog) -> World:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)
    return World(git_server, key_vault, app_config, monkeypatch, tmp_path, caplog)


def ref(kv: FakeKeyVault, name: str) -> str:
    return json.dumps({"uri": f"{kv.url}/secrets/{name}"})


def test_first_push_then_repeat_push_writes_nothing(world: World) -> None:
    sha = world.setup()
    status, doc, jobs = world.push(ZERO, sha)
    assert status == 200 and doc["status"] == "ok", doc
    assert jobs.value is None  # inline mode: nothing queued
    assert world.kv.secret_names() == sorted([
        AGE_SECRET_NAME, "orders-dev-API-TOKEN", "orders-dev-DB-PASSWORD",
        "payments-dev-gateway-api-key", "payments-dev-gateway-webhook-secret",
    ])  # fmt: skip
    assert world.kv.value("orders-dev-DB-PASSWORD") == "orders db pa55word"
    assert world.kv.value("orders-dev-API-TOKEN") == "tok-orders-123456"
    assert world.kv.value("payments-dev-gateway-api-key") == "payments-gateway-key-1"
    assert world.kv.value("payments-dev-gateway-webhook-secret") == "payments-hook-secret-1"
    assert (
        world.kv.tags("orders-dev-DB-PASSWORD")["smf-source"]
        == f"{ORDERS}/application.secrets.env:DB_PASSWORD"
    )
    assert world.kv.tags("orders-dev-DB-PASSWORD")["smf-commit"] == sha
    assert world.appconfig() == {
        "orders:db.url": "jdbc:postgresql://db/orders",
        "orders:feature.flag": "on",
        "payments:payments.currency": "EUR",
        # Key Vault references: one place to read everything from.
        "orders:DB_PASSWORD": ref(world.kv, "orders-dev-DB-PASSWORD"),
        "orders:API_TOKEN": ref(world.kv, "orders-dev-API-TOKEN"),
        "payments:gateway.api_key": ref(world.kv, "payments-dev-gateway-api-key"),
        "payments:gateway.webhook_secret": ref(world.kv, "payments-dev-gateway-webhook-secret"),
    }
    refs = {k: v for (k, _), v in world.ac.items().items() if v["content_type"]}
    assert {v["content_type"] for v in refs.values()} == {
        "application/vnd.microsoft.appconfig.keyvaultref+json;charset=utf-8"
    }
    assert world.ac.rejected == []

    # The same commit pushed again (a redelivery or a re-run): nothing is written.
    world.kv.calls.clear()
    world.ac.calls.clear()
    status, doc, _ = world.push(ZERO, sha)
    assert status == 200
    assert world.changes(doc) == []
    assert doc["results"][0]["report"]["summary"]["unchanged"] == 11
    writes = {
        k: n
        for k, n in (world.kv.calls + world.ac.calls).items()
        if k[0] in ("PUT", "PATCH", "DELETE", "POST")
    }
    assert writes == {}
    assert world.kv.versions("orders-dev-DB-PASSWORD") == 1
    world.leakcheck()


def test_changed_commit_updates_adds_and_prunes_exactly_then_a_pruned_secret_comes_back(
    world: World, commit_files
) -> None:  # type: ignore[no-untyped-def]
    sha1 = world.setup()
    assert world.push(ZERO, sha1)[0] == 200
    new_env = 'DB_PASSWORD="rotated pa55word 2"\nNEW_KEY=new-orders-value-9\n'  # API_TOKEN removed
    sha2 = commit_files(world.repo, {
        f"{ORDERS}/application.secrets.env": world.enc("application.secrets.env", new_env),
        f"{ORDERS}/application.properties": "feature.flag=off\n",  # db.url removed
    })  # fmt: skip
    world.kv.calls.clear()
    status, doc, _ = world.push(sha1, sha2, modified=[f"{ORDERS}/application.secrets.env",
                                                      f"{ORDERS}/application.properties"])  # fmt: skip
    assert status == 200 and doc["status"] == "ok", doc
    assert world.changes(doc) == sorted([
        ("update", KV, "orders-dev-DB-PASSWORD"),
        ("create", KV, "orders-dev-NEW-KEY"),
        ("delete", KV, "orders-dev-API-TOKEN"),
        ("update", AC, "orders:feature.flag"),
        ("delete", AC, "orders:db.url"),
        ("create", AC, "orders:NEW_KEY"),
        ("delete", AC, "orders:API_TOKEN"),
    ])  # fmt: skip
    assert world.kv.value("orders-dev-DB-PASSWORD") == "rotated pa55word 2"
    assert world.kv.versions("orders-dev-DB-PASSWORD") == 2
    assert world.kv.value("orders-dev-NEW-KEY") == "new-orders-value-9"
    assert world.kv.deleted_names() == ["orders-dev-API-TOKEN"]  # soft-deleted, recoverable
    assert world.kv.versions("payments-dev-gateway-api-key") == 1  # other service untouched
    ac = world.appconfig()
    assert ac["orders:feature.flag"] == "off" and "orders:db.url" not in ac and "orders:API_TOKEN" not in ac
    assert ac["payments:payments.currency"] == "EUR"

    # API_TOKEN comes back in Git: the soft-deleted secret is recovered and updated, no 409.
    back_env = new_env + "API_TOKEN=tok-orders-back-777\n"
    sha3 = commit_files(
        world.repo, {f"{ORDERS}/application.secrets.env": world.enc("application.secrets.env", back_env)}
    )
    world.kv.calls.clear()
    status, doc, _ = world.push(sha2, sha3, modified=[f"{ORDERS}/application.secrets.env"])
    assert status == 200 and doc["status"] == "ok", doc
    assert world.changes(doc) == [("create", AC, "orders:API_TOKEN"), ("update", KV, "orders-dev-API-TOKEN")]
    assert world.kv.deleted_names() == []
    assert world.kv.value("orders-dev-API-TOKEN") == "tok-orders-back-777"
    assert world.kv.versions("orders-dev-API-TOKEN") == 2  # its history came back with it
    assert world.kv.calls[("POST", "/deletedsecrets/{name}/recover")] == 1
    world.leakcheck("rotated pa55word 2", "new-orders-value-9", "tok-orders-back-777")


def test_tampered_sops_file_changes_nothing_for_its_service(world: World, commit_files) -> None:  # type: ignore[no-untyped-def]
    sha1 = world.setup()
    assert world.push(ZERO, sha1)[0] == 200
    enc = world.enc(
        "application.secrets.yaml", PAYMENTS_YAML.replace("payments-gateway-key-1", "evil-gateway-key-2")
    )
    # Graft the new value's ciphertext into the old file: the MAC no longer matches.
    old = world.git.rev_parse(world.repo, "HEAD")
    assert old == sha1
    original = subprocess.run(["git", "show", f"{sha1}:{PAYMENTS}/application.secrets.yaml"], cwd=world.repo.path,
                              capture_output=True, check=True).stdout  # fmt: skip
    new_line = next(ln for ln in enc.splitlines() if b"api_key:" in ln)
    old_line = next(ln for ln in original.splitlines() if b"api_key:" in ln)
    tampered = original.replace(old_line, new_line)
    sha2 = commit_files(world.repo, {
        f"{PAYMENTS}/application.secrets.yaml": tampered,
        f"{PAYMENTS}/application.config.yaml": "payments:\n  currency: USD\n",
        f"{ORDERS}/application.properties": "db.url=jdbc:postgresql://db/orders\nfeature.flag=off\n",
    })  # fmt: skip
    world.kv.calls.clear()
    world.ac.calls.clear()
    status, doc, _ = world.push(sha1, sha2, modified=[f"{PAYMENTS}/application.secrets.yaml",
                                                      f"{PAYMENTS}/application.config.yaml",
                                                      f"{ORDERS}/application.properties"])  # fmt: skip
    assert status == 200 and doc["status"] == "partial", doc
    errors = doc["results"][0]["report"]["errors"]
    assert len(errors) == 1 and errors[0]["path"] == f"{PAYMENTS}/application.secrets.yaml"
    # Nothing of payments changed, not even its plain config; orders went ahead.
    assert world.kv.value("payments-dev-gateway-api-key") == "payments-gateway-key-1"
    assert world.kv.versions("payments-dev-gateway-api-key") == 1
    assert world.appconfig()["payments:payments.currency"] == "EUR"
    assert world.changes(doc) == [("update", AC, "orders:feature.flag")]
    world.leakcheck("evil-gateway-key-2")


def test_keys_differing_only_in_case_are_refused_before_any_write(world: World) -> None:
    files = world.files(orders_env="API_KEY=orders-upper-key-1\napi_key=orders-lower-key-2\n")
    sha = world.setup(files)
    status, doc, _ = world.push(ZERO, sha)
    assert status == 200 and doc["status"] == "partial"
    errors = doc["results"][0]["report"]["errors"]
    assert any("differ only in case" in e["message"] for e in errors), errors
    # No orders entry anywhere (not even its configs); payments was synced.
    assert not [n for n in world.kv.secret_names() if n.lower().startswith("orders")]
    assert not [k for k in world.appconfig() if k.startswith("orders")]
    assert world.kv.value("payments-dev-gateway-api-key") == "payments-gateway-key-1"
    world.leakcheck("orders-upper-key-1", "orders-lower-key-2")


def test_auto_mode_queues_big_pushes_and_the_worker_syncs_them(world: World, commit_files) -> None:  # type: ignore[no-untyped-def]
    world.monkeypatch.setenv("SMF_WEBHOOK_MODE", "auto")
    sha = world.setup()
    # A new branch (no reliable file list): answered at once, handed to the queue.
    status, doc, jobs = world.push(ZERO, sha)
    assert status == 202 and doc["status"] == "queued" and doc["after"] == sha
    assert world.kv.secret_names() == [AGE_SECRET_NAME]  # nothing synced yet
    assert jobs.value is not None
    msg = func.QueueMessage(id=str(uuid.uuid4()), body=jobs.value.encode())
    APP.sync_worker.build().get_user_function()(msg)
    assert world.kv.value("orders-dev-DB-PASSWORD") == "orders db pa55word"
    assert world.appconfig()["payments:payments.currency"] == "EUR"
    # A forged queue message fails its MAC and changes nothing.
    forged = json.loads(jobs.value)
    forged["data"]["event"]["after"] = "f" * 40
    world.kv.calls.clear()
    APP.sync_worker.build().get_user_function()(func.QueueMessage(body=json.dumps(forged).encode()))
    assert world.kv.total_calls() == 0
    # A small push with a reliable file list is synced inline and answered 200.
    sha2 = commit_files(world.repo, {f"{ORDERS}/application.properties": "db.url=jdbc:x\nfeature.flag=on\n"})
    status, doc, jobs2 = world.push(sha, sha2, modified=[f"{ORDERS}/application.properties"])
    assert status == 200 and doc["status"] == "ok" and jobs2.value is None
    assert world.appconfig()["orders:db.url"] == "jdbc:x"
    # A delivery too large for a queue message becomes a resync request.
    world.monkeypatch.setenv("SMF_QUEUE_MAX_BYTES", "100")
    status, doc, jobs3 = world.push(ZERO, sha2)  # a new branch: queued
    assert status == 202 and doc["kind"] == "resync" and json.loads(jobs3.value)["kind"] == "resync"
    world.leakcheck()


def test_bad_signature_is_rejected_without_any_store_call(world: World) -> None:
    sha = world.setup()
    headers, body = github_push(world.repo.url, before=ZERO, after=sha, secret="wrong-secret")
    req = func.HttpRequest(method="POST", url="/api/webhook", headers=headers, body=body)
    for mode in ("inline", "queue", "auto"):
        world.monkeypatch.setenv("SMF_WEBHOOK_MODE", mode)
        jobs = Out()
        resp = APP.webhook.build().get_user_function()(req, jobs)
        assert resp.status_code == 403 and jobs.value is None
    assert world.kv.total_calls() == 0 and world.ac.total_calls() == 0


def test_timer_resync_reports_drift_without_overwriting(world: World) -> None:
    world.monkeypatch.setenv("SMF_WEBHOOK_MODE", "inline")
    sha = world.setup()
    assert world.push(ZERO, sha)[0] == 200
    world.kv.seed("orders-dev-DB-PASSWORD", "changed-by-hand-1", tags=world.kv.tags("orders-dev-DB-PASSWORD"))
    world.caplog.clear()
    from azure.functions.timer import TimerRequest

    timer = TimerRequest(past_due=False)
    APP.resync_timer.build().get_user_function()(timer)
    line = next(r.getMessage() for r in world.caplog.records if '"event": "resync"' in r.getMessage())
    logged = json.loads(line)
    assert logged["drift"] == 1 and logged["status"] == 200
    assert world.kv.value("orders-dev-DB-PASSWORD") == "changed-by-hand-1"  # reported, not overwritten
    world.leakcheck("changed-by-hand-1")


def test_function_app_declares_its_triggers() -> None:
    fresh = load_app()
    functions = {f.get_function_name(): f for f in fresh.app.get_functions()}
    assert set(functions) == {"webhook", "sync_worker", "resync"}
    bindings = {name: {b.type for b in f.get_bindings()} for name, f in functions.items()}
    assert bindings["webhook"] == {"httpTrigger", "http", "queue"}
    assert bindings["sync_worker"] == {"queueTrigger", "queue"}  # queue: a fanned-out run's work items
    assert bindings["resync"] == {"timerTrigger", "queue"}  # queue: a large resync's work items
    host = json.loads((APP_DIR / "host.json").read_text())
    assert host["version"] == "2.0" and "extensionBundle" in host


def test_handler_imports_only_the_azure_sdk() -> None:
    code = f"""
import importlib.util, sys, json
sys.path.insert(0, {str(ROOT)!r})
spec = importlib.util.spec_from_file_location("function_app", {str(APP_DIR / "function_app.py")!r})
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
import core.intake, core.sync, core.stores.azure_key_vault, core.stores.azure_app_configuration
import azure.keyvault.secrets, azure.appconfiguration, azure.identity
import azure.functions as func
resp = m.webhook.build().get_user_function()(
    func.HttpRequest(method="POST", url="/api/webhook", headers={{}}, body=b"{{}}"), None)
bad = sorted(k for k, v in sys.modules.items()
             if k.split(".")[0] in ("boto3", "botocore", "moto", "functions_framework")
             or (k.startswith("google") and getattr(v, "__file__", None) is not None))
print(json.dumps({{"bad": bad, "status": resp.status_code}}))
"""
    env = {"SMF_CONFIG": "apiVersion: secret-manager.microscaler.io/v1alpha1\nkind: SecretManagerConfig\n"
           "metadata: {name: x}\nspec: {provider: {type: azure, azure: {vaultName: v}}, "
           "secrets: {environment: dev}}\n", "WEBHOOK_SECRET": "s3cret-hook", "PATH": "/usr/bin:/bin"}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"bad": [], "status": 401}


def test_store_modules_import_no_sdk() -> None:
    # google/google.cloud may exist as empty namespace stubs (a *-nspkg.pth in the dev venv):
    # only modules with a file count.
    code = (
        f"import sys, json; sys.path.insert(0, {str(ROOT)!r}); "
        "import core.stores.azure_key_vault, core.stores.azure_app_configuration, core.naming.azure_key_vault; "
        "print(json.dumps(sorted(k for k, m in sys.modules.items() "
        "if k.startswith(('azure', 'boto', 'google')) and getattr(m, '__file__', None))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
