"""The one queue message format every cloud uses (SQS, Pub/Sub, Azure Storage queues).

A message is one JSON object::

    {"v": 1, "kind": "push", "data": {...}, "mac": "<hex>"}      # small
    {"v": 1, "kind": "push", "z": "<base64 zlib(JSON data)>", "mac": "<hex>"}  # large

``kind`` names what the worker does with ``data`` (``core.intake`` keeps a registry of
kinds: ``push`` carries verified `PushEvent`s, ``resync`` a list of config names; later
kinds such as a pull-request preview or a fan-out work item add an entry there, not a new
format). ``data`` is compressed once its JSON exceeds `COMPRESS_AT` bytes.

A push is verified once, by the webhook function; what it queues is the verified event, so
the worker does not verify or parse the Git host's body again. The queue is still not
trusted more than the internet: ``mac`` is an HMAC-SHA256 of (version, kind, payload) under a
key derived from the webhook secret, and the worker refuses a message of a signed kind whose
MAC does not match. A message without ``mac`` is accepted only for unsigned kinds (``resync``:
reconciling to Git changes nothing a push could not, which is why Cloud Scheduler may send
``{"kind": "resync"}`` as plain JSON).

Too large to queue (each queue has its own limit): see `encode_job` — first the event's file
lists are dropped (the worker then diffs before..after, as for a truncated payload), and
only if that still does not fit, a full resync of the matched configs is queued instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

VERSION = 1
#: Data whose JSON is longer than this is compressed (zlib, then base64).
COMPRESS_AT = 4 * 1024
#: A compressed payload never expands beyond this (a zip bomb in a forged message).
MAX_DATA_BYTES = 16 * 1024 * 1024
_MAC_CONTEXT = b"smf queue message v1"


class MessageError(ValueError):
    """A queue message that cannot be read or whose MAC does not verify (never retried)."""


@dataclass
class Job:
    """One unit of queued work: a kind and its JSON-able data."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    #: Whether the message came with a valid MAC (set by `decode`).
    signed: bool = False


def mac_key(secret: str | bytes) -> bytes:
    """The message MAC key: derived from the webhook secret, never the secret itself."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(raw, _MAC_CONTEXT, hashlib.sha256).digest()


def _canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _mac(key: bytes, kind: str, payload: str) -> str:
    return hmac.new(key, f"{VERSION}\n{kind}\n{payload}".encode(), hashlib.sha256).hexdigest()


def encode(job: Job, *, key: bytes | None) -> str:
    """The message text for `job` (signed when `key` is given)."""
    text = _canonical(job.data)
    msg: dict[str, Any] = {"v": VERSION, "kind": job.kind}
    if len(text) > COMPRESS_AT:
        msg["z"] = base64.b64encode(zlib.compress(text.encode(), 6)).decode("ascii")
        payload = msg["z"]
    else:
        msg["data"] = job.data
        payload = text
    if key is not None:
        msg["mac"] = _mac(key, job.kind, payload)
    return json.dumps(msg, separators=(",", ":"))


def _inflate(z: Any) -> dict[str, Any]:
    if not isinstance(z, str):
        raise MessageError("message field z is not a string")
    try:
        packed = base64.b64decode(z, validate=True)
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, MAX_DATA_BYTES)
        if inflater.unconsumed_tail:
            raise MessageError(f"message data larger than {MAX_DATA_BYTES} bytes")
        data = json.loads(raw)
    except MessageError:
        raise
    except (ValueError, zlib.error, RecursionError) as exc:
        raise MessageError(f"message data is not compressed JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise MessageError("message data is not an object")
    return data


def decode(raw: str | bytes | dict[str, Any], *, key: bytes | None) -> Job:
    """Read a message; `Job.signed` tells whether its MAC matched `key`.

    A message with a MAC that does not match `key` is an error, whatever its kind; one
    without a MAC (or read without a key) comes back unsigned (the caller decides whether its kind may run unsigned).
    Unversioned ``{"kind": ..., ...}`` objects (the scheduler's ``{"kind": "resync"}``) are
    read as unsigned jobs whose data is the object's other fields."""
    if isinstance(raw, bytes | str):
        try:
            msg = json.loads(raw)
        except (ValueError, RecursionError):
            raise MessageError("message is not JSON") from None
    else:
        msg = raw
    if not isinstance(msg, dict) or not isinstance(msg.get("kind"), str):
        raise MessageError("message is not an object with a kind")
    kind = msg["kind"]
    if "v" not in msg:
        return Job(kind, {k: v for k, v in msg.items() if k != "kind"})
    if msg["v"] != VERSION:
        raise MessageError(f"message version {msg['v']!r} is not supported (expected {VERSION})")
    if "z" in msg:
        payload, data = msg["z"], _inflate(msg["z"])
    else:
        data = msg.get("data")
        if not isinstance(data, dict):
            raise MessageError("message data is not an object")
        payload = _canonical(data)
    given = msg.get("mac")
    if given is None or key is None:  # unsigned, or not checkable here: the caller decides
        return Job(kind, data)
    if not isinstance(given, str) or not hmac.compare_digest(
        given.encode(), _mac(key, kind, payload).encode()
    ):
        raise MessageError("message MAC does not match")
    return Job(kind, data, signed=True)
