"""core.fingerprint's key resolution, on an in-memory store: order of the sources, the
bootstrap's create-if-absent, dry runs that never create, and the message when the key
cannot be read."""

from __future__ import annotations

import pytest

from core.errors import StoreError, SyncError
from core.fingerprint import DEFAULT_KEY_NAME, derive, resolve_key


class MemorySecrets:
    kind = "memory-secrets"

    def __init__(self, deny: bool = False) -> None:
        self.values: dict[str, str] = {}
        self.deny = deny
        self.creates = 0

    def load_fingerprint_key(self) -> bytes | None:
        return None

    def read_fingerprint_secret(self, name: str) -> str | None:
        if self.deny:
            raise StoreError("GetSecretValue failed: AccessDeniedException (HTTP 400)")
        return self.values.get(name)

    def create_fingerprint_secret(self, name: str, value: str) -> str:
        self.creates += 1
        return self.values.setdefault(name, value)


def test_env_wins_then_the_stored_key_then_the_bootstrap() -> None:
    store = MemorySecrets()
    assert resolve_key(store, {"SMF_FINGERPRINT_KEY": "abc"}) == derive("abc")
    assert store.creates == 0
    key = resolve_key(store, {})
    assert store.creates == 1 and key == derive(store.values[DEFAULT_KEY_NAME])
    assert resolve_key(store, {}) == key and store.creates == 1
    # the stored text set as SMF_FINGERPRINT_KEY gives the same key (a local CLI run)
    assert resolve_key(None, {"SMF_FINGERPRINT_KEY": store.values[DEFAULT_KEY_NAME]}) == key


def test_a_dry_run_never_creates_the_key() -> None:
    store = MemorySecrets()
    assert len(resolve_key(store, {}, create=False)) == 32
    assert store.values == {} and store.creates == 0


def test_unreadable_key_says_what_to_set_and_names_no_value() -> None:
    with pytest.raises(SyncError) as err:
        resolve_key(MemorySecrets(deny=True), {"SMF_FINGERPRINT_KEY_NAME": "team/fp"})
    text = str(err.value)
    assert "'team/fp'" in text and "SMF_FINGERPRINT_KEY" in text and "AccessDenied" in text


def test_a_store_without_a_secret_store_asks_for_the_env_var() -> None:
    class ConfigOnly:
        kind = "config-only"

        def load_fingerprint_key(self) -> None:
            return None

    with pytest.raises(SyncError, match="set SMF_FINGERPRINT_KEY"):
        resolve_key(ConfigOnly(), {})
