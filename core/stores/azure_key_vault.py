"""Azure Key Vault secrets store.

Names come from `core.naming.azure_key_vault` (``0-9a-zA-Z-``, start with a letter, ≤127
characters, case-insensitive; ``_`` and ``.`` in keys become ``-``; clashes refused before any
write). What this module adds:

* **Listing**: one paged ``GET /secrets`` (25 per page) returns names, tags and content types
  without values; ownership, owner, provenance and the value fingerprint are read from the
  tags. Soft-deleted secrets (``GET /deletedsecrets``) are listed only when a desired name is
  not among the live secrets, so a steady-state resync costs one listing.
* **Tags** (Key Vault allows 15 per secret, values ≤256 characters): ``managed-by``,
  ``smf-owner``, ``smf-source``, ``smf-fingerprint``, ``smf-repo`` (user info stripped) and
  ``smf-commit``. Longer values are cut and end with a hash of the whole.
* **Writes**: ``PUT /secrets/{name}`` adds a version; plan calls it only when the fingerprint
  changed, so unchanged values never get a new version. A create first checks that the name
  is really free (``GET /secrets/{name}/versions``, metadata only): an entry made by someone
  else since the listing is a `ConflictError`, never overwritten. Values above 25 KB
  (25,600 bytes) are refused with a clear error before any call.
* **Soft delete**: pruning deletes (soft delete; with ``provider.azure.purgeOnDelete`` it then
  purges). A desired secret sitting in soft-delete is **recovered** and then updated (a new
  version only if its fingerprint differs; otherwise only its tags are refreshed), instead of
  failing with Key Vault's ``409 ObjectIsDeletedButRecoverable``.
* **Deletion ordering** (docs/git-intake.md): before the soft delete, the secret's
  ``smf-commit`` tag is set to the deleting commit (Update Secret, no new version); soft-deleted
  secrets keep their tags and ``GET /deletedsecrets`` returns them, so plan never lets an older
  commit recover it. With ``purgeOnDelete`` nothing survives the purge, so the delete first
  writes a tombstone secret ``smf-tombstone-<sha256 of the name>`` (placeholder value
  ``deleted``, tags: ``managed-by``, owner, deleting commit, and the deleted name as
  ``smf-tombstone``); the one ``GET /secrets`` listing returns it, and a create under the
  name deletes and purges it.
* **Content type**: the entry's, else ``application/json`` for the JSON properties blob and
  ``text/plain`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from core.errors import StoreError
from core.model import (
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    META_COMMIT,
    META_OWNER,
    META_REPO,
    META_TOMBSTONE,
    DesiredEntry,
    ListQuery,
    StoredEntry,
    tombstone_id,
)
from core.options import option
from core.stores._azure import AzureStore, azure_options, clean_repo_url, fit, secret_client, store_error
from core.stores.base import ConflictError, NotFoundError

if TYPE_CHECKING:
    from core.config import SecretManagerConfig

MAX_VALUE_BYTES = 25 * 1024
TAG_VALUE_MAX = 256
DEFAULT_CONTENT_TYPE = "text/plain"
JSON_CONTENT_TYPE = "application/json"
TOMBSTONE_PREFIX = "smf-tombstone-"
TOMBSTONE_VALUE = "deleted"  # Set Secret needs a value: a placeholder, never the entry's


@dataclass
class KeyVaultHandle:
    """What put/delete need back from a listing: the vault's spelling of the name."""

    name: str
    content_type: str | None
    tags: dict[str, str]


@dataclass(frozen=True)
class KeyVaultOptions:
    """``spec.provider.azure.vaultName`` / ``vaultUrl`` / ``purgeOnDelete``."""

    vault_name: str | None = None
    vault_url: str | None = None
    #: Purge pruned secrets after the soft delete (needs the purge permission).
    purge_on_delete: bool = option(False)


