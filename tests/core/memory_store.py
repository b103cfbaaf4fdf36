"""A store kind that lives only in the tests: proof that one module plus one registry entry
is all a new kind needs (see docs/adding-a-store.md and tests/core/test_registry.py).

Entries are kept in a class-level dict, so a test can open the store twice and see what the
first run wrote, as with a real cloud store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from core.errors import StoreError
from core.model import DesiredEntry, ListQuery, StoredEntry
from core.naming.base import NamingRules
from core.options import option
from core.stores.base import ConflictError, Store

if TYPE_CHECKING:
    from core.config import SecretManagerConfig

KIND = "memory-configs"

RULES = NamingRules(
    store=KIND,
    default_template="{prefix}.{environment}.{key}{suffix}",
    allowed=r"A-Za-z0-9._-",
    max_length=200,
    max_value_bytes=4096,
)


@dataclass(frozen=True)
class MemoryOptions:
    """``spec.provider.local.memory``: the kind's own options, declared once, here."""

    #: Routes configs to this kind instead of local-configs.
    enabled: bool = False
    max_entries: int = option(100)

    def problems(self, provider: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [("maxEntries", "must be at least 1")] if self.max_entries < 1 else []


class MemoryStore(Store):
    kind: ClassVar[str] = KIND
    #: name → (value, metadata); shared by every instance.
    entries: ClassVar[dict[str, tuple[str, dict[str, str]]]] = {}
    writes: ClassVar[int] = 0

    def __init__(self, max_entries: int = MemoryOptions.max_entries) -> None:
        self.max_entries = max_entries

    @classmethod
    def from_config(cls, config: SecretManagerConfig) -> MemoryStore:
        own: MemoryOptions = config.options_for(cls.kind)
        return cls(own.max_entries)

    def _list(self, query: ListQuery) -> list[StoredEntry]:
        found = [StoredEntry.from_metadata(name, meta) for name, (_, meta) in self.entries.items()]
        return [e for e in found if query.wants(e)]

    def _put(self, entry: DesiredEntry, current: StoredEntry | None) -> None:
        if current is None and entry.name in self.entries:
            raise ConflictError("appeared since the listing", field=entry.name)
        if current is None and len(self.entries) >= self.max_entries:
            raise StoreError(f"{KIND} holds at most {self.max_entries} entries", field=entry.name)
        type(self).writes += 1
        self.entries[entry.name] = (entry.value, entry.metadata())

    def _delete(self, current: StoredEntry, commit: str | None) -> None:
        self.entries.pop(current.name, None)
