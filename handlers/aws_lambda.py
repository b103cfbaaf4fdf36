"""secret-manager-functions on AWS Lambda: transport only (events, responses, logs, metrics).

Every decision is core's (core.entrypoint, core.intake); what each event does, the
environment variables, logs and metrics are in docs/aws.md ("The Lambda handler"). Imports
stay light for the cold start (docs/benchmarks.md): no powertools event-handler resolver,
and the X-Ray tracer only when ``SMF_TRACING`` is on.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
for _root in (_HERE, _HERE.parent):  # the package root holds core/ next to handlers/
    if (_root / "core" / "__init__.py").is_file() and str(_root) not in sys.path:
        sys.path.insert(0, str(_root))
        break

from aws_lambda_powertools import Logger, Metrics  # noqa: E402
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit  # noqa: E402

from core import entrypoint, intake  # noqa: E402
from core.results import logs  # noqa: E402
from core.stores import _aws  # noqa: E402 - no boto3 until a client is made

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "secret-manager-functions"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "SecretManagerFunctions"
#: SQS messages and asynchronous invocation payloads hold 256 KiB.
MAX_MESSAGE_BYTES = 250 * 1024
METRIC_NAMES = {"create": "Created", "update": "Updated", "unchanged": "Unchanged", "delete": "Deleted",
                "conflict": "Conflicts", "drift": "Drift", "error": "Errors"}  # fmt: skip
TRACING = (os.environ.get("SMF_TRACING") or "").lower() in ("1", "true", "yes", "on")

logger = Logger(service=SERVICE, log_uncaught_exceptions=True)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
if TRACING:  # aws-xray-sdk costs ~0.2 s of cold start: loaded only when asked for
    from aws_lambda_powertools import Tracer

    tracer = Tracer(service=SERVICE)


def _json_logs_for_core() -> None:
    """Give the core's "smf.*" loggers the powertools JSON handler, only inside Lambda (or
    with ``SMF_JSON_LOGS=1``): it stops them propagating to a host process's root logger."""
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or os.environ.get("SMF_JSON_LOGS"):
        from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

        logging.getLogger("smf")  # (powertools configures top-level loggers: every core one is below it)
        copy_config_to_registered_loggers(source_logger=logger, include={"smf"})


CONFIG = _HERE.parent / "smf-config.yaml"


def emit_metrics(outcome: intake.Outcome) -> dict[str, dict[str, int]]:
    """Per-store counts as EMF metrics (dimension ``store``)."""
    counts = intake.counts_by_store(outcome.body)
    for store, by in counts.items():
        m = EphemeralMetrics(namespace=NAMESPACE)
        m.add_dimension(name="service", value=SERVICE)
        m.add_dimension(name="store", value=store)
        for action, name in METRIC_NAMES.items():
            if action in by or action != "drift":
                m.add_metric(name=name, unit=MetricUnit.Count, value=by.get(action, 0))
        m.flush_metrics()
    return counts


def _log(message: str, outcome: intake.Outcome) -> None:
    """The run's records (core/results/logs.py): ERROR when it failed or partly failed."""
    for rec in logs.records(outcome, message, counts=emit_metrics(outcome)):
        getattr(logger, rec.method)(rec.message, extra=rec.fields)


#: Queue a message (the worker's SQS queue or an async invocation); tests replace it.
send = _aws.hand_off


def _http(status: int, doc: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(doc)}


def webhook(event: dict[str, Any]) -> dict[str, Any]:
    """Function URL / API Gateway HTTP API (payload 2.0) and REST API (1.0) requests."""
    http = (event.get("requestContext") or {}).get("http") or {}
    method = (http.get("method") or event.get("httpMethod") or "").upper()
    path = (http.get("path") or event.get("rawPath") or event.get("path") or "/").rstrip("/") or "/"
    if method == "GET" and path.endswith("/healthz"):
        metrics.add_metric(name="HealthChecks", unit=MetricUnit.Count, value=1)
        return _http(200, {"status": "ok"})
    if method != "POST" or not (path == "/" or path.endswith("/webhook")):
        return _http(404 if method == "POST" else 405, {"status": "rejected", "reason": "POST /webhook only"})
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    outcome = entrypoint.deliver(headers, body, default_path=CONFIG, max_message_bytes=MAX_MESSAGE_BYTES,
                                 send=send, read_secret=_aws.secret_string)  # fmt: skip
    name = {"rejected": "WebhooksRejected", "queued": "WebhooksQueued"}.get(outcome.kind, "WebhooksSynced")
    if outcome.kind != "ignored":
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    _log("webhook handed off" if outcome.kind == "queued" else f"webhook {outcome.kind}", outcome)
    return _http(outcome.status, outcome.body)


def run_message(message: Any) -> intake.Outcome:
    """A queued message (SQS record body, async invocation) or the schedule's resync."""
    # enqueue: a large run fans out as work items on the same queue (core/fanout.py)
    outcome = entrypoint.run_message(message, default_path=CONFIG, read_secret=_aws.secret_string,
                                     context=intake.RunContext(enqueue=send))  # fmt: skip
    metrics.add_metric(name="SyncJobs", unit=MetricUnit.Count, value=1)
    _log("sync finished", outcome)
    return outcome


def _record(record: Any) -> None:
    if run_message(record.body).status >= 500:
        raise RuntimeError("sync failed: the message is retried")  # reported as a batch item failure


def _sqs(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=_record, processor=processor, context=context)


def _kind(event: Any) -> str:
    if not isinstance(event, dict):
        return "unknown"
    if "smf" in event:
        return "job"
    if event.get("kind") == "resync" or event.get("detail-type") == "Scheduled Event":
        return "schedule"
    records = event.get("Records") or []
    if records and isinstance(records[0], dict) and records[0].get("eventSource") == "aws:sqs":
        return "sqs"
    return "http" if ("rawPath" in event or "httpMethod" in event or "requestContext" in event) else "unknown"


@logger.inject_lambda_context(log_event=False, clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def _handler(event: dict[str, Any], context: Any) -> Any:
    kind = _kind(event)
    logger.append_keys(trigger=kind)
    if kind == "http":
        return webhook(event)
    if kind == "sqs":
        return _sqs(event, context)
    if kind in ("job", "schedule"):
        outcome = run_message(event["smf"] if kind == "job" else {"kind": "resync", "drift": True})
        if outcome.status >= 500:  # Lambda retries a failed async invocation (then its DLQ)
            raise RuntimeError(f"sync failed with status {outcome.status}")
        return {"status": outcome.status, "result": outcome.body.get("status"), **intake.log_summary(outcome)}
    logger.warning(
        "unrecognised event", extra={"keys": sorted(event)[:10] if isinstance(event, dict) else []}
    )
    return {"status": 400, "reason": "unrecognised event"}


handler = tracer.capture_lambda_handler(capture_response=False)(_handler) if TRACING else _handler
_json_logs_for_core()