class KeyVaultStore(AzureStore):
    kind: ClassVar[str] = "azure-key-vault"
    #: A disabled entry is written as a version with ``enabled: false`` (getting the secret
    #: without a version then fails); enabling it again writes an enabled version.
    can_disable: ClassVar[bool] = True
    max_concurrency: ClassVar[int] = 8
    can_read_values: ClassVar[bool] = True

    def __init__(self, client: Any, *, purge_on_delete: bool = False, polling_interval: float = 1.0) -> None:
        super().__init__(client)
        self.purge_on_delete = purge_on_delete
        self.polling_interval = polling_interval

    @classmethod
    def from_config(cls, config: SecretManagerConfig) -> KeyVaultStore:
        own: KeyVaultOptions = config.options_for(cls.kind)
        return cls(secret_client(azure_options(config)), purge_on_delete=own.purge_on_delete)

    @property
    def vault_url(self) -> str:
        return str(self.client.vault_url).rstrip("/")

    # -- metadata ---------------------------------------------------------------------
    @staticmethod
    def tags_for(entry: DesiredEntry) -> dict[str, str]:
        meta = entry.metadata()
        if META_REPO in meta:
            meta[META_REPO] = clean_repo_url(meta[META_REPO])
        return {k: fit(v, TAG_VALUE_MAX) for k, v in meta.items()}

    @staticmethod
    def content_type_for(entry: DesiredEntry) -> str:
        if entry.content_type:
            return entry.content_type[:255]
        if entry.source.endswith(":*"):  # application.properties as one JSON secret
            return JSON_CONTENT_TYPE
        return DEFAULT_CONTENT_TYPE

    @staticmethod
    def _stored(props: Any, *, deleted: bool) -> StoredEntry:
        tags = dict(props.tags or {})
        handle = KeyVaultHandle(props.name, props.content_type, tags)
        dead = tags.get(META_TOMBSTONE)
        if not deleted and dead and tags.get(MANAGED_BY_KEY) == MANAGED_BY_VALUE:
            if props.name.lower() == _tombstone_name(dead).lower():
                return StoredEntry.tombstone_of(dead, tags.get(META_OWNER), tags.get(META_COMMIT), handle)
        return StoredEntry.from_metadata(props.name, tags, deleted=deleted, handle=handle)

    # -- Store interface ----------------------------------------------------------------
    def _list(self, query: ListQuery) -> list[StoredEntry]:
        names = {n.lower() for n in query.names}
        out: list[StoredEntry] = []
        live: set[str] = set()
        listed = self._call("list_properties_of_secrets", None, self.client.list_properties_of_secrets,
                            max_page_size=25)  # fmt: skip
        for props in listed:
            if getattr(props, "managed", False):
                continue  # backs a Key Vault certificate: never ours
            entry = self._stored(props, deleted=False)
            if not entry.tombstone:
                live.add(props.name.lower())
            if query.wants(entry, case_insensitive=True):
                out.append(entry)
        out = [e for e in out if not (e.tombstone and e.name.lower() in live)]  # a live secret wins
        if names - live:
            deleted_listing = self._call("list_deleted_secrets", None, self.client.list_deleted_secrets,
                                         max_page_size=25)  # fmt: skip
            for deleted in deleted_listing:
                if deleted.name.lower() in names - live:
                    out.append(self._stored(deleted.properties, deleted=True))
        return out

    def _put(self, entry: DesiredEntry, current: StoredEntry | None) -> None:
        size = len(entry.value.encode("utf-8"))
        if size > MAX_VALUE_BYTES:
            raise StoreError(
                f"value is {size} bytes; Azure Key Vault allows at most {MAX_VALUE_BYTES} (25 KB)",
                field=entry.name,
            )
        if current is not None and current.tombstone:
            self._put(entry, None)  # nothing holds the name: a create, then the tombstone goes
            self._drop_tombstone(current)
            return
        name = current.handle.name if current is not None and current.handle else entry.name
        tags = self.tags_for(entry)
        content_type = self.content_type_for(entry)
        if current is not None and current.deleted:
            self._recover(name)
            if current.managed and current.fingerprint == entry.fingerprint:
                # Same value as before the deletion: bring it back, refresh the tags only.
                self._call("update_secret_properties", name, self.client.update_secret_properties,
                           name, tags=tags, content_type=content_type)  # fmt: skip
                return
        elif current is None:
            self._ensure_free(name)
        try:
            self._call("set_secret", name, self.client.set_secret, name, entry.value, tags=tags,
                       content_type=content_type,
                       **({"enabled": False} if entry.options.get("disabled") else {}))  # fmt: skip
        except ConflictError as exc:
            if exc.code == "ObjectIsDeletedButRecoverable":
                raise ConflictError(
                    "a soft-deleted secret of this name exists that was not listed; "
                    "recover or purge it in Key Vault",
                    field=entry.name,
                ) from None
            raise StoreError(exc.message, code=exc.code, field=entry.name) from None

    def mark(self, entry: DesiredEntry, current: StoredEntry) -> None:
        """Tags on the current version (Update Secret properties): no new version."""
        name = current.handle.name if current.handle else entry.name
        self._call("update_secret_properties", entry.name, self.client.update_secret_properties, name,
                   tags=self.tags_for(entry))  # fmt: skip

    def _ensure_free(self, name: str) -> None:
        """Raise ConflictError if a live secret of that name appeared since the listing.

        The name is free when its first page of versions is empty, whichever way the vault
        says so: ``404 SecretNotFound`` (what the REST reference implies) or ``200`` with an
        empty ``value`` list (what the service is reported to answer, and what Microsoft's own
        tooling relies on). Only a listed version means "taken".
        """
        versions = self.client.list_properties_of_secret_versions(name, max_page_size=1)  # lazy
        try:  # the first page is fetched here
            first_page = self._call(
                "list_properties_of_secret_versions", name, next, versions.by_page(), None
            )
        except NotFoundError:
            return
        taken = first_page is not None and next(iter(first_page), None) is not None
        if taken:
            raise ConflictError("exists and is not managed by secret-manager-functions", field=name)

    def _recover(self, name: str) -> None:
        poller = self._call("begin_recover_deleted_secret", name, self.client.begin_recover_deleted_secret,
                            name, _polling_interval=self.polling_interval)  # fmt: skip
        poller.wait()

    def _delete(self, current: StoredEntry, commit: str | None) -> None:
        if current.deleted:
            return
        name = current.handle.name if current.handle else current.name
        if commit and self.purge_on_delete:  # first, so that no failure leaves a delete unrecorded
            self._write_tombstone(current, commit)
        elif commit and current.commit != commit:
            # A soft-deleted secret keeps its tags: they now say which commit deleted it.
            tags = dict(current.handle.tags if current.handle else {})
            tags[META_COMMIT] = fit(commit, TAG_VALUE_MAX)
            self._call("update_secret_properties", name, self.client.update_secret_properties, name,
                       tags=tags)  # fmt: skip
        poller = self._call("begin_delete_secret", name, self.client.begin_delete_secret, name,
                            _polling_interval=self.polling_interval)  # fmt: skip
        if self.purge_on_delete:
            poller.wait()
            self._call("purge_deleted_secret", name, self.client.purge_deleted_secret, name)

    def _write_tombstone(self, current: StoredEntry, commit: str) -> None:
        """Record a purge: a placeholder secret with name, owner and deleting commit in tags."""
        tags = {MANAGED_BY_KEY: MANAGED_BY_VALUE, META_OWNER: fit(current.owner or "", TAG_VALUE_MAX),
                META_COMMIT: fit(commit, TAG_VALUE_MAX), META_TOMBSTONE: current.name}  # fmt: skip
        name = _tombstone_name(current.name)
        self._call("set_secret", name, self.client.set_secret, name, TOMBSTONE_VALUE, tags=tags,
                   content_type=DEFAULT_CONTENT_TYPE)  # fmt: skip

    def _drop_tombstone(self, tombstone: StoredEntry) -> None:
        """Tombstones exist only with purgeOnDelete: delete and purge it the same way."""
        name = tombstone.handle.name
        try:
            poller = self._call("begin_delete_secret", name, self.client.begin_delete_secret, name,
                                _polling_interval=self.polling_interval)  # fmt: skip
            poller.wait()
            self._call("purge_deleted_secret", name, self.client.purge_deleted_secret, name)
        except NotFoundError:
            pass

    def read_values(self, entries: list[StoredEntry]) -> dict[str, str]:
        """Current values for drift detection: one GET per secret (Key Vault has no batch
        read), `max_concurrency` at a time."""
        from concurrent.futures import ThreadPoolExecutor

        def read(entry: StoredEntry) -> tuple[str, str | None]:
            name = entry.handle.name if entry.handle else entry.name
            try:
                return entry.name, self._call("get_secret", name, self.client.get_secret, name).value or ""
            except NotFoundError:
                return entry.name, None

        live = [e for e in entries if not e.deleted]
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_concurrency, len(live)))) as pool:
            results = list(pool.map(read, live))
        return {name: value for name, value in results if value is not None}

    def read_secret(self, name: str) -> str:
        return self._call("get_secret", name, self.client.get_secret, name).value or ""

    # -- first-run fingerprint key (core/fingerprint.py) ------------------------------------
    def read_fingerprint_secret(self, name: str) -> str | None:
        """The OLDEST enabled version is the key: Key Vault has no create-if-absent (every
        PUT adds a version), so racing first runs may each add one; all read the same. A
        missing name answers 404 or an empty list of versions: both mean "not yet"."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            versions = [v for v in self.client.list_properties_of_secret_versions(name) if v.enabled]
            if not versions:
                return None
            oldest = min(versions, key=lambda v: (v.created_on, v.version))
            return self.client.get_secret(name, oldest.version).value
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise store_error(exc, op="reading the fingerprint key", name=name) from None

    def create_fingerprint_secret(self, name: str, value: str) -> str:
        """Add our version, then return the oldest: the winner's if another run was first."""
        from azure.core.exceptions import AzureError

        try:
            self.client.set_secret(name, value, content_type="text/plain",
                                   tags={"smf-role": "fingerprint-key"})  # fmt: skip
        except AzureError as exc:
            raise store_error(exc, op="creating the fingerprint key", name=name) from None
        winner = self.read_fingerprint_secret(name)
        if winner is None:
            raise StoreError("no enabled version after adding one", field=name)
        return winner


def _tombstone_name(name: str) -> str:
    """The secret that records the purge of secret `name` (names are case-insensitive)."""
    return TOMBSTONE_PREFIX + tombstone_id(name.lower())
