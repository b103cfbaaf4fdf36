"""Cloud Run functions (2nd gen) entry points: the Git webhook and the scheduled resync.

Deployed as one source directory holding this file as ``main.py`` next to the ``core``
package (``infra/gcp/build.sh`` assembles it; see docs/gcp.md). Two functions share it:

``webhook`` (HTTP, ``--entry-point=webhook``)
    Verifies the Git host's signature. With ``SMF_HANDOFF_TOPIC`` set (Terraform sets it) the
    verified delivery is published to Pub/Sub and answered ``202`` at once, so the host's
    timeout (GitHub: 10 s) never meets a long sync; without it the push is synced inline and
    the report returned.
``resync`` (CloudEvent, ``--entry-point=resync``, Pub/Sub trigger)
    A message ``{"kind": "push", ...}`` is a handed-off delivery: it goes through exactly the
    webhook path (signature checked again, fetch, incremental sync). Any other message — the
    Cloud Scheduler job publishes ``{"kind": "resync"}`` — reconciles every config at its
    branch tip and checks drift. A server-side failure raises, so Pub/Sub redelivers.

Configuration (environment):
    ``SMF_CONFIG_YAML`` (the SecretManagerConfig documents) or ``SMF_CONFIG`` (a path, default
    ``config.yaml`` next to this file); ``WEBHOOK_SECRET``; ``SMF_FINGERPRINT_KEY``;
    ``SOPS_AGE_KEY``; ``GIT_TOKEN`` (optional); ``SMF_HANDOFF_TOPIC``
    (``projects/P/topics/T``); ``PUBSUB_EMULATOR_HOST`` for a local Pub/Sub;
    ``GCP_SECRET_MANAGER_ENDPOINT`` / ``GCP_PARAMETER_MANAGER_ENDPOINT`` for emulators.

Logs are one JSON object per line on stdout in Cloud Logging's structured shape
(``severity``, ``message``, ``logging.googleapis.com/trace``...). Reports carry names and
counts, never a value. Only the GCP SDKs are imported (lazily, by the stores).
"""

from __future__ import annotations

import base64
import contextvars
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
for _root in (_HERE, *_HERE.parents[:2]):
    if (_root / "core" / "__init__.py").is_file():
        if str(_root) not in sys.path:
            sys.path.insert(0, str(_root))
        break

import functions_framework  # noqa: E402

from core.config import parse_config_text  # noqa: E402
from core.intake import handle_webhook, webhook_secret  # noqa: E402
from core.intake import resync as intake_resync  # noqa: E402
from core.webhook import Ignored, Rejected, delivery_headers, verify_and_parse  # noqa: E402

HANDOFF_ENV = "SMF_HANDOFF_TOPIC"
#: Largest body handed off: base64 of 7 MiB (plus headers) stays under Pub/Sub's 10 MB.
HANDOFF_MAX_BYTES = 7 * 1024 * 1024
_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("smf_trace", default=None)

# -- structured logging ---------------------------------------------------------------------
_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_SEVERITY = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARNING", "ERROR": "ERROR",
             "CRITICAL": "CRITICAL"}  # fmt: skip


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per record, in the shape Cloud Logging parses from stdout."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelname, "DEFAULT"),
            "message": record.getMessage(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "logging.googleapis.com/sourceLocation": {
                "file": record.pathname, "line": record.lineno, "function": record.funcName},
            "logger": record.name,
        }  # fmt: skip
        trace = _trace.get()
        if trace:
            entry["logging.googleapis.com/trace"] = trace
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["error_type"] = record.exc_info[0].__name__  # never the traceback's locals
        return json.dumps(entry, default=str)


def _setup_logging() -> logging.Logger:
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "smf_cloud_logging", False)]:
        root.removeHandler(old)  # this module loaded again (a second function in one process)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter())
    handler.smf_cloud_logging = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO"))
    return logging.getLogger("smf.gcp")


log = _setup_logging()


def _set_trace(headers: Any) -> None:
    """`X-Cloud-Trace-Context: TRACE/SPAN;o=1` → ``projects/P/traces/TRACE``."""
    raw = (headers.get("X-Cloud-Trace-Context") or "") if headers is not None else ""
    project = os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCP_PROJECT")
    trace = raw.split("/", 1)[0]
    _trace.set(f"projects/{project}/traces/{trace}" if trace and project else None)


# -- configuration ----------------------------------------------------------------------------
_CONFIG_CACHE: dict[str, list[Any]] = {}


def load_configs() -> list[Any]:
    """The SecretManagerConfig documents (parsed once per instance and text)."""
    text = os.environ.get("SMF_CONFIG_YAML")
    origin = "SMF_CONFIG_YAML"
    if not text:
        path = Path(os.environ.get("SMF_CONFIG") or _HERE / "config.yaml")
        text, origin = path.read_text(encoding="utf-8"), str(path)
    if text not in _CONFIG_CACHE:
        _CONFIG_CACHE.clear()
        _CONFIG_CACHE[text] = parse_config_text(text, origin)
    return _CONFIG_CACHE[text]


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    """Counts for the log line (the full report goes to the HTTP response only)."""
    results = report.get("results") or []
    out: dict[str, Any] = {"status": report.get("status")}
    summaries = [r.get("report", {}).get("summary") for r in results if r.get("report")]
    if summaries:
        out["summary"] = summaries
    errors = sum(len((r.get("report") or {}).get("errors") or r.get("errors") or []) for r in results)
    if errors:
        out["errors"] = errors
    if report.get("reason"):
        out["reason"] = report["reason"]
    return out


