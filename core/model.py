"""The few data types every stage shares: a desired entry, a stored entry, a listing query.

Kept free of store and SDK details so plan/apply and every store module agree on one shape.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

MANAGED_BY_KEY = "managed-by"
MANAGED_BY_VALUE = "secret-manager-functions"

#: Metadata keys written on every entry we manage (as tags, labels, annotations or
#: descriptions, whatever the store offers). Stores may rename them to fit their rules
#: but must round-trip them through `StoredEntry`.
META_OWNER = "smf-owner"
META_SOURCE = "smf-source"
META_REPO = "smf-repo"
META_COMMIT = "smf-commit"
META_FINGERPRINT = "smf-fingerprint"
#: Marks a tombstone (see `StoredEntry.tombstone`), on stores that keep one.
META_TOMBSTONE = "smf-tombstone"

Kind = Literal["secret", "config"]


@dataclass
class DesiredEntry:
    """One value as Git says it should be in one store.

    `owner` scopes ownership and pruning: ``{config}/{service}/{environment}``. Only entries
    carrying the same owner are ever pruned on behalf of this service.
    """

    store: str
    name: str
    value: str = field(repr=False)
    kind: Kind
    source: str  # "path:key" in the repo
    owner: str
    fingerprint: str = ""
    repo: str = ""
    commit: str | None = None
    content_type: str | None = None
    #: Store-specific hints (e.g. App Configuration label, SSM type), set by routing/naming.
    options: dict[str, Any] = field(default_factory=dict)
    #: The key's line in its source file, when known: where a check run annotates a conflict.
    line: int | None = None

    def metadata(self) -> dict[str, str]:
        """Ownership, provenance and fingerprint, as plain strings. Never the value."""
        meta = {
            MANAGED_BY_KEY: MANAGED_BY_VALUE,
            META_OWNER: self.owner,
            META_SOURCE: self.source,
            META_FINGERPRINT: self.fingerprint,
        }
        if self.repo:
            meta[META_REPO] = self.repo
        if self.commit:
            meta[META_COMMIT] = self.commit
        return meta


@dataclass
class StoredEntry:
    """What a store holds under one name, as far as plan needs to know."""

    name: str
    managed: bool
    owner: str | None = None
    fingerprint: str | None = None
    commit: str | None = None
    source: str | None = None
    #: Soft-deleted (Key Vault) or scheduled for deletion (Secrets Manager): restorable.
    #: `commit` is then the commit that deleted it (see `tombstone`).
    deleted: bool = False
    #: Store-specific handle (ARN, ETag, version...), passed back to put/delete untouched.
    handle: Any = field(default=None, repr=False)
    #: Another tool's ownership marker (e.g. ``managed-by: terraform``): never adopted.
    foreign_owner: str | None = None
    #: Not an entry but a store's record that one was deleted for good (stores without soft
    #: delete): `deleted` is set, `commit` is the deleting commit, `handle` locates the record.
    #: It holds no value, never counts as a live managed entry, and a create replaces it.
    tombstone: bool = False

    @classmethod
    def tombstone_of(cls, name: str, owner: str | None, commit: str | None, handle: Any) -> StoredEntry:
        """The listing's view of a tombstone: deleted, ours, ordered by the deleting commit."""
        return cls(name=name, managed=True, owner=owner, commit=commit, deleted=True, handle=handle,
                   tombstone=True)  # fmt: skip

    @classmethod
    def from_metadata(
        cls, name: str, meta: Mapping[str, str], *, deleted: bool = False, handle: Any = None
    ) -> StoredEntry:
        """Read back what `DesiredEntry.metadata()` wrote (tags, labels, annotations...).

        Ownership and provenance count only on entries that carry our marker: a hand-made
        entry with look-alike tags is still "not ours".
        """
        managed = meta.get(MANAGED_BY_KEY) == MANAGED_BY_VALUE
        ours = (lambda key: meta.get(key)) if managed else (lambda key: None)
        foreign = None
        if not managed:
            foreign = next((f"{k}={v}" for k, v in meta.items() if _is_owner_marker(k) and v), None)
        return cls(
            name=name,
            managed=managed,
            owner=ours(META_OWNER),
            fingerprint=ours(META_FINGERPRINT),
            commit=ours(META_COMMIT),
            source=ours(META_SOURCE),
            deleted=deleted,
            handle=handle,
            foreign_owner=foreign,
        )


def tombstone_id(name: str) -> str:
    """A store-safe, fixed-length id for the tombstone of entry `name` (any characters)."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:40]


#: Tag/label keys that say which tool owns an entry, compared lower-case with `_` as `-`.
_OWNER_MARKERS = frozenset({MANAGED_BY_KEY, "managedby", "app.kubernetes.io/managed-by", META_OWNER, "owner"})


def _is_owner_marker(key: str) -> bool:
    return key.lower().replace("_", "-") in _OWNER_MARKERS


@dataclass
class ListQuery:
    """What plan needs from one store, answered in as few calls as the store allows.

    A store must return every *managed* entry whose owner is in `owners`, and every entry
    (managed or not, soft-deleted included) whose name is in `names`.
    """

    owners: set[str]
    names: set[str]
    #: Name prefixes that cover `names` (per service), for stores that list by prefix/path.
    prefixes: set[str] = field(default_factory=set)
    #: On a full resync: also every managed entry whose owner starts with one of these
    #: (``"{config}/"``), so entries of a service removed from Git can be pruned. A store
    #: may return more managed entries than asked; plan filters by owner.
    owner_prefixes: set[str] = field(default_factory=set)

    @cached_property
    def _folded_names(self) -> frozenset[str]:
        return frozenset(n.lower() for n in self.names)

    def wants(self, entry: StoredEntry, *, case_insensitive: bool = False) -> bool:
        """Whether a listed entry answers this query (named, or managed by an owner asked for)."""
        if entry.name in self.names or (case_insensitive and entry.name.lower() in self._folded_names):
            return True
        owner = entry.owner
        if not entry.managed or owner is None:
            return False
        return owner in self.owners or any(owner.startswith(p) for p in self.owner_prefixes)
