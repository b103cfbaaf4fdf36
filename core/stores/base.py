"""The one interface every store implements (the `BaseProvider` idea of Powertools).

A store knows how to *list* the entries plan needs (`ListQuery`), *put* one entry (create,
update, or restore a soft-deleted one) and *delete* one. Everything else — diffing,
ownership decisions, pruning guards, concurrency and retries — lives once in plan/apply.

A store module owns its naming rules (``core/naming/<store>.py``), its limits and its error
mapping: SDK errors become `StoreError` (``transient=True`` for throttling and 5xx, which
apply retries), and an entry that exists but is not ours becomes `ConflictError` at put time
when the listing could not see it (a race with a hand-made entry).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from core.errors import StoreError
from core.model import DesiredEntry, ListQuery, StoredEntry
from core.naming import rules_for

if TYPE_CHECKING:
    from core.config import SecretManagerConfig
    from core.naming.base import NamingRules


class ConflictError(StoreError):
    """An entry of that name exists and is not marked as ours."""


class Store(ABC):
    """A secret or config store."""

    #: Store kind, as printed in reports (``aws-secrets-manager``).
    kind: ClassVar[str]
    #: How many writes apply may run at once against this store.
    max_concurrency: ClassVar[int] = 8
    #: True when `read_values` is implemented (drift detection on resync).
    can_read_values: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def from_config(cls, config: SecretManagerConfig) -> Store:
        """Build a client from the config's provider section (lazy SDK import here)."""

    @property
    def rules(self) -> NamingRules:
        return rules_for(self.kind)

    def prepare(
        self, entries: list[DesiredEntry], service_entries: dict[str, list[DesiredEntry]]
    ) -> list[DesiredEntry]:
        """Reshape one service's desired entries for this store before naming checks and plan.

        Called once per service and store with that service's entries for this store and,
        in `service_entries`, its entries for every store (keyed by store kind). A store may
        bundle entries (GCP Parameter Manager's one document per service), or add entries
        derived from another store's (App Configuration's Key Vault references). Entries it
        returns must keep `owner`; fingerprints are computed after this step.
        """
        return entries

    @abstractmethod
    def list_entries(self, query: ListQuery) -> list[StoredEntry]:
        """Managed entries of `query.owners` plus any entry named in `query.names`."""

    @abstractmethod
    def put(self, entry: DesiredEntry, current: StoredEntry | None) -> None:
        """Create (`current` None), update, or restore-and-update (`current.deleted`)."""

    @abstractmethod
    def delete(self, current: StoredEntry) -> None:
        """Delete a managed entry (soft delete / recovery window where the store has one)."""

    def mark(self, entry: DesiredEntry, current: StoredEntry) -> None:
        """Add our metadata (ownership, provenance, fingerprint) to `current`, an existing
        entry that already holds `entry.value`, without writing the value or a new version.
        `python -m core migrate` adopts what the Secret Manager Controller wrote this way."""
        raise NotImplementedError(f"{self.kind} cannot mark entries")

    def read_values(self, entries: list[StoredEntry]) -> dict[str, str]:
        """Current values by name, for drift detection. Only called if `can_read_values`."""
        raise NotImplementedError

    def read_secret(self, name: str) -> str:
        """Read one secret by its full store name (e.g. the SOPS age key named in
        `spec.decryption.ageKeySecret`). Secret stores implement it; config stores need not."""
        raise NotImplementedError(f"{self.kind} cannot read secrets by name")

    def load_fingerprint_key(self) -> bytes | None:
        """A stable secret key for value fingerprints, if the store keeps one (local does)."""
        return None

    def close(self) -> None:
        """Release clients/connections."""
