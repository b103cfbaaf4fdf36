"""One table of deliveries through all three cloud handlers, in-process: each must reach
the same decision (status and outcome) and the same report. A divergence between clouds is
a failing test here.

Every handler syncs into the embedded local store (a fresh one per handler and case), so
the reports are comparable; the AWS handler gets a Function URL event, the GCP function a
request through functions_framework's test client, the Azure function a `func.HttpRequest`.
The queued variant captures what each handler queues and hands it to that cloud's worker.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core import intake
from tests.intake.payloads import ZERO, github_push, sign

ROOT = Path(__file__).resolve().parents[2]
SECRET = "conformance-hook-secret-1"
SVC = "services/{}/deployment-configuration/profiles/dev/{}"
FILES = {
    "README.md": "# configs\n",
    SVC.format("orders", "application.properties"): "db.url=jdbc:pg://orders\nfeature.flag=on\n",
    SVC.format("orders", "application.config.yaml"): "replicas: 2\n",
    SVC.format("payments", "application.properties"): "retries=3\n",
}
#: What a first sync of FILES creates: orders db.url, feature.flag, replicas; payments retries.
CREATES = 4


def config_yaml(url: str, db: Path, *, tags: bool = False) -> str:
    return f"""apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata: {{name: shop-dev}}
spec:
  sourceRef: {{kind: Git, url: "{url}", branch: main, tags: {str(tags).lower()}}}
  provider: {{type: local, local: {{path: "{db}"}}}}
  secrets: {{environment: dev, basePath: services}}
  configs: {{enabled: true}}
  webhook: {{provider: github}}
