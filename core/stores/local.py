"""The embedded local store: SQLite (stdlib), for demos, local runs and tests.

Two namespaces, ``secrets`` and ``configs`` (store kinds ``local-secrets`` and
``local-configs``), each entry with versions and the same ownership/provenance metadata the
cloud stores carry. Values are **encrypted at rest** with AES-256-GCM (the name and version
as associated data), under a key from ``SMF_LOCAL_STORE_KEY`` or a key file created next to
the database with mode 0600 — the same trust model as an age key file — so no secret is ever
written to disk in plaintext. The fingerprint key is derived from the same key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from core.errors import StoreError
from core.model import (
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    META_COMMIT,
    META_FINGERPRINT,
    META_OWNER,
    META_SOURCE,
    DesiredEntry,
    ListQuery,
    StoredEntry,
)
from core.stores.base import ConflictError, Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    namespace TEXT NOT NULL, name TEXT NOT NULL,
    version INTEGER NOT NULL, managed_by TEXT, owner TEXT, fingerprint TEXT,
    commit_id TEXT, source TEXT, repo TEXT, deleted INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL DEFAULT (datetime('now')),
    PRIMARY KEY (namespace, name)
);
CREATE TABLE IF NOT EXISTS versions (
    namespace TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
    nonce BLOB NOT NULL, ciphertext BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT (datetime('now')),
    PRIMARY KEY (namespace, name, version)
);
"""


