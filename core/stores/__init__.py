"""Stores: one module per cloud store behind `core.stores.base.Store`.

`open_store(kind, config)` imports the store's module (and so its SDK) only when asked; the
kind → class mapping is declared in `core.registry`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.config import SecretManagerConfig
    from core.stores.base import Store


def open_store(kind: str, config: SecretManagerConfig) -> Store:
    """Build the store for `kind` from the config's provider section."""
    from core import registry

    return registry.open_store(kind, config)
