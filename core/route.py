"""Routing: which store each parsed value goes to (the seed's tables).

Which kind fills the secret and the config slot of each provider, and under what condition,
is declared once in `core.registry`; this table is the result:

| file                          | aws                 | gcp                          | azure             | local         |
|-------------------------------|---------------------|------------------------------|-------------------|---------------|
| application.secrets.*         | Secrets Manager     | Secret Manager               | Key Vault         | local-secrets |
| application.properties,       | Parameter Store     | Secret Manager, or Parameter | App Configuration | local-configs |
| application.config.*          |                     | Manager (configs.store)      |                   |               |

Config files go to the config store only with ``configs.enabled: true``. With the default
``false`` they go to the secret store, as the controller did: ``application.properties`` as
**one JSON secret** under the key ``properties``; other config files key by key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from core import registry
from core.config import SECRET_FILES, SecretManagerConfig
from core.parsers import ParsedItem

PROPERTIES_BLOB_KEY = "properties"


@dataclass
class RoutedItem:
    store: str
    kind: str  # "secret" | "config"
    key: str
    value: str = field(repr=False)
    source: str  # "path:key"
    #: The key's line in its file (None when the parser cannot tell): for annotations.
    line: int | None = None
    #: A commented-out ``#KEY=value`` secret (the controller's file semantics).
    disabled: bool = False


def is_secret_file(path: str) -> bool:
    return path.rsplit("/", 1)[-1] in SECRET_FILES


def secret_store(config: SecretManagerConfig) -> str:
    """The kind id of the config's secret store (declared in `core.registry`)."""
    return registry.store_for(config, "secret")


def config_store(config: SecretManagerConfig) -> str:
    """The kind id of the config's config store (declared in `core.registry`)."""
    return registry.store_for(config, "config")


def route(config: SecretManagerConfig, path: str, items: list[ParsedItem]) -> list[RoutedItem]:
    """Routed items of one parsed file."""
    if is_secret_file(path):
        store = secret_store(config)
        return [
            RoutedItem(store, "secret", i.key, i.value, f"{path}:{i.key}", i.line, disabled=i.disabled)
            for i in items
        ]
    if config.configs.enabled:
        store = config_store(config)
        return [RoutedItem(store, "config", i.key, i.value, f"{path}:{i.key}", i.line) for i in items]
    store = secret_store(config)
    if path.endswith(".properties"):
        if not items:
            return []
        # The controller wrote serde_json's compact form; keep it so an adopted blob is equal.
        compact = (",", ":") if config.naming == "controller" else None
        blob = json.dumps({i.key: i.value for i in items}, ensure_ascii=False, separators=compact)
        return [RoutedItem(store, "config", PROPERTIES_BLOB_KEY, blob, f"{path}:*")]
    return [RoutedItem(store, "config", i.key, i.value, f"{path}:{i.key}", i.line) for i in items]
