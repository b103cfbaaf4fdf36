"""Fuzz targets for webhook deliveries of every provider: valid signatures over hostile bodies.

Each example starts from a host's documented push payload (tests/intake/payloads.py), breaks
it (a subtree replaced by any JSON value, a key dropped, a value nested thousands deep, raw
bytes, a form body), signs the result with the real secret the way that host signs, and hands
it to the one intake (`core.intake.decide`). Signing is what makes this the hard case: the
signature check passes, so the parser sees the hostile shape (issue #10, item 5).

The property (tests/fuzz/harness.py): a decision every time (reject / ignore / sync now /
queue), a rejection is a 4xx with a reason, never a traceback or a hang, and no reason
echoes the secret. Queued decisions are decoded again by the worker's reader, so the queued
message format sees the same inputs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from core import messages
from core.config import parse_config_text
from core.intake import Ignore, Queue, QueuePolicy, Reject, SyncNow, decide
from tests.fuzz import strategies as fs
from tests.fuzz.harness import bounded, examples
from tests.intake import payloads as p

SECRET = "fuzz-hook-secret-51c2e"
URL = "https://github.com/acme/app.git"
SHA = "a" * 40
ZERO = p.ZERO

CONFIG = """\
apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata: {{name: app}}
spec:
  sourceRef: {{kind: Git, url: "{url}", branch: main, tags: true}}
  provider: {{type: local}}
  secrets: {{environment: dev}}
"""


def _configs() -> list[Any]:
    return parse_config_text(CONFIG.format(url=URL), "fuzz-config.yaml")


CONFIGS = _configs()


def _valid(provider: str) -> tuple[dict[str, str], bytes]:
    if provider == "github":
        return p.github_push(
            URL, before=ZERO, after=SHA, modified=["s/application.properties"], secret=SECRET
        )
    if provider == "gitlab":
        return p.gitlab_push(URL, before=ZERO, after=SHA, secret=SECRET)
    if provider == "bitbucket":
        return p.bitbucket_push(
            "acme/app", before=None, after=SHA, secret=SECRET, html="https://github.com/acme/app"
        )
    if provider == "gitea":
        return p.gitea_push(URL, before=ZERO, after=SHA, secret=SECRET)
    return p.generic_push(URL, before=ZERO, after=SHA, changed=["s/application.properties"], secret=SECRET)


def _sign(provider: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
    """Re-sign `body` exactly as the provider does (GitLab sends the shared token instead)."""
    h = dict(headers)
    hexdigest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    for name in list(h):
        low = name.lower()
        if low in ("x-hub-signature-256", "x-signature-256") or (
            low == "x-hub-signature" and provider == "bitbucket"
        ):
            h[name] = "sha256=" + hexdigest
        elif low == "x-hub-signature":
            h[name] = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
        elif low in ("x-gitea-signature", "x-gogs-signature", "x-forgejo-signature"):
            h[name] = hexdigest
    return h


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _replace(node: Any, path: tuple, new: Any, drop: bool) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        node = dict(node)
        if drop and not rest:
            node.pop(head, None)
        else:
            node[head] = _replace(node[head], rest, new, drop)
    else:
        node = list(node)
        if drop and not rest:
            del node[head]
        else:
            node[head] = _replace(node[head], rest, new, drop)
    return node


def _deep(depth: int, leaf: Any, kind: str) -> Any:
    for _ in range(depth):
        leaf = [leaf] if kind == "list" else {"a": leaf}
    return leaf


@st.composite
def hostile_deliveries(draw: st.DrawFn) -> tuple[str, dict[str, str], bytes]:
    provider = draw(st.sampled_from(("github", "gitlab", "bitbucket", "gitea", "generic")))
    headers, body = _valid(provider)
    payload = json.loads(body)
    how = draw(st.sampled_from(("subtree", "drop", "deep", "raw", "form", "truncate")))
    if how in ("subtree", "drop", "deep"):
        path = draw(st.sampled_from(_paths(payload)))
        if how == "deep":
            new = _deep(
                draw(st.integers(100, 20_000)),
                draw(fs._json_values()),
                draw(st.sampled_from(("list", "dict"))),
            )
        else:
            new = draw(fs._json_values())
        payload = _replace(payload, path, new, drop=how == "drop" and bool(path))
        body = json.dumps(payload).encode() if how != "deep" else _dumps_deep(payload)
    elif how == "raw":
        body = draw(
            st.one_of(
                st.binary(max_size=200), fs.hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass"))
            )
        )
    elif how == "form":
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        inner = draw(st.one_of(st.just(body.decode()), fs.json_docs(), st.just("[" * 50_000)))
        field = draw(st.sampled_from(("payload", "other")))
        body = urlencode({field: inner}).encode()
    else:
        body = body[: draw(st.integers(0, len(body)))]
    return provider, _sign(provider, headers, body), body


def _dumps_deep(payload: Any) -> bytes:
    """json.dumps recurses; build deep documents iteratively so the *reader* is what's tested."""
    try:
        return json.dumps(payload).encode()
    except RecursionError:
        return b'{"ref": "refs/heads/main", "x": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"


def _check(decision: Any) -> None:
    assert isinstance(decision, Reject | Ignore | SyncNow | Queue), decision
    assert SECRET not in repr(decision)
    if isinstance(decision, Reject):
        assert 400 <= decision.status < 500 and decision.reason
    if isinstance(decision, Queue):
        # The worker's reader accepts what the receiver queued, whatever the body was.
        job = messages.decode(decision.message, key=messages.mac_key(SECRET))
        assert job.kind in ("push", "resync")


@settings(max_examples=examples(80))
@given(delivery=hostile_deliveries())
def test_signed_hostile_deliveries_get_a_decision(delivery: tuple[str, dict[str, str], bytes]) -> None:
    provider, headers, body = delivery
    with bounded():
        _check(decide(headers, body, CONFIGS, secret=SECRET))


@settings(max_examples=examples(40))
@given(delivery=hostile_deliveries())
def test_signed_hostile_deliveries_through_the_queue_path(
    delivery: tuple[str, dict[str, str], bytes],
) -> None:
    provider, headers, body = delivery
    policy = QueuePolicy(256 * 1024, mode="queue")
    with bounded():
        _check(decide(headers, body, CONFIGS, secret=SECRET, queue=policy))


@settings(max_examples=examples(40))
@given(
    body=st.binary(max_size=300),
    provider=st.sampled_from(("github", "gitlab", "bitbucket", "gitea", "generic")),
)
def test_unsigned_or_forged_bodies_are_rejected(body: bytes, provider: str) -> None:
    headers, _ = _valid(provider)  # signature of another body: forged for this one
    with bounded():
        decision = decide(headers, body + b" ", CONFIGS, secret=SECRET)
    if provider != "gitlab":  # GitLab's token does not cover the body
        assert isinstance(decision, Reject) and decision.status in (401, 403), decision
