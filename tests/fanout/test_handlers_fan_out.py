"""The three cloud handlers fan a large run out the same way, in-process: the queued resync
becomes work items in the same format (signed ``work`` messages), each cloud's worker runs
them and queues nothing else, and the run's one outcome (after-sync, once) is the same on
every cloud. The run state is the in-process one (SMF_RUNSTATE=memory), and once more each
cloud's own table: for GCP Firestore against the wire fake (SMF_RUNSTATE=firestore,
FIRESTORE_EMULATOR_HOST), for Azure Table Storage on Azurite, started from the timer (the
scheduled resync fans out too). The stores are the embedded local store, one per cloud."""

from __future__ import annotations

import base64
import json
import sys
import uuid

import pytest

from core import intake, messages, runstate
from tests.conformance.test_handlers_agree import ROOT, SECRET, _load, config_yaml

SERVICES = 5
FILES = {f"services/s{i}/deployment-configuration/profiles/dev/application.properties": f"a=1\nb={i}\n"
         for i in range(SERVICES)}  # fmt: skip


class AwsWorker:
    name = "aws"

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.mod = _load("smf_fanout_aws", ROOT / "handlers" / "aws_lambda.py")
        self.sent: list[str] = []
        monkeypatch.setattr(self.mod, "send", lambda m: self.sent.append(m) or {"handoff": "test"})

    def work(self, message: str) -> list[str]:
        from tests.aws.test_lambda_e2e import Context

        self.sent.clear()
        record = {"messageId": uuid.uuid4().hex, "receiptHandle": "r", "body": message, "attributes": {},
                  "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                  "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:smf-sync", "awsRegion": "us-east-1"}  # fmt: skip
        assert self.mod.handler({"Records": [record]}, Context()) == {"batchItemFailures": []}
        return list(self.sent)


class GcpWorker:
    name = "gcp"

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import functions_framework

        monkeypatch.setenv("SMF_HANDOFF_TOPIC", "projects/p/topics/t")
        self.app = functions_framework.create_app(
            target="resync", source=str(ROOT / "handlers" / "gcp" / "main.py")
        )
        self.client = self.app.test_client()
        self.sent: list[str] = []
        monkeypatch.setattr(sys.modules["main"], "publish", lambda topic, m: self.sent.append(m) or "id-1")

    def work(self, message: str) -> list[str]:
        self.sent.clear()
        event = {"message": {"data": base64.b64encode(message.encode()).decode(), "messageId": "1"},
                 "subscription": "projects/p/subscriptions/s"}  # fmt: skip
        headers = {"ce-specversion": "1.0", "ce-id": uuid.uuid4().hex, "ce-source": "//pubsub.googleapis.com/t",
                   "ce-type": "google.cloud.pubsub.topic.v1.messagePublished", "Content-Type": "application/json"}  # fmt: skip
        assert self.client.post("/", data=json.dumps(event), headers=headers).status_code < 300
        return list(self.sent)


class AzureWorker:
    name = "azure"

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.mod = _load("smf_fanout_azure", ROOT / "handlers" / "azure_functions" / "function_app.py")

    def work(self, message: str) -> list[str]:
        import azure.functions as func

        from tests.azure.test_function_app import Out

        items = Out()
        self.mod.sync_worker.build().get_user_function()(
            func.QueueMessage(id="1", body=message.encode()), items
        )
        return list(items.value or [])


class AzureTimerWorker(AzureWorker):
    """The scheduled resync comes from the timer, not the queue; the rest is the worker's."""

    name = "azure-timer"

    def work(self, message: str) -> list[str]:
        if json.loads(message)["kind"] != "resync":
            return super().work(message)
        from azure.functions.timer import TimerRequest

        from tests.azure.test_function_app import Out

        items = Out()
        self.mod.resync_timer.build().get_user_function()(TimerRequest(past_due=False), items)
        return list(items.value or [])


@pytest.mark.parametrize("driver", [AwsWorker, GcpWorker, AzureWorker], ids=lambda d: d.name)
def test_each_cloud_fans_a_large_run_out_into_the_same_work_items(
    make_repo, monkeypatch, tmp_path, driver
) -> None:  # type: ignore[no-untyped-def]
    fan_out_once(make_repo, monkeypatch, tmp_path, driver, {"SMF_RUNSTATE": "memory"})


def test_gcp_fans_out_with_the_firestore_run_state(make_repo, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.fakes.gcp_firestore import FirestoreFake

    with FirestoreFake() as fake:
        env = {"SMF_RUNSTATE": "firestore", "SMF_RUNSTATE_TABLE": "projects/p/databases/smf-runs/documents/smf-runs",
               "FIRESTORE_EMULATOR_HOST": fake.host}  # fmt: skip
        fan_out_once(make_repo, monkeypatch, tmp_path, GcpWorker, env)
        (doc,) = fake.docs.values()
        record = json.loads(doc["fields"]["doc"]["stringValue"])
        assert record["finished"] and record["pending"] == [] and record["done"] == 3
        assert {m for m, _, _ in fake.requests} == {"GET", "PATCH"}


def test_azure_fans_out_from_the_timer_with_the_table_run_state(
    make_repo, monkeypatch, tmp_path, run_table
) -> None:  # type: ignore[no-untyped-def]
    from azure.data.tables import TableClient

    name, conn = run_table
    env = {"SMF_RUNSTATE": "table", "SMF_RUNSTATE_TABLE": name, "SMF_RUNSTATE_CONNECTION": conn}
    fan_out_once(make_repo, monkeypatch, tmp_path, AzureTimerWorker, env)
    (entity,) = TableClient.from_connection_string(conn, table_name=name).list_entities()
    record = json.loads(entity["doc"])
    assert record["finished"] and record["pending"] == [] and record["done"] == 3
    assert record["kind"] == "resync"


def fan_out_once(make_repo, monkeypatch, tmp_path, driver, state_env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    for name, value in state_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("SMF_LOCAL_STORE_KEY", base64.b64encode(b"c" * 32).decode())
    monkeypatch.setenv("GIT_CACHE_DIR", "")
    monkeypatch.setenv("SMF_FINGERPRINT_KEY", "fanout-fp-key")
    monkeypatch.setenv("SMF_FANOUT_MAX_SERVICES", "2")
    monkeypatch.setenv("SMF_FANOUT_ITEM_SERVICES", "2")
    monkeypatch.setattr(runstate, "_PROCESS_STATE", runstate.MemoryRunState())
    for var in ("SMF_CONFIG_YAML", "SMF_CONFIG_PATH", "SMF_ENV_SECRET", "SMF_QUEUE_URL"):
        monkeypatch.delenv(var, raising=False)
    repo = make_repo(FILES)
    monkeypatch.setenv("SMF_CONFIG", config_yaml(repo.url, tmp_path / "local.db"))
    seen: list[intake.Outcome] = []
    monkeypatch.setattr(intake, "AFTER_SYNC", [lambda o, c: seen.append(o)])
    worker = driver(monkeypatch)
    job = messages.Job("resync", {"drift": False})
    queue = [messages.encode(job, key=None)]
    kinds: list[str] = []
    while queue:
        message = queue.pop(0)
        kinds.append(json.loads(message)["kind"])
        queue.extend(worker.work(message))
    # one resync job, then ceil(5 / 2) = 3 signed work items, nothing else
    assert kinds == ["resync", "work", "work", "work"]
    assert len(seen) == 1
    body = seen[0].body
    assert body["mode"] == "fanned-out" and body["status"] == "ok" and body["services"] == SERVICES
    assert body["results"][0]["report"]["summary"]["create"] == 2 * SERVICES
