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

Tombstones (deletion ordering, docs/gcp.md)
    Neither store has a soft delete, so a delete first writes a tombstone resource
    ``smf-tombstone-<sha256 of the name>`` (a secret or parameter with no version, so no
    value and no version billing) whose labels carry ``managed-by``, the owner, the deleting
    commit and, as ``smf-tombstone``, the deleted name. The store's one listing returns it;
    `tombstone_entry` turns it into a tombstone `StoredEntry` and `live_first` lets a live
    entry of the same name win.

Errors and retries
    `GcpStore` is the base of both stores: a lazily built client, counted calls (`_rpc`), one
    error mapper (`store_error`: throttling/5xx → transient, ``NotFound`` → `NotFoundError`,
    ``AlreadyExists`` → `ConflictError`, missing or refused credentials → `AuthError`), and
    google-api-core's `Retry` on every call (`retry_policy`; ``SMF_GCP_RETRY_TIMEOUT`` seconds,
    default 60), so apply does not retry GCP errors a second time.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from core.errors import StoreError
from core.model import (
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    META_COMMIT,
    META_OWNER,
    META_TOMBSTONE,
    ListQuery,
    StoredEntry,
    tombstone_id,
)
from core.stores.base import AuthError, ConflictError, NotFoundError, Store

SM_ENDPOINT_ENV = "GCP_SECRET_MANAGER_ENDPOINT"
RETRY_TIMEOUT_ENV = "SMF_GCP_RETRY_TIMEOUT"
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


# -- errors and retries -------------------------------------------------------------------
_TRANSIENT = (
    "TooManyRequests", "ResourceExhausted", "ServiceUnavailable", "InternalServerError",
    "InternalError", "GatewayTimeout", "DeadlineExceeded", "BadGateway", "Aborted",
    "RetryError", "Unknown",
)  # fmt: skip
_NOT_FOUND = ("NotFound",)
_EXISTS = ("AlreadyExists", "Conflict")
_AUTH = ("Unauthenticated", "Unauthorized", "PermissionDenied", "Forbidden", "RefreshError")
#: What to set when Application Default Credentials are missing (one line, no values).
NO_CREDENTIALS_HINT = (
    "no Google credentials found (Application Default Credentials): run "
    "`gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS, or run "
    "with a service account"
)


def store_error(exc: Exception, action: str, name: str, *, secret: bytes | str | None = None) -> StoreError:
    """An SDK exception as a StoreError naming the action and entry, never the value.

    The server's message is kept (it names resources), with the value scrubbed from it in
    case a server ever echoes a payload back.
    """
    kind = type(exc).__name__
    if kind == "DefaultCredentialsError":
        return AuthError(f"gcp: {action} failed: {NO_CREDENTIALS_HINT}", field=name)
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
    text = f"{action} failed: {kind}: {message}"
    if kind in _NOT_FOUND:
        return NotFoundError(text, code=kind, field=name)
    if kind in _EXISTS:
        return ConflictError(text, code=kind, field=name)
    if kind in _AUTH:
        return AuthError(text, code=kind, field=name)
    return StoreError(text, transient=transient, code=kind, field=name)


def retry_policy(env: Mapping[str, str] | None = None) -> Any:
    """google-api-core's Retry for throttling, 5xx and dropped connections: the one retry
    layer for GCP calls (exponential backoff with jitter, bounded by a total timeout)."""
    import requests
    from google.api_core import exceptions as gexc
    from google.api_core import retry

    timeout = float((env if env is not None else os.environ).get(RETRY_TIMEOUT_ENV) or 60)
    retryable = (
        gexc.TooManyRequests, gexc.ServiceUnavailable, gexc.InternalServerError, gexc.BadGateway,
        gexc.GatewayTimeout, gexc.DeadlineExceeded, gexc.Aborted,
        requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError,
    )  # fmt: skip
    return retry.Retry(
        predicate=retry.if_exception_type(*retryable), initial=0.25, maximum=8.0, multiplier=2.0,
        timeout=timeout,
    )  # fmt: skip


