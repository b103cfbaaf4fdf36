"""secret-manager-functions on Azure Functions (Python v2 programming model).

Three functions share one app:

``webhook``  (HTTP ``POST /api/webhook``)
    Verifies the Git host's signature (GitHub/GitLab/Bitbucket/Gitea/generic, see
    core.webhook) and either syncs the pushed commit right away or, when the sync may not
    finish within the host's delivery timeout (GitHub and GitLab wait 10 s), puts the
    verified delivery on the ``smf-sync`` storage queue and answers ``202`` at once.
    ``SMF_WEBHOOK_MODE``: ``auto`` (default: inline when the payload lists at most
    ``SMF_INLINE_MAX_PATHS`` changed files (default 50), queued otherwise — a new branch, a
    force-push, a truncated file list or several refs), ``inline`` or ``queue``.
``sync_worker``  (queue trigger on ``smf-sync``)
    Runs a queued delivery (verified again: the queue is not trusted more than the
    internet) or, for a delivery too large for a queue message (64 KB), a full resync.
``resync``  (timer, ``SMF_RESYNC_SCHEDULE``, an NCRONTAB expression such as
    ``0 */30 * * * *``)
    Fetches the tip of every configured repository and branch, reconciles everything and
    reports drift (``spec.sync.drift``).

Configuration: the SecretManagerConfig documents come from ``SMF_CONFIG`` (inline YAML, an
app setting) or the file ``SMF_CONFIG_PATH`` (default ``smf-config.yaml`` next to this file).
The webhook secret: ``WEBHOOK_SECRET`` (best as a Key Vault reference app setting), else
``spec.webhook.secret``/``secretRef``. Azure credentials: DefaultAzureCredential (the app's
managed identity). ``SMF_FINGERPRINT_KEY`` must be set (a Key Vault reference).

Logs are one JSON object per invocation (action, status, counts, delivery id, error
messages that name files and keys): never a value. Only the Azure SDK is imported; boto3 and
google-cloud are never loaded by this app.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import azure.functions as func

log = logging.getLogger("smf.azure")
# azure-core logs every request and response at INFO: headers only, but noise and cost.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
logging.getLogger("azure.identity").setLevel(logging.WARNING)

QUEUE_NAME = "smf-sync"
QUEUE_CONNECTION = "AzureWebJobsStorage"
#: Azure Storage queue messages are at most 64 KB; the worker base64-decodes, so keep a margin.
MAX_QUEUED_BODY = 45 * 1024

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

_CONFIG_CACHE: dict[str, Any] = {}


# --- shared helpers -------------------------------------------------------------------
def load_configs() -> list[Any]:
    """The SecretManagerConfig documents, parsed once per distinct text (warm starts reuse)."""
    from core.config import parse_config_text

    text = os.environ.get("SMF_CONFIG")
    origin = "SMF_CONFIG"
    if not text:
        path = Path(os.environ.get("SMF_CONFIG_PATH") or Path(__file__).with_name("smf-config.yaml"))
        text = path.read_text(encoding="utf-8")
        origin = str(path)
    digest = hashlib.sha256(text.encode()).hexdigest()
    cached = _CONFIG_CACHE.get(digest)
    if cached is None:
        cached = parse_config_text(text, origin)
        _CONFIG_CACHE.clear()
        _CONFIG_CACHE[digest] = cached
    return cached


def _log(event: str, **fields: Any) -> None:
    """One structured line: names, counts and statuses only (never a value)."""
    log.info(json.dumps({"event": event, **fields}, sort_keys=True, default=str))


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    """Counts and error messages of a handle_webhook/resync answer, for the log."""
    totals: dict[str, int] = {}
    errors: list[str] = []
    for r in result.get("results") or []:
        report = r.get("report") or {}
        for action, n in (report.get("summary") or {}).items():
            totals[action] = totals.get(action, 0) + int(n)
        for err in [*(report.get("errors") or []), *(r.get("errors") or [])]:
            errors.append(str(err.get("message", ""))[:300])
    return {"summary": totals, "errors": errors[:20]}


def _json(status: int, doc: dict[str, Any]) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(doc, sort_keys=True), status_code=status, mimetype="application/json")


def _secret(configs: list[Any]) -> str | None:
    from core.intake import webhook_secret

    return webhook_secret(configs)


def _verify(headers: dict[str, str], body: bytes, configs: list[Any], secret: str | None) -> Any:
    """core.webhook's verdict on a delivery, with the configs' provider and tag settings
    (as handle_webhook checks it)."""
    from core.webhook import verify_and_parse

    named = {(getattr(c, "webhook", None) or {}).get("provider") for c in configs} - {None}
    provider = named.pop() if len(named) == 1 else None
    tags = any(getattr(getattr(c, "source", None), "tags", False) for c in configs)
    return verify_and_parse(headers, body, secret=secret or b"", provider=provider, tags=tags)


def _decide_mode(outcome: Any) -> str:
    """inline or queue, for ``SMF_WEBHOOK_MODE=auto``: inline only when the payload lists a
    short, reliable set of changed files for one ref (the sync then touches few services)."""
    from core.webhook import PushEvent

    if not isinstance(outcome, PushEvent):
        return "inline"  # rejected or ignored: answered at once, no sync
    limit = int(os.environ.get("SMF_INLINE_MAX_PATHS") or 50)
    if outcome.more or not outcome.paths_reliable or len(outcome.changed_paths or ()) > limit:
        return "queue"
    return "inline"


def queue_message(headers: dict[str, str], body: bytes) -> str:
    """The queue message for a verified delivery: its body and signature headers, or a
    resync request when the body cannot fit in a storage queue message."""
    if len(body) > MAX_QUEUED_BODY:
        return json.dumps({"kind": "resync"})
    from core.webhook import delivery_headers

    kept = delivery_headers(headers)
    return json.dumps({"kind": "delivery", "headers": kept, "body": base64.b64encode(body).decode()})


# --- functions ------------------------------------------------------------------------
@app.function_name("webhook")
@app.route(route="webhook", methods=["POST"])
@app.queue_output(arg_name="jobs", queue_name=QUEUE_NAME, connection=QUEUE_CONNECTION)
def webhook(req: func.HttpRequest, jobs: func.Out[str]) -> func.HttpResponse:
    started = time.monotonic()
    from core.errors import SyncError
    from core.intake import handle_webhook

    headers = {k.lower(): v for k, v in req.headers.items()}
    body = req.get_body() or b""
    try:
        configs = load_configs()
        secret = _secret(configs)
    except SyncError as exc:
        _log("webhook", status=500, error=str(exc))
        return _json(500, {"status": "error", "errors": [exc.to_dict()]})
    except OSError as exc:  # SMF_CONFIG_PATH unreadable
        _log("webhook", status=500, error=f"cannot read the config: {exc.strerror}")
        return _json(500, {"status": "error", "errors": [{"message": "cannot read the config"}]})
    mode = (os.environ.get("SMF_WEBHOOK_MODE") or "auto").lower()
    outcome = _verify(headers, body, configs, secret) if mode in ("auto", "queue") else None
    if mode == "auto":
        mode = _decide_mode(outcome)
    if mode == "queue":
        from core.webhook import PushEvent

        if not isinstance(outcome, PushEvent):
            status, doc = (outcome.status, {"status": "rejected" if outcome.status >= 400 else "ignored",
                                            "reason": outcome.reason})  # fmt: skip
            _log("webhook", mode=mode, status=status, reason=outcome.reason)
            return _json(status, doc)
        jobs.set(queue_message(headers, body))
        _log("webhook", mode=mode, status=202, delivery_id=outcome.delivery_id, ref=outcome.ref,
             after=outcome.after, ms=round((time.monotonic() - started) * 1000))  # fmt: skip
        return _json(202, {"status": "queued", "delivery_id": outcome.delivery_id, "ref": outcome.ref,
                           "after": outcome.after})  # fmt: skip
    status, result = handle_webhook(headers, body, configs, secret=secret)
    _log("webhook", mode="inline", status=status, result=result.get("status"),
         ms=round((time.monotonic() - started) * 1000), **_summary(result))  # fmt: skip
    return _json(status, result)


@app.function_name("sync_worker")
@app.queue_trigger(arg_name="msg", queue_name=QUEUE_NAME, connection=QUEUE_CONNECTION)
def sync_worker(msg: func.QueueMessage) -> None:
    from core.intake import handle_webhook, resync

    job = json.loads(msg.get_body().decode("utf-8"))
    configs = load_configs()
    if job.get("kind") == "delivery":
        body = base64.b64decode(job["body"])
        status, result = handle_webhook(job.get("headers") or {}, body, configs, secret=_secret(configs))
    else:
        status, result = resync(configs, drift=False)
    _log("sync_worker", kind=job.get("kind"), status=status, result=result.get("status"), **_summary(result))
    if status >= 500:
        # Let the Functions host retry the message (maxDequeueCount in host.json, then poison).
        raise RuntimeError(f"sync failed with status {status}; the message will be retried")


@app.function_name("resync")
@app.timer_trigger(arg_name="timer", schedule="%SMF_RESYNC_SCHEDULE%", run_on_startup=False, use_monitor=True)
def resync_timer(timer: func.TimerRequest) -> None:
    from core.intake import resync

    configs = load_configs()
    status, result = resync(configs, drift=True)
    drift = sum(
        1
        for r in result.get("results") or []
        for c in (r.get("report") or {}).get("changes") or []
        if c.get("action") == "drift"
    )
    _log("resync", status=status, result=result.get("status"), past_due=timer.past_due, drift=drift,
         **_summary(result))  # fmt: skip
