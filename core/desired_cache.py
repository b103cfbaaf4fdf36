"""Desired-state cache: what a service's unchanged files came to last time, without a value.

Why: a no-op resync of 5,000 services spends most of its CPU reading, decrypting, parsing
and naming files that have not changed since the last run, only to find every fingerprint
equal to the store's. A service's desired entries are a pure function of its files' bytes
(their Git blob ids), the config, the fingerprint key and this code's version, so the run
keys a record by exactly those and, on a hit, skips reading the service: its entries come
back with their names, sources, options and fingerprints, and **no value**.

What stays the same with a hit (tests/core/test_desired_cache.py holds the equivalence):

* The stores are still listed and planned against; the cache never says what a store holds.
* An entry that plan would create or update (deleted or edited by hand, a new store) needs
  its value: the spine re-reads that service from Git ("hydrates" it) before anything is
  written, and a service that now fails to read fails alone, as it would have.
* Warnings the service's files gave are replayed from the record.
* Runs with the drift check (`--drift`, scheduled resyncs) do not use the cache: they read
  every value anyway, and re-decrypting there still proves the keys work end to end.
* Kustomize services are not cached (their inputs are a build, not a file list).

Records hold names, `path:key` sources and keyed HMAC fingerprints (as the stores' metadata
already does), never a value. Each row carries an HMAC under a key derived from the
fingerprint key, so a row written by anyone without that key is ignored, not trusted (a
forged record could otherwise make a service look empty and get its entries pruned). The
cache is best effort: any error opening, reading or writing it is logged and the run goes
on without it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import sqlite3
import time
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from core.model import DesiredEntry

log = logging.getLogger("smf.desired_cache")

#: Bump when the desired state of the same inputs may differ (naming, routing, parsing,
#: prepare rules); the package version is part of every key too.
SCHEMA = 2
#: Rows not used for this long are dropped when the cache is written.
KEEP_SECONDS = 30 * 24 * 3600
ENV = "SMF_DESIRED_CACHE"
_NOT_DESIRED = ("warnings", "origin", "notifications", "statuses", "pull_requests", "webhook")


def default_path(env: Mapping[str, str] | None = None) -> str | None:
    """``SMF_DESIRED_CACHE`` (a file path, or ``off``), else the user's cache directory."""
    env = os.environ if env is None else env
    value = env.get(ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0", "false") else value
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "secret-manager-functions", "desired.sqlite")


def config_digest(config: Any) -> str:
    """Everything of a config that can change its desired state: all of it but where it was
    loaded from, its warnings and where results are reported (more only costs a miss)."""
    from dataclasses import fields

    parts = {f.name: getattr(config, f.name) for f in fields(config) if f.name not in _NOT_DESIRED}
    return hashlib.sha256(repr(sorted(parts.items())).encode()).hexdigest()


