"""secret-manager-functions on AWS Lambda (aws-lambda-powertools: Logger, Metrics, Tracer).

One function, ``handlers/aws_lambda.handler``, answers every event serverless.yml wires to it:

HTTP ``POST /webhook`` (or ``POST /``) from a **Lambda Function URL** or an **API Gateway**
    HTTP API (payload 2.0) or REST API (payload 1.0): verifies the Git host's signature
    (GitHub, GitLab, Bitbucket, Gitea, generic: core.webhook), then either syncs the pushed
    commit inline or, when the sync may outlast the host's delivery timeout (GitHub and
    GitLab wait 10 s), hands the verified delivery off and answers ``202`` at once with
    ``"mode": "queued"`` (logged as ``webhook handed off``). ``SMF_WEBHOOK_MODE``:
    ``auto`` (default: inline only when the payload lists at most ``SMF_INLINE_MAX_PATHS``
    changed files (50) for a single ref with a reliable file list; queued otherwise),
    ``inline`` or ``queue``. The hand-off goes to the SQS queue ``SMF_QUEUE_URL`` (default
    in serverless.yml: retries, then a dead-letter queue) or, with ``SMF_HANDOFF=invoke``,
    to an asynchronous invocation of ``SMF_WORKER_FUNCTION`` (default: this function).
SQS records / asynchronous invocations ``{"smf": {...}}``
    A handed-off delivery goes through exactly the webhook path again (signature checked
    again, fetch, incremental sync). Failed SQS records are returned as
    ``batchItemFailures`` so only they are retried.
EventBridge schedule (``"detail-type": "Scheduled Event"``, or ``{"kind": "resync"}``)
    Reconciles every config at its branch tip and checks drift (``spec.sync.drift``).

Configuration (environment): ``SMF_CONFIG_YAML`` (the SecretManagerConfig documents) or
``SMF_CONFIG_PATH`` (default ``smf-config.yaml`` at the package root; ``SMF_CONFIG`` may hold
either). Secrets: ``SMF_ENV_SECRET`` names one Secrets Manager secret holding a JSON object
with ``WEBHOOK_SECRET``, ``SMF_FINGERPRINT_KEY``, ``SOPS_AGE_KEY`` and ``GIT_TOKEN`` (read once
per cold start), or the same variables directly (local runs), or
``spec.webhook.secretRef`` / ``spec.decryption.ageKeySecret`` in the config. SOPS files
encrypted with AWS KMS keys decrypt with the function's role (``kms:Decrypt``).

Logs: one JSON line per event (powertools Logger) with the action, status, counts and
delivery id; never a value or a request body. Metrics (EMF on stdout, namespace
``POWERTOOLS_METRICS_NAMESPACE``): Created, Updated, Unchanged, Deleted, Conflicts, Errors
(and Drift) per ``store`` dimension; WebhooksQueued/WebhooksRejected. Only boto3 is
imported (lazily, by the stores and the hand-off): never a GCP or Azure SDK.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import zlib
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
for _root in (_HERE, _HERE.parent):  # the package root holds core/ next to handlers/
    if (_root / "core" / "__init__.py").is_file() and str(_root) not in sys.path:
        sys.path.insert(0, str(_root))
        break

from aws_lambda_powertools import Logger, Metrics, Tracer  # noqa: E402
from aws_lambda_powertools.event_handler import (  # noqa: E402
    APIGatewayRestResolver,
    LambdaFunctionUrlResolver,
    Response,
)
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit  # noqa: E402

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "secret-manager-functions"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "SecretManagerFunctions"
#: An SQS message / async invocation payload holds 256 KiB; the body is sent compressed.
MAX_HANDOFF_BYTES = 240 * 1024
#: Variables SMF_ENV_SECRET may set (nothing else from that secret reaches the environment).
SECRET_ENV_KEYS = ("WEBHOOK_SECRET", "SMF_FINGERPRINT_KEY", "SOPS_AGE_KEY", "GIT_TOKEN")
METRIC_NAMES = {
    "create": "Created",
    "update": "Updated",
    "unchanged": "Unchanged",
    "delete": "Deleted",
    "conflict": "Conflicts",
    "drift": "Drift",
    "error": "Errors",
}

logger = Logger(service=SERVICE, log_uncaught_exceptions=True)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
url_app = LambdaFunctionUrlResolver()  # Function URL and API Gateway HTTP API (payload 2.0)
rest_app = APIGatewayRestResolver()  # API Gateway REST API (payload 1.0)


def _json_logs_for_core() -> None:
    """Core modules log through `logging` ("smf.*"): give them the powertools JSON handler.

    Only inside Lambda (``AWS_LAMBDA_FUNCTION_NAME``) or with ``SMF_JSON_LOGS=1``: it stops the
    "smf" loggers from propagating to the root logger, which a host process (tests, a local
    server) may rely on."""
    import logging

    if not (os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or os.environ.get("SMF_JSON_LOGS")):
        return

    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    names = {n for n in logging.root.manager.loggerDict if n == "smf" or n.startswith("smf.")}
    for name in ("smf", "smf.sync", "smf.apply", "smf.intake", "smf.git", "smf.sops"):
        logging.getLogger(name)
        names.add(name)
    copy_config_to_registered_loggers(source_logger=logger, include=names)


# -- configuration ----------------------------------------------------------------------------
_CONFIGS: dict[str, list[Any]] = {}
_ENV_LOADED: set[str] = set()


def load_env_secret() -> None:
    """Once per cold start: copy WEBHOOK_SECRET etc. from the SMF_ENV_SECRET JSON secret."""
    secret_id = os.environ.get("SMF_ENV_SECRET")
    if not secret_id or secret_id in _ENV_LOADED:
        return
    from core.errors import SyncError
    from core.stores import _aws

    client = _aws.client("secretsmanager", {})
    try:
        text = client.get_secret_value(SecretId=secret_id).get("SecretString") or "{}"
        data = json.loads(text)
    except ValueError:
        raise SyncError("SMF_ENV_SECRET is not a JSON object", field="SMF_ENV_SECRET") from None
    except Exception as exc:  # noqa: BLE001
        raise _aws.store_error(exc, store="aws-secrets-manager", op="GetSecretValue",
                               name="SMF_ENV_SECRET") from None  # fmt: skip
    if not isinstance(data, dict):
        raise SyncError("SMF_ENV_SECRET is not a JSON object", field="SMF_ENV_SECRET")
    for key in SECRET_ENV_KEYS:
        if data.get(key) and not os.environ.get(key):
            os.environ[key] = str(data[key])
    _ENV_LOADED.add(secret_id)


def load_configs() -> list[Any]:
    """The SecretManagerConfig documents (parsed once per instance and text)."""
    from core.config import parse_config_text

    text = os.environ.get("SMF_CONFIG_YAML")
    origin = "SMF_CONFIG_YAML"
    inline = os.environ.get("SMF_CONFIG") or ""
    if not text and ("\n" in inline or inline.lstrip().startswith(("{", "apiVersion"))):
        text, origin = inline, "SMF_CONFIG"
    if not text:
        default = _HERE.parent / "smf-config.yaml"
        path = Path(os.environ.get("SMF_CONFIG_PATH") or inline or default)
        text, origin = path.read_text(encoding="utf-8"), str(path)
    if text not in _CONFIGS:
        _CONFIGS.clear()
        _CONFIGS[text] = parse_config_text(text, origin)
    return _CONFIGS[text]


def _secret(configs: list[Any]) -> str | None:
    from core.intake import webhook_secret

    return webhook_secret(configs)


# -- metrics ----------------------------------------------------------------------------------
def emit_metrics(result: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per-store counts of a handle_webhook/resync result as EMF metrics (dimension `store`)."""
    counts: dict[str, dict[str, int]] = {}
    for res in result.get("results") or []:
        report = res.get("report") or {}
        for change in report.get("changes") or []:
            by = counts.setdefault(change["store"], {})
            by[change["action"]] = by.get(change["action"], 0) + 1
        for err in report.get("errors") or []:
            by = counts.setdefault(str(err.get("store") or "none"), {})
            by["error"] = by.get("error", 0) + 1
        if res.get("errors"):  # a fetch failure: no store involved
            by = counts.setdefault("none", {})
            by["error"] = by.get("error", 0) + len(res["errors"])
    for store, by in counts.items():
        m = EphemeralMetrics(namespace=NAMESPACE)
        m.add_dimension(name="service", value=SERVICE)
        m.add_dimension(name="store", value=store)
        for action, name in METRIC_NAMES.items():
            if action in by or action != "drift":
                m.add_metric(name=name, unit=MetricUnit.Count, value=by.get(action, 0))
        m.flush_metrics()
    return counts


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"result": result.get("status")}
    reports = [r.get("report") for r in result.get("results") or [] if r.get("report")]
    if reports:
        out["summary"] = [r.get("summary") for r in reports]
        errors = [e for r in reports for e in r.get("errors") or []]
        if errors:
            out["errors"] = [str(e.get("message")) for e in errors][:20]
    fetch_errors = [e for r in result.get("results") or [] for e in r.get("errors") or []]
    if fetch_errors:
        out["fetch_errors"] = [str(e.get("message")) for e in fetch_errors][:5]
    if result.get("reason"):
        out["reason"] = result["reason"]
    return out


