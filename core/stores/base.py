"""The one interface every store implements (the `BaseProvider` idea of Powertools).

A store knows how to *list* the entries plan needs (`ListQuery`), *put* one entry (create,
update, or restore a soft-deleted one) and *delete* one. Everything else — diffing,
ownership decisions, pruning guards, concurrency and retries — lives once in plan/apply.

Template method: the public `list_entries` / `put` / `delete` are written once, here; a store
implements `_list` / `_put` / `_delete` and calls its SDK through `_call`, which counts the
call and turns any SDK exception into a `StoreError` with the store's one `map_error` (one per
cloud, in ``core/stores/_aws.py``, ``_gcp.py``, ``_azure.py``). The error categories are
classes, so no store matches exception text:

* transient (throttling, 5xx, timeouts): `StoreError` with ``transient=True``;
* `NotFoundError`: the entry is not there (a delete of it is already done);
* `ConflictError`: an entry of that name exists and is not ours (or the create raced one);
* `AuthError`: credentials are missing or refused (never retried).

Retries: each cloud's SDK retries throttling and 5xx itself (botocore's adaptive mode,
google-api-core's `Retry`, azure-core's retry policy); such stores set `sdk_retries`, and
apply then does not retry them again. Apply's own backoff is kept only for stores whose client
has none (the embedded SQLite store).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from core.errors import StoreError
from core.model import DesiredEntry, ListQuery, StoredEntry
from core.naming import rules_for

if TYPE_CHECKING:
    from core.config import SecretManagerConfig
    from core.naming.base import NamingRules


T = TypeVar("T")


class ConflictError(StoreError):
    """An entry of that name exists and is not marked as ours (or a create found it taken)."""


class NotFoundError(StoreError):
    """The entry (or the resource a call names) does not exist: the sentinel that replaces
    matching "NotFound" in exception text."""


class AuthError(StoreError):
    """Credentials are missing, expired or refused. The message names what is missing."""


_COUNT_LOCK = threading.Lock()


class Store(ABC):
    """A secret or config store."""

    #: Store kind, as printed in reports (``aws-secrets-manager``).
    kind: ClassVar[str]
    #: How many writes apply may run at once against this store.
    max_concurrency: ClassVar[int] = 8
    #: True when `read_values` is implemented (drift detection on resync).
    can_read_values: ClassVar[bool] = False
    #: True when `put` honours ``entry.options["disabled"]`` (a commented-out secret under
    #: the controller's file semantics) by disabling the entry; others skip such entries.
    can_disable: ClassVar[bool] = False
    #: True when the store's SDK client retries throttling and 5xx itself, so apply must not
    #: wrap a second retry loop around it.
    sdk_retries: ClassVar[bool] = False
    #: SDK calls made, by operation (tests and benchmarks read the counts).
    calls: dict[str, int]

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

    # -- the template: written once, wrapping each store's own steps ---------------------
    def list_entries(self, query: ListQuery) -> list[StoredEntry]:
        """Managed entries of `query.owners` plus any entry named in `query.names`."""
        return self._mapped("listing", None, self._list, query)

    def put(self, entry: DesiredEntry, current: StoredEntry | None) -> None:
        """Create (`current` None), update, or restore-and-update (`current.deleted`)."""
        self._mapped("writing", entry.name, self._put, entry, current)

    def delete(self, current: StoredEntry, *, commit: str | None = None) -> None:
        """Delete a managed entry (soft delete / recovery window where the store has one).

        `commit` is the commit whose plan deleted it: the store records it on what survives
        the deletion (the soft-deleted entry, or a tombstone), so that plan can refuse an
        older commit that would bring the entry back. An entry already gone is success.
        """
        if not current.managed:
            raise StoreError(f"{self.kind}: refusing to delete an entry that is not ours", field=current.name)
        try:
            self._mapped("deleting", current.name, self._delete, current, commit)
        except NotFoundError:
            return

    @abstractmethod
    def _list(self, query: ListQuery) -> list[StoredEntry]:
        """The store's listing (see `list_entries`)."""

    @abstractmethod
    def _put(self, entry: DesiredEntry, current: StoredEntry | None) -> None:
        """The store's write (see `put`)."""

    @abstractmethod
    def _delete(self, current: StoredEntry, commit: str | None) -> None:
        """The store's delete (see `delete`); raising `NotFoundError` means "already gone"."""

    def map_error(self, exc: Exception, *, op: str, name: str | None) -> StoreError:
        """An SDK exception as a `StoreError` of the right category. One per cloud."""
        return StoreError(f"{self.kind}: {op} failed: {type(exc).__name__}", field=name)

    def _mapped(self, op: str, name: str | None, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - every SDK error is mapped, never leaked
            raise self.map_error(exc, op=op, name=name) from None

    def _count(self, op: str, n: int = 1) -> None:
        with _COUNT_LOCK:  # apply and drift reads run calls from several threads
            calls = self.__dict__.setdefault("calls", {})
            calls[op] = calls.get(op, 0) + n

    def _call(self, op: str, name: str | None, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """One SDK call: counted under `op`, its exception mapped by `map_error`."""
        self._count(op)
        try:
            return fn(*args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - every SDK error is mapped, never leaked
            raise self.map_error(exc, op=op, name=name) from None

    def batch(self) -> AbstractContextManager[None]:
        """A context in which apply makes many writes that the store may group.

        Apply runs a store's write phase inside it. A store that pays per commit rather than
        per call (the embedded SQLite store: one disk sync per transaction) groups the writes
        into one transaction here; on exit they are stored, or, if the context raises, none
        of them are. Each write must still succeed or fail on its own. Cloud stores have no
        multi-entry transaction, so the default groups nothing.
        """
        return nullcontext()

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
