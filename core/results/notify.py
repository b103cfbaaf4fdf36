"""Notifications: one message per run to each destination of ``spec.notifications``.

A run (a push, inline or queued, or a resync) is summarised once — which configs, their
outcome, counts per action, and the errors, drifted entries and changes *by name* (file and
line, store and entry name; never a value) — and sent to every destination whose ``events``
(``errors``, ``drift``, ``changes``) matches what happened. Destinations listed by several
configs of one run get one message covering those configs.

Wire formats (docs/notifications.md):

- ``slack``: a Slack incoming webhook (``POST`` JSON ``{"text", "blocks"}``; Slack answers
  ``200 ok``). ``text`` is the fallback shown in notifications, the blocks the message.
- ``teams``: a Microsoft Teams Workflows webhook (the "Post to a channel when a webhook request
  is received" template): a ``message`` whose one attachment is an Adaptive Card, the only
  card format Workflows accepts (the old connector MessageCard is refused). It answers 202.
- ``webhook``: our JSON document (`document`), signed like Stripe's webhooks:
  ``X-SMF-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>``, so a
  receiver checks the MAC over the exact bytes and refuses old timestamps (replays).

The URLs are credentials (anyone holding a Slack webhook URL can post to the channel), so
config names secrets in the config's own secret store (``urlSecret``, ``signingSecret``),
read like the webhook secret. A notification never fails a sync: each request has a bounded
timeout (``SMF_NOTIFY_TIMEOUT``, default 3 s; destinations are sent in parallel, so a run
waits at most about twice that), a failure is retried once (not a 4xx other
than 408/429, which would fail again), and what is left is logged without the URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.results.logs import where

log = logging.getLogger("smf.notify")

SIGNATURE_HEADER = "X-SMF-Signature"
DELIVERY_HEADER = "X-SMF-Delivery"
USER_AGENT = "secret-manager-functions"
DEFAULT_TIMEOUT = 3.0
#: Items listed per kind (errors, drift, changes) in one message; the rest are counted.
MAX_ITEMS = 20
CHANGING = ("create", "update", "delete")
COUNTED = ("create", "update", "delete", "conflict", "drift", "unchanged")

#: (config, secret name) → value; core.intake passes its secret-store reader.
SecretReader = Callable[[Any, str], str]
#: (url, body, headers, timeout) → HTTP status; tests may pass their own transport.
Post = Callable[[str, bytes, dict[str, str], float], int]


# --- what happened --------------------------------------------------------------------
@dataclass
class Group:
    """One result of a run: the configs that shared a fetch, and what their sync did."""

    configs: list[str]
    outcome: str  # ok | partial | failed
    counts: dict[str, int]
    errors: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def events(self) -> set[str]:
        """Which of errors / drift / changes this group has."""
        out = set()
        if self.outcome != "ok" or self.errors:
            out.add("errors")
        if self.drift:
            out.add("drift")
        if self.changes:
            out.add("changes")
        return out


@dataclass
class Digest:
    """A run, by names and counts: what every message is rendered from."""

    kind: str
    status: str
    ref: str | None
    commit: str | None
    groups: list[Group]

    def only(self, configs: set[str], on: Sequence[str]) -> Digest | None:
        """The part a destination gets (its configs, its events), or None if nothing matches."""
        wanted = set(on)
        groups = [g for g in self.groups if configs & set(g.configs) and g.events & wanted]
        if not groups:
            return None
        trimmed = [
            Group(
                g.configs,
                g.outcome,
                g.counts,
                g.errors if "errors" in wanted else [],
                g.drift if "drift" in wanted else [],
                g.changes if "changes" in wanted else [],
            )  # fmt: skip
            for g in groups
        ]
        return Digest(self.kind, self.status, self.ref, self.commit, trimmed)

    @property
    def outcome(self) -> str:
        order = ("ok", "partial", "failed")
        return max((g.outcome for g in self.groups), key=order.index, default="ok")


def digest(body: dict[str, Any], kind: str, ref: str | None = None, commit: str | None = None) -> Digest:
    """Summarise an intake answer (``{"status", "results": [...]}``) by names and counts."""
    groups: list[Group] = []
    for res in body.get("results") or []:
        names = [str(n) for n in res.get("configs") or []]
        report = res.get("report")
        if res.get("errors"):  # the fetch failed: no report
            errs = [_error(e) for e in res["errors"]]
            groups.append(Group(names, "failed", {}, errs))
            continue
        if not report:
            continue  # ignored, superseded, suspended
        changes = report.get("changes") or []
        summary = report.get("summary") or {}
        groups.append(
            Group(
                names,
                str(report.get("outcome") or "ok"),
                {a: int(summary.get(a, 0)) for a in COUNTED} | {"error": len(report.get("errors") or [])},
                [_error(e) for e in report.get("errors") or []],
                [_entry(c) for c in changes if c.get("action") == "drift"],
                [_entry(c) for c in changes if c.get("action") in CHANGING],
            )
        )
        commit = commit or report.get("commit")
    return Digest(kind, str(body.get("status") or ""), ref, commit, groups)


def _error(e: dict[str, Any]) -> dict[str, Any]:
    keep = ("config", "service", "store", "kind", "path", "line", "field", "message")
    return {k: e[k] for k in keep if e.get(k) is not None}


def _entry(c: dict[str, Any]) -> dict[str, Any]:
    return {k: c[k] for k in ("action", "store", "name", "source", "line") if c.get(k) is not None}


# --- the three formats ----------------------------------------------------------------
TITLE = {"ok": "synced", "partial": "partly synced", "failed": "failed"}


def _headline(d: Digest) -> str:
    what = "resync" if d.kind == "resync" else "push"
    at = " ".join(x for x in (d.ref or "", (d.commit or "")[:12]) if x)
    return f"secret-manager-functions {what} {TITLE.get(d.outcome, d.outcome)}" + (f": {at}" if at else "")


def _counts(g: Group) -> str:
    parts = [f"{g.counts.get(a, 0)} {label}" for a, label in
             (("create", "created"), ("update", "updated"), ("delete", "deleted"), ("conflict", "conflicts"),
              ("drift", "drifted"), ("error", "errors"))]  # fmt: skip
    return ", ".join(parts)


def _lines(g: Group) -> list[str]:
    """Plain lines for one group: errors, drift and changes, each capped at MAX_ITEMS."""
    out: list[str] = []
    for label, items, fmt in (
        ("error", g.errors, lambda e: f"{where(e) + ': ' if where(e) else ''}{e.get('message', '')}"),
        ("drift", g.drift, lambda c: f"{c.get('store')}: {c.get('name')} (changed outside Git; from {c.get('source')})"),
        ("change", g.changes, lambda c: f"{c.get('action')} {c.get('store')}: {c.get('name')}"),
    ):  # fmt: skip
        out.extend(f"{label}: {fmt(i)}"[:500] for i in items[:MAX_ITEMS])
        if len(items) > MAX_ITEMS:
            out.append(f"{label}: and {len(items) - MAX_ITEMS:,} more")
    return out


def _mrkdwn(text: str) -> str:
    """Slack's three control characters escaped, so a file name cannot become a link or mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(d: Digest) -> dict[str, Any]:
    """A Slack incoming-webhook message: fallback ``text`` plus Block Kit blocks (a header,
    one section per config group; section text stays under Slack's 3,000 characters)."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _headline(d)[:150]}}
    ]
    for g in d.groups[:40]:
        body = "\n".join(_mrkdwn(x) for x in _lines(g))
        text = f"*{_mrkdwn(', '.join(g.configs))}*: {g.outcome} — {_counts(g)}" + (
            f"\n{body}" if body else ""
        )
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}})
    return {"text": _mrkdwn(_headline(d)), "blocks": blocks}


def teams_payload(d: Digest) -> dict[str, Any]:
    """A Teams Workflows message: one Adaptive Card (1.4) attachment."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": _headline(d),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": "Good" if d.outcome == "ok" else "Attention",
        }  # fmt: skip
    ]
    for g in d.groups[:40]:
        body.append({"type": "TextBlock", "text": f"**{', '.join(g.configs)}**: {g.outcome} — {_counts(g)}",
                     "wrap": True, "separator": True})  # fmt: skip
        body.extend(
            {"type": "TextBlock", "text": line, "wrap": True, "spacing": "None"} for line in _lines(g)
        )
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "body": body}  # fmt: skip
    return {"type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
                             "content": card}]}  # fmt: skip


