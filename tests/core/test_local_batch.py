"""The embedded store's batched writes (issue #15 item 3): apply runs each store's write phase
in one transaction (`LocalStore.batch`), on a WAL database.

What must hold: a batched run stores exactly what per-entry transactions stored; a write that
fails inside a batch undoes only its own rows; an exception or a killed process inside a
batch leaves the last committed state; and the next run converges. Failures are real SQLite
failures (a trigger that aborts an insert) or a real SIGKILL, not mocks of our code.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import nullcontext
from pathlib import Path

import pytest

from core.config import load_config_file
from core.errors import StoreError
from core.model import DesiredEntry
from core.source import LocalDirSource
from core.stores.local import LocalConfigStore, LocalSecretStore
from core.sync import run
from tests.core.conftest import ROOT, write_config

ROWS = (
    "SELECT e.namespace, e.name, e.version, e.managed_by, e.owner, e.fingerprint, e.commit_id, "
    "e.source, e.repo, e.deleted, (SELECT COUNT(*) FROM versions v WHERE v.namespace=e.namespace "
    "AND v.name=e.name) FROM entries e ORDER BY e.namespace, e.name"
)


def rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(ROWS).fetchall()


def values(db: Path) -> dict[str, str]:
    out = {}
    for cls in (LocalSecretStore, LocalConfigStore):
        st = cls(str(db))
        out.update({f"{cls.kind}:{n}": st.get_value(n) for n in st.names()})
        st.close()
    return out


def consistent(db: Path) -> None:
    """Integrity holds and every entry points at a version that exists (no orphan rows)."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        dangling = conn.execute(
            "SELECT COUNT(*) FROM entries e WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE "
            "v.namespace=e.namespace AND v.name=e.name AND v.version=e.version)"
        ).fetchone()[0]
        orphans = conn.execute(
            "SELECT COUNT(*) FROM versions v WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE "
            "v.namespace=e.namespace AND v.name=e.name AND v.version<=e.version)"
        ).fetchone()[0]
    assert (dangling, orphans) == (0, 0)


class UnbatchedSecrets(LocalSecretStore):
    def batch(self):  # type: ignore[no-untyped-def]
        return nullcontext()


class UnbatchedConfigs(LocalConfigStore):
    def batch(self):  # type: ignore[no-untyped-def]
        return nullcontext()


def sync(tmp_path: Path, repo: Path, db: Path, factory=None):  # type: ignore[no-untyped-def]
    cfg = tmp_path / f"{db.stem}.yaml"
    cfg.write_text(write_config(tmp_path).read_text().replace(str(tmp_path / "store.db"), str(db)))
    return run(load_config_file(cfg), LocalDirSource(repo, commit="c1"), apply=True, store_factory=factory)


def test_the_store_runs_in_wal_mode(tmp_path: Path) -> None:
    LocalSecretStore(str(tmp_path / "s.db")).close()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_batched_run_stores_what_per_entry_transactions_store(repo: Path, tmp_path: Path) -> None:
    def unbatched(kind: str, config):  # type: ignore[no-untyped-def]
        cls = UnbatchedSecrets if kind == "local-secrets" else UnbatchedConfigs
        return cls(config.provider_settings.path)

    a = sync(tmp_path, repo, tmp_path / "batched.db")
    b = sync(tmp_path, repo, tmp_path / "unbatched.db", unbatched)
    assert a.errors == b.errors == [] and a.summary == b.summary and a.summary["create"] == 9
    assert [c.done for c in a.changes] == [c.done for c in b.changes] == [True] * 9
    assert rows(tmp_path / "batched.db") == rows(tmp_path / "unbatched.db")
    assert values(tmp_path / "batched.db") == values(tmp_path / "unbatched.db")
    assert len(values(tmp_path / "batched.db")) == 9


