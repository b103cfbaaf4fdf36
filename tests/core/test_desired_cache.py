"""The desired-state cache (core/desired_cache.py) changes how much a run reads, never what
it plans or writes: every test compares a cached run with the same run without the cache."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core import sync
from core.config import load_config_file
from core.desired_cache import DesiredCache
from core.errors import ParseError
from core.source import LocalDirSource
from core.stores.local import LocalConfigStore, LocalSecretStore
from core.sync import run
from tests.core.conftest import SECRETS, SVC, write_config

ORDERS = SVC.format(service="orders")


class CountingSource(LocalDirSource):
    """Counts the files read (a cache hit reads none of its service's files)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads: list[str] = []

    def read(self, path: str) -> bytes:
        self.reads.append(path)
        return super().read(path)


def view(report) -> tuple:  # type: ignore[no-untyped-def]
    changes = sorted((c.action, c.store, c.name, c.source, c.owner, c.reason) for c in report.changes)
    return changes, sorted(report.warnings), [e.get("message") for e in report.errors]


@pytest.fixture
def setup(repo: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    configs = load_config_file(str(write_config(tmp_path)))
    cache = DesiredCache(str(tmp_path / "cache" / "desired.sqlite"))
    return repo, tmp_path, configs, cache


def test_a_hit_reads_nothing_and_plans_the_same(setup) -> None:  # type: ignore[no-untyped-def]
    repo, _, configs, cache = setup
    first = run(configs, LocalDirSource(repo), apply=True, cache=cache)
    assert first.summary["create"] == 9 and cache.hits == 0 and cache.misses == 2
    src = CountingSource(repo)
    cached = run(configs, src, apply=False, cache=cache)
    # blob ids of a directory are content hashes: the files are read for that, never parsed
    uncached = run(configs, LocalDirSource(repo), apply=False)
    assert cache.hits == 2
    assert view(cached) == view(uncached)
    assert cached.summary["unchanged"] == 9 and sum(cached.summary.values()) == 9


def test_a_git_source_reads_no_blob_on_a_hit(setup, git_repo_factory=None) -> None:  # type: ignore[no-untyped-def]
    """With a Git source the blob ids come from the trees: a hit fetches and reads nothing."""
    repo, tmp_path, configs, cache = setup
    import subprocess

    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
                   check=True)  # fmt: skip
    from core.cli import resolve_source

    run(configs, resolve_source(str(repo), "main", configs), apply=True, cache=cache)
    src = resolve_source(str(repo), "main", configs)
    reads: list[str] = []
    real = src.read
    src.read = lambda p: reads.append(p) or real(p)  # type: ignore[method-assign]
    again = run(configs, src, apply=True, cache=cache)
    assert cache.hits == 2 and reads == []
    assert again.summary.get("unchanged") == 9 and not again.errors


def test_an_entry_deleted_by_hand_is_recreated_with_gits_value(setup) -> None:  # type: ignore[no-untyped-def]
    repo, tmp_path, configs, cache = setup
    run(configs, LocalDirSource(repo), apply=True, cache=cache)
    db = sqlite3.connect(tmp_path / "store.db")
    with db:
        for table in ("entries", "versions"):
            db.execute(f"DELETE FROM {table} WHERE name = 'orders/dev/DB_PASSWORD'")  # noqa: S608
        db.execute("UPDATE entries SET fingerprint = 'edited' WHERE name = 'orders/dev/db.url'")
    db.close()
    plan_uncached = run(configs, LocalDirSource(repo), apply=False)
    again = run(configs, LocalDirSource(repo), apply=True, cache=cache)
    assert cache.hits == 2
    assert view(again)[0] == view(plan_uncached)[0]
    assert {(c.action, c.name) for c in again.changes if c.action != "unchanged"} == {
        ("create", "orders/dev/DB_PASSWORD"),
        ("update", "orders/dev/db.url"),
    }
    assert (
        LocalSecretStore(str(tmp_path / "store.db")).get_value("orders/dev/DB_PASSWORD")
        == "orders db pa55word"
    )
    assert (
        LocalConfigStore(str(tmp_path / "store.db")).get_value("orders/dev/db.url")
        == "jdbc:postgresql://db/orders"
    )
    assert run(configs, LocalDirSource(repo), apply=False, cache=cache).summary["unchanged"] == 9


def test_a_changed_file_is_a_miss_for_its_service_only(setup) -> None:  # type: ignore[no-untyped-def]
    repo, tmp_path, configs, cache = setup
    run(configs, LocalDirSource(repo), apply=True, cache=cache)
    path = repo / ORDERS / "application.properties"
    path.write_text(path.read_text().replace("8080", "9090"))
    src = CountingSource(repo)
    again = run(configs, src, apply=True, cache=cache)
    assert cache.hits == 1
    assert [(c.action, c.name) for c in again.changes if c.action != "unchanged"] == [
        ("update", "orders/dev/server.port")
    ]
    assert LocalConfigStore(str(tmp_path / "store.db")).get_value("orders/dev/server.port") == "9090"


def test_a_changed_config_or_key_misses(setup, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    repo, tmp_path, configs, cache = setup
    run(configs, LocalDirSource(repo), apply=True, cache=cache)
    other = load_config_file(str(write_config(tmp_path, extra_spec="  sync:\n    adopt: true\n")))
    run(other, LocalDirSource(repo), apply=False, cache=cache)
    assert cache.hits == 0
    monkeypatch.setenv("SMF_FINGERPRINT_KEY", "another-key")
    run(configs, LocalDirSource(repo), apply=False, cache=cache)
    assert cache.hits == 0


def test_a_forged_row_is_ignored(setup) -> None:  # type: ignore[no-untyped-def]
    """A record claiming a service has no entries would prune them all: rows carry an HMAC
    under the fingerprint key, so one written without it is a miss."""
    repo, tmp_path, configs, cache = setup
    run(configs, LocalDirSource(repo), apply=True, cache=cache)
    import json
    import zlib

    db = sqlite3.connect(cache.path)
    with db:
        for (k,) in db.execute("SELECT k FROM services").fetchall():
            forged = zlib.compress(json.dumps({"entries": {}, "warnings": [], "adjusted": []}).encode())
            db.execute("UPDATE services SET data = ? WHERE k = ?", (forged, k))
    db.close()
    again = run(configs, LocalDirSource(repo), apply=True, prune=True, cache=cache)
    assert cache.hits == 0 and again.summary["unchanged"] == 9 and sum(again.summary.values()) == 9


def test_no_value_in_the_cache_file(setup) -> None:  # type: ignore[no-untyped-def]
    repo, _, configs, cache = setup
    run(configs, LocalDirSource(repo), apply=True, cache=cache)
    cache.close()
    raw = b"".join(p.read_bytes() for p in Path(cache.path).parent.iterdir())
    db = sqlite3.connect(cache.path)
    import zlib

    raw += b"".join(zlib.decompress(d) for (d,) in db.execute("SELECT data FROM services"))
    db.close()
    for secret in SECRETS + ["jdbc:postgresql://db/orders"]:
        assert secret.encode() not in raw


def test_drift_runs_read_everything(setup) -> None:  # type: ignore[no-untyped-def]
    repo, _, configs, cache = setup
    run(configs, LocalDirSource(repo), apply=True, cache=cache)
    run(configs, LocalDirSource(repo), apply=False, drift=True, cache=cache)
    assert cache.hits == 0


def test_warnings_are_replayed(setup) -> None:  # type: ignore[no-untyped-def]
    repo, _, configs, cache = setup  # the secrets files are plaintext: one warning each
    first = run(configs, LocalDirSource(repo), apply=True, cache=cache)
    again = run(configs, LocalDirSource(repo), apply=False, cache=cache)
    assert cache.hits == 2 and sorted(again.warnings) == sorted(first.warnings) and first.warnings


def test_a_service_that_fails_to_read_again_fails_alone(setup, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Hydration reads the service again; when that fails (a key revoked since), the service
    fails as it would have without the cache: an error, nothing written, nothing pruned."""
    repo, tmp_path, configs, cache = setup
    run(configs, LocalDirSource(repo), apply=True, cache=cache)
    db = sqlite3.connect(tmp_path / "store.db")
    with db:
        for table in ("entries", "versions"):
            db.execute(
                f"DELETE FROM {table} WHERE name LIKE 'orders/dev/%' AND name != 'orders/dev/API_TOKEN'"
            )  # noqa: S608
            db.execute(f"DELETE FROM {table} WHERE name = 'payments/dev/payments.retries'")  # noqa: S608
    db.close()
    real = sync._collect

    def failing(config, svc, *a, **kw):  # type: ignore[no-untyped-def]
        if svc.service == "orders":
            raise ParseError("cannot decrypt now", path=f"{ORDERS}/application.secrets.env")
        return real(config, svc, *a, **kw)

    monkeypatch.setattr(sync, "_collect", failing)
    again = run(configs, LocalDirSource(repo), apply=True, prune=True, cache=cache)
    assert [e["service"] for e in again.errors] == ["orders"]
    assert {(c.action, c.name) for c in again.changes if c.action != "unchanged"} == {
        ("create", "payments/dev/payments.retries")
    }
    assert not [c for c in again.changes if c.owner.endswith("/orders/dev")]
    assert (
        LocalSecretStore(str(tmp_path / "store.db")).get_value("orders/dev/API_TOKEN") == "tok-orders-123456"
    )
    monkeypatch.setattr(sync, "_collect", real)
    fixed = run(configs, LocalDirSource(repo), apply=True, cache=cache)
    assert not fixed.errors and fixed.summary.get("create") == 4


def test_the_cli_uses_the_cache_and_no_cache_reads_all(setup, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    repo, tmp_path, _, _ = setup
    from core.cli import main

    seen: list[object] = []
    real = sync.run

    def spy(*a, **kw):  # type: ignore[no-untyped-def]
        seen.append(kw.get("cache"))
        return real(*a, **kw)

    monkeypatch.setattr(sync, "run", spy)
    cfg = str(tmp_path / "config.yaml")
    assert main(["apply", "--config", cfg, "--source", str(repo), "--quiet"]) == 0
    assert main(["plan", "--config", cfg, "--source", str(repo), "--quiet", "--exit-code"]) == 0
    assert main(["plan", "--config", cfg, "--source", str(repo), "--quiet", "--no-cache"]) == 0
    capsys.readouterr()
    assert seen[0] is not None and seen[1].hits == 2 and seen[2] is None  # type: ignore[union-attr]


def test_a_record_round_trips_every_field_but_the_value() -> None:
    """`entries` builds DesiredEntry positionally (speed): a field added or reordered in
    core/model.py must show here."""
    from dataclasses import fields

    from core.desired_cache import entries, record
    from core.model import DesiredEntry

    base = {"service": "s", "environment": "dev", "prefix": "p", "naming": "functions"}
    made = [
        DesiredEntry(
            "local-secrets",
            f"s/dev/K{i}",
            f"v{i}",
            "secret",
            f"f:K{i}",
            "c/s/dev",
            fingerprint=f"fp{i}",
            content_type="text/plain" if i else None,
            options={**base, "key": f"K{i}", **({"disabled": True} if i == 1 else {})},
            line=i + 1,
        )  # fmt: skip
        for i in range(3)
    ]
    rec = record({"local-secrets": made}, ["w"], [])
    assert rec is not None and rec["common"] == base
    back = entries(rec)["local-secrets"]
    skip = {"value", "repo", "commit"}  # set by the spine on every entry, cached or not
    names = [f.name for f in fields(DesiredEntry)]
    assert names[:12] == ["store", "name", "value", "kind", "source", "owner", "fingerprint", "repo", "commit",
                          "content_type", "options", "line"]  # fmt: skip
    for a, b in zip(made, back, strict=True):
        assert b.value is None
        assert {n: getattr(a, n) for n in names if n not in skip} == {
            n: getattr(b, n) for n in names if n not in skip
        }
