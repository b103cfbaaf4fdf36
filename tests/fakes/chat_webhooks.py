"""A loopback receiver for the three notification destinations, checking what each service checks.

- ``/slack/...`` — a Slack incoming webhook. Slack takes a JSON object with ``text`` and/or
  ``blocks`` and answers ``200 ok``; a body that is not JSON is ``400 invalid_payload``, one
  without text or blocks ``400 no_text``; Block Kit limits (at most 50 blocks, a header's
  plain_text up to 150 characters, a section's text up to 3,000) are ``400 invalid_blocks``.
- ``/teams/...`` — a Teams Workflows webhook ("Post to a channel when a webhook request is
  received"). Workflows accept Adaptive Cards only: a ``{"type": "message", "attachments":
  [{"contentType": "application/vnd.microsoft.card.adaptive", "content": {"type":
  "AdaptiveCard", "version", "body"}}]}``; the flow answers ``202 Accepted``. Anything else
  (such as a connector MessageCard) is refused with 400 here.
- ``/hook`` — a generic receiver that verifies ``X-SMF-Signature`` with `signing_key` the way
  docs/notifications.md tells a receiver to (``t=<ts>,v1=HMAC-SHA256(key, "<ts>.<body>")``)
  and answers 401 when it does not match.

Sources: Slack's changelog "Improving error conditions for Incoming Webhooks" (api.slack.com,
2016-05-17: 400 invalid_payload, 403 action_prohibited, 404 channel_not_found, 410
channel_is_archived; "interpret a HTTP 200 response as success") and Block Kit's limits;
Microsoft Learn, "Create and send messages" (Teams platform, webhooks and connectors):
"Workflows support Adaptive Cards only", created from the "When a Teams webhook request is
received" trigger.

``mode`` makes it misbehave: ``"fail"`` answers 500 to everything, ``"hang"`` never answers
until `release()` (the sender's timeout must end the wait). Every request is recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes._loopback import base_url, start_server, stop_server

ADAPTIVE = "application/vnd.microsoft.card.adaptive"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ChatWebhooks:
    signing_key: str = ""
    mode: str = "ok"  # ok | fail | hang
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server: Any = None
        self._released = threading.Event()
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> ChatWebhooks:
        self._server = start_server(_Handler, fake=self)
        return self

    def stop(self) -> None:
        self.release()
        stop_server(self._server)

    def release(self) -> None:
        self._released.set()

    def url(self, path: str) -> str:
        return base_url(self._server) + path

    def to(self, prefix: str) -> list[Received]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    # -- what each service does --------------------------------------------------------
    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if self.mode == "fail":
            return 500, b"internal error"
        if headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return 400, b"invalid_payload"
        try:
            doc = json.loads(body)
        except ValueError:
            return 400, b"invalid_payload"
        if path.startswith("/slack/"):
            return slack_check(doc)
        if path.startswith("/teams/"):
            return teams_check(doc)
        if path == "/hook":
            if not verify_signature(self.signing_key, body, headers.get("x-smf-signature", "")):
                return 401, b'{"error": "bad signature"}'
            return 200, b'{"ok": true}'
        return 404, b"not found"


def slack_check(doc: Any) -> tuple[int, bytes]:
    if not isinstance(doc, dict):
        return 400, b"invalid_payload"
    if not doc.get("text") and not doc.get("blocks"):
        return 400, b"no_text"
    blocks = doc.get("blocks") or []
    if not isinstance(blocks, list) or len(blocks) > 50:
        return 400, b"invalid_blocks"
    for b in blocks:
        text = (b.get("text") or {}) if isinstance(b, dict) else {}
        kind = b.get("type") if isinstance(b, dict) else None
        if kind == "header" and (text.get("type") != "plain_text" or len(text.get("text", "")) > 150):
            return 400, b"invalid_blocks"
        if kind == "section" and (
            text.get("type") not in ("mrkdwn", "plain_text") or len(text.get("text", "")) > 3000
        ):
            return 400, b"invalid_blocks"
        if kind not in ("header", "section", "context", "divider"):
            return 400, b"invalid_blocks"
    return 200, b"ok"


def teams_check(doc: Any) -> tuple[int, bytes]:
    bad = (400, b'{"error": {"code": "InvalidRequestContent"}}')
    if not isinstance(doc, dict) or doc.get("type") != "message":
        return bad
    atts = doc.get("attachments")
    if not isinstance(atts, list) or not atts:
        return bad
    for a in atts:
        card = a.get("content") if isinstance(a, dict) else None
        if a.get("contentType") != ADAPTIVE or not isinstance(card, dict):
            return bad
        if card.get("type") != "AdaptiveCard" or not isinstance(card.get("version"), str):
            return bad
        if not isinstance(card.get("body"), list) or not all(
            isinstance(x, dict) and x.get("type") for x in card["body"]
        ):
            return bad
    return 202, b""


def verify_signature(key: str, body: bytes, header: str) -> bool:
    """A receiver's check, written from docs/notifications.md (not from the sender's code)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if not key or "t" not in parts or "v1" not in parts:
        return False
    expected = hmac.new(key.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


class _Handler(BaseHTTPRequestHandler):
    server_version = "chat-webhooks-fake/1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802
        fake: ChatWebhooks = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        if fake.mode == "hang":
            with fake._lock:
                fake.requests.append(Received(self.path, headers, body, 0))
            fake._released.wait()
            return
        status, answer = fake.answer(self.path, headers, body)
        with fake._lock:
            fake.requests.append(Received(self.path, headers, body, status))
        self.send_response(status)
        self.send_header(
            "Content-Type", "text/plain" if self.path.startswith("/slack/") else "application/json"
        )
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
