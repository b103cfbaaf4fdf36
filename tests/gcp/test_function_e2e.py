"""End to end through the Cloud Run function: a signed GitHub push → fetch from `git daemon`
→ SOPS decryption (files made by the real sops binary, age key from pyrage) → Secret Manager
(drongo) and Parameter Manager (the REST fake), via ``functions_framework``'s test client.

The same story runs for two configurations:

* ``sm``: secrets and configs in Secret Manager, one secret per key;
* ``pm``: configs in Parameter Manager, one YAML document per service that references the
  service's secrets (``__REF__``), delivered through the Pub/Sub hand-off and the CloudEvent
  function.

Checked each time: exact names and values; a repeated push writes nothing; a changed commit
makes exactly the expected creates, updates and deletes; a tampered SOPS file changes nothing;
no secret value appears in any response or log line.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import functions_framework
import pyrage
import pytest
import yaml

from core.model import ListQuery
from core.stores.gcp_parameter_manager import ParameterManagerStore
from core.stores.gcp_secret_manager import SecretManagerStore
from tests.gcp.conftest import PROJECT
from tests.gcp.pubsub_fake import PubSubFake
from tests.intake.payloads import ZERO, github_push
from tests.support.leakcheck import LeakCheck

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "handlers" / "gcp" / "main.py")
HOOK_SECRET = "gcp-hook-secret-42f1"
SOPS = str(Path(sys.executable).with_name("sops"))
TOPIC = f"projects/{PROJECT}/topics/smf-sync"

SECRET_VALUES = {
    "orders": {"DB_PASSWORD": "orders-db-pa55word", "API_TOKEN": "tok-orders-123456"},
    "payments": {"GATEWAY_KEY": "pay-gateway-key-1"},
}
PROPS = {"orders": "db.url=jdbc:pg://orders\nfeature.flag=on\n", "payments": "retries=3\n"}
ALL_SECRETS = [
    "orders-db-pa55word",
    "tok-orders-123456",
    "pay-gateway-key-1",
    "orders-db-NEW-pw",
    "new-key-value-77",
]


def svc(name: str, file: str) -> str:
    return f"services/{name}/deployment-configuration/profiles/dev/{file}"


def config_yaml(url: str, mode: str) -> str:
    configs = "{enabled: true}"
    gcp = f"projectId: {PROJECT}, versionHygiene: {{keepVersions: 2, action: disable}}"
    if mode == "pm":
        configs = "{enabled: true, store: ParameterManager}"
        gcp += ", parameterManager: {mode: document, format: YAML, secretReferences: true}"
    if mode == "pmk":
        configs = "{enabled: true, store: ParameterManager}"
    return f"""
apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata: {{name: shop-dev}}
spec:
  sourceRef: {{kind: Git, url: "{url}", branch: main}}
  provider: {{type: gcp, gcp: {{{gcp}}}}}
  secrets: {{environment: dev, basePath: services, requireEncrypted: true}}
  configs: {configs}
  sync: {{prune: true}}
  webhook: {{provider: github}}
