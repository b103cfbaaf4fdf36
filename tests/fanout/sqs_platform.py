"""The AWS queue path in one process, as the platform runs it: an SQS queue with a
dead-letter queue (redrive after `max_receive` receives) and a DynamoDB run table, both in
moto, and `drain`, which runs workers on bounded parallel threads the way Lambda's event
source mapping does with ``maximumConcurrency`` (one message a batch).

A worker that answers >= 500 or dies (raises `Killed`) leaves its message on the queue; the
visibility timeout's expiry is simulated by setting the message visible again (no sleeping),
so the queue redelivers it and its receive count grows, as on SQS. Shared by tests/fanout and
bench/bench_fanout_aws.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.runstate import DynamoRunState


class Killed(BaseException):
    """A worker dying mid-item (not an Exception: nothing in core may catch it)."""


@dataclass
class DrainStats:
    received: int = 0
    deleted: int = 0
    returned: int = 0
    killed: int = 0
    peak_in_flight: int = 0
    outcomes: list[Any] = field(default_factory=list)
    crashed: list[BaseException] = field(default_factory=list)


class SqsPlatform:
    def __init__(self, endpoint: str, *, name: str = "smf-sync", max_receive: int = 5) -> None:
        import boto3

        serialize_moto_stores()
        kw = {"endpoint_url": endpoint, "region_name": "us-east-1"}
        self.sqs = boto3.client("sqs", **kw)
        self.dynamodb = boto3.client("dynamodb", **kw)
        dlq = self.sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)})
        self.dlq_url = dlq
        self.url = self.sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive,
                                                                   "VisibilityTimeout": "900"})["QueueUrl"]  # fmt: skip
        table = f"{name}-runs"
        self.dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                                   AttributeDefinitions=[{"AttributeName": "run", "AttributeType": "S"}],
                                   KeySchema=[{"AttributeName": "run", "KeyType": "HASH"}])  # fmt: skip
        self.table = table
        self.state = DynamoRunState(table, self.dynamodb)
        self.sent = 0
        self._lock = threading.Lock()

    def send(self, message: str) -> dict[str, str]:
        resp = self.sqs.send_message(QueueUrl=self.url, MessageBody=message)
        with self._lock:
            self.sent += 1
        return {"handoff": "sqs", "message_id": resp["MessageId"]}

    def counts(self, url: str | None = None) -> tuple[int, int]:
        attrs = self.sqs.get_queue_attributes(QueueUrl=url or self.url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]  # fmt: skip
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def dead_letters(self) -> int:
        return sum(self.counts(self.dlq_url))

    def drain(
        self, handle: Callable[[str], Any], *, workers: int = 4, max_messages: int = 100_000
    ) -> DrainStats:
        """Run `handle(body) -> Outcome` on up to `workers` messages at once until the queue
        is empty (and nothing is in flight)."""
        stats = DrainStats()
        lock = threading.Lock()
        in_flight = [0]
        idle = threading.Event()  # never set: a short pause between empty polls

        def worker() -> None:
            while True:
                resp = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=1, WaitTimeSeconds=0)
                msgs = resp.get("Messages") or []
                if not msgs:
                    with lock:
                        busy = in_flight[0]
                    counts = self.counts()
                    if busy == 0 and counts == (0, 0):
                        return
                    idle.wait(0.005)  # another worker may still enqueue a remainder
                    continue
                msg = msgs[0]
                with lock:
                    in_flight[0] += 1
                    stats.received += 1
                    stats.peak_in_flight = max(stats.peak_in_flight, in_flight[0])
                    if stats.received > max_messages:
                        in_flight[0] -= 1
                        raise RuntimeError("drain: too many messages (a loop?)")
                try:
                    outcome = handle(msg["Body"])
                    ok = outcome.status < 500
                except Killed:
                    outcome, ok = None, False
                    with lock:
                        stats.killed += 1
                except BaseException as exc:  # a bug: stop draining, and say so in the test
                    with lock:
                        in_flight[0] -= 1
                        stats.crashed.append(exc)
                    raise
                try:
                    if ok:
                        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=msg["ReceiptHandle"])
                    else:  # the visibility timeout expires: the queue redelivers it
                        self.sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=msg["ReceiptHandle"],
                                                           VisibilityTimeout=0)  # fmt: skip
                finally:
                    with lock:
                        in_flight[0] -= 1
                        if ok:
                            stats.deleted += 1
                        else:
                            stats.returned += 1
                        if outcome is not None:
                            stats.outcomes.append(outcome)

        threads = [threading.Thread(target=worker, name=f"sqs-worker-{i}") for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if stats.crashed:
            raise stats.crashed[0]
        return stats


_MOTO_LOCK = threading.RLock()


def serialize_moto_stores() -> None:
    """moto's Parameter Store and Secrets Manager iterate their dicts while listing, so a
    listing that runs while another worker writes dies with "dictionary changed size during
    iteration" (moto 5.2.5: SimpleSystemManagerBackend.describe_parameters,
    SecretsManagerBackend.list_secrets). Real AWS has no such limit; here every public method
    of those two backends takes one lock (patched once per process, tests and bench only)."""
    from moto.secretsmanager.models import SecretsManagerBackend
    from moto.ssm.models import SimpleSystemManagerBackend

    for cls in (SimpleSystemManagerBackend, SecretsManagerBackend):
        if cls.__dict__.get("_smf_serialized"):
            continue
        for name, original in list(vars(cls).items()):
            if (
                name.startswith("_")
                or not callable(original)
                or isinstance(original, staticmethod | classmethod)
            ):
                continue

            def locked(self: Any, *a: Any, __f: Any = original, **kw: Any) -> Any:
                with _MOTO_LOCK:
                    return __f(self, *a, **kw)

            setattr(cls, name, locked)
        cls._smf_serialized = True  # type: ignore[attr-defined]
