"""Fixtures for the results tests: the core tests' local-store key (autouse there too)."""

from tests.core.conftest import _local_store_key  # noqa: F401 - an autouse fixture, re-used