class GcpStore(Store):
    """What Secret Manager and Parameter Manager share: the lazily built client, counted calls
    with google-api-core's retry (`_rpc`), paged listings, the error mapper and `close`."""

    sdk_retries: ClassVar[bool] = True

    def __init__(self, client: Any = None) -> None:
        self._client = client
        self._retry: Any = None
        #: SDK calls made, by method name (benchmarks and tests read this).
        self.calls: dict[str, int] = {}

    def _make_client(self) -> Any:
        raise NotImplementedError

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                self._client = self._make_client()
            except Exception as exc:  # noqa: BLE001 - DefaultCredentialsError and the like
                raise store_error(exc, "creating the client", self.kind) from None
        return self._client

    def map_error(self, exc: Exception, *, op: str, name: str | None) -> StoreError:
        return store_error(exc, op, name or "")

    def _rpc(self, method: str, what: str, /, *args: Any, scrub: bytes | None = None, **kw: Any) -> Any:
        """One SDK call by method name: counted, retried by google-api-core, errors mapped
        (with the value scrubbed from any server message)."""
        client = self.client
        if self._retry is None:
            self._retry = retry_policy()
        self._count(method)
        try:
            return getattr(client, method)(*args, retry=self._retry, **kw)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - SDK errors are mapped, never leaked
            raise store_error(exc, method, what, secret=scrub) from None

    def _list_wanted(
        self, method: str, request: dict[str, Any], field: str, to_entry: Callable[[Any], StoredEntry],
        query: ListQuery,
    ) -> list[StoredEntry]:  # fmt: skip
        """Every listed item that answers `query`, filtered here rather than by the server:
        unmanaged entries named in the query must be seen too (as conflicts). Every page after
        the first (fetched lazily by the pager) counts as one more call."""
        out: list[StoredEntry] = []
        pager = self._rpc(method, request["parent"], request=request)
        try:
            for i, page in enumerate(pager.pages):
                if i:
                    self._count(method)
                for item in getattr(page, field):
                    entry = to_entry(item)
                    if query.wants(entry):
                        out.append(entry)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - SDK errors are mapped, never leaked
            raise store_error(exc, method, request["parent"]) from None
        return out

    def close(self) -> None:
        transport = getattr(self._client, "transport", None)
        if transport is not None:
            try:
                transport.close()
            except Exception:  # noqa: BLE001, S110 - closing is best effort
                pass


# -- tombstones ---------------------------------------------------------------------------
TOMBSTONE_PREFIX = "smf-tombstone-"


def tombstone_name(name: str) -> str:
    """The resource id of entry `name`'s tombstone (secret and parameter ids allow it)."""
    return TOMBSTONE_PREFIX + tombstone_id(name)


def tombstone_labels(current: StoredEntry, commit: str) -> dict[str, str]:
    meta = {MANAGED_BY_KEY: MANAGED_BY_VALUE, META_OWNER: current.owner or "", META_COMMIT: commit,
            META_TOMBSTONE: current.name}  # fmt: skip
    return encode_labels(meta)


def tombstone_entry(resource_id: str, meta: Mapping[str, str], handle: Any) -> StoredEntry | None:
    """The tombstone a listed resource is, or None for an ordinary entry."""
    if not resource_id.startswith(TOMBSTONE_PREFIX) or meta.get(MANAGED_BY_KEY) != MANAGED_BY_VALUE:
        return None
    name = meta.get(META_TOMBSTONE)
    if not name or tombstone_name(name) != resource_id:
        return None
    return StoredEntry.tombstone_of(name, meta.get(META_OWNER), meta.get(META_COMMIT), handle)


def live_first(entries: list[StoredEntry]) -> list[StoredEntry]:
    """Drop a tombstone when a live entry of its name was listed too."""
    live = {e.name for e in entries if not e.tombstone}
    return [e for e in entries if not (e.tombstone and e.name in live)]


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