# -- Pub/Sub hand-off -------------------------------------------------------------------------
def publish(topic: str, payload: dict[str, Any]) -> str:
    """Publish one JSON message (REST, so no Pub/Sub SDK is needed). Returns the message id."""
    import requests

    data = base64.b64encode(json.dumps(payload).encode()).decode()
    body = {"messages": [{"data": data, "attributes": {"kind": str(payload.get("kind", ""))}}]}
    emulator = os.environ.get("PUBSUB_EMULATOR_HOST")
    if emulator:
        session: Any = requests.Session()
        url = f"http://{emulator}/v1/{topic}:publish"
    else:
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/pubsub"])
        session, url = AuthorizedSession(creds), f"https://pubsub.googleapis.com/v1/{topic}:publish"
    resp = session.post(url, json=body, timeout=10)
    resp.raise_for_status()
    return str((resp.json().get("messageIds") or [""])[0])


def _json(payload: dict[str, Any], status: int) -> tuple[str, int, dict[str, str]]:
    return json.dumps(payload), status, {"Content-Type": "application/json"}


# -- entry points -----------------------------------------------------------------------------
@functions_framework.http
def webhook(request: Any) -> tuple[str, int, dict[str, str]]:
    """HTTP function for Git push webhooks."""
    _set_trace(request.headers)
    started = time.monotonic()
    if request.method != "POST":
        return _json({"status": "rejected", "reason": "POST only"}, 405)
    body = request.get_data(cache=False)
    headers = dict(request.headers.items())
    try:
        configs = load_configs()
        secret = webhook_secret(configs)
    except Exception as exc:  # noqa: BLE001 - configuration problem: name it, 500
        log.error("configuration error", extra={"error": str(exc)})
        return _json({"status": "error", "reason": "configuration error"}, 500)
    topic = os.environ.get(HANDOFF_ENV)
    # base64 of a larger body would exceed Pub/Sub's 10 MB message limit: after verifying it,
    # queue a full resync of the configured branches instead (the worker holds the keys).
    oversized = len(body) > int(os.environ.get("SMF_HANDOFF_MAX_BYTES") or HANDOFF_MAX_BYTES)
    if topic:
        outcome = verify_and_parse(headers, body, secret=secret or b"")
        if isinstance(outcome, Rejected):
            log.warning("webhook rejected", extra={"http_status": outcome.status, "reason": outcome.reason})
            return _json({"status": "rejected", "reason": outcome.reason}, outcome.status)
        if isinstance(outcome, Ignored):
            return _json({"status": "ignored", "reason": outcome.reason}, outcome.status)
        if oversized:
            message: dict[str, Any] = {"kind": "resync", "drift": False}
        else:
            message = {"kind": "push", "headers": delivery_headers(headers),
                       "body": base64.b64encode(body).decode()}  # fmt: skip
        try:
            message_id = publish(topic, message)
        except Exception as exc:  # noqa: BLE001 - the host retries a 5xx
            log.error("hand-off failed", extra={"error_type": type(exc).__name__})
            return _json({"status": "error", "reason": "could not queue the delivery"}, 503)
        out = {"status": "queued", "kind": message["kind"], "delivery_id": outcome.delivery_id,
               "message_id": message_id, "after": outcome.after}  # fmt: skip
        log.info("webhook queued", extra={**out, "ms": int((time.monotonic() - started) * 1000)})
        return _json(out, 202)
    status, report = handle_webhook(headers, body, configs, secret=secret)
    log.info("webhook handled", extra={"http_status": status, **_summary(report),
                                       "ms": int((time.monotonic() - started) * 1000)})  # fmt: skip
    return _json(report, status)


@functions_framework.cloud_event
def resync(cloud_event: Any) -> None:
    """Pub/Sub-triggered CloudEvent: a handed-off push, or the scheduled resync."""
    _set_trace(None)
    started = time.monotonic()
    data = cloud_event.data or {}
    raw = ((data.get("message") or {}).get("data")) or ""
    try:
        message = json.loads(base64.b64decode(raw)) if raw else {}
    except ValueError:
        message = {}
    configs = load_configs()
    if message.get("kind") == "push":
        body = base64.b64decode(message.get("body") or "")
        headers = message.get("headers") or {}
        status, report = handle_webhook(headers, body, configs, secret=webhook_secret(configs))
        what = "push synced"
    else:
        status, report = intake_resync(configs, drift=message.get("drift", True) is not False)
        what = "resync finished"
    log.info(what, extra={"http_status": status, **_summary(report), "event_id": cloud_event["id"],
                          "ms": int((time.monotonic() - started) * 1000)})  # fmt: skip
    if status >= 500:
        # Pub/Sub redelivers (the trigger's retry policy); content errors are not retried.
        raise RuntimeError(f"{what} with status {status}; Pub/Sub will redeliver")