class LocalStore(Store):
    """Shared implementation; the two kinds differ only by namespace."""

    namespace: ClassVar[str]
    max_concurrency: ClassVar[int] = 4
    can_read_values: ClassVar[bool] = True

    def __init__(self, path: str, key: bytes | None = None) -> None:
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._key = key or _load_key(path)
        self._aead = None  # the AES-GCM cipher, built once on first use (lazy import)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # WAL: a commit appends to the log instead of rewriting pages through a rollback
        # journal, readers never block the writer, and a process killed mid-transaction
        # leaves the database at its last commit. synchronous=FULL keeps each commit durable
        # (one fsync of the log per commit), which batching makes rare; see `batch`.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        #: True while `batch` holds a transaction open on this connection
        self._in_batch = False
        #: calls made, by operation (tests and benchmarks count them)
        self.calls: dict[str, int] = {}

    @classmethod
    def from_config(cls, config) -> LocalStore:  # type: ignore[no-untyped-def]
        return cls(config.provider_settings.path)

    # -- encryption ----------------------------------------------------------------------
    def _aad(self, name: str, version: int) -> bytes:
        return f"{self.namespace}\0{name}\0{version}".encode()

    def _cipher(self):  # type: ignore[no-untyped-def]
        if self._aead is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._aead = AESGCM(self._key)
        return self._aead

    def _seal(self, name: str, version: int, value: str) -> tuple[bytes, bytes]:
        nonce = os.urandom(12)
        return nonce, self._cipher().encrypt(nonce, value.encode("utf-8"), self._aad(name, version))

    def _open(self, name: str, version: int, nonce: bytes, ciphertext: bytes) -> str:
        return self._cipher().decrypt(nonce, ciphertext, self._aad(name, version)).decode("utf-8")

    # -- transactions --------------------------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction around many writes (apply's write phase of this store).

        Without it every put is its own transaction, and a durable commit waits for a disk
        sync: a first sync of 20,000 entries spent 82 % of its 99 s in fsync (issue #15).
        Inside a batch each put runs in a savepoint, so a put that fails (a conflict, an
        SQLite error) undoes only its own rows and the others still commit together on exit.
        An exception leaving the batch rolls it all back, and a process killed inside it
        leaves the database at its last commit (WAL); either way the next run plans what is
        missing again and converges. Nested batches join the outer one.
        """
        with self._lock:
            if self._in_batch:
                outer = True
            else:
                outer = False
                self._execute_tx("BEGIN IMMEDIATE")
                self._in_batch = True
        if outer:
            yield
            return
        try:
            yield
        except BaseException:
            with self._lock:
                self._in_batch = False
                self._db.execute("ROLLBACK")
            raise
        with self._lock:
            self._in_batch = False
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise StoreError(f"sqlite error: {exc}", transient="locked" in str(exc)) from None

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """The statements of one write, atomic: their own transaction, or a savepoint inside
        a `batch`. The caller holds `_lock`. SQLite errors become `StoreError`s."""
        begin, done, undo = (
            ("SAVEPOINT w", "RELEASE w", "ROLLBACK TO w; RELEASE w") if self._in_batch else ("BEGIN", "COMMIT", "ROLLBACK")
        )  # fmt: skip
        self._execute_tx(begin)
        try:
            yield
            self._db.execute(done)
        except BaseException as exc:
            for stmt in undo.split("; "):
                self._db.execute(stmt)
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"sqlite error: {exc}", transient="locked" in str(exc)) from None
            raise

    def _execute_tx(self, stmt: str) -> None:
        try:
            self._db.execute(stmt)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite error: {exc}", transient="locked" in str(exc)) from None

    # -- Store interface -----------------------------------------------------------------
    def load_fingerprint_key(self) -> bytes:
        return hashlib.sha256(b"smf-fingerprint\0" + self._key).digest()

    def _list(self, query: ListQuery) -> list[StoredEntry]:
        self._count("list")
        with self._lock:
            rows = self._db.execute(
                "SELECT name, managed_by, owner, fingerprint, commit_id, source, deleted, version "
                "FROM entries WHERE namespace = ?",
                (self.namespace,),
            ).fetchall()
        out = []
        for name, managed_by, owner, fp, commit, source, deleted, version in rows:
            meta = {MANAGED_BY_KEY: managed_by, META_OWNER: owner, META_FINGERPRINT: fp,
                    META_COMMIT: commit, META_SOURCE: source}  # fmt: skip
            entry = StoredEntry.from_metadata(name, meta, deleted=bool(deleted), handle=version)
            if query.wants(entry):
                out.append(entry)
        return out

    def _put(self, entry: DesiredEntry, current: StoredEntry | None) -> None:
        self._count("put")
        meta = entry.metadata()
        with self._lock:
            row = self._db.execute(
                "SELECT version, managed_by FROM entries WHERE namespace=? AND name=?",
                (self.namespace, entry.name),
            ).fetchone()
            if row and current is None:
                raise ConflictError(f"{self.kind} entry already exists", field=entry.name)
            version = (row[0] + 1) if row else 1
            nonce, ct = self._seal(entry.name, version, entry.value)
            with self._tx():
                self._db.execute(
                    "INSERT INTO versions (namespace, name, version, nonce, ciphertext) VALUES (?,?,?,?,?)",
                    (self.namespace, entry.name, version, nonce, ct),
                )
                self._db.execute(
                    "INSERT INTO entries (namespace, name, version, managed_by, owner, fingerprint, "
                    "commit_id, source, repo, deleted) VALUES (?,?,?,?,?,?,?,?,?,0) "
                    "ON CONFLICT(namespace, name) DO UPDATE SET version=excluded.version, "
                    "managed_by=excluded.managed_by, owner=excluded.owner, "
                    "fingerprint=excluded.fingerprint, commit_id=excluded.commit_id, "
                    "source=excluded.source, repo=excluded.repo, deleted=0, updated_at=datetime('now')",
                    (
                        self.namespace,
                        entry.name,
                        version,
                        meta["managed-by"],
                        entry.owner,
                        entry.fingerprint,
                        entry.commit,
                        entry.source,
                        entry.repo,
                    ),
                )

    def mark(self, entry: DesiredEntry, current: StoredEntry) -> None:
        """Add our metadata to an entry that already holds `entry.value`: no new version."""
        self._count("mark")
        with self._lock:
            self._db.execute(
                "UPDATE entries SET managed_by=?, owner=?, fingerprint=?, commit_id=?, source=?, repo=?, "
                "updated_at=datetime('now') WHERE namespace=? AND name=?",
                (MANAGED_BY_VALUE, entry.owner, entry.fingerprint, entry.commit, entry.source, entry.repo,
                 self.namespace, entry.name),
            )  # fmt: skip

    def _delete(self, current: StoredEntry, commit: str | None) -> None:
        self._count("delete")
        # The deleting commit replaces the last writer's: plan orders a later restore by it.
        with self._lock:
            self._db.execute(
                "UPDATE entries SET deleted = 1, commit_id = COALESCE(?, commit_id) WHERE namespace=? AND name=?",
                (commit, self.namespace, current.name),
            )

    def read_values(self, entries: list[StoredEntry]) -> dict[str, str]:
        self._count("read")
        return {e.name: v for e in entries if (v := self.get_value(e.name)) is not None}

    def read_secret(self, name: str) -> str:
        value = self.get_value(name)
        if value is None:
            raise StoreError(f"{self.kind} has no entry named {name!r}")
        return value

    # -- helpers for the CLI, tests and demos (not part of the Store interface) ----------
    def get_value(self, name: str, version: int | None = None) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT e.version, v.nonce, v.ciphertext, e.deleted FROM entries e JOIN versions v "
                "ON v.namespace=e.namespace AND v.name=e.name AND v.version=COALESCE(?, e.version) "
                "WHERE e.namespace=? AND e.name=?",
                (version, self.namespace, name),
            ).fetchone()
        if not row or row[3]:
            return None
        return self._open(name, version or row[0], row[1], row[2])

    def set_unmanaged(self, name: str, value: str) -> None:
        """Create an entry by hand (as a person would in the console): not ours."""
        with self._lock:
            row = self._db.execute(
                "SELECT version FROM entries WHERE namespace=? AND name=?", (self.namespace, name)
            ).fetchone()
            version = (row[0] + 1) if row else 1
            nonce, ct = self._seal(name, version, value)
            self._db.execute(
                "INSERT INTO versions (namespace, name, version, nonce, ciphertext) VALUES (?,?,?,?,?)",
                (self.namespace, name, version, nonce, ct),
            )
            self._db.execute(
                "INSERT INTO entries (namespace, name, version) VALUES (?,?,?) "
                "ON CONFLICT(namespace, name) DO UPDATE SET version=excluded.version",
                (self.namespace, name, version),
            )

    def names(self, include_deleted: bool = False) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name FROM entries WHERE namespace=? AND (deleted=0 OR ?) ORDER BY name",
                (self.namespace, int(include_deleted)),
            ).fetchall()
        return [r[0] for r in rows]

    def versions(self, name: str) -> int:
        with self._lock:
            return self._db.execute(
                "SELECT COUNT(*) FROM versions WHERE namespace=? AND name=?", (self.namespace, name)
            ).fetchone()[0]

    def close(self) -> None:
        self._db.close()


class LocalSecretStore(LocalStore):
    kind = "local-secrets"
    namespace = "secrets"


class LocalConfigStore(LocalStore):
    kind = "local-configs"
    namespace = "configs"


def _load_key(db_path: str) -> bytes:
    env = os.environ.get("SMF_LOCAL_STORE_KEY")
    if env:
        key = base64.b64decode(env)
        if len(key) != 32:
            raise StoreError("SMF_LOCAL_STORE_KEY must be 32 bytes, base64-encoded")
        return key
    if db_path == ":memory:":
        return os.urandom(32)
    key_path = Path(db_path + ".key")
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return base64.b64decode(key_path.read_text().strip())
    key = os.urandom(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(key).decode() + "\n")
    return key