"""


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    queued: list[str]


class Aws:
    name = "aws"

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.mod = _load("smf_conformance_aws", ROOT / "handlers" / "aws_lambda.py")
        self.sent: list[str] = []
        monkeypatch.setattr(self.mod, "send", lambda m: self.sent.append(m) or {"handoff": "test"})

    def post(self, headers: dict[str, str], body: bytes) -> Answer:
        from tests.aws.test_lambda_e2e import Context, url_event

        self.sent.clear()
        resp = self.mod.handler(url_event(headers, body), Context())
        return Answer(resp["statusCode"], json.loads(resp["body"]), list(self.sent))

    def work(self, message: str) -> dict[str, Any]:
        from tests.aws.test_lambda_e2e import Context

        record = {"messageId": "m1", "receiptHandle": "r", "body": message, "attributes": {},
                  "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                  "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:smf-sync", "awsRegion": "us-east-1"}  # fmt: skip
        assert self.mod.handler({"Records": [record]}, Context()) == {"batchItemFailures": []}
        return {}


class Gcp:
    name = "gcp"

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import functions_framework

        main = str(ROOT / "handlers" / "gcp" / "main.py")
        self.client = functions_framework.create_app(target="webhook", source=main).test_client()
        webhook_module = sys.modules["main"]  # functions_framework loads the source as "main"
        self.worker = functions_framework.create_app(target="resync", source=main).test_client()
        self.sent: list[str] = []
        monkeypatch.setattr(webhook_module, "publish", lambda topic, m: self.sent.append(m) or "id-1")

    def post(self, headers: dict[str, str], body: bytes) -> Answer:
        self.sent.clear()
        resp = self.client.post("/", data=body, headers=headers)
        return Answer(resp.status_code, resp.get_json(), list(self.sent))

    def work(self, message: str) -> dict[str, Any]:
        event = {"message": {"data": base64.b64encode(message.encode()).decode(), "messageId": "1"},
                 "subscription": "projects/p/subscriptions/s"}  # fmt: skip
        headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "//pubsub.googleapis.com/t",
                   "ce-type": "google.cloud.pubsub.topic.v1.messagePublished", "Content-Type": "application/json"}  # fmt: skip
        assert self.worker.post("/", data=json.dumps(event), headers=headers).status_code < 300
        return {}


class Azure:
    name = "azure"

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.mod = _load("smf_conformance_azure", ROOT / "handlers" / "azure_functions" / "function_app.py")

    def post(self, headers: dict[str, str], body: bytes) -> Answer:
        import azure.functions as func

        from tests.azure.test_function_app import Out

        jobs = Out()
        req = func.HttpRequest(method="POST", url="/api/webhook", headers=headers, body=body)
        resp = self.mod.webhook.build().get_user_function()(req, jobs)
        return Answer(resp.status_code, json.loads(resp.get_body()), [jobs.value] if jobs.value else [])

    def work(self, message: str) -> dict[str, Any]:
        import azure.functions as func

        self.mod.sync_worker.build().get_user_function()(func.QueueMessage(id="1", body=message.encode()))
        return {}


DRIVERS = (Aws, Gcp, Azure)


def _signed_raw(body: bytes, event: str = "push") -> dict[str, str]:
    return {"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": "sha256=" + sign(SECRET, body)}  # fmt: skip


def _cases(url: str, sha: str) -> dict[str, tuple[list[tuple[dict[str, str], bytes]], bool]]:
    """case → (deliveries sent in order, config follows tags). The last answer is compared."""
    push = github_push(url, before=ZERO, after=sha, secret=SECRET, delivery="d-" + uuid.uuid4().hex)
    tag = github_push(url, ref="refs/tags/v1.0", before=ZERO, after=sha, secret=SECRET)
    malformed = b'{"ref": "refs/heads/main", "after": '
    big = b" " * (8 * 1024 * 1024 + 1)
    return {
        "valid push": ([push], False),
        "forged": ([github_push(url, before=ZERO, after=sha, secret="not-the-secret")], False),
        "replayed": ([push, push], False),
        "tag push, tags off": ([tag], False),
        "tag push, tags: true": ([tag], True),
        "branch deletion": ([github_push(url, before=sha, after=ZERO, secret=SECRET)], False),
        "ping": ([(_signed_raw(b'{"zen": "hi"}', "ping"), b'{"zen": "hi"}')], False),
        "oversized": ([(_signed_raw(big), big)], False),
        "malformed": ([(_signed_raw(malformed), malformed)], False),
        "unconfigured repo": (
            [github_push("https://github.com/acme/unrelated.git", before=ZERO, after=sha, secret=SECRET)],
            False,
        ),  # fmt: skip
    }


EXPECTED = {
    "valid push": (200, "ok"),
    "forged": (403, "rejected"),
    "replayed": (200, "duplicate"),
    "tag push, tags off": (202, "ignored"),
    "tag push, tags: true": (200, "ok"),
    "branch deletion": (200, "ignored"),
    "ping": (200, "ignored"),
    "oversized": (413, "rejected"),
    "malformed": (400, "rejected"),
    "unconfigured repo": (202, "ignored"),
}


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    """What must be equal between clouds: the outcome and every report, without ids,
    timings and fetch statistics (which differ per run, not per cloud)."""
    out = {k: v for k, v in body.items() if k in ("status", "reason", "kind", "ref", "after", "mode")}
    out["results"] = [
        {k: v for k, v in r.items() if k not in ("delivery_id", "fetch")} for r in body.get("results") or []
    ]
    return out


@pytest.fixture
def world(make_repo, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("SMF_LOCAL_STORE_KEY", base64.b64encode(b"c" * 32).decode())
    monkeypatch.setenv("GIT_CACHE_DIR", "")
    monkeypatch.setenv("SMF_FINGERPRINT_KEY", "conformance-fp-key")
    for var in ("SMF_CONFIG_YAML", "SMF_CONFIG_PATH", "SMF_HANDOFF_TOPIC", "SMF_ENV_SECRET", "SMF_QUEUE_URL"):
        monkeypatch.delenv(var, raising=False)
    repo = make_repo(FILES)
    drivers = [d(monkeypatch) for d in DRIVERS]
    return repo, drivers, monkeypatch, tmp_path


def _run(world: Any, case: str, mode: str) -> dict[str, tuple[int, dict[str, Any]]]:
    repo, drivers, monkeypatch, tmp_path = world
    deliveries, tags = _cases(repo.url, repo.sha)[case]
    answers = {}
    for driver in drivers:
        db = tmp_path / f"{driver.name}-{uuid.uuid4().hex}.db"
        monkeypatch.setenv("SMF_CONFIG", config_yaml(repo.url, db, tags=tags))
        monkeypatch.setattr(intake, "_DELIVERIES", intake.DeliveryCache())  # each cloud: its own instance
        monkeypatch.setenv("SMF_WEBHOOK_MODE", mode)
        if driver.name == "gcp" and mode == "queue":
            monkeypatch.setenv("SMF_HANDOFF_TOPIC", "projects/p/topics/t")
        else:
            monkeypatch.delenv("SMF_HANDOFF_TOPIC", raising=False)
        for headers, body in deliveries:
            answer = driver.post(headers, body)
        if mode == "queue" and answer.queued:
            [message] = answer.queued
            assert answer.status == 202 and answer.body["status"] == "queued"
            monkeypatch.setattr(intake, "after_sync", _capture(captured := []))
            driver.work(message)
            [result] = captured
            answers[driver.name] = (
                answer.status,
                {"queued": comparable(answer.body), "run": comparable(result)},
            )
        else:
            answers[driver.name] = (answer.status, comparable(answer.body))
    return answers


def _capture(into: list) -> Any:
    def hook(outcome: intake.Outcome, configs: Any) -> None:
        into.append(outcome.body)

    return hook


@pytest.mark.parametrize("case", list(EXPECTED))
def test_inline_deliveries_get_the_same_decision_and_report_on_every_cloud(world, case) -> None:  # type: ignore[no-untyped-def]
    answers = _run(world, case, "inline")
    aws = answers["aws"]
    assert (aws[0], aws[1]["status"]) == EXPECTED[case], aws
    assert answers["gcp"] == aws and answers["azure"] == aws
    if EXPECTED[case][1] == "ok":
        [result] = aws[1]["results"]
        assert result["report"]["summary"]["create"] == CREATES and result["configs"] == ["shop-dev"]


@pytest.mark.parametrize("case", ["valid push", "tag push, tags: true", "forged", "unconfigured repo"])
def test_queued_deliveries_get_the_same_message_and_report_on_every_cloud(world, case) -> None:  # type: ignore[no-untyped-def]
    answers = _run(world, case, "queue")
    aws = answers["aws"]
    assert answers["gcp"] == aws and answers["azure"] == aws, answers
    if EXPECTED[case][1] == "ok":
        assert aws[0] == 202 and aws[1]["queued"]["status"] == "queued"
        [result] = aws[1]["run"]["results"]
        assert result["report"]["summary"]["create"] == CREATES
    else:
        assert (aws[0], aws[1]["status"]) == EXPECTED[case]