def document(d: Digest, delivery: str) -> dict[str, Any]:
    """The generic webhook's JSON (version 1)."""
    return {
        "source": "secret-manager-functions",
        "version": 1,
        "id": delivery,
        "kind": d.kind,
        "outcome": d.outcome,
        "ref": d.ref,
        "commit": d.commit,
        "events": sorted(set().union(*(g.events for g in d.groups))),
        "results": [
            {
                "configs": g.configs,
                "outcome": g.outcome,
                "counts": g.counts,
                "errors": g.errors[:MAX_ITEMS],
                "drift": g.drift[:MAX_ITEMS],
                "changes": g.changes[:MAX_ITEMS],
                "truncated": any(len(x) > MAX_ITEMS for x in (g.errors, g.drift, g.changes)),
            }  # fmt: skip
            for g in d.groups
        ],
    }


def sign(key: str | bytes, body: bytes, timestamp: int) -> str:
    """The ``X-SMF-Signature`` value: ``t=<timestamp>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>``."""
    k = key.encode() if isinstance(key, str) else key
    mac = hmac.new(k, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    key: str | bytes, body: bytes, header: str, *, now: float | None = None, tolerance: int = 300
) -> bool:
    """What a receiver does (and the tests do): recompute the MAC, compare in constant time,
    refuse a timestamp more than `tolerance` seconds away."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(key, body, ts), f"t={ts},v1={parts.get('v1', '')}")


# --- sending --------------------------------------------------------------------------
class NotifyError(Exception):
    """A send that did not succeed: `status` (or None for no answer), no URL in it."""

    def __init__(self, status: int | None, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST with urllib (no dependency, no redirects followed: a 3xx is a failure)."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
            return None

    opener = urllib.request.build_opener(_NoRedirect)
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - check_url: https or loopback http
    try:
        with opener.open(req, timeout=timeout) as resp:
            resp.read(4096)
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out
        raise NotifyError(None, type(getattr(exc, "reason", exc)).__name__) from None


def check_url(url: str) -> str:
    """HTTPS only (plain HTTP to a loopback host for local tests): the body names entries."""
    parts = urllib.parse.urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise NotifyError(None, "the URL secret does not hold an https:// URL")
    return url


def deliver(url: str, body: bytes, headers: dict[str, str], *, timeout: float, post: Post = http_post) -> int:
    """Send once, and once more if that failed in a way a retry can fix."""
    last: NotifyError | None = None
    for _attempt in range(2):
        try:
            status = post(url, body, headers, timeout)
        except NotifyError as exc:
            last = exc
            continue
        if 200 <= status < 300:
            return status
        last = NotifyError(status, f"HTTP {status}")
        if 400 <= status < 500 and status not in (408, 429):
            break
    assert last is not None
    raise last


@dataclass(frozen=True)
class Target:
    """A destination as configured: one message per run each."""

    type: str
    url_secret: str
    signing_secret: str | None


def send_for_outcome(
    outcome: Any,
    *,
    read_secret: SecretReader,
    post: Post = http_post,
    timeout: float | None = None,
) -> list[dict[str, Any]]:
    """Send the run's messages. Returns one record per destination (type, configs, status or
    error type), also logged; never raises for a destination."""
    configs = list(getattr(outcome, "configs", None) or [])
    targets: dict[Target, tuple[Any, set[str], list[str], str]] = {}
    for cfg in configs:
        for dest in getattr(cfg, "notifications", None) or []:
            t = Target(dest.type, dest.url_secret, dest.signing_secret)
            first, names, on, where_ = targets.setdefault(t, (cfg, set(), [], dest.field))
            names.add(cfg.name)
            on.extend(x for x in dest.events if x not in on)
    if not targets:
        return []
    ev = (getattr(outcome, "events", None) or [None])[0]
    d = digest(outcome.body, outcome.kind, getattr(ev, "ref", None), getattr(ev, "after", None))
    timeout = (
        timeout if timeout is not None else float(os.environ.get("SMF_NOTIFY_TIMEOUT") or DEFAULT_TIMEOUT)
    )
    jobs = [(t, cfg, names, field_, part) for t, (cfg, names, on, field_) in targets.items()
            if (part := d.only(names, on)) is not None]  # fmt: skip
    if len(jobs) <= 1:
        return [_send_one(*job, read_secret=read_secret, post=post, timeout=timeout) for job in jobs]
    # Destinations in parallel: the run waits at most about twice the timeout, however many
    # there are (an inline webhook answers the Git host only after this).
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, len(jobs)), thread_name_prefix="smf-notify") as pool:
        futures = [
            pool.submit(_send_one, *job, read_secret=read_secret, post=post, timeout=timeout) for job in jobs
        ]
        return [f.result() for f in futures]


def _send_one(t: Target, cfg: Any, names: set[str], field_: str, part: Digest, *, read_secret: SecretReader,
              post: Post, timeout: float) -> dict[str, Any]:  # fmt: skip
    """Render, sign and deliver one destination's message; the record of what happened."""
    record: dict[str, Any] = {
        "destination": t.type,
        "configs": sorted(names),
        "field": field_,
        "config": cfg.name,
    }
    try:
        url = check_url(_read(read_secret, cfg, t.url_secret, f"{field_}.urlSecret"))
        delivery = str(uuid.uuid4())
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, DELIVERY_HEADER: delivery}
        if t.type == "slack":
            payload: dict[str, Any] = slack_payload(part)
        elif t.type == "teams":
            payload = teams_payload(part)
        else:
            payload = document(part, delivery)
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        if t.type == "webhook":
            assert t.signing_secret
            key = _read(read_secret, cfg, t.signing_secret, f"{field_}.signingSecret")
            headers[SIGNATURE_HEADER] = sign(key, body, int(time.time()))
        record["status"] = deliver(url, body, headers, timeout=timeout, post=post)
        log.info("notification sent", extra={"notification": record})
    except NotifyError as exc:
        record.update(status=exc.status, error=exc.reason)
        log.warning("notification failed", extra={"notification": record})
    except Exception as exc:  # noqa: BLE001 - never fails the sync; named, never a value
        record.update(status=None, error=type(exc).__name__)
        log.warning("notification failed", extra={"notification": record})
    return record


def _read(read_secret: SecretReader, cfg: Any, name: str, field_: str) -> str:
    try:
        value = read_secret(cfg, name)
    except Exception as exc:  # noqa: BLE001 - the store's error may quote what it read
        raise NotifyError(None, f"cannot read the secret named in {field_} ({type(exc).__name__})") from None
    if not value:
        raise NotifyError(None, f"the secret named in {field_} is empty")
    return value
