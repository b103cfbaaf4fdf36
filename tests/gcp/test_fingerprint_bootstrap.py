"""First-run fingerprint key on GCP (drongo): no SMF_FINGERPRINT_KEY, the function syncs on
its first push, creates exactly one `smf-fingerprint-key` secret and reuses it; racing first
runs read the same (oldest) version."""

from __future__ import annotations

from typing import Any

import pytest

from core.fingerprint import DEFAULT_KEY_NAME, bootstrap_key, derive
from core.stores.gcp_secret_manager import SecretManagerStore
from tests.gcp import test_function_e2e as e2e
from tests.gcp.conftest import PROJECT
from tests.gcp.test_function_e2e import SECRET_VALUES, ZERO, Harness, config_yaml, repo_files
from tests.support.fingerprint_race import race

age_key, function_env = e2e.age_key, e2e.function_env  # the end-to-end test's fixtures, shared


def _secret_ids(store: SecretManagerStore) -> list[str]:
    return sorted(s.name.rsplit("/", 1)[-1] for s in store.client.list_secrets(parent=store.parent))


def test_first_push_creates_one_fingerprint_key_and_reuses_it(
    function_env: Any,
    make_repo: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    age_key: Any,
) -> None:
    monkeypatch.delenv("SMF_FINGERPRINT_KEY", raising=False)
    repo = make_repo(repo_files(tmp_path, age_key[1], SECRET_VALUES))
    monkeypatch.setenv("SMF_CONFIG_YAML", config_yaml(repo.url, "sm"))
    h = Harness("sm", repo, None)
    status, report = h.push(ZERO, repo.sha)
    assert status == 200, report
    [result] = report["results"]
    assert result["report"]["summary"]["create"] == 6 and result["report"]["errors"] == []
    store = SecretManagerStore(PROJECT)
    assert _secret_ids(store).count(DEFAULT_KEY_NAME) == 1
    assert len(store.version_states(DEFAULT_KEY_NAME)) == 1
    key_text = store.read_fingerprint_secret(DEFAULT_KEY_NAME)
    assert key_text and len(key_text) == 44
    status, report = h.push(ZERO, repo.sha)  # the second run reuses it: nothing to write
    summary = report["results"][0]["report"]["summary"]
    assert summary["unchanged"] == 6 and summary["create"] == summary["update"] == 0
    assert store.version_states(DEFAULT_KEY_NAME) == {1: "ENABLED"}


@pytest.mark.parametrize("stale_reads", [1, 2])
def test_racing_first_runs_converge_on_one_key(gcp_env: Any, stale_reads: int) -> None:
    """1: A's create meets AlreadyExists after B finished. 2: A also missed B's version and
    adds its own (version 2): both read version 1."""
    a, b = SecretManagerStore(PROJECT), SecretManagerStore(PROJECT)
    key_a, key_b = race(a, b, stale_reads=stale_reads)
    assert key_a == key_b
    assert _secret_ids(a) == [DEFAULT_KEY_NAME]
    assert len(a.version_states(DEFAULT_KEY_NAME)) == stale_reads  # 2: one extra, unused version
    assert derive(a.read_fingerprint_secret(DEFAULT_KEY_NAME) or "") == key_a
    assert bootstrap_key(SecretManagerStore(PROJECT), {}) == key_a  # every later run agrees
