"""A faithful wire-level fake of the Azure Key Vault *secrets* data plane (REST 7.x / 2025+).

The real ``azure-keyvault-secrets`` client talks to it over HTTPS (a self-signed certificate
made here with `cryptography`, SAN ``127.0.0.1``/``localhost``). What it reproduces, from the
Key Vault REST reference (Set/Get/Update/List/Delete secret, deleted secrets, recover, purge):

* the bearer **challenge** flow: an unauthenticated request (the client's empty-body probe)
  gets ``401`` with ``WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/
  <tenant>", resource="https://vault.azure.net"``; later requests must carry
  ``Authorization: Bearer <token>`` with the token `FakeKeyVault.token` that
  `FakeKeyVaultCredential` hands out for the scope ``https://vault.azure.net/.default``;
* names ``^[0-9a-zA-Z-]{1,127}$``, **case-insensitive** (the first spelling is kept);
* ``PUT /secrets/{name}`` adds a version (value ≤ 25 KB = 25,600 bytes, ``contentType`` ≤ 255
  chars, ≤ 15 tags, tag names ≤ 512 and values ≤ 256 chars), ``GET /secrets/{name}[/{ver}]``,
  ``PATCH`` (tags/contentType/attributes, no new version), ``GET /secrets`` and
  ``GET /secrets/{name}/versions`` paged with ``maxresults`` (≤ 25) and ``nextLink``; for a
  name that does not exist it answers ``404 SecretNotFound``, or, with
  ``missing_versions="empty"``, ``200`` with an empty ``value`` list (what the real service is
  reported to answer, and what Microsoft's own tooling relies on);
* **soft delete**: ``DELETE /secrets/{name}`` moves every version to the deleted collection
  (``recoveryId``, ``deletedDate``, ``scheduledPurgeDate``); while there, ``PUT`` on the name is
  ``409 Conflict`` with inner code ``ObjectIsDeletedButRecoverable``; ``GET /deletedsecrets``
  (paged), ``GET /deletedsecrets/{name}``, ``POST /deletedsecrets/{name}/recover`` and
  ``DELETE /deletedsecrets/{name}`` (purge, 204);
* errors as ``{"error": {"code", "message"}}``; `fail_next` injects throttling/5xx.

Every request is counted in `calls` as ``(METHOD, route)``, e.g. ``("PUT", "/secrets/{name}")``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import secrets
import ssl
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tests.fakes._loopback import base_url, start_server, stop_server

NAME_RE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
MAX_VALUE_BYTES = 25 * 1024
MAX_TAGS = 15
RESOURCE = "https://vault.azure.net"
SCOPE = RESOURCE + "/.default"
TENANT = "tenant"
PAGE_MAX = 25


def make_self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """Write ``cert.pem``/``key.pem`` (SAN 127.0.0.1, localhost) into `directory`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class FakeKeyVaultCredential:
    """A `TokenCredential` for tests: hands out the fake vault's token for the vault scope."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.requests: list[tuple[tuple[str, ...], str | None]] = []

    def get_token(self, *scopes: str, tenant_id: str | None = None, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.requests.append((scopes, tenant_id))
        if scopes != (SCOPE,):
            # A real token for another audience would be refused by the vault.
            return AccessToken("wrong-audience", int(time.time()) + 3600)
        return AccessToken(self.token, int(time.time()) + 3600)

    def close(self) -> None:
        return None


@dataclass
class _Version:
    id: str
    value: str
    content_type: str | None
    tags: dict[str, str] | None
    enabled: bool
    created: int
    updated: int


@dataclass
class _Secret:
    name: str  # first spelling, kept as created
    versions: list[_Version] = field(default_factory=list)
    deleted_date: int | None = None


class _Error(Exception):
    def __init__(self, status: int, code: str, message: str, inner: str | None = None) -> None:
        self.status, self.code, self.message, self.inner = status, code, message, inner


class FakeKeyVault:
    """One vault on ``https://127.0.0.1:<port>``. Start with `start()`, stop with `stop()`."""

    def __init__(self, recoverable_days: int = 90) -> None:
        #: How ``GET /secrets/{name}/versions`` answers for a missing name: "404" or "empty".
        self.missing_versions = "404"
        self.token = "kv-" + secrets.token_hex(16)
        self.recoverable_days = recoverable_days
        self._dir = Path(tempfile.mkdtemp(prefix="fake-kv-"))
        self.cert_path, self._key_path = make_self_signed_cert(self._dir)
        self._lock = threading.RLock()
        self._live: dict[str, _Secret] = {}  # lower-case name -> secret
        self._deleted: dict[str, _Secret] = {}
        self.calls: Counter[tuple[str, str]] = Counter()
        self.unauthenticated = 0
        self._faults: list[int] = []
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> FakeKeyVault:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_path, self._key_path)
        self._server = start_server(_Handler, tls=ctx, vault=self)
        return self

    def stop(self) -> None:
        stop_server(self._server)
        for p in (self.cert_path, self._key_path):
            p.unlink(missing_ok=True)
        self._dir.rmdir()

    @property
    def url(self) -> str:
        return base_url(self._server, "https")

    def credential(self) -> FakeKeyVaultCredential:
        return FakeKeyVaultCredential(self.token)

    def reset(self) -> None:
        with self._lock:
            self._live.clear()
            self._deleted.clear()
            self.calls.clear()
            self.unauthenticated = 0
            self._faults.clear()
            self.missing_versions = "404"

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests (after authentication) with these statuses (429, 503...)."""
        with self._lock:
            self._faults.extend(statuses)

    # -- inspection helpers for tests (never used by the code under test) ---------------
    def secret_names(self) -> list[str]:
        with self._lock:
            return sorted(s.name for s in self._live.values())

    def deleted_names(self) -> list[str]:
        with self._lock:
            return sorted(s.name for s in self._deleted.values())

    def value(self, name: str) -> str:
        with self._lock:
            return self._live[name.lower()].versions[-1].value

    def versions(self, name: str) -> int:
        with self._lock:
            return len(self._live[name.lower()].versions)

    def tags(self, name: str) -> dict[str, str]:
        with self._lock:
            return dict(self._live[name.lower()].versions[-1].tags or {})

    def content_type(self, name: str) -> str | None:
        with self._lock:
            return self._live[name.lower()].versions[-1].content_type

    def seed(self, name: str, value: str, tags: dict[str, str] | None = None) -> None:
        """Create a secret out of band (someone else's, or one made by hand)."""
        with self._lock:
            self._set(name, {"value": value, "tags": tags})

    def soft_delete(self, name: str) -> None:
        with self._lock:
            self._delete(name)

    def total_calls(self) -> int:
        return sum(self.calls.values())

    # -- the service --------------------------------------------------------------------
    def _id(self, name: str, version: str | None = None) -> str:
        return f"{self.url}/secrets/{name}" + (f"/{version}" if version else "")

    def _attributes(self, v: _Version) -> dict[str, Any]:
        return {
            "enabled": v.enabled,
            "created": v.created,
            "updated": v.updated,
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": self.recoverable_days,
        }

    def _bundle(self, s: _Secret, v: _Version, *, value: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self._id(s.name, v.id),
            "attributes": self._attributes(v),
        }
        if value:
            out["value"] = v.value
        if v.content_type is not None:
            out["contentType"] = v.content_type
        if v.tags is not None:
            out["tags"] = v.tags
        return out

    def _item(self, s: _Secret, v: _Version, *, versioned: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self._id(s.name, v.id if versioned else None),
            "attributes": self._attributes(v),
        }
        if v.content_type is not None:
            out["contentType"] = v.content_type
        if v.tags is not None:
            out["tags"] = v.tags
        return out

    def _deleted_fields(self, s: _Secret) -> dict[str, Any]:
        assert s.deleted_date is not None
        return {
            "recoveryId": f"{self.url}/deletedsecrets/{s.name}",
            "deletedDate": s.deleted_date,
            "scheduledPurgeDate": s.deleted_date + self.recoverable_days * 86400,
        }

    @staticmethod
    def _check_name(name: str) -> None:
        if not NAME_RE.match(name):
            raise _Error(
                400,
                "BadParameter",
                "The request URI contains an invalid name: "
                f"{name}. Follow this link for more information: https://go.microsoft.com/fwlink/?linkid=2147740",
            )

    def _set(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check_name(name)
        value = body.get("value")
        if not isinstance(value, str):
            raise _Error(400, "BadParameter", "Property 'value' is required.")
        if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
            raise _Error(
                400,
                "BadParameter",
                f"Secret value exceeds the maximum size of {MAX_VALUE_BYTES} bytes.",
            )
        ctype = body.get("contentType")
        if ctype is not None and len(ctype) > 255:
            raise _Error(400, "BadParameter", "contentType is longer than 255 characters.")
        tags = body.get("tags")
        self._check_tags(tags)
        key = name.lower()
        if key in self._deleted:
            shown = self._deleted[key].name
            raise _Error(
                409,
                "Conflict",
                f"Secret {shown} is currently in a deleted but recoverable state, and its name "
                "cannot be reused; in this state, the secret can only be recovered or purged.",
                inner="ObjectIsDeletedButRecoverable",
            )
        attrs = body.get("attributes") or {}
        now = int(time.time())
        s = self._live.setdefault(key, _Secret(name=name))
        v = _Version(
            id=uuid.uuid4().hex,
            value=value,
            content_type=ctype,
            tags=dict(tags) if tags is not None else None,
            enabled=attrs.get("enabled", True) is not False,
            created=now,
            updated=now,
        )
        s.versions.append(v)
        return self._bundle(s, v)

    @staticmethod
    def _check_tags(tags: Any) -> None:
        if tags is None:
            return
        if not isinstance(tags, dict) or len(tags) > MAX_TAGS:
            raise _Error(400, "BadParameter", f"A secret can have at most {MAX_TAGS} tags.")
        for k, v in tags.items():
            if len(k) > 512 or not isinstance(v, str) or len(v) > 256:
                raise _Error(
                    400,
                    "BadParameter",
                    "Tag names are limited to 512 and values to 256 characters.",
                )

    def _live_secret(self, name: str) -> _Secret:
        s = self._live.get(name.lower())
        if s is None:
            raise _Error(
                404,
                "SecretNotFound",
                f"A secret with (name/id) {name} was not found in this key vault.",
            )
        return s

    def _deleted_secret(self, name: str) -> _Secret:
        s = self._deleted.get(name.lower())
        if s is None:
            raise _Error(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return s

    def _version(self, s: _Secret, version: str) -> _Version:
        if not version:
            return s.versions[-1]
        for v in s.versions:
            if v.id == version:
                return v
        raise _Error(
            404,
            "SecretNotFound",
            f"A secret with (name/id) {s.name}/{version} was not found.",
        )

    def _delete(self, name: str) -> dict[str, Any]:
        s = self._live.pop(name.lower(), None)
        if s is None:
            self._live_secret(name)
        assert s is not None
        s.deleted_date = int(time.time())
        self._deleted[name.lower()] = s
        out = self._bundle(s, s.versions[-1], value=False)
        out.update(self._deleted_fields(s))
        return out

    def _page(self, items: list[dict[str, Any]], query: dict[str, str], route: str) -> dict[str, Any]:
        try:
            size = int(query.get("maxresults") or PAGE_MAX)
        except ValueError:
            raise _Error(400, "BadParameter", "maxresults must be an integer") from None
        if not 1 <= size <= PAGE_MAX:
            raise _Error(400, "BadParameter", f"maxresults must be between 1 and {PAGE_MAX}")
        start = int(query.get("$skiptoken") or 0)
        page = items[start : start + size]
        out: dict[str, Any] = {"value": page, "nextLink": None}
        if start + size < len(items):
            out["nextLink"] = (
                f"{self.url}{route}?api-version={quote(query['api-version'])}"
                f"&$skiptoken={start + size}&maxresults={size}"
            )
        return out

    def handle(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        if not query.get("api-version"):
            raise _Error(400, "BadParameter", "The 'api-version' query parameter is missing.")
        doc: dict[str, Any] = {}
        if body:
            try:
                doc = json.loads(body)
            except ValueError:
                raise _Error(400, "BadParameter", "The request body is not valid JSON.") from None
        with self._lock:
            if parts == ["secrets"] and method == "GET":
                self.calls[("GET", "/secrets")] += 1
                items = [
                    self._item(s, s.versions[-1])
                    for s in sorted(self._live.values(), key=lambda s: s.name.lower())
                ]
                return 200, self._page(items, query, "/secrets")
            if parts == ["deletedsecrets"] and method == "GET":
                self.calls[("GET", "/deletedsecrets")] += 1
                items = []
                for s in sorted(self._deleted.values(), key=lambda s: s.name.lower()):
                    item = self._item(s, s.versions[-1])
                    item["id"] = self._id(s.name)
                    item.update(self._deleted_fields(s))
                    items.append(item)
                return 200, self._page(items, query, "/deletedsecrets")
            if len(parts) >= 2 and parts[0] == "secrets":
                name = parts[1]
                rest = parts[2:]
                if rest == ["versions"] and method == "GET":
                    self.calls[("GET", "/secrets/{name}/versions")] += 1
                    if self.missing_versions == "empty" and name.lower() not in self._live:
                        return 200, self._page([], query, f"/secrets/{name}/versions")
                    s = self._live_secret(name)
                    items = [self._item(s, v, versioned=True) for v in s.versions]
                    return 200, self._page(items, query, f"/secrets/{s.name}/versions")
                if method == "PUT" and not rest:
                    self.calls[("PUT", "/secrets/{name}")] += 1
                    return 200, self._set(name, doc)
                if method == "GET" and len(rest) <= 1:
                    self.calls[("GET", "/secrets/{name}")] += 1
                    s = self._live_secret(name)
                    return 200, self._bundle(s, self._version(s, rest[0] if rest else ""))
                if method == "PATCH" and len(rest) <= 1:
                    self.calls[("PATCH", "/secrets/{name}")] += 1
                    s = self._live_secret(name)
                    v = self._version(s, rest[0] if rest else "")
                    if "tags" in doc:
                        self._check_tags(doc["tags"])
                        v.tags = doc["tags"]
                    if "contentType" in doc:
                        v.content_type = doc["contentType"]
                    if "enabled" in (doc.get("attributes") or {}):
                        v.enabled = bool(doc["attributes"]["enabled"])
                    v.updated = int(time.time())
                    return 200, self._bundle(s, v, value=False)
                if method == "DELETE" and not rest:
                    self.calls[("DELETE", "/secrets/{name}")] += 1
                    return 200, self._delete(name)
            if len(parts) >= 2 and parts[0] == "deletedsecrets":
                name, rest = parts[1], parts[2:]
                if method == "GET" and not rest:
                    self.calls[("GET", "/deletedsecrets/{name}")] += 1
                    s = self._deleted_secret(name)
                    out = self._bundle(s, s.versions[-1], value=False)
                    out.update(self._deleted_fields(s))
                    return 200, out
                if method == "POST" and rest == ["recover"]:
                    self.calls[("POST", "/deletedsecrets/{name}/recover")] += 1
                    s = self._deleted_secret(name)
                    del self._deleted[name.lower()]
                    s.deleted_date = None
                    self._live[name.lower()] = s
                    return 200, self._bundle(s, s.versions[-1], value=False)
                if method == "DELETE" and not rest:
                    self.calls[("DELETE", "/deletedsecrets/{name}")] += 1
                    self._deleted_secret(name)
                    del self._deleted[name.lower()]
                    return 204, None
        raise _Error(405, "BadRequest", f"{method} {path} is not supported")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms delayed ACKs)
    server: Any

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def _send(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
        payload = b"" if doc is None else json.dumps(doc).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if doc is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("x-ms-keyvault-service-version", "1.9.0.0")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _handle(self) -> None:
        vault: FakeKeyVault = self.server.vault
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not secrets.compare_digest(
            auth[7:].strip().encode(), vault.token.encode()
        ):
            with vault._lock:
                vault.unauthenticated += 1
            self._send(
                401,
                {
                    "error": {
                        "code": "Unauthorized",
                        "message": "AKV10000: Request is missing a Bearer or PoP token.",
                    }
                },
                {
                    "WWW-Authenticate": f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", '
                    f'resource="{RESOURCE}"'
                },
            )
            return
        with vault._lock:
            fault = vault._faults.pop(0) if vault._faults else None
        if fault is not None:
            vault.calls[("FAULT", str(fault))] += 1
            code = "Throttled" if fault == 429 else "InternalServerError"
            self._send(
                fault,
                {"error": {"code": code, "message": "injected fault"}},
                {"Retry-After": "0"},
            )
            return
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        try:
            status, doc = vault.handle(self.command, split.path, query, body)
        except _Error as err:
            error: dict[str, Any] = {"code": err.code, "message": err.message}
            if err.inner:
                error["innererror"] = {"code": err.inner}
            status, doc = err.status, {"error": error}
        self._send(status, doc)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _handle