# -- hand-off ---------------------------------------------------------------------------------
def handoff_payload(headers: dict[str, str], body: bytes) -> dict[str, Any] | None:
    """The verified delivery as a message (compressed body), or None when too large."""
    from core.webhook import delivery_headers

    kept = delivery_headers(headers)
    packed = base64.b64encode(zlib.compress(body, 6)).decode("ascii")
    payload = {"kind": "push", "headers": kept, "body_z": packed}
    if len(json.dumps(payload)) > MAX_HANDOFF_BYTES:
        return None
    return payload


@tracer.capture_method(capture_response=False)
def hand_off(payload: dict[str, Any]) -> dict[str, str]:
    """Send the delivery to the worker: SQS (SMF_QUEUE_URL) or an async invocation."""
    from core.stores import _aws

    how = (os.environ.get("SMF_HANDOFF") or ("sqs" if os.environ.get("SMF_QUEUE_URL") else "invoke")).lower()
    if how == "sqs":
        queue = os.environ["SMF_QUEUE_URL"]
        resp = _aws.client("sqs", {}).send_message(QueueUrl=queue, MessageBody=json.dumps(payload))
        return {"via": "sqs", "message_id": resp.get("MessageId", "")}
    target = os.environ.get("SMF_WORKER_FUNCTION") or os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    if not target:
        raise RuntimeError("no hand-off target: set SMF_QUEUE_URL or SMF_WORKER_FUNCTION")
    resp = _aws.client("lambda", {}).invoke(
        FunctionName=target, InvocationType="Event", Payload=json.dumps({"smf": payload}).encode()
    )
    return {"via": "invoke", "status": str(resp.get("StatusCode", ""))}


