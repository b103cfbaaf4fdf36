"""Shared pytest configuration: fixture plugins from tests/support."""

pytest_plugins = [
    "tests.support.git_server",
]


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _desired_cache_per_test(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets its own desired-state cache (core/desired_cache.py): the CLI uses one
    by default, and a cache shared across tests would couple them. Later runs in one test
    still hit it, so the suite exercises the cache wherever a test syncs twice."""
    monkeypatch.setenv("SMF_DESIRED_CACHE", str(tmp_path_factory.mktemp("desired") / "desired.sqlite"))
