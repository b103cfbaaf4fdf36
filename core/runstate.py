"""Run state for fanned-out runs: which work items are still outstanding, and what the
finished ones came to, so that exactly one worker learns it finished a run's last item.

Why a table at all: the queue knows its messages, not the run they belong to. Without a
shared record nobody can tell when a run of 100 items is over, so nobody could report one
outcome for it. The record lives in the platform's own serverless table (DynamoDB on demand,
Firestore, Table Storage, created by the deploy files), never a database the user runs.

One record per run, updated optimistically (read, change, write if the version is unchanged;
on a lost race read again). Every backend only needs `_read` and `_write`; the rules live
here once, so the clouds cannot disagree:

* `start` registers the run's item ids (a redelivered dispatcher finds the record and is told
  which items are still pending, so it re-sends those and nothing twice is counted).
* `pending` tells a worker whether its item still counts (a redelivered, finished item is
  skipped without work).
* `handoff` swaps a worker's registered remainder: the new child becomes pending *before*
  the parent finishes, so the run cannot look finished in between. A parent that is
  redelivered and hands off a different remainder replaces (cancels) its earlier child; a
  cancelled child that still runs is not pending, so its finish counts nothing.
* `finish` removes the item from pending and merges its result. The write that empties
  pending also sets ``finished``, so exactly one caller gets the final record back.

Backends: `MemoryRunState` (tests, ``serve``), `SQLiteRunState` (local runs that span
processes), `DynamoRunState` (AWS), `FirestoreRunState` (GCP), `TableRunState` (Azure).
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from core.errors import SyncError

#: Records outlive their run by this long (DynamoDB TTL attribute), for reporting.
KEEP_SECONDS = 7 * 24 * 3600
#: Optimistic retries before a write is given up (each one follows a lost race).
MAX_RACES = 60
#: Error messages kept per run (the count is exact; the texts are a sample).
MAX_ERRORS = 20
_BAD = {"ok": 0, "partial": 1, "failed": 2}


class RunStateError(SyncError):
    """The run state could not be read or written (the item is retried by the queue)."""


def _merge(doc: dict[str, Any], result: Mapping[str, Any]) -> None:
    summary = doc.setdefault("summary", {})
    for action, n in (result.get("summary") or {}).items():
        summary[action] = summary.get(action, 0) + int(n)
    errors = doc.setdefault("errors", [])
    for err in result.get("errors") or []:
        if len(errors) < MAX_ERRORS:
            errors.append(err)
    doc["error_count"] = int(doc.get("error_count", 0)) + int(
        result.get("error_count", len(result.get("errors") or []))
    )
    doc["services"] = int(doc.get("services", 0)) + int(result.get("services", 0))
    outcome = str(result.get("outcome") or "ok")
    if _BAD.get(outcome, 2) > _BAD.get(str(doc.get("outcome") or "ok"), 0):
        doc["outcome"] = outcome


class RunState:
    """The rules of a run record over one backend's conditional read and write."""

    def _read(self, run_id: str) -> tuple[dict[str, Any] | None, Any]:
        """(record, version) — (None, None) when there is none."""
        raise NotImplementedError

    def _write(self, run_id: str, doc: dict[str, Any], version: Any) -> bool:
        """Write `doc` if the stored version is still `version` (None: only if absent).
        False when another writer won the race."""
        raise NotImplementedError

    def _update(
        self, run_id: str, change: Callable[[dict[str, Any] | None], tuple[dict[str, Any] | None, Any]]
    ) -> Any:
        """Apply `change(record) -> (new record or None for no write, answer)` atomically."""
        for attempt in range(MAX_RACES):
            doc, version = self._read(run_id)
            copy = json.loads(json.dumps(doc)) if doc is not None else None
            new, answer = change(copy)
            if new is None or self._write(run_id, new, version):
                return answer
            time.sleep(min(0.5, 0.005 * 2 ** min(attempt, 7)) * random.random())  # noqa: S311 - jitter
        raise RunStateError(f"run {run_id}: too many concurrent updates", field="run state")

    # --- the rules ---------------------------------------------------------------------
    def start(self, run_id: str, items: list[str], meta: Mapping[str, Any]) -> list[str]:
        """Register a run and its items; returns the items to send (all of them for a new
        run; for a redelivered dispatcher, those still pending)."""

        def change(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, list[str]]:
            if doc is not None:
                return None, [i for i in items if i in doc.get("pending", [])]
            now = int(time.time())
            new = {"run": run_id, "pending": list(items), "children": {}, "items": len(items), "done": 0,
                   "summary": {}, "errors": [], "error_count": 0, "services": 0, "outcome": "ok",
                   "finished": False, "created": now, "expires": now + KEEP_SECONDS}  # fmt: skip
            new.update(meta)  # what the run is (kind, commit, configs, event) and planning errors
            return new, list(items)

        return self._update(run_id, change)

    def pending(self, run_id: str, item: str) -> bool:
        doc, _ = self._read(run_id)
        return doc is not None and item in doc.get("pending", [])

    def handoff(self, run_id: str, parent: str, child: str) -> bool:
        """Make `child` (the remainder of `parent`) pending; False when `parent` no longer
        counts (then the remainder must not be sent)."""

        def change(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
            if doc is None or parent not in doc["pending"]:
                return None, False
            old = doc["children"].get(parent)
            if old == child and child in doc["pending"]:
                return None, True  # a redelivered parent handing off the same remainder
            if old is not None and old in doc["pending"]:
                doc["pending"].remove(old)
                doc["items"] -= 1
            doc["pending"].append(child)
            doc["children"][parent] = child
            doc["items"] += 1
            return doc, True

        return self._update(run_id, change)

    def finish(self, run_id: str, item: str, result: Mapping[str, Any]) -> dict[str, Any] | None:
        """Count `item` as done with `result`; returns the final record to the one caller
        whose finish ended the run, else None (also for an item that no longer counts)."""

        def change(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
            if doc is None or item not in doc["pending"]:
                return None, None
            doc["pending"].remove(item)
            doc["done"] += 1
            _merge(doc, result)
            last = not doc["pending"] and not doc["finished"]
            if last:
                doc["finished"] = True
                doc["finished_at"] = int(time.time())
            return doc, (doc if last else None)

        return self._update(run_id, change)

    def get(self, run_id: str) -> dict[str, Any] | None:
        return self._read(run_id)[0]


class MemoryRunState(RunState):
    """In one process (tests, ``python -m core serve``)."""

    def __init__(self) -> None:
        self._docs: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()
        #: Conditional writes that lost a race (what the bench reports as contention).
        self.races = 0

    def _read(self, run_id: str) -> tuple[dict[str, Any] | None, Any]:
        with self._lock:
            got = self._docs.get(run_id)
        return (json.loads(got[0]), got[1]) if got else (None, None)

    def _write(self, run_id: str, doc: dict[str, Any], version: Any) -> bool:
        with self._lock:
            current = self._docs.get(run_id)
            if (current[1] if current else None) != version:
                self.races += 1
                return False
            self._docs[run_id] = (json.dumps(doc), (version or 0) + 1)
            return True


class SQLiteRunState(RunState):
    """A file shared by local processes (one row per run; the version column is the condition)."""

    def __init__(self, path: str) -> None:
        import sqlite3

        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("CREATE TABLE IF NOT EXISTS runs (run TEXT PRIMARY KEY, doc TEXT, ver INTEGER)")
        self._lock = threading.Lock()

    def _read(self, run_id: str) -> tuple[dict[str, Any] | None, Any]:
        with self._lock:
            row = self._db.execute("SELECT doc, ver FROM runs WHERE run = ?", (run_id,)).fetchone()
        return (json.loads(row[0]), row[1]) if row else (None, None)

    def _write(self, run_id: str, doc: dict[str, Any], version: Any) -> bool:
        text = json.dumps(doc)
        with self._lock:
            if version is None:
                cur = self._db.execute("INSERT OR IGNORE INTO runs VALUES (?, ?, 1)", (run_id, text))
            else:
                cur = self._db.execute("UPDATE runs SET doc = ?, ver = ver + 1 WHERE run = ? AND ver = ?",
                                       (text, run_id, version))  # fmt: skip
        return cur.rowcount == 1


class DynamoRunState(RunState):
    """One DynamoDB item per run: ``run`` (partition key), ``doc`` (JSON), ``ver`` (the
    condition), ``expires`` (TTL). Reads are strongly consistent: a worker deciding whether
    its item still counts must not read a stale record."""

    def __init__(self, table: str, client: Any = None) -> None:
        self.table = table
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from core.stores import _aws

            self._client = _aws.client("dynamodb", {})
        return self._client

    def _call(self, op: str, **kw: Any) -> Any:
        try:
            return getattr(self.client, op)(TableName=self.table, **kw)
        except Exception as exc:  # noqa: BLE001 - botocore's errors, named by code, never the record
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code == "ConditionalCheckFailedException":
                return None
            raise RunStateError(f"DynamoDB {op} on the run table failed ({code or type(exc).__name__})",
                                field="SMF_RUNSTATE_TABLE") from None  # fmt: skip

    def _read(self, run_id: str) -> tuple[dict[str, Any] | None, Any]:
        resp = self._call("get_item", Key={"run": {"S": run_id}}, ConsistentRead=True)
        item = (resp or {}).get("Item")
        if not item:
            return None, None
        return json.loads(item["doc"]["S"]), int(item["ver"]["N"])

    def _write(self, run_id: str, doc: dict[str, Any], version: Any) -> bool:
        item = {"run": {"S": run_id}, "doc": {"S": json.dumps(doc, separators=(",", ":"))},
                "ver": {"N": str((version or 0) + 1)}, "expires": {"N": str(int(doc.get("expires") or 0))}}  # fmt: skip
        if version is None:
            cond: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(#r)",
                                    "ExpressionAttributeNames": {"#r": "run"}}  # fmt: skip
        else:
            cond = {
                "ConditionExpression": "ver = :v",
                "ExpressionAttributeValues": {":v": {"N": str(version)}},
            }
        return self._call("put_item", Item=item, **cond) is not None


#: Firestore document and collection ids we accept: the documented rules (no ``/``, not
#: ``.`` or ``..``, not ``__.*__``, at most 1,500 bytes) narrowed to what needs no escaping
#: in a URL path. Run ids are hex (core.fanout.run_id_for), so nothing real is refused.
_FS_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_FS_DB = re.compile(r"^(\(default\)|[a-z][a-z0-9-]{2,61}[a-z0-9])$")
_FS_SESSIONS: dict[str, Any] = {}
_FS_TABLE = "the Firestore run table must be projects/P/databases/D/documents/COLLECTION or a collection id"
_FS_LOCK = threading.Lock()


class FirestoreRunState(RunState):
    """One Firestore document per run, ``{collection}/{run id}``: ``doc`` (the record as JSON,
    a stringValue), ``ver`` (integerValue, counts writes), ``expires`` (timestampValue, for
    the database's TTL policy).

    Two REST calls (v1 ``documents.get`` and ``documents.patch``) over google-auth's
    `AuthorizedSession`, not google-cloud-firestore: that library pulls in gRPC and costs
    the cold start more than the whole run state needs. The condition is Firestore's own
    write precondition: create with ``currentDocument.exists=false``, update with
    ``currentDocument.updateTime`` set to the ``updateTime`` the read returned (the document
    must still be the one read). Single-document reads are strongly consistent.

    A failed precondition is a lost race whatever its answer: 409 ALREADY_EXISTS (create),
    400 FAILED_PRECONDITION (a stale updateTime, google.rpc.Code's HTTP mapping), 409 ABORTED
    (contention), 404 NOT_FOUND (the record expired between read and write). Anything else
    is a `RunStateError` naming SMF_RUNSTATE_TABLE with the HTTP status only, never the
    document. Reads are retried on 429/5xx; writes are not (a retried write that had landed
    would look like a lost race, and the item's finish would be lost).

    ``FIRESTORE_EMULATOR_HOST`` (``host:port``) sends plain HTTP there with the emulator's
    fixed ``Bearer owner`` header instead of credentials, as the official clients do."""

    def __init__(self, project: str, collection: str = "smf-runs", database: str = "(default)",
                 session: Any = None, emulator: str | None = None) -> None:  # fmt: skip
        if not project or "/" in project or not _FS_ID.match(collection) or not _FS_DB.match(database):
            raise RunStateError(_FS_TABLE, field="SMF_RUNSTATE_TABLE")
        self.emulator = os.environ.get("FIRESTORE_EMULATOR_HOST") if emulator is None else emulator
        root = f"http://{self.emulator}" if self.emulator else "https://firestore.googleapis.com"
        self.base = f"{root}/v1/projects/{project}/databases/{database}/documents/{collection}"
        self._session = session

    @property
    def session(self) -> Any:
        """One session per process and endpoint (tokens are cached across invocations)."""
        if self._session is None:
            key = self.emulator or ""
            with _FS_LOCK:
                if key not in _FS_SESSIONS:
                    import requests
                    from urllib3.util.retry import Retry

                    if self.emulator:
                        session = requests.Session()
                        session.headers["Authorization"] = "Bearer owner"
                    else:
                        import google.auth
                        from google.auth.transport.requests import AuthorizedSession

                        creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/datastore"])
                        session = AuthorizedSession(creds)
                    retry = Retry(total=3, backoff_factor=0.2, status_forcelist=(429, 500, 502, 503, 504),
                                  allowed_methods=frozenset({"GET"}), raise_on_status=False)  # fmt: skip
                    for prefix in ("http://", "https://"):
                        session.mount(prefix, requests.adapters.HTTPAdapter(max_retries=retry))
                    _FS_SESSIONS[key] = session
                self._session = _FS_SESSIONS[key]
        return self._session

    def _url(self, run_id: str) -> str:
        if not _FS_ID.match(run_id):
            raise RunStateError("run id is not a valid Firestore document id", field="run")
        return f"{self.base}/{run_id}"

    @staticmethod
    def _fail(op: str, resp: Any = None, exc: BaseException | None = None) -> RunStateError:
        if resp is not None:
            status = FirestoreRunState._status(resp)
            what = f"HTTP {resp.status_code}{' ' + status if status.isupper() else ''}"
        else:
            what = type(exc).__name__
        return RunStateError(f"Firestore {op} on the run table failed ({what})", field="SMF_RUNSTATE_TABLE")

    def _read(self, run_id: str) -> tuple[dict[str, Any] | None, Any]:
        url = self._url(run_id)
        try:
            resp = self.session.get(url, timeout=10)
        except Exception as exc:  # noqa: BLE001 - the transport's errors, by type only
            raise self._fail("get", exc=exc) from None
        if resp.status_code == 404:
            return None, None
        if resp.status_code != 200:
            raise self._fail("get", resp)
        try:
            got = resp.json()
            fields = got["fields"]
            return json.loads(fields["doc"]["stringValue"]), (
                got["updateTime"],
                int(fields["ver"]["integerValue"]),
            )
        except (ValueError, KeyError, TypeError):
            raise RunStateError("Firestore get on the run table returned no run record",
                                field="SMF_RUNSTATE_TABLE") from None  # fmt: skip

    def _write(self, run_id: str, doc: dict[str, Any], version: Any) -> bool:
        url = self._url(run_id)
        ver = (version[1] if version else 0) + 1
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(doc.get("expires") or 0)))
        body = {"fields": {"doc": {"stringValue": json.dumps(doc, separators=(",", ":"))},
                           "ver": {"integerValue": str(ver)}, "expires": {"timestampValue": expires}}}  # fmt: skip
        params = (
            {"currentDocument.exists": "false"}
            if version is None
            else {"currentDocument.updateTime": version[0]}
        )
        try:
            resp = self.session.patch(url, params=params, json=body, timeout=10)
        except Exception as exc:  # noqa: BLE001 - the transport's errors, by type only
            raise self._fail("patch", exc=exc) from None
        if resp.status_code == 200:
            return True
        if resp.status_code in (404, 409, 412) or (
            resp.status_code == 400 and self._status(resp) == "FAILED_PRECONDITION"
        ):
            return False
        raise self._fail("patch", resp)

    @staticmethod
    def _status(resp: Any) -> str:
        try:
            return str(resp.json().get("error", {}).get("status") or "")
        except ValueError:
            return ""

    @classmethod
    def from_table(cls, table: str, env: Mapping[str, str]) -> FirestoreRunState:
        """``projects/P/databases/D/documents/COLLECTION``, or a collection id in the
        ``(default)`` database of GOOGLE_CLOUD_PROJECT (or GCP_PROJECT)."""
        parts = table.strip("/").split("/")
        if len(parts) == 6 and parts[0] == "projects" and parts[2] == "databases" and parts[4] == "documents":
            return cls(parts[1], parts[5], parts[3])
        if len(parts) != 1:
            raise RunStateError(_FS_TABLE, field="SMF_RUNSTATE_TABLE")
        project = env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCP_PROJECT") or ""
        if not project:
            raise RunStateError("a Firestore collection id needs GOOGLE_CLOUD_PROJECT (or a full path)",
                                field="SMF_RUNSTATE_TABLE")  # fmt: skip
        return cls(project, parts[0] or "smf-runs")


