"""secret-manager-functions on Azure Functions (Python v2 model): transport only.

``webhook`` (HTTP ``POST /api/webhook``) verifies the delivery and syncs it now or puts it
on the ``smf-sync`` storage queue; ``sync_worker`` (queue trigger) runs queued messages;
``resync`` (timer ``SMF_RESYNC_SCHEDULE``) reconciles everything and reports drift. Every
decision is core.intake's; the app settings, queue and logs are described in docs/azure.md
("The function app").
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import azure.functions as func

_HERE = Path(__file__).resolve().parent
for _root in (_HERE, *_HERE.parents[:2]):  # the app root holds core/ (or the repository does)
    if (_root / "core" / "__init__.py").is_file():
        if str(_root) not in sys.path:
            sys.path.insert(0, str(_root))
        break

log = logging.getLogger("smf.azure")
# azure-core logs every request and response at INFO: headers only, but noise and cost.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
logging.getLogger("azure.identity").setLevel(logging.WARNING)

QUEUE_NAME = "smf-sync"
QUEUE_CONNECTION = "AzureWebJobsStorage"
#: Storage queue messages hold 64 KB, and the host base64-encodes them: keep a margin.
MAX_MESSAGE_BYTES = 45 * 1024
#: (an unresolved @Microsoft.KeyVault(...) app setting is refused: core.entrypoint)
CONFIG = _HERE / "smf-config.yaml"

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _log(event: str, outcome: Any, **fields: Any) -> None:
    """The run's records (core/results/logs.py) as JSON lines; the level becomes Application
    Insights' severityLevel (ERROR when the run failed or partly failed)."""
    from core.results import logs

    for rec in logs.records(outcome, event, per_store=True, **fields):
        log.log(
            rec.level,
            json.dumps({"event": event, "text": rec.message, **rec.fields}, sort_keys=True, default=str),
        )


def _json(status: int, doc: dict[str, Any]) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(doc, sort_keys=True), status_code=status, mimetype="application/json")


@app.function_name("webhook")
@app.route(route="webhook", methods=["POST"])
@app.queue_output(arg_name="jobs", queue_name=QUEUE_NAME, connection=QUEUE_CONNECTION)
def webhook(req: func.HttpRequest, jobs: func.Out[str]) -> func.HttpResponse:
    from core import entrypoint

    def send(message: str) -> dict[str, str]:
        jobs.set(message)
        return {"queue": QUEUE_NAME}

    headers = {k.lower(): v for k, v in req.headers.items()}
    outcome = entrypoint.deliver(headers, req.get_body() or b"", default_path=CONFIG, max_message_bytes=MAX_MESSAGE_BYTES,
                                 send=send if jobs is not None else None)  # fmt: skip
    _log("webhook", outcome)
    return _json(outcome.status, outcome.body)


def _run(message: Any, items: func.Out[list[str]] | None) -> Any:
    """Run one message; a large run's work items (core/fanout.py) go to the queue binding,
    which the host writes when the function returns."""
    from core import entrypoint, intake

    queued: list[str] = []
    send = (lambda m: queued.append(m) or {"queue": QUEUE_NAME}) if items is not None else None
    outcome = entrypoint.run_message(message, default_path=CONFIG, context=intake.RunContext(enqueue=send))
    if queued and items is not None:
        items.set(queued)
    return outcome


@app.function_name("sync_worker")
@app.queue_trigger(arg_name="msg", queue_name=QUEUE_NAME, connection=QUEUE_CONNECTION)
@app.queue_output(arg_name="items", queue_name=QUEUE_NAME, connection=QUEUE_CONNECTION)
def sync_worker(msg: func.QueueMessage, items: func.Out[list[str]] | None = None) -> None:
    outcome = _run(msg.get_body(), items)
    _log("sync_worker", outcome)
    if outcome.status >= 500:
        # The Functions host retries the message (maxDequeueCount in host.json, then poison).
        raise RuntimeError(f"sync failed with status {outcome.status}; the message will be retried")


@app.function_name("resync")
@app.timer_trigger(arg_name="timer", schedule="%SMF_RESYNC_SCHEDULE%", run_on_startup=False, use_monitor=True)
@app.queue_output(arg_name="items", queue_name=QUEUE_NAME, connection=QUEUE_CONNECTION)
def resync_timer(timer: func.TimerRequest, items: func.Out[list[str]] | None = None) -> None:
    outcome = _run({"kind": "resync", "drift": True}, items)  # a large one fans out on the queue
    _log("resync", outcome, past_due=timer.past_due, schedule=os.environ.get("SMF_RESYNC_SCHEDULE"))
