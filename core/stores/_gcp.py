"""Shared pieces of the two GCP stores: client factories, error mapping, label codec.

Clients
    Application Default Credentials in the cloud. For emulators and fakes the environment
    variables ``GCP_SECRET_MANAGER_ENDPOINT`` and ``GCP_PARAMETER_MANAGER_ENDPOINT``
    (``http://127.0.0.1:9090``) switch the client to that endpoint with anonymous
    credentials over the REST transport. Regional resources use the regional endpoint
    (``secretmanager.{location}.rep.googleapis.com``) unless an endpoint override is set.
    The SDKs are imported inside the factories only.

Labels
    GCP labels are the one metadata field both stores (and every emulator) round-trip, and the
    only one Parameter Manager has: keys and values ``[a-z0-9_-]``, at most 63 characters, at
    most 64 labels. Our metadata (owner ``cfg/svc/env``, source ``path:key``, the fingerprint)
    does not fit that alphabet, so a value that does not fit is stored base32-encoded
    (lowercase, unpadded) in numbered chunks ``{key}_b32_0``, ``{key}_b32_1``...; values that
    fit are stored as they are (``managed-by=secret-manager-functions``, commits).
"""

from __future__ import annotations

import base64
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from core.errors import StoreError
from core.model import MANAGED_BY_KEY, ListQuery, StoredEntry

SM_ENDPOINT_ENV = "GCP_SECRET_MANAGER_ENDPOINT"
PM_ENDPOINT_ENV = "GCP_PARAMETER_MANAGER_ENDPOINT"

#: Plain labels we add besides the encoded metadata (for filtering in the console / gcloud).
LABEL_ENV = "smf-environment"
LABEL_SERVICE = "smf-service"
#: Prefix of every label key we own (plus managed-by); other labels are left alone.
OUR_LABEL_PREFIX = "smf-"

_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
_CHUNK = re.compile(r"^(?P<key>.+)_b32_(?P<index>\d+)$")
_CHUNK_LEN = 63
MAX_LABELS = 64

T = TypeVar("T")


# -- clients ------------------------------------------------------------------------------
def _client_kwargs(env_var: str, service: str, location: str | None) -> dict[str, Any]:
    from google.api_core.client_options import ClientOptions

    endpoint = os.environ.get(env_var, "").strip()
    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        return {
            "transport": "rest",
            "credentials": AnonymousCredentials(),
            "client_options": ClientOptions(api_endpoint=endpoint),
        }
    if location and location != "global":
        return {"client_options": ClientOptions(api_endpoint=f"{service}.{location}.rep.googleapis.com")}
    return {}


def secret_manager_client(location: str | None = None) -> Any:
    """A SecretManagerServiceClient (ADC, or the emulator named by GCP_SECRET_MANAGER_ENDPOINT)."""
    from google.cloud import secretmanager_v1

    return secretmanager_v1.SecretManagerServiceClient(
        **_client_kwargs(SM_ENDPOINT_ENV, "secretmanager", location)
    )


def parameter_manager_client(location: str | None = None) -> Any:
    """A ParameterManagerClient (ADC, or the endpoint named by GCP_PARAMETER_MANAGER_ENDPOINT)."""
    from google.cloud import parametermanager_v1

    return parametermanager_v1.ParameterManagerClient(
        **_client_kwargs(PM_ENDPOINT_ENV, "parametermanager", location)
    )


# -- errors -------------------------------------------------------------------------------
_TRANSIENT = (
    "TooManyRequests", "ResourceExhausted", "ServiceUnavailable", "InternalServerError",
    "InternalError", "GatewayTimeout", "DeadlineExceeded", "BadGateway", "Aborted",
    "RetryError", "Unknown",
)  # fmt: skip


def store_error(exc: Exception, action: str, name: str, *, secret: bytes | str | None = None) -> StoreError:
    """An SDK exception as a StoreError naming the action and entry, never the value.

    The server's message is kept (it names resources), with the value scrubbed from it in
    case a server ever echoes a payload back.
    """
    kind = type(exc).__name__
    transient = kind in _TRANSIENT or isinstance(exc, (TimeoutError, ConnectionError))
    if not transient:
        try:
            import requests

            transient = isinstance(exc, (requests.ConnectionError, requests.Timeout))
        except ImportError:  # pragma: no cover
            pass
    message = str(getattr(exc, "message", "") or exc)
    if secret:
        text = secret.decode("utf-8", "replace") if isinstance(secret, bytes) else secret
        if text and text in message:
            message = message.replace(text, "<redacted>")
    message = message.splitlines()[0][:300] if message else ""
    return StoreError(f"{action} failed: {kind}: {message}", transient=transient, field=name)