#: Table Storage's key rules: no ``/ \\ # ?``, no control characters, at most 1 KiB.
_TABLE_KEY = re.compile(r"^[^/\\#?\x00-\x1f\x7f-\x9f]{1,512}$")
_TABLE_URL = "the Azure run table must be https://<account>.table.core.windows.net/<table>, or a table name with SMF_RUNSTATE_CONNECTION"


class TableRunState(RunState):
    """One Azure Table Storage entity per run: PartitionKey the run id (each run its own
    partition, every access a point lookup), RowKey ``run``, the record as JSON in ``doc``
    (continued in ``doc1``, ``doc2``, ... past what one string property holds), ``parts``,
    and ``expires`` (a DateTime, for reporting and cleanup: Table Storage has no TTL, see
    docs/azure.md "Fan-out"). The entity's ETag is the condition: create is Insert (409
    EntityAlreadyExists when another writer was first), update is Replace with ``If-Match``
    (412 UpdateConditionNotSatisfied on a stale ETag). Point reads are strongly consistent.

    A lost race whatever its answer: 409 and 412 by either error class or status, and 404 on
    an update (the record was removed between read and write). Anything else is a
    `RunStateError` naming SMF_RUNSTATE_TABLE with the error code only, never the entity.
    Reads are retried by azure-core's policy; writes are not (a retried write that had landed
    would look like a lost race, and the item's finish would be lost), as for Firestore.

    `table` is ``https://<account>.table.core.windows.net/<table>`` (the managed identity,
    DefaultAzureCredential) or, with `connection` (Azurite, a dev account), the table's name.
    azure-data-tables is imported on first use, so a cold start that never fans out does not
    pay for it."""

    ROW = "run"
    #: Characters per string property: a property holds 64 KiB of UTF-16, and the JSON is ASCII.
    PART_CHARS = 32_000
    #: Parts per entity, keeping it under its 1 MiB limit with room for the other properties.
    MAX_PARTS = 15

    def __init__(self, table: str, connection: str | None = None, client: Any = None) -> None:
        self.table = table
        self._connection = connection
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from urllib.parse import urlsplit

            try:
                from azure.data.tables import TableClient

                if self._connection:
                    self._client = TableClient.from_connection_string(self._connection, table_name=self.table)
                else:
                    url = urlsplit(self.table)
                    name = url.path.strip("/")
                    if url.scheme != "https" or not url.netloc or not name or "/" in name:
                        raise RunStateError(_TABLE_URL, field="SMF_RUNSTATE_TABLE")
                    from azure.identity import DefaultAzureCredential

                    self._client = TableClient(
                        f"https://{url.netloc}", name, credential=DefaultAzureCredential()
                    )
            except RunStateError:
                raise
            except Exception as exc:  # noqa: BLE001 - a bad setting, named by its type only (a connection string holds a key)
                raise RunStateError(
                    f"{_TABLE_URL} ({type(exc).__name__})", field="SMF_RUNSTATE_TABLE"
                ) from None
        return self._client

    @staticmethod
    def _key(run_id: str) -> str:
        if not _TABLE_KEY.match(run_id):
            raise RunStateError("run id is not a valid Table Storage key", field="run")
        return run_id

    def _call(self, op: str, *args: Any, **kw: Any) -> Any:
        """The client's `op`; ``False`` for a lost race, ``None`` for a missing entity."""
        client = self.client
        try:
            return getattr(client, op)(*args, **kw)
        except Exception as exc:  # noqa: BLE001 - azure-core's errors, named by code, never the entity
            response = getattr(exc, "response", None)
            status = getattr(exc, "status_code", None) or getattr(response, "status_code", None)
            code = getattr(exc, "error_code", None)
            code = getattr(code, "value", code)  # TableErrorCode is a str enum
            kind = type(exc).__name__
            # The entity is missing (TableNotFound is an error: the deploy made the table).
            missing = (kind == "ResourceNotFoundError" or status == 404) and (
                code or "ResourceNotFound"
            ) == "ResourceNotFound"
            if op == "get_entity" and missing:
                return None
            if op != "get_entity" and (kind in ("ResourceExistsError", "ResourceModifiedError")
                                       or status in (409, 412) or (op == "update_entity" and missing)):  # fmt: skip
                return False
            what = str(code) if code else (f"HTTP {status}" if status else kind)
        raise RunStateError(
            f"Table Storage {op} on the run table failed ({what})", field="SMF_RUNSTATE_TABLE"
        )

    @staticmethod
    def _part(i: int) -> str:
        """The property holding the i-th part of the record's JSON."""
        return "doc" if i == 0 else f"doc{i}"

    def _read(self, run_id: str) -> tuple[dict[str, Any] | None, Any]:
        entity = self._call("get_entity", partition_key=self._key(run_id), row_key=self.ROW)
        if not entity:
            return None, None
        try:
            parts = int(entity.get("parts") or 1)
            text = "".join(str(entity[self._part(i)]) for i in range(parts))
            return json.loads(text), entity.metadata["etag"]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise RunStateError("Table Storage get_entity on the run table returned no run record",
                                field="SMF_RUNSTATE_TABLE") from None  # fmt: skip

    def _write(self, run_id: str, doc: dict[str, Any], version: Any) -> bool:
        from datetime import UTC, datetime

        text = json.dumps(doc, separators=(",", ":"))  # ASCII (ensure_ascii): 2 bytes a character
        chunks = [text[i : i + self.PART_CHARS] for i in range(0, len(text), self.PART_CHARS)]
        if len(chunks) > self.MAX_PARTS:
            raise RunStateError(f"run {run_id}: the record ({len(text)} characters) exceeds what one Table entity "
                                f"holds ({self.PART_CHARS * self.MAX_PARTS}); fan out with larger items "
                                "(SMF_FANOUT_ITEM_SERVICES)", field="SMF_RUNSTATE_TABLE")  # fmt: skip
        entity: dict[str, Any] = {"PartitionKey": self._key(run_id), "RowKey": self.ROW, "parts": len(chunks),
                                  "expires": datetime.fromtimestamp(int(doc.get("expires") or 0), UTC)}  # fmt: skip
        for i, chunk in enumerate(chunks):
            entity[self._part(i)] = chunk
        if version is None:
            return self._call("create_entity", entity, retry_total=0) is not False
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        return self._call("update_entity", entity, mode=UpdateMode.REPLACE, etag=version,
                          match_condition=MatchConditions.IfNotModified, retry_total=0) is not False  # fmt: skip