def _decide_mode(outcome: Any) -> str:
    """``auto``: inline only when the payload lists few changed files for one ref."""
    limit = int(os.environ.get("SMF_INLINE_MAX_PATHS") or 50)
    if outcome.more or not outcome.paths_reliable or len(outcome.changed_paths or ()) > limit:
        return "queue"
    return "inline"


# -- HTTP -------------------------------------------------------------------------------------
def _json(status: int, doc: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type="application/json", body=json.dumps(doc))


def _raw_body(event: Any) -> bytes:
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(raw)
    return raw.encode("utf-8")


def webhook(event: Any) -> Response:
    started = time.monotonic()
    from core.errors import SyncError
    from core.intake import handle_webhook
    from core.webhook import PushEvent, configs_for_push, verify_and_parse

    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    body = _raw_body(event)
    try:
        load_env_secret()
        configs = load_configs()
        secret = _secret(configs)
    except SyncError as exc:
        logger.error("webhook: configuration error", extra={"error": str(exc)})
        return _json(500, {"status": "error", "errors": [exc.to_dict()]})
    except OSError as exc:
        logger.error("webhook: cannot read the config", extra={"error": exc.strerror})
        return _json(500, {"status": "error", "errors": [{"message": "cannot read the config"}]})
    mode = (os.environ.get("SMF_WEBHOOK_MODE") or "auto").lower()
    if mode in ("auto", "queue"):
        named = {(c.webhook or {}).get("provider") for c in configs} - {None}
        tags = any(c.source.tags for c in configs)
        outcome = verify_and_parse(headers, body, secret=secret or b"", tags=tags,
                                   provider=named.pop() if len(named) == 1 else None)  # fmt: skip
        if not isinstance(outcome, PushEvent):
            rejected = outcome.status >= 400
            if rejected:
                metrics.add_metric(name="WebhooksRejected", unit=MetricUnit.Count, value=1)
            logger.warning("webhook rejected" if rejected else "webhook ignored",
                           extra={"status": outcome.status, "reason": outcome.reason})  # fmt: skip
            return _json(outcome.status, {"status": "rejected" if rejected else "ignored",
                                          "reason": outcome.reason})  # fmt: skip
        if not any(configs_for_push(configs, ev) for ev in [outcome, *outcome.more]):
            logger.info("webhook ignored", extra={"reason": "no config follows this repository and branch",
                                                   "delivery_id": outcome.delivery_id})  # fmt: skip
            return _json(202, {"status": "ignored", "reason": "no config follows this repository and branch",
                               "delivery_id": outcome.delivery_id})  # fmt: skip
        if mode == "auto":
            mode = _decide_mode(outcome)
        if mode == "queue":
            payload = handoff_payload(headers, body)
            if payload is not None:
                sent = hand_off(payload)
                metrics.add_metric(name="WebhooksQueued", unit=MetricUnit.Count, value=1)
                info = {"delivery_id": outcome.delivery_id, "ref": outcome.ref, "after": outcome.after,
                        "handoff": sent["via"], "ms": round((time.monotonic() - started) * 1000)}  # fmt: skip
                logger.info("webhook handed off", extra={"mode": "queued", **info})
                return _json(202, {"status": "queued", "mode": "queued", **info,
                                   "handoff_detail": sent})  # fmt: skip
            logger.warning("webhook too large to hand off, syncing inline",
                           extra={"bytes": len(body)})  # fmt: skip
    status, result = handle_webhook(headers, body, configs, secret=secret)
    if result.get("status") == "rejected":
        metrics.add_metric(name="WebhooksRejected", unit=MetricUnit.Count, value=1)
        return _json(status, {**result, "mode": "inline"})  # handle_webhook logged why
    metrics.add_metric(name="WebhooksSynced", unit=MetricUnit.Count, value=1)
    counts = emit_metrics(result)
    logger.info("webhook synced", extra={"mode": "inline", "status": status, "counts": counts,
                                         "ms": round((time.monotonic() - started) * 1000),
                                         **_summary(result)})  # fmt: skip
    return _json(status, {**result, "mode": "inline"})


