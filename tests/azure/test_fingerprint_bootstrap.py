"""First-run fingerprint key on Azure (the Key Vault fake): no SMF_FINGERPRINT_KEY, the app
syncs on its first push, creates exactly one `smf-fingerprint-key` secret and reuses it.

Key Vault has no create-if-absent (every PUT adds a version), so the key is the oldest
enabled version (created, then version id) and racing runs read the same one."""

from __future__ import annotations

import itertools
import types
from typing import Any

import pytest

from core.config import parse_config_text
from core.fingerprint import DEFAULT_KEY_NAME, bootstrap_key, derive
from core.stores import open_store
from tests.azure import test_function_app as e2e
from tests.azure.conftest import azure_config_text
from tests.azure.test_function_app import ZERO, World
from tests.fakes import azure_key_vault as fake_module
from tests.support.fingerprint_race import race

world = e2e.world  # the end-to-end test's fixture, shared


def test_first_push_creates_one_fingerprint_key_and_reuses_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMF_FINGERPRINT_KEY", raising=False)
    sha = world.setup()
    status, doc, _ = world.push(ZERO, sha)
    assert status == 200 and doc["status"] == "ok", doc
    names = world.kv.secret_names()
    assert names.count(DEFAULT_KEY_NAME) == 1 and world.kv.versions(DEFAULT_KEY_NAME) == 1
    assert len(names) == 6  # the age key, four synced secrets, the fingerprint key
    key_text = world.kv.value(DEFAULT_KEY_NAME)
    assert len(key_text) == 44
    status, doc, _ = world.push(ZERO, sha)  # the second run reuses it: nothing written
    summaries = [r["report"]["summary"] for r in doc["results"]]
    assert sum(s["create"] + s["update"] for s in summaries) == 0, summaries
    assert world.kv.versions(DEFAULT_KEY_NAME) == 1 and world.kv.value(DEFAULT_KEY_NAME) == key_text


def _store(key_vault: Any, app_config: Any) -> Any:
    return open_store("azure-key-vault", parse_config_text(azure_config_text(key_vault, app_config))[0])


@pytest.mark.parametrize("missing_versions", ["404", "empty"])
def test_racing_first_runs_converge_on_one_key(
    key_vault: Any, app_config: Any, monkeypatch: pytest.MonkeyPatch, missing_versions: str
) -> None:
    """A missed B's version and adds its own: both runs read the oldest, B's. The fake's clock
    ticks once per write so "oldest" is decided by time, as two writes apart in time are."""
    key_vault.missing_versions = missing_versions
    clock = itertools.count(1_700_000_000)
    monkeypatch.setattr(fake_module, "time", types.SimpleNamespace(time=lambda: next(clock)))
    a, b = _store(key_vault, app_config), _store(key_vault, app_config)
    key_a, key_b = race(a, b, stale_reads=1)
    assert key_a == key_b
    assert key_vault.secret_names() == [DEFAULT_KEY_NAME]
    assert key_vault.versions(DEFAULT_KEY_NAME) == 2  # A's extra version is never read
    assert derive(a.read_fingerprint_secret(DEFAULT_KEY_NAME) or "") == key_a
    assert bootstrap_key(_store(key_vault, app_config), {}) == key_a


def test_a_reader_without_access_is_told_what_to_set(key_vault: Any, app_config: Any) -> None:
    store = _store(key_vault, app_config)
    key_vault.fail_next(403, 403, 403, 403)
    from core.errors import SyncError

    with pytest.raises(SyncError) as err:
        bootstrap_key(store, {})
    text = str(err.value)
    assert "SMF_FINGERPRINT_KEY" in text and DEFAULT_KEY_NAME in text
    assert key_vault.secret_names() == []