def test_a_write_failing_inside_the_batch_undoes_only_its_own_rows(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    LocalSecretStore(str(db)).close()
    with sqlite3.connect(db) as conn:  # the entries row of one name is refused after its version row
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON entries WHEN NEW.name = 'orders/dev/API_TOKEN' "
            "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
    report = sync(tmp_path, repo, db)
    assert [e["name"] for e in report.errors] == ["orders/dev/API_TOKEN"]
    assert "sqlite error" in report.errors[0]["message"]
    stored = values(db)
    assert "local-secrets:orders/dev/API_TOKEN" not in stored
    assert len(stored) == 8  # every other write of the batch was committed
    consistent(db)  # and the refused write left no version row behind

    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER refuse")
    again = sync(tmp_path, repo, db)
    assert again.errors == [] and again.summary["create"] == 1 and again.summary["unchanged"] == 8
    assert values(db)["local-secrets:orders/dev/API_TOKEN"] == "tok-orders-123456"


def entry(name: str, value: str = "v") -> DesiredEntry:
    return DesiredEntry(
        store="local-secrets", name=name, value=value, kind="secret", source="f:k", owner="c/s/dev"
    )


def test_an_exception_leaving_the_batch_rolls_it_back(tmp_path: Path) -> None:
    st = LocalSecretStore(str(tmp_path / "s.db"))
    st.put(entry("kept"), None)
    with pytest.raises(RuntimeError), st.batch():
        st.put(entry("a"), None)
        with st.batch():  # a nested batch joins the outer one
            st.put(entry("b"), None)
        raise RuntimeError("stop")
    assert st.names() == ["kept"]
    with st.batch():
        st.put(entry("a"), None)
    assert st.names() == ["a", "kept"]
    st.close()
    consistent(tmp_path / "s.db")


class UncommittableSecrets(LocalSecretStore):
    """A batch whose commit fails (as a full disk would): its writes are rolled back."""

    def batch(self):  # type: ignore[no-untyped-def]
        from contextlib import contextmanager

        @contextmanager
        def failing():  # type: ignore[no-untyped-def]
            with LocalSecretStore.batch(self):
                yield
                raise StoreError("sqlite error: database or disk is full")

        return failing()


def test_a_batch_that_cannot_commit_reports_its_writes_as_not_done(repo: Path, tmp_path: Path) -> None:
    def factory(kind: str, config):  # type: ignore[no-untyped-def]
        cls = UncommittableSecrets if kind == "local-secrets" else LocalConfigStore
        return cls(config.provider_settings.path)

    report = sync(tmp_path, repo, tmp_path / "store.db", factory)
    assert report.outcome == "failed"
    assert [(e["store"], e.get("name")) for e in report.errors] == [("local-secrets", None)]
    secrets = [c for c in report.changes if c.store == "local-secrets"]
    assert secrets and not any(c.done for c in secrets)
    assert all(c.done for c in report.changes if c.store == "local-configs")
    assert not any(k.startswith("local-secrets:") for k in values(tmp_path / "store.db"))


def test_a_process_killed_inside_a_batch_leaves_the_last_commit_and_the_next_run_converges(
    repo: Path, tmp_path: Path
) -> None:
    db = tmp_path / "store.db"
    cfg = write_config(tmp_path)
    first = run(load_config_file(cfg), LocalDirSource(repo, commit="c1"), apply=True)
    assert first.errors == [] and first.summary["create"] == 9
    before = rows(db)
    # Change every secret and one config, then SIGKILL the syncing process on its third
    # secret write, in the middle of the local-secrets batch.
    edits = {"pa55word": "pa55word2", "tok-orders-123456": "tok-orders-654321", "key-1": "key-2",
             "secret-1": "secret-2", "db/orders": "db/orders2"}  # fmt: skip
    for p in repo.rglob("application.*"):
        text = p.read_text()
        for old, new in edits.items():
            text = text.replace(old, new)
        p.write_text(text)
    child = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from core.config import load_config_file
        from core.source import LocalDirSource
        from core.stores.local import LocalConfigStore, LocalSecretStore
        from core.sync import run

        class Dies(LocalSecretStore):
            n = 0
            def _put(self, entry, current):
                type(self).n += 1
                if type(self).n == 3:
                    os.kill(os.getpid(), signal.SIGKILL)
                super()._put(entry, current)

        def factory(kind, config):
            cls = Dies if kind == "local-secrets" else LocalConfigStore
            return cls(config.provider_settings.path)

        run(load_config_file({str(cfg)!r}), LocalDirSource({str(repo)!r}, commit="c2"), apply=True,
            store_factory=factory)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", child], env=dict(os.environ), capture_output=True, check=False
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    consistent(db)
    after = rows(db)
    # local-configs was applied (and committed) before local-secrets; of the secrets batch,
    # the two writes before the kill were never committed.
    assert [r for r in after if r[0] == "secrets"] == [r for r in before if r[0] == "secrets"]
    assert {r[1]: r[6] for r in after if r[0] == "configs"}["orders/dev/db.url"] == "c2"

    again = run(load_config_file(cfg), LocalDirSource(repo, commit="c2"), apply=True)
    assert again.errors == [] and again.summary["update"] == 4 and again.summary["unchanged"] == 5
    clean_db = tmp_path / "clean.db"
    clean = sync(tmp_path, repo, clean_db)
    assert clean.errors == [] and clean.summary["create"] == 9
    assert values(db) == values(clean_db)
    # each changed entry got exactly one new version: the killed run's writes left nothing behind
    assert [(r[2], r[10]) for r in rows(db) if r[0] == "secrets"] == [(2, 2)] * 4