def from_env(env: Mapping[str, str] | None = None) -> RunState | None:
    """The deployment's run state: ``SMF_RUNSTATE_TABLE`` names the table, ``SMF_RUNSTATE``
    its kind (``dynamodb`` on Lambda, ``firestore`` on Cloud Run functions (``K_SERVICE``) or
    for a ``projects/...`` path, ``table`` on Azure Functions (``FUNCTIONS_WORKER_RUNTIME``) or
    for an ``https://`` table URL, ``sqlite`` for a ``.db`` path, else ``dynamodb``; or
    ``memory``). ``table`` with ``SMF_RUNSTATE_CONNECTION`` (a connection string: Azurite)
    takes a table name. None when nothing is configured: then runs are never fanned out."""
    env = os.environ if env is None else env
    kind = (env.get("SMF_RUNSTATE") or "").strip().lower()
    table = env.get("SMF_RUNSTATE_TABLE") or ""
    if not kind:
        if not table:
            return None
        if env.get("AWS_LAMBDA_FUNCTION_NAME"):
            kind = "dynamodb"
        elif env.get("K_SERVICE") or table.startswith("projects/"):
            kind = "firestore"
        elif env.get("FUNCTIONS_WORKER_RUNTIME") or table.startswith("https://"):
            kind = "table"
        else:
            kind = "sqlite" if table.endswith(".db") else "dynamodb"
    if kind == "memory":
        return _PROCESS_STATE
    if kind == "sqlite":
        return SQLiteRunState(table or "smf-runs.db")
    if kind in ("dynamodb", "table") and not table:
        raise RunStateError(f"SMF_RUNSTATE={kind} needs SMF_RUNSTATE_TABLE", field="SMF_RUNSTATE_TABLE")
    if kind == "dynamodb":
        return DynamoRunState(table)
    if kind == "table":
        return TableRunState(table, connection=env.get("SMF_RUNSTATE_CONNECTION") or None)
    if kind == "firestore":
        return FirestoreRunState.from_table(table or "smf-runs", env)
    raise RunStateError(
        f"SMF_RUNSTATE must be dynamodb, firestore, table, sqlite or memory, not {kind!r}",
        field="SMF_RUNSTATE",
    )


_PROCESS_STATE = MemoryRunState()