"""


@pytest.fixture(scope="module")
def age_key() -> tuple[str, str]:
    ident = pyrage.x25519.Identity.generate()
    return str(ident), str(ident.to_public())


def encrypt(tmp_path: Path, recipient: str, values: dict[str, str]) -> str:
    d = tmp_path / uuid.uuid4().hex
    d.mkdir()
    p = d / "application.secrets.env"
    p.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    env = {"PATH": os.environ.get("PATH", ""), "SOPS_DISABLE_VERSION_CHECK": "1", "HOME": str(d)}
    out = subprocess.run([SOPS, "encrypt", "--age", recipient, str(p)], capture_output=True, env=env,
                         check=True, timeout=60)  # fmt: skip
    return out.stdout.decode()


def repo_files(tmp_path: Path, recipient: str, secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    files = {"README.md": "# shop configs\n"}
    for name, values in secrets.items():
        files[svc(name, "application.secrets.env")] = encrypt(tmp_path, recipient, values)
        files[svc(name, "application.properties")] = PROPS[name]
    return files


class Harness:
    """The function under test plus the backends, with helpers to push and to look."""

    def __init__(self, mode: str, repo: Any, pubsub: PubSubFake | None) -> None:
        self.mode = mode
        self.repo = repo
        self.pubsub = pubsub
        self.webhook = functions_framework.create_app(target="webhook", source=MAIN).test_client()
        self.worker = functions_framework.create_app(target="resync", source=MAIN).test_client()
        self.outputs: list[str] = []

    def push(self, before: str, after: str, modified: tuple[str, ...] = ()) -> tuple[int, dict[str, Any]]:
        headers, body = github_push(self.repo.url, before=before, after=after, modified=modified,
                                    secret=HOOK_SECRET)  # fmt: skip
        resp = self.webhook.post("/", data=body, headers=headers)
        self.outputs.append(resp.get_data(as_text=True))
        if self.pubsub is None:
            return resp.status_code, resp.get_json()
        assert resp.status_code == 202, resp.get_data(as_text=True)
        assert resp.get_json()["status"] == "queued"
        return self.deliver(self.pubsub.published[-1])

    def deliver(self, message: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Pub/Sub → Eventarc → the CloudEvent function (binary content mode)."""
        event = {"message": {"data": message["data"], "attributes": message.get("attributes", {}),
                             "messageId": message["messageId"]},
                 "subscription": f"projects/{PROJECT}/subscriptions/eventarc-smf"}  # fmt: skip
        headers = {
            "ce-specversion": "1.0", "ce-id": message["messageId"],
            "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
            "ce-source": f"//pubsub.googleapis.com/{TOPIC}", "Content-Type": "application/json",
        }  # fmt: skip
        resp = self.worker.post("/", data=json.dumps(event), headers=headers)
        self.outputs.append(resp.get_data(as_text=True))
        return resp.status_code, {}

    def schedule(self) -> int:
        data = base64.b64encode(json.dumps({"kind": "resync"}).encode()).decode()
        status, _ = self.deliver({"data": data, "messageId": "sched-1"})
        return status


def snapshot() -> dict[str, tuple[str, int]]:
    """Every managed entry: name → (value, number of versions). Tombstones (the record of a
    delete, listed too for deletion ordering) are not entries."""
    out: dict[str, tuple[str, int]] = {}
    q = ListQuery(owners=set(), names=set(), owner_prefixes={"shop-dev/"})
    sm = SecretManagerStore(PROJECT)
    for e in sm.list_entries(q):
        if e.deleted:
            continue
        out["sm:" + e.name] = (sm.read_values([e])[e.name], len(sm.version_states(e.name)))
    pm = ParameterManagerStore(PROJECT)
    for e in pm.list_entries(q):
        if e.deleted:
            continue
        versions = list(pm.client.list_parameter_versions(parent=pm.parameter_path(e.name)))
        out["pm:" + e.name] = (pm.read_values([e])[e.name], len(versions))
    return out


def ref(name: str) -> str:
    return f"__REF__(//secretmanager.googleapis.com/projects/{PROJECT}/secrets/{name}/versions/latest)"


