"""Cloud Run functions (2nd gen) entry points: transport only (HTTP, Pub/Sub, Cloud Logging).

``webhook`` (HTTP) verifies the delivery, publishes it to Pub/Sub (``SMF_HANDOFF_TOPIC``) and
answers 202: the queue retries, not the Git host. ``resync`` (CloudEvent, Pub/Sub trigger)
runs queued messages and the scheduled resync. Every decision is core.intake's; the
deployment, environment and logs are described in docs/gcp.md ("The functions").
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

from core import entrypoint, intake  # noqa: E402
from core.results import logs  # noqa: E402

HANDOFF_ENV = "SMF_HANDOFF_TOPIC"
#: Pub/Sub takes 10 MB per message (base64 in the REST call): stay well below.
MAX_MESSAGE_BYTES = 7 * 1024 * 1024
_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("smf_trace", default=None)
_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per record, in the shape Cloud Logging parses from stdout."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname if record.levelname in ("DEBUG", "INFO", "WARNING", "ERROR",
                                                                 "CRITICAL") else "DEFAULT",
            "message": record.getMessage(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "logging.googleapis.com/sourceLocation": {
                "file": record.pathname, "line": record.lineno, "function": record.funcName},
            "logger": record.name,
        }  # fmt: skip
        if _trace.get():
            entry["logging.googleapis.com/trace"] = _trace.get()
        entry.update({k: v for k, v in vars(record).items() if k not in _STD_ATTRS and not k.startswith("_")})
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


CONFIG = _HERE / "config.yaml"


def publish(topic: str, message: str) -> str:
    """Publish one message over Pub/Sub's REST API (urllib3 retries transient failures)."""
    import requests
    from urllib3.util.retry import Retry

    body = {"messages": [{"data": base64.b64encode(message.encode()).decode()}]}
    emulator = os.environ.get("PUBSUB_EMULATOR_HOST")
    if emulator:
        session: Any = requests.Session()
        url = f"http://{emulator}/v1/{topic}:publish"
    else:
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/pubsub"])
        session, url = AuthorizedSession(creds), f"https://pubsub.googleapis.com/v1/{topic}:publish"
    retry = Retry(
        total=3, backoff_factor=0.2, status_forcelist=(429, 500, 502, 503, 504), allowed_methods=None
    )
    session.mount(url.split("/v1/")[0], requests.adapters.HTTPAdapter(max_retries=retry))
    resp = session.post(url, json=body, timeout=10)
    resp.raise_for_status()
    return str((resp.json().get("messageIds") or [""])[0])


def _log(message: str, outcome: intake.Outcome, started: float, **extra: Any) -> None:
    """The run's records (core/results/logs.py), severity ERROR when it failed or partly failed."""
    ms = int((time.monotonic() - started) * 1000)
    for rec in logs.records(outcome, message, per_store=True, **extra, ms=ms):
        log.log(rec.level, rec.message, extra=rec.fields)


def _json(payload: dict[str, Any], status: int) -> tuple[str, int, dict[str, str]]:
    return json.dumps(payload), status, {"Content-Type": "application/json"}


@functions_framework.http
def webhook(request: Any) -> tuple[str, int, dict[str, str]]:
    """HTTP function for Git webhooks."""
    _set_trace(request.headers)
    started = time.monotonic()
    if request.method != "POST":
        return _json({"status": "rejected", "reason": "POST only"}, 405)
    body = request.get_data(cache=False)
    topic = os.environ.get(HANDOFF_ENV)
    outcome = entrypoint.deliver(dict(request.headers.items()), body, default_path=CONFIG, default_mode="queue",
                                 max_message_bytes=MAX_MESSAGE_BYTES,
                                 send=(lambda m: {"message_id": publish(topic, m)}) if topic else None)  # fmt: skip
    _log(f"webhook {outcome.kind}", outcome, started)
    return _json(outcome.body, outcome.status)


@functions_framework.cloud_event
def resync(cloud_event: Any) -> None:
    """Pub/Sub-triggered CloudEvent: a queued message, or the scheduled resync."""
    _set_trace(None)
    started = time.monotonic()
    raw = ((cloud_event.data or {}).get("message") or {}).get("data") or ""
    text = base64.b64decode(raw).decode("utf-8", "replace") if raw else '{"kind": "resync"}'
    topic = os.environ.get(HANDOFF_ENV)  # a large run fans out as work items on it (core/fanout.py)
    ctx = intake.RunContext(enqueue=(lambda m: {"message_id": publish(topic, m)}) if topic else None)
    outcome = entrypoint.run_message(text, default_path=CONFIG, context=ctx)
    what = "resync finished" if outcome.kind == "resync" else f"{outcome.kind} finished"
    _log(what, outcome, started, event_id=cloud_event["id"])
    if outcome.status >= 500:  # Pub/Sub redelivers (retry policy, then the dead-letter topic)
        raise RuntimeError(f"{what} with status {outcome.status}; Pub/Sub will redeliver")