@url_app.post("/webhook")
@url_app.post("/")
def _url_webhook() -> Response:
    return webhook(url_app.current_event.raw_event)


@rest_app.post("/webhook")
@rest_app.post("/")
def _rest_webhook() -> Response:
    return webhook(rest_app.current_event.raw_event)


@url_app.get("/healthz")
@rest_app.get("/healthz")
def _health() -> Response:
    metrics.add_metric(name="HealthChecks", unit=MetricUnit.Count, value=1)
    return _json(200, {"status": "ok"})


# -- workers ----------------------------------------------------------------------------------
@tracer.capture_method(capture_response=False)
def run_job(job: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A handed-off delivery (verified again) or a resync."""
    from core.intake import handle_webhook, resync

    load_env_secret()
    configs = load_configs()
    if job.get("kind") == "push":
        body = zlib.decompress(base64.b64decode(job["body_z"]))
        status, result = handle_webhook(job.get("headers") or {}, body, configs, secret=_secret(configs))
    else:
        status, result = resync(configs, drift=bool(job.get("drift", True)))
    metrics.add_metric(name="SyncJobs", unit=MetricUnit.Count, value=1)
    counts = emit_metrics(result)
    logger.info("sync finished", extra={"kind": job.get("kind") or "resync", "status": status,
                                        "counts": counts, **_summary(result)})  # fmt: skip
    return status, result


def _sqs(event: dict[str, Any]) -> dict[str, Any]:
    failures: list[dict[str, str]] = []
    for record in event.get("Records") or []:
        msg_id = record.get("messageId", "")
        try:
            status, _ = run_job(json.loads(record.get("body") or "{}"))
        except Exception as exc:  # noqa: BLE001 - one bad record must not fail the batch
            logger.error("queued sync failed", extra={"message_id": msg_id, "error": type(exc).__name__})
            status = 500
        if status >= 500:
            failures.append({"itemIdentifier": msg_id})
    return {"batchItemFailures": failures}


def _kind(event: Any) -> str:
    if not isinstance(event, dict):
        return "unknown"
    if "smf" in event:
        return "job"
    if event.get("kind") == "resync" or event.get("detail-type") == "Scheduled Event":
        return "schedule"
    records = event.get("Records") or []
    if records and records[0].get("eventSource") == "aws:sqs":
        return "sqs"
    if event.get("version") == "2.0" or "rawPath" in event:
        return "url"
    if "httpMethod" in event:
        return "rest"
    return "unknown"


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> Any:
    kind = _kind(event)
    logger.append_keys(trigger=kind)
    if kind == "url":
        return url_app.resolve(event, context)
    if kind == "rest":
        return rest_app.resolve(event, context)
    if kind == "sqs":
        return _sqs(event)
    if kind == "job":
        status, result = run_job(event["smf"])
        if status >= 500:  # Lambda retries failed async invocations (then its DLQ/destination)
            raise RuntimeError(f"sync failed with status {status}")
        return {"status": status, "result": result.get("status")}
    if kind == "schedule":
        status, result = run_job({"kind": "resync", "drift": True})
        if status >= 500:
            raise RuntimeError(f"resync failed with status {status}")
        return {"status": status, "result": result.get("status"), **_summary(result)}
    logger.warning(
        "unrecognised event", extra={"keys": sorted(event)[:10] if isinstance(event, dict) else []}
    )
    return {"status": 400, "reason": "unrecognised event"}


_json_logs_for_core()