def expected(mode: str, secrets: dict[str, dict[str, str]], versions: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for service, values in secrets.items():
        for k, v in values.items():
            out[f"sm:{service}-dev-{k}"] = v
    props = {"orders": {"db.url": "jdbc:pg://orders", "feature.flag": "on"}, "payments": {"retries": "3"}}
    for service, values in props.items():
        if mode in ("sm", "pmk"):
            for k, v in values.items():
                out[f"{mode[:2]}:{service}-dev-{k.replace('.', '_')}"] = v
        else:
            doc = dict(values)
            doc.update({k: ref(f"{service}-dev-{k}") for k in secrets[service]})
            out[f"pm:{service}-dev"] = doc
    return {k: (v, versions.get(k, 1)) for k, v in out.items()}


def normalize(snap: dict[str, tuple[str, int]]) -> dict[str, Any]:
    """Documents (``pm:{service}-dev``) are compared parsed; single values as they are."""
    return {k: ((yaml.safe_load(v) if k.startswith("pm:") and k.count("-") == 1 else v), n)
            for k, (v, n) in snap.items()}  # fmt: skip


@pytest.fixture
def function_env(gcp_env, monkeypatch, age_key):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WEBHOOK_SECRET", HOOK_SECRET)
    monkeypatch.setenv("SOPS_AGE_KEY", age_key[0])
    monkeypatch.setenv("GIT_CACHE_DIR", "")
    monkeypatch.delenv("SMF_HANDOFF_TOPIC", raising=False)
    return gcp_env


@pytest.mark.parametrize("mode", ["sm", "pm", "pmk"])
def test_push_repeat_change_tamper(
    mode, function_env, make_repo, commit_files, tmp_path, monkeypatch, capsys, caplog, age_key
) -> None:  # type: ignore[no-untyped-def]
    recipient = age_key[1]
    repo = make_repo(repo_files(tmp_path, recipient, SECRET_VALUES))
    monkeypatch.setenv("SMF_CONFIG_YAML", config_yaml(repo.url, mode))
    pubsub = None
    if mode == "pm":
        pubsub = PubSubFake()
        monkeypatch.setenv("SMF_HANDOFF_TOPIC", TOPIC)
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub.host)
    h = Harness(mode, repo, pubsub)
    try:
        # 1. First push (new branch: everything is reconciled).
        status, report = h.push(ZERO, repo.sha)
        assert status == 200
        if mode != "pm":
            [result] = report["results"]
            assert result["report"]["summary"]["create"] == 6 and result["report"]["errors"] == []
        assert normalize(snapshot()) == expected(mode, SECRET_VALUES, {})
        if mode == "pm":
            pm = ParameterManagerStore(PROJECT)
            rendered = yaml.safe_load(pm.render("orders-dev"))
            assert rendered == {
                "db.url": "jdbc:pg://orders",
                "feature.flag": "on",
                "DB_PASSWORD": "orders-db-pa55word",
                "API_TOKEN": "tok-orders-123456",
            }

        # 2. The same push again (a new delivery): nothing is written.
        before = snapshot()
        status, report = h.push(ZERO, repo.sha)
        assert status == 200
        if mode != "pm":
            summary = report["results"][0]["report"]["summary"]
            assert summary["unchanged"] == 6
            assert sum(v for k, v in summary.items() if k != "unchanged") == 0
        assert snapshot() == before

        # 3. A changed commit: one value changed, one key removed, one key added (orders only).
        changed = {"DB_PASSWORD": "orders-db-NEW-pw", "NEW_KEY": "new-key-value-77"}
        path = svc("orders", "application.secrets.env")
        sha2 = commit_files(repo, {path: encrypt(tmp_path, recipient, changed)})
        status, report = h.push(repo.sha, sha2, modified=(path,))
        assert status == 200
        if mode != "pm":
            changes = {(c["action"], c["name"]) for c in report["results"][0]["report"]["changes"]
                       if c["action"] != "unchanged"}  # fmt: skip
            assert changes == {("update", "orders-dev-DB_PASSWORD"), ("delete", "orders-dev-API_TOKEN"),
                               ("create", "orders-dev-NEW_KEY")}  # fmt: skip
        now = {**SECRET_VALUES, "orders": changed}
        versions = {"sm:orders-dev-DB_PASSWORD": 2}
        if mode == "pm":
            versions["pm:orders-dev"] = 2  # the references changed
        assert normalize(snapshot()) == expected(mode, now, versions)

        # 4. A tampered SOPS file (one ciphertext character flipped): nothing changes.
        before = snapshot()
        text = encrypt(
            tmp_path, recipient, {"DB_PASSWORD": "tampered-value-1", "NEW_KEY": "new-key-value-77"}
        )
        i = text.index("ENC[AES256_GCM,data:") + len("ENC[AES256_GCM,data:")
        tampered = text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1 :]
        sha3 = commit_files(repo, {path: tampered})
        status, report = h.push(sha2, sha3, modified=(path,))
        assert status == 200
        if mode != "pm":
            rep = report["results"][0]["report"]
            assert rep["errors"] and all(c["action"] == "unchanged" for c in rep["changes"])
            assert report["status"] == "partial"
        assert snapshot() == before

        # 5. The scheduled resync (Cloud Scheduler → Pub/Sub → resync) finds nothing to do
        #    except what the tampered file blocks.
        if mode == "pm":
            assert h.schedule() == 200
            assert snapshot() == before
    finally:
        if pubsub is not None:
            pubsub.stop()

    out, err = capsys.readouterr()
    logs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert logs and all("severity" in e and "message" in e for e in logs)
    leaks = LeakCheck([*ALL_SECRETS, "tampered-value-1", age_key[0], HOOK_SECRET])
    leaks.scan(out, err, caplog.text, *h.outputs, where="function output")