_COUNT_LOCK = threading.Lock()


def call(counter: dict[str, int], method: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one SDK call, counting it under `method` (benchmarks and tests read the counts)."""
    with _COUNT_LOCK:  # apply and drift reads run calls from several threads
        counter[method] = counter.get(method, 0) + 1
    return fn(*args, **kwargs)


def paged(counter: dict[str, int], method: str, pager: Any, field: str) -> Iterator[Any]:
    """Items of a pager; every page after the first (fetched lazily) counts as one more call."""
    for i, page in enumerate(pager.pages):
        if i:
            with _COUNT_LOCK:
                counter[method] = counter.get(method, 0) + 1
        yield from getattr(page, field)


def list_wanted(
    counter: dict[str, int],
    method: str,
    client: Any,
    request: dict[str, Any],
    field: str,
    to_entry: Callable[[Any], StoredEntry],
    query: ListQuery,
) -> list[StoredEntry]:
    """Every listed item that answers `query`, filtered here rather than by the server:
    unmanaged entries named in the query must be seen too (as conflicts)."""
    out: list[StoredEntry] = []
    try:
        pager = call(counter, method, getattr(client, method), request=request)
        for item in paged(counter, method, pager, field):
            entry = to_entry(item)
            if query.wants(entry):
                out.append(entry)
    except StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - SDK errors are mapped, never leaked
        raise store_error(exc, method, request["parent"]) from None
    return out


def is_kind(exc: Exception, *names: str) -> bool:
    return type(exc).__name__ in names


# -- payload checksum ---------------------------------------------------------------------
def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli) of a payload, sent as data_crc32c so the server verifies it."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# -- labels -------------------------------------------------------------------------------
def label_safe(value: str, *, max_len: int = 63) -> str:
    """A readable label value: lowercase, [a-z0-9_-], at most 63 characters (lossy)."""
    out = re.sub(r"[^a-z0-9_-]", "_", value.lower())
    return out[:max_len]


def encode_labels(meta: Mapping[str, str]) -> dict[str, str]:
    """Metadata as GCP labels; values outside the label alphabet go base32 in chunks."""
    labels: dict[str, str] = {}
    for key, value in meta.items():
        if _LABEL_VALUE.fullmatch(value):
            labels[key] = value
            continue
        enc = base64.b32encode(value.encode("utf-8")).decode("ascii").lower().rstrip("=")
        for i in range(0, max(len(enc), 1), _CHUNK_LEN):
            labels[f"{key}_b32_{i // _CHUNK_LEN}"] = enc[i : i + _CHUNK_LEN]
    return labels


def decode_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The inverse of `encode_labels` (plain labels come back as they are)."""
    out: dict[str, str] = {}
    chunks: dict[str, dict[int, str]] = {}
    for key, value in labels.items():
        m = _CHUNK.match(key)
        if m:
            chunks.setdefault(m["key"], {})[int(m["index"])] = value
        else:
            out[key] = value
    for key, parts in chunks.items():
        enc = "".join(parts[i] for i in sorted(parts)).upper()
        enc += "=" * (-len(enc) % 8)
        try:
            out[key] = base64.b32decode(enc).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            continue  # not ours or damaged: treat as absent
    return out


def is_our_label(key: str) -> bool:
    return key == MANAGED_BY_KEY or key.startswith(OUR_LABEL_PREFIX)


def merge_labels(existing: Mapping[str, str], ours: Mapping[str, str]) -> dict[str, str]:
    """Keep labels others set, replace all of ours (stale chunks included)."""
    merged = {k: v for k, v in existing.items() if not is_our_label(k)}
    merged.update(ours)
    if len(merged) > MAX_LABELS:
        raise StoreError(f"entry would carry {len(merged)} labels; GCP allows at most {MAX_LABELS}")
    return merged


def entry_labels(meta: Mapping[str, str], options: Mapping[str, Any]) -> dict[str, str]:
    labels = encode_labels(meta)
    if options.get("environment"):
        labels[LABEL_ENV] = label_safe(str(options["environment"]))
    if options.get("service"):
        labels[LABEL_SERVICE] = label_safe(str(options["service"]))
    return labels