class DesiredCache:
    """One SQLite file; `lookup` many keys at once, `save` many records in one transaction."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self.hits = self.misses = 0

    def _conn(self) -> sqlite3.Connection | None:
        if self._db is None:
            try:
                os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                os.close(fd)
                db = sqlite3.connect(self.path, timeout=5, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS services (k TEXT PRIMARY KEY, mac BLOB, data BLOB, used INT)"
                )
                self._db = db
            except (OSError, sqlite3.Error) as exc:
                log.warning("desired-state cache unavailable (%s): reading every service", type(exc).__name__)
                self.path = ""
                return None
        return self._db

    @staticmethod
    def key(config_id: str, fp_key: bytes, service: Any, blobs: Iterable[tuple[str, str]]) -> str:
        """The record key of one service: code, config, fingerprint key, where the service is
        and the blob id of every file it reads."""
        from core import __version__

        h = hashlib.sha256()
        key_id = hmac.digest(fp_key, b"smf-desired-cache-key", "sha256")
        for part in (str(SCHEMA), __version__, config_id, key_id.hex(), service.owner, service.service,
                     service.environment, service.directory, service.prefix):  # fmt: skip
            h.update(part.encode("utf-8", "surrogateescape") + b"\x00")
        for path, blob in blobs:
            h.update(f"{path}\x00{blob}\x00".encode("utf-8", "surrogateescape"))
        return h.hexdigest()

    @staticmethod
    def _mac(fp_key: bytes, k: str, data: bytes) -> bytes:
        return hmac.digest(
            hmac.digest(fp_key, b"smf-desired-cache-mac", "sha256"), k.encode() + data, "sha256"
        )

    def lookup(self, keys: list[str], fp_key: bytes) -> dict[str, dict[str, Any]]:
        """key → record for every key held with a valid MAC (others are misses)."""
        db = self._conn() if self.path else None
        out: dict[str, dict[str, Any]] = {}
        now = int(time.time())
        stale, touch = now - 24 * 3600, []
        if db is None or not keys:
            self.misses += len(keys)
            return out
        try:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                rows = db.execute(
                    f"SELECT k, mac, data, used FROM services WHERE k IN ({','.join('?' * len(chunk))})",  # noqa: S608 - placeholders only
                    chunk,
                ).fetchall()
                for k, mac, data, used in rows:
                    if hmac.compare_digest(mac, self._mac(fp_key, k, data)):
                        out[k] = json.loads(zlib.decompress(data))
                        if used < stale:
                            touch.append(k)
            if touch:  # a day's precision is enough for expiry; most runs write nothing
                db.executemany("UPDATE services SET used = ? WHERE k = ?", [(now, k) for k in touch])
        except (sqlite3.Error, ValueError, zlib.error) as exc:
            log.warning("desired-state cache unreadable (%s): reading every service", type(exc).__name__)
            out = {}
        self.hits += len(out)
        self.misses += len(keys) - len(out)
        return out

    def save(self, records: Mapping[str, dict[str, Any]], fp_key: bytes) -> None:
        db = self._conn() if self.path else None
        if db is None or not records:
            return
        now = int(time.time())
        rows = []
        for k, rec in records.items():
            data = zlib.compress(json.dumps(rec, separators=(",", ":")).encode(), 1)
            rows.append((k, self._mac(fp_key, k, data), data, now))
        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO services VALUES (?, ?, ?, ?)", rows)
            db.execute("DELETE FROM services WHERE used < ?", (now - KEEP_SECONDS,))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            log.warning("desired-state cache not written (%s)", type(exc).__name__)
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def forget(self, keys: Iterable[str]) -> None:
        db = self._conn() if self.path else None
        if db is None:
            return
        try:
            db.executemany("DELETE FROM services WHERE k = ?", [(k,) for k in keys])
        except sqlite3.Error:
            pass

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


# --- records ---------------------------------------------------------------------------
_FIELDS = ("store", "name", "kind", "source", "owner", "fingerprint", "content_type", "line")


def record(
    by_store: Mapping[str, list[DesiredEntry]], warnings: list[str], adjusted: list[list[str]]
) -> dict[str, Any] | None:
    """A service's checked, fingerprinted entries as a record (no value); None when an
    option is not plain data (then the service is simply not cached)."""
    every = [e for es in by_store.values() for e in es]
    # the options all entries share (service, environment, prefix ...) are kept once
    common = dict(every[0].options) if every else {}
    for e in every[1:]:
        common = {k: v for k, v in common.items() if k in e.options and e.options[k] == v}
    rec = {
        "entries": {
            kind: [
                [*(getattr(e, f) for f in _FIELDS), {k: v for k, v in e.options.items() if k not in common}]
                for e in entries
            ]  # fmt: skip
            for kind, entries in by_store.items()
        },
        "common": common,
        "warnings": warnings,
        "adjusted": adjusted,
    }
    try:
        json.dumps(rec)
    except (TypeError, ValueError):
        return None
    if any(not e.fingerprint for es in by_store.values() for e in es):
        return None
    return rec


def entries(rec: Mapping[str, Any]) -> dict[str, list[DesiredEntry]]:
    """The record's entries, with ``value=None``: the spine hydrates one before writing it."""
    out: dict[str, list[DesiredEntry]] = {}
    common = rec["common"]
    for kind, rows in rec["entries"].items():
        # positional, in DesiredEntry's field order (100,000 of these per no-op resync)
        out[kind] = [DesiredEntry(st, name, None, k, src, owner, fp, "", None, ct, {**common, **extra}, line)  # type: ignore[arg-type]
                     for st, name, k, src, owner, fp, ct, line, extra in rows]  # fmt: skip
    return out