def test_rejected_signature_and_get(function_env, make_repo, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    repo = make_repo({"README.md": "x\n"})
    monkeypatch.setenv("SMF_CONFIG_YAML", config_yaml(repo.url, "sm"))
    client = functions_framework.create_app(target="webhook", source=MAIN).test_client()
    headers, body = github_push(repo.url, before=ZERO, after=repo.sha, secret="wrong-secret")
    resp = client.post("/", data=body, headers=headers)
    assert resp.status_code == 403 and resp.get_json()["status"] == "rejected"
    assert client.get("/").status_code == 405
    monkeypatch.setenv("SMF_HANDOFF_TOPIC", TOPIC)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    capsys.readouterr()
    resp = client.post("/", data=body, headers={**headers, "X-Cloud-Trace-Context": "abc123/1;o=1"})
    assert resp.status_code == 403  # verified before anything is queued
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if "webhook rejected" in x]
    assert line["severity"] == "WARNING" and line["status"] == 403
    assert line["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/abc123"


def test_handoff_failure_is_503(function_env, make_repo, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    repo = make_repo({"README.md": "x\n"})
    monkeypatch.setenv("SMF_CONFIG_YAML", config_yaml(repo.url, "sm"))
    monkeypatch.setenv("SMF_HANDOFF_TOPIC", TOPIC)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")  # nothing listens
    client = functions_framework.create_app(target="webhook", source=MAIN).test_client()
    headers, body = github_push(repo.url, before=ZERO, after=repo.sha, secret=HOOK_SECRET)
    resp = client.post("/", data=body, headers=headers)
    assert resp.status_code == 503  # the Git host retries the delivery


def test_scheduled_resync_reports_a_hand_edit_as_drift(
    function_env, make_repo, tmp_path, monkeypatch, capsys, age_key
) -> None:  # type: ignore[no-untyped-def]
    repo = make_repo(repo_files(tmp_path, age_key[1], SECRET_VALUES))
    monkeypatch.setenv("SMF_CONFIG_YAML", config_yaml(repo.url, "sm"))
    h = Harness("sm", repo, None)
    assert h.push(ZERO, repo.sha)[0] == 200
    sm = SecretManagerStore(PROJECT)
    sm.client.add_secret_version(parent=sm.secret_path("orders-dev-DB_PASSWORD"),
                                 payload={"data": b"edited-by-hand-99"})  # fmt: skip
    capsys.readouterr()
    assert h.schedule() == 200
    out, _ = capsys.readouterr()
    [line] = [json.loads(x) for x in out.splitlines() if x.startswith("{") and "resync finished" in x]
    assert line["severity"] == "INFO" and line["summary"][0]["drift"] == 1
    assert sm.read_secret("orders-dev-DB_PASSWORD") == "edited-by-hand-99"  # reported, not overwritten
    LeakCheck(["edited-by-hand-99", *ALL_SECRETS]).scan(out, *h.outputs, where="resync output")


def test_oversized_delivery_queues_a_full_resync(
    function_env, make_repo, tmp_path, monkeypatch, age_key
) -> None:  # type: ignore[no-untyped-def]
    repo = make_repo(repo_files(tmp_path, age_key[1], {"payments": SECRET_VALUES["payments"]}))
    monkeypatch.setenv("SMF_CONFIG_YAML", config_yaml(repo.url, "sm"))
    pubsub = PubSubFake()
    monkeypatch.setenv("SMF_HANDOFF_TOPIC", TOPIC)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub.host)
    monkeypatch.setenv("SMF_HANDOFF_MAX_BYTES", "100")  # every body is "too large" for Pub/Sub
    h = Harness("sm", repo, pubsub)
    try:
        headers, body = github_push(repo.url, before=ZERO, after=repo.sha, secret=HOOK_SECRET)
        resp = h.webhook.post("/", data=body, headers=headers)
        assert resp.status_code == 202 and resp.get_json()["kind"] == "resync"
        [message] = pubsub.published
        queued = json.loads(base64.b64decode(message["data"]))
        assert (queued["v"], queued["kind"], queued["data"]) == (
            1,
            "resync",
            {"configs": ["shop-dev"], "drift": False},
        )
        bad_headers, bad_body = github_push(repo.url, before=ZERO, after=repo.sha, secret="wrong")
        assert h.webhook.post("/", data=bad_body, headers=bad_headers).status_code == 403
        assert len(pubsub.published) == 1  # an unverified delivery queues nothing
        status, _ = h.deliver(message)
        assert status < 300
        assert {k for k in snapshot() if k.startswith("sm:payments-")} == {
            "sm:payments-dev-GATEWAY_KEY", "sm:payments-dev-retries"}  # fmt: skip
    finally:
        pubsub.stop()
