"""A faithful wire-level fake of the Azure App Configuration data plane (key-values).

The real ``azure-appconfiguration`` client talks to it over plain HTTP with a connection
string (`FakeAppConfiguration.connection_string`). What it reproduces, from the App
Configuration REST reference (Key-Values, HMAC authentication, filtering, pagination):

* **HMAC-SHA256 authentication, verified as the service does**: the ``Authorization`` header
  ``HMAC-SHA256 Credential=<id>&SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=<b64>``
  must name a known credential and exactly those signed headers; ``x-ms-content-sha256`` must
  be the base64 SHA-256 of the body; ``x-ms-date`` must be within 15 minutes of now; the
  signature is HMAC-SHA256 (key = base64-decoded secret) over
  ``VERB\\npath_and_query\\n<x-ms-date>;<host>;<x-ms-content-sha256>``. Anything else: ``401``
  with ``WWW-Authenticate: HMAC-SHA256`` and an ``error_description``;
* ``GET /kv`` with ``key``/``label`` filters (exact, prefix ``abc*``, ``a,b`` lists with ``\\``
  escapes, ``\\0`` for the null label; no label filter = every label), sorted by key then
  label, **100 per page**, the next page given both as ``@nextLink`` in the body and as a
  ``Link: <...>; rel="next"`` header, continuing with ``after``;
* ``GET/PUT/DELETE /kv/{key}?label=`` with **ETags**: ``If-Match`` (``*`` or an etag) and
  ``If-None-Match`` (``*`` or an etag); a failed precondition is ``412``, ``If-None-Match`` on
  GET answers ``304``; locked key-values refuse writes with ``409``;
* the **10,000-character limit** of a key-value (key + label + value + content type + tags,
  measured as the service does on the serialized entity): ``413``; keys may not be ``.``/``..``
  nor contain ``%``;
* errors as ``application/problem+json``; `fail_next` injects throttling/5xx.

Every request is counted in `calls` as ``(METHOD, route)``.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import json
import secrets
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tests.fakes._loopback import base_url, start_server, stop_server

PAGE_SIZE = 100
MAX_KV_CHARS = 10_000
SIGNED_HEADERS = "x-ms-date;host;x-ms-content-sha256"
KV_MEDIA = "application/vnd.microsoft.appconfig.kv+json; charset=utf-8"
KVSET_MEDIA = "application/vnd.microsoft.appconfig.kvset+json; charset=utf-8"


@dataclass
class _KV:
    key: str
    label: str | None
    value: str | None
    content_type: str | None
    tags: dict[str, str]
    etag: str
    last_modified: str
    locked: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "etag": self.etag,
            "key": self.key,
            "label": self.label,
            "content_type": self.content_type,
            "value": self.value,
            "tags": self.tags,
            "locked": self.locked,
            "last_modified": self.last_modified,
        }


class _Problem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        kind: str = "",
        headers: dict[str, str] | None = None,
    ):
        self.status, self.title, self.kind, self.headers = (
            status,
            title,
            kind,
            headers or {},
        )


def _parse_date(text: str) -> dt.datetime | None:
    """x-ms-date as RFC 1123, or as the Python SDK writes it (``Nov, 26 2026 10:40:12.5 GMT``)."""
    try:
        return email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        pass
    try:
        when = dt.datetime.strptime(text.strip(), "%b, %d %Y %H:%M:%S.%f GMT")
    except ValueError:
        return None
    return when.replace(tzinfo=dt.UTC)


def _split_filter(text: str) -> list[str]:
    """Split a filter at unescaped commas and undo ``\\`` escapes."""
    out, cur, i = [], "", 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur += text[i + 1]
            i += 2
            continue
        if ch == ",":
            out.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    out.append(cur)
    return out


def _matches(value: str | None, filt: str | None, *, is_label: bool) -> bool:
    if filt is None:
        return True
    for part in _split_filter(filt) if filt not in ("*",) else ["*"]:
        if part == "*":
            return True
        if is_label and part == "\0":
            if value is None:
                return True
            continue
        if value is None:
            continue
        if part.endswith("*"):
            if value.startswith(part[:-1]):
                return True
        elif value == part:
            return True
    return False


class FakeAppConfiguration:
    """One store on ``http://127.0.0.1:<port>``. Start with `start()`, stop with `stop()`."""

    def __init__(self) -> None:
        self.credential_id = "id-" + secrets.token_hex(4)
        self.secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self._lock = threading.RLock()
        self._kvs: dict[tuple[str, str | None], _KV] = {}
        self.calls: Counter[tuple[str, str]] = Counter()
        self.rejected: list[str] = []  # reasons of refused authentications
        self._faults: list[int] = []
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> FakeAppConfiguration:
        self._server = start_server(_Handler, store=self)
        return self

    def stop(self) -> None:
        stop_server(self._server)

    @property
    def url(self) -> str:
        return base_url(self._server)

    @property
    def connection_string(self) -> str:
        return f"Endpoint={self.url};Id={self.credential_id};Secret={self.secret}"

    def reset(self) -> None:
        with self._lock:
            self._kvs.clear()
            self.calls.clear()
            self.rejected.clear()
            self._faults.clear()

    def fail_next(self, *statuses: int) -> None:
        with self._lock:
            self._faults.extend(statuses)

    # -- inspection / seeding helpers for tests ----------------------------------------
    def items(self) -> dict[tuple[str, str | None], dict[str, Any]]:
        with self._lock:
            return {
                k: v.to_json()
                for k, v in sorted(self._kvs.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
            }

    def seed(
        self,
        key: str,
        value: str,
        label: str | None = None,
        *,
        tags: dict[str, str] | None = None,
        content_type: str | None = None,
        locked: bool = False,
    ) -> str:
        with self._lock:
            kv = self._write(key, label, {"value": value, "tags": tags, "content_type": content_type})
            kv.locked = locked
            return kv.etag

    def total_calls(self) -> int:
        return sum(self.calls.values())

    # -- authentication ---------------------------------------------------------------
    def verify(self, method: str, path_and_query: str, headers: Any, body: bytes) -> str | None:
        """Why the request's HMAC authentication fails, or None when it is valid."""
        auth = headers.get("Authorization", "")
        if not auth.startswith("HMAC-SHA256 "):
            return "missing HMAC-SHA256 Authorization"
        fields: dict[str, str] = {}
        for part in auth[len("HMAC-SHA256 ") :].split("&"):
            k, _, v = part.partition("=")
            fields[k.strip()] = v.strip()
        if fields.get("Credential") != self.credential_id:
            return "unknown credential"
        if fields.get("SignedHeaders", "").lower() != SIGNED_HEADERS:
            return "SignedHeaders must be x-ms-date;host;x-ms-content-sha256"
        date = headers.get("x-ms-date")
        digest = headers.get("x-ms-content-sha256")
        host = headers.get("Host")
        if not date or not digest or not host:
            return "missing x-ms-date, x-ms-content-sha256 or host"
        when = _parse_date(date)
        if when is None:
            return "x-ms-date is not a date"
        if abs((dt.datetime.now(dt.UTC) - when).total_seconds()) > 15 * 60:
            return "x-ms-date is more than 15 minutes off"
        expected_digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        if not hmac.compare_digest(digest, expected_digest):
            return "x-ms-content-sha256 does not match the body"
        to_sign = f"{method}\n{path_and_query}\n{date};{host};{digest}"
        mac = hmac.new(base64.b64decode(self.secret), to_sign.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(fields.get("Signature", ""), base64.b64encode(mac).decode()):
            return "Invalid Signature"
        return None

    # -- the service --------------------------------------------------------------------
    def _write(self, key: str, label: str | None, doc: dict[str, Any]) -> _KV:
        if key in (".", "..") or "%" in key or not key:
            raise _Problem(400, "Invalid key", "invalid-argument")
        tags = doc.get("tags") or {}
        if not isinstance(tags, dict):
            raise _Problem(400, "Invalid tags", "invalid-argument")
        entity = {
            "key": key,
            "label": label,
            "value": doc.get("value"),
            "content_type": doc.get("content_type"),
            "tags": tags,
        }
        size = sum(
            len(x)
            for x in (
                key,
                label or "",
                doc.get("value") or "",
                doc.get("content_type") or "",
            )
        )
        size += sum(len(k) + len(v) for k, v in tags.items())
        if size > MAX_KV_CHARS or len(json.dumps(entity)) > MAX_KV_CHARS + 1024:
            raise _Problem(413, "The key-value is too large", "kv-too-large")
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        kv = _KV(
            key=key,
            label=label,
            value=doc.get("value"),
            content_type=doc.get("content_type"),
            tags={str(k): str(v) for k, v in tags.items()},
            etag=uuid.uuid4().hex,
            last_modified=now,
        )
        old = self._kvs.get((key, label))
        if old is not None:
            kv.locked = old.locked
        self._kvs[(key, label)] = kv
        return kv

    @staticmethod
    def _precondition(current: _KV | None, if_match: str | None, if_none_match: str | None) -> None:
        def etags(h: str) -> list[str]:
            return [t.strip().strip('"') for t in h.split(",")]

        if if_match is not None:
            tags = etags(if_match)
            if current is None or ("*" not in tags and current.etag not in tags):
                raise _Problem(412, "Precondition Failed", "precondition-failed")
        if if_none_match is not None:
            tags = etags(if_none_match)
            if current is not None and ("*" in tags or current.etag in tags):
                raise _Problem(412, "Precondition Failed", "precondition-failed")

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        if not query.get("api-version"):
            raise _Problem(400, "The 'api-version' parameter is required", "invalid-argument")
        label = query.get("label")
        if label == "\0" or label == "%00":
            label = None
        with self._lock:
            if path == "/kv" and method == "GET":
                self.calls[("GET", "/kv")] += 1
                return self._list(query)
            if path.startswith("/kv/"):
                key = unquote(path[len("/kv/") :])
                current = self._kvs.get((key, label))
                if method == "GET":
                    self.calls[("GET", "/kv/{key}")] += 1
                    if current is None:
                        raise _Problem(404, "Not Found", "not-found")
                    inm = headers.get("If-None-Match")
                    if inm and current.etag in [t.strip().strip('"') for t in inm.split(",")]:
                        return 304, None, {"ETag": f'"{current.etag}"'}
                    return 200, current.to_json(), {"ETag": f'"{current.etag}"'}
                if method == "PUT":
                    self.calls[("PUT", "/kv/{key}")] += 1
                    self._precondition(current, headers.get("If-Match"), headers.get("If-None-Match"))
                    if current is not None and current.locked:
                        raise _Problem(
                            409,
                            "Modifying key-value is not allowed: it is read-only",
                            "key-locked",
                        )
                    try:
                        doc = json.loads(body or b"{}")
                    except ValueError:
                        raise _Problem(400, "Invalid request body", "invalid-argument") from None
                    kv = self._write(key, label, doc)
                    return 200, kv.to_json(), {"ETag": f'"{kv.etag}"'}
                if method == "DELETE":
                    self.calls[("DELETE", "/kv/{key}")] += 1
                    self._precondition(current, headers.get("If-Match"), None)
                    if current is None:
                        return 204, None, {}
                    if current.locked:
                        raise _Problem(
                            409,
                            "Deleting key-value is not allowed: it is read-only",
                            "key-locked",
                        )
                    del self._kvs[(key, label)]
                    return 200, current.to_json(), {"ETag": f'"{current.etag}"'}
        raise _Problem(405, f"{method} {path} is not supported", "method-not-allowed")

    def _list(self, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        key_filter = query.get("key")
        label_filter = query.get("label")
        after = query.get("after") or query.get("After")
        items = sorted(
            (kv for kv in self._kvs.values()
             if _matches(kv.key, key_filter, is_label=False)
             and _matches(kv.label, label_filter, is_label=True)),
            key=lambda kv: (kv.key, kv.label or ""),
        )  # fmt: skip
        if after:
            a_key, _, a_label = base64.urlsafe_b64decode(after.encode()).decode().partition("\n")
            items = [kv for kv in items if (kv.key, kv.label or "") > (a_key, a_label)]
        page, more = items[:PAGE_SIZE], len(items) > PAGE_SIZE
        select = query.get("$Select") or query.get("$select")
        out_items = [kv.to_json() for kv in page]
        if select:
            wanted = {f.strip() for f in select.split(",")}
            out_items = [{k: v for k, v in item.items() if k in wanted} for item in out_items]
        doc: dict[str, Any] = {"items": out_items}
        headers: dict[str, str] = {}
        if more:
            last = page[-1]
            token = base64.urlsafe_b64encode(f"{last.key}\n{last.label or ''}".encode()).decode()
            params = [("api-version", query["api-version"])]
            for name in ("key", "label", "$Select"):
                if query.get(name) is not None:
                    params.append((name, query[name]))
            params.append(("after", token))
            link = "/kv?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params)
            doc["@nextLink"] = link
            headers["Link"] = f'<{link}>; rel="next"'
        return 200, doc, headers


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms delayed ACKs)
    server: Any

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def _send(self, status: int, doc: Any, headers: dict[str, str], media: str) -> None:
        payload = b"" if doc is None else json.dumps(doc).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if doc is not None:
            self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _handle(self) -> None:
        store: FakeAppConfiguration = self.server.store
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reason = store.verify(self.command, self.path, self.headers, body)
        if reason is not None:
            with store._lock:
                store.rejected.append(reason)
            self._send(
                401,
                {
                    "type": "https://azconfig.io/errors/invalid-token",
                    "title": "Unauthorized",
                    "status": 401,
                },
                {"WWW-Authenticate": f'HMAC-SHA256 error="invalid_token", error_description="{reason}"'},
                "application/problem+json; charset=utf-8",
            )
            return
        with store._lock:
            fault = store._faults.pop(0) if store._faults else None
        if fault is not None:
            store.calls[("FAULT", str(fault))] += 1
            self._send(fault, {"title": "injected fault", "status": fault}, {"Retry-After": "0"},
                       "application/problem+json; charset=utf-8")  # fmt: skip
            return
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        media = KVSET_MEDIA if split.path == "/kv" else KV_MEDIA
        try:
            status, doc, headers = store.handle(self.command, split.path, query, self.headers, body)
        except _Problem as p:
            status, headers = p.status, p.headers
            doc = {
                "type": f"https://azconfig.io/errors/{p.kind}",
                "title": p.title,
                "status": p.status,
            }
            media = "application/problem+json; charset=utf-8"
        self._send(status, doc, headers, media)

    do_GET = do_PUT = do_DELETE = _handle
