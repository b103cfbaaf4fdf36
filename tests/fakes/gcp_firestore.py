"""A wire-level fake of the Firestore REST API v1: ``documents.get`` and ``documents.patch``,
the two calls core.runstate.FirestoreRunState makes (what the emulator would answer, without
a JVM in the test run).

Reproduced from Google's pages, behaviour by behaviour:

* ``GET /v1/projects/P/databases/D/documents/C/ID`` answers the Document (``name``,
  ``fields``, ``createTime``, ``updateTime``), or ``404 NOT_FOUND``
  (https://cloud.google.com/firestore/docs/reference/rest/v1/projects.databases.documents/get).
* ``PATCH`` of the same name "updates or inserts a document"; without ``updateMask`` the
  body's fields replace the document's. ``currentDocument.exists=false``: "the target
  document must not exist"; ``currentDocument.exists=true``: it must exist;
  ``currentDocument.updateTime``: "the target document must exist and have been last updated
  at that time. Timestamp must be microsecond aligned"; the precondition is one or the other
  (https://cloud.google.com/firestore/docs/reference/rest/v1/projects.databases.documents/patch,
  https://cloud.google.com/firestore/docs/reference/rest/v1/Precondition).
* A failed precondition: an existing document under ``exists=false`` is ``409
  ALREADY_EXISTS``, a missing one under ``exists=true`` or ``updateTime`` ``404 NOT_FOUND``,
  a stale ``updateTime`` ``FAILED_PRECONDITION``: HTTP 400 as google.rpc.Code maps it
  (https://github.com/googleapis/googleapis/blob/master/google/rpc/code.proto), or, with
  ``stale_code=409``, ``409 ABORTED`` as under contention ("Too much contention on these
  documents", https://cloud.google.com/firestore/docs/understand-error-codes). Both are
  answers a client must take for a lost race.
* Document ids: no ``/``, not ``.`` or ``..``, not ``__.*__``, at most 1,500 bytes; a document
  at most 1 MiB (https://cloud.google.com/firestore/quotas#limits): else ``400
  INVALID_ARGUMENT``. Values are typed (``stringValue``, ``integerValue`` as a decimal string,
  ``timestampValue`` RFC 3339).
* Errors use Google's envelope ``{"error": {"code", "message", "status"}}``.

Test hooks: `bump_next_write` (before the next conditional write, another writer updates
the document, so that write loses its race), `fail_next` (HTTP statuses answered, in order,
to the next requests), `requests` ``[(method, document id, query)]``, `lost` (failed
preconditions answered).
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes._loopback import read_body, send_json, start_server, stop_server

MAX_DOC = 1024 * 1024
_NAME = re.compile(r"^/v1/(projects/[^/]+/databases/[^/]+/documents/[^/]+/([^/]+))$")
_STATUS = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ALREADY_EXISTS", 500: "INTERNAL",
           403: "PERMISSION_DENIED", 503: "UNAVAILABLE"}  # fmt: skip
_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


class _Error(Exception):
    def __init__(self, code: int, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.code, self.status = code, status or _STATUS.get(code, "UNKNOWN")


def _valid_id(doc_id: str) -> bool:
    return (0 < len(doc_id.encode()) <= 1500 and doc_id not in (".", "..")
            and not re.fullmatch(r"__.*__", doc_id))  # fmt: skip


class FirestoreFake:
    def __init__(self, stale_code: int = 400) -> None:
        self.stale_code = stale_code
        self.docs: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.fail_next: list[int] = []
        self.bump_next_write = False
        self.lost = 0
        self._lock = threading.Lock()
        self._last_us = 0
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> FirestoreFake:
        self._server = start_server(_Handler, fake=self)
        return self

    def stop(self) -> None:
        stop_server(self._server)
        self._server = None

    def __enter__(self) -> FirestoreFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        """``host:port``, what FIRESTORE_EMULATOR_HOST holds."""
        assert self._server is not None, "the fake is not started"
        return f"127.0.0.1:{self._server.server_address[1]}"

    # --- the API --------------------------------------------------------------------------
    def _now(self) -> str:
        """A strictly increasing, microsecond-aligned update time."""
        us = max(int(time.time() * 1_000_000), self._last_us + 1)
        self._last_us = us
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(us // 1_000_000)) + f".{us % 1_000_000:06d}Z"

    def handle(
        self, method: str, path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        try:
            m = _NAME.match(unquote(path))
            if not m:
                raise _Error(404, "Method not found.")
            name, doc_id = m.groups()
            with self._lock:
                self.requests.append((method, doc_id, query))
                if self.fail_next:
                    code = self.fail_next.pop(0)
                    raise _Error(code, "injected failure")
                if not _valid_id(doc_id):
                    raise _Error(400, "Document id is invalid.")
                if method == "GET":
                    if name not in self.docs:
                        raise _Error(404, f'Document "{name}" not found.')
                    return 200, self.docs[name]
                if method == "PATCH":
                    return 200, self._patch(name, query, body)
                raise _Error(404, "Method not found.")
        except _Error as exc:
            return exc.code, {"error": {"code": exc.code, "message": str(exc), "status": exc.status}}

    def _patch(self, name: str, query: dict[str, str], body: bytes) -> dict[str, Any]:
        if len(body) > MAX_DOC:
            raise _Error(400, "Document exceeds the maximum size.")
        try:
            fields = json.loads(body or b"{}").get("fields", {})
        except ValueError:
            raise _Error(400, "Invalid JSON payload received.") from None
        for field, value in fields.items():
            if not isinstance(value, dict) or len(value) != 1:
                raise _Error(400, f"Invalid value for field {field}.")
            ((kind, v),) = value.items()
            ok = (kind == "stringValue" and isinstance(v, str)
                  or kind == "integerValue" and isinstance(v, str) and re.fullmatch(r"-?\d+", v) is not None
                  or kind == "timestampValue" and isinstance(v, str) and _TS.match(v) is not None)  # fmt: skip
            if not ok:
                raise _Error(400, f"Invalid value for field {field}.")
        exists, update_time = query.get("currentDocument.exists"), query.get("currentDocument.updateTime")
        if exists is not None and update_time is not None:
            raise _Error(400, "Precondition may set exists or update_time, not both.")
        if update_time is not None and not re.fullmatch(r"[^.]*(\.\d{1,6})?Z", update_time):
            raise _Error(400, "update_time must be microsecond aligned.")
        if self.bump_next_write and name in self.docs and (exists or update_time):
            self.bump_next_write = False
            self.docs[name] = {**self.docs[name], "updateTime": self._now()}
        current = self.docs.get(name)
        if exists == "false" and current is not None:
            self.lost += 1
            raise _Error(409, f"Document already exists: {name}", "ALREADY_EXISTS")
        if (exists == "true" or update_time is not None) and current is None:
            self.lost += 1
            raise _Error(404, f"No document to update: {name}")
        if update_time is not None and current is not None and current["updateTime"] != update_time:
            self.lost += 1
            status = "FAILED_PRECONDITION" if self.stale_code == 400 else "ABORTED"
            raise _Error(
                self.stale_code, "the stored version does not match the required base version", status
            )
        now = self._now()
        doc = {"name": name, "fields": fields, "createTime": current["createTime"] if current else now,
               "updateTime": now}  # fmt: skip
        self.docs[name] = doc
        return doc


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return None

    def _serve(self) -> None:
        body = read_body(self)
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        status, doc = self.server.fake.handle(self.command, url.path, query, body)
        send_json(self, status, doc)

    do_GET = do_PATCH = _serve
