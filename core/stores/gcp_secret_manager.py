"""GCP Secret Manager: one secret per key, a new version only when the value changed.

Options (``spec.provider.gcp``): ``projectId``; ``location`` (regional secrets, served by
``secretmanager.{location}.rep.googleapis.com``; without it secrets are global);
``replication.automatic`` (default) or ``replication.locations`` (user-managed replicas, global
secrets only); ``versionHygiene.keepVersions`` (default 3) and ``versionHygiene.action``
(``disable`` default, ``destroy`` or ``none``): after each new version, enabled versions older
than the newest `keepVersions` are disabled (restorable, still billed as active) or destroyed
(not billed, gone).

Metadata: labels carry ownership (``managed-by``, ``smf-owner``), the fingerprint, provenance
and readable ``smf-environment``/``smf-service`` labels (see `core.stores._gcp` for the label
encoding); annotations carry the same provenance in readable form. Reads prefer annotations
and fall back to labels (some emulators drop annotations).

Listing is one paged ``ListSecrets`` over the project (page size 25,000, filtered client-side:
the emulator ignores filters), so plan costs one call per 25,000 secrets.

Deletion ordering: Secret Manager deletes for good, so a delete first writes a version-less
``smf-tombstone-<sha256>`` secret recording owner and deleting commit (`core.stores._gcp`);
the same listing returns it, and a create under the name deletes it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from core.errors import StoreError
from core.model import (
    META_SOURCE,
    DesiredEntry,
    ListQuery,
    StoredEntry,
)
from core.options import option
from core.stores import _gcp
from core.stores.base import ConflictError, NotFoundError

if TYPE_CHECKING:
    from core.config import SecretManagerConfig

_VERSION_NO = re.compile(r"/versions/(\d+)$")
#: Secret Manager annotation limit: 16 KiB for keys and values together.
_MAX_ANNOTATION_BYTES = 16 * 1024


@dataclass(frozen=True)
class Replication:
    automatic: bool = True
    #: User-managed replicas (global secrets only).
    locations: list[str] = option([])


@dataclass(frozen=True)
class VersionHygiene:
    #: Enabled versions kept per secret (the newest ones).
    keep_versions: int = 3
    action: str = option("disable", enum=("disable", "destroy", "none"))


@dataclass(frozen=True)
class SecretManagerOptions:
    """``spec.provider.gcp.replication`` and ``versionHygiene``."""

    replication: Replication = option(Replication)
    version_hygiene: VersionHygiene = option(VersionHygiene)

    def problems(self, provider: Mapping[str, Any]) -> list[tuple[str, str]]:
        out = []
        if provider.get("location") and self.replication.locations:
            out.append(("replication.locations", "applies to global secrets only; remove it or location"))
        if self.version_hygiene.keep_versions < 1:
            out.append(("versionHygiene.keepVersions", "must be at least 1"))
        return out


class SecretManagerStore(_gcp.GcpStore):
    kind: ClassVar[str] = "gcp-secret-manager"
    #: AddSecretVersion is limited per project to 600 writes/min: 8 in flight stays below it.
    max_concurrency: ClassVar[int] = 8
    can_read_values: ClassVar[bool] = True
    #: A disabled entry: its value is written, then every enabled version is disabled
    #: (`latest` then fails to resolve); enabling it again adds an enabled version.
    can_disable: ClassVar[bool] = True

    def __init__(
        self,
        project: str,
        *,
        location: str | None = None,
        replication_locations: list[str] | None = None,
        keep_versions: int = VersionHygiene.keep_versions,
        hygiene: str = VersionHygiene.action,
        client: Any = None,
    ) -> None:
        super().__init__(client)
        self.project = project
        self.location = location if location and location != "global" else None
        self.replication_locations = list(replication_locations or [])
        self.keep_versions = max(1, int(keep_versions))
        self.hygiene = hygiene

    @classmethod
    def from_config(cls, config: SecretManagerConfig) -> SecretManagerStore:
        gcp = config.provider_settings
        own: SecretManagerOptions = config.options_for(cls.kind)
        return cls(
            gcp.project_id,
            location=gcp.location,
            replication_locations=own.replication.locations,
            keep_versions=own.version_hygiene.keep_versions,
            hygiene=own.version_hygiene.action,
        )

    # -- plumbing ----------------------------------------------------------------------
    def _make_client(self) -> Any:
        return _gcp.secret_manager_client(self.location)

    @property
    def parent(self) -> str:
        if self.location:
            return f"projects/{self.project}/locations/{self.location}"
        return f"projects/{self.project}"

    def secret_path(self, name: str) -> str:
        return f"{self.parent}/secrets/{name}"

    def _replication(self) -> dict[str, Any] | None:
        if self.location:
            return None  # regional secrets have no replication policy
        if self.replication_locations:
            return {"user_managed": {"replicas": [{"location": loc} for loc in self.replication_locations]}}
        return {"automatic": {}}

    # -- Store -------------------------------------------------------------------------
    def _list(self, query: ListQuery) -> list[StoredEntry]:
        # No server-side filter: unmanaged entries named in the query must be seen too (as
        # conflicts), and one page holds 25,000 secrets, so filtering here costs nothing.
        request = {"parent": self.parent, "page_size": 25000}
        return _gcp.live_first(self._list_wanted("list_secrets", request, "secrets", self._stored, query))

    def _stored(self, secret: Any) -> StoredEntry:
        name = secret.name.rsplit("/", 1)[-1]
        labels = dict(secret.labels)
        meta = _gcp.decode_labels(labels)
        meta.update({k: v for k, v in dict(secret.annotations).items() if k.startswith("smf-")})
        tomb = _gcp.tombstone_entry(name, meta, {"path": secret.name, "labels": labels})
        if tomb is not None:
            return tomb
        # Secret Manager has no soft delete
        return StoredEntry.from_metadata(
            name, meta, handle={"path": secret.name, "labels": labels, "etag": secret.etag}
        )

    def _put(self, entry: DesiredEntry, current: StoredEntry | None) -> None:
        if current is not None and current.tombstone:
            self._put(entry, None)  # nothing holds the name: a create, then the tombstone goes
            self._drop_tombstone(current)
            return
        data = entry.value.encode("utf-8")
        meta = entry.metadata()
        labels = _gcp.entry_labels(meta, entry.options)
        annotations = self._annotations(meta)
        path = self.secret_path(entry.name)
        if current is None:
            secret: dict[str, Any] = {"labels": _gcp.merge_labels({}, labels), "annotations": annotations}
            replication = self._replication()
            if replication is not None:
                secret["replication"] = replication
            try:
                self._rpc(
                    "create_secret", entry.name,
                    request={"parent": self.parent, "secret_id": entry.name, "secret": secret},
                )  # fmt: skip
            except ConflictError:  # AlreadyExists
                existing = self._stored(self._rpc("get_secret", entry.name, name=path))
                if not (existing.managed and existing.owner == entry.owner):
                    raise ConflictError(
                        "a secret of this name exists and is not managed by this config",
                        field=entry.name,
                    ) from None
                current = existing  # our own earlier, interrupted write: finish it
            else:
                try:
                    self._add_version(entry.name, path, data)
                except StoreError:
                    self._rollback_create(path)  # a secret without its version would carry
                    raise  # the fingerprint of a value it does not hold
                if entry.options.get("disabled"):
                    self._disable_versions(entry.name, path)
                return
        if current.fingerprint is None and self._latest_equals(path, data):
            pass  # adopting an entry that already holds this value: no new version
        else:
            self._add_version(entry.name, path, data)
        if entry.options.get("disabled"):
            self._disable_versions(entry.name, path)
        old_labels = (current.handle or {}).get("labels", {})
        self._rpc(
            "update_secret", entry.name,
            secret={"name": path, "labels": _gcp.merge_labels(old_labels, labels),
                    "annotations": annotations},
            update_mask={"paths": ["labels", "annotations"]},
        )  # fmt: skip

    def mark(self, entry: DesiredEntry, current: StoredEntry) -> None:
        """Add our metadata to an entry that already holds `entry.value`: no new version."""
        meta = entry.metadata()
        old_labels = (current.handle or {}).get("labels", {})
        labels = _gcp.merge_labels(old_labels, _gcp.entry_labels(meta, entry.options))
        self._rpc(
            "update_secret", entry.name,
            secret={"name": self.secret_path(entry.name), "labels": labels, "annotations": self._annotations(meta)},
            update_mask={"paths": ["labels", "annotations"]},
        )  # fmt: skip

    def _rollback_create(self, path: str) -> None:
        try:
            self._rpc("delete_secret", path, request={"name": path})
        except StoreError:  # best effort; the error being raised says more
            pass

    def _annotations(self, meta: dict[str, str]) -> dict[str, str]:
        ann = {k: v for k, v in meta.items() if k.startswith("smf-")}
        size = sum(len(k.encode()) + len(v.encode()) for k, v in ann.items())
        if size > _MAX_ANNOTATION_BYTES:
            ann.pop(META_SOURCE, None)  # labels still carry it
        return ann

    def _latest_equals(self, path: str, data: bytes) -> bool:
        try:
            resp = self._rpc("access_secret_version", path, name=f"{path}/versions/latest")
        except StoreError:
            return False  # no enabled version, or unreadable: write one
        return bytes(resp.payload.data) == data

    def _add_version(self, name: str, path: str, data: bytes) -> None:
        crc = _gcp.crc32c(data)
        version = self._rpc(
            "add_secret_version", name, scrub=data,
            request={"parent": path, "payload": {"data": data, "data_crc32c": crc}},
        )  # fmt: skip
        m = _VERSION_NO.search(version.name)
        number = int(m.group(1)) if m else None
        if self.hygiene != "none" and (number is None or number > self.keep_versions):
            self._hygiene(name, path)

    def _disable_versions(self, name: str, path: str) -> None:
        """Disable every enabled version: a commented-out secret is readable by no version."""
        from google.cloud.secretmanager_v1 import SecretVersion

        pager = self._rpc("list_secret_versions", name, request={"parent": path, "page_size": 1000})
        for v in pager:
            if v.state == SecretVersion.State.ENABLED:
                self._rpc("disable_secret_version", name, request={"name": v.name})

    def _hygiene(self, name: str, path: str) -> None:
        """Disable or destroy versions beyond the newest `keep_versions` enabled ones."""
        from google.cloud.secretmanager_v1 import SecretVersion

        state = SecretVersion.State
        pager = self._rpc("list_secret_versions", name, request={"parent": path, "page_size": 1000})
        versions = []
        for v in pager:
            m = _VERSION_NO.search(v.name)
            if m and v.state != state.DESTROYED:
                versions.append((int(m.group(1)), v))
        versions.sort(key=lambda item: item[0], reverse=True)
        enabled = [v for _, v in versions if v.state == state.ENABLED]
        keep = {v.name for v in enabled[: self.keep_versions]}
        for _, v in versions:
            if v.name in keep:
                continue
            if self.hygiene == "destroy":
                self._rpc("destroy_secret_version", name, request={"name": v.name})
            elif v.state == state.ENABLED:
                self._rpc("disable_secret_version", name, request={"name": v.name})

    def _delete(self, current: StoredEntry, commit: str | None) -> None:
        if current.tombstone:
            return
        if commit:  # first, so that no failure leaves a delete unrecorded
            self._write_tombstone(current, commit)
        path = (current.handle or {}).get("path") or self.secret_path(current.name)
        self._rpc("delete_secret", current.name, request={"name": path})

    def _write_tombstone(self, current: StoredEntry, commit: str) -> None:
        """A secret with no version (no value, nothing billed) recording the delete."""
        tomb = _gcp.tombstone_name(current.name)
        labels = _gcp.tombstone_labels(current, commit)
        secret: dict[str, Any] = {"labels": labels}
        replication = self._replication()
        if replication is not None:
            secret["replication"] = replication
        try:
            self._rpc("create_secret", current.name,
                      request={"parent": self.parent, "secret_id": tomb, "secret": secret})  # fmt: skip
        except ConflictError:  # an earlier delete of this name left one: it now records this one
            self._rpc("update_secret", current.name, secret={"name": self.secret_path(tomb), "labels": labels},
                      update_mask={"paths": ["labels"]})  # fmt: skip

    def _drop_tombstone(self, tombstone: StoredEntry) -> None:
        try:
            self._rpc("delete_secret", tombstone.name, request={"name": tombstone.handle["path"]})
        except NotFoundError:
            pass

    def read_secret(self, name: str) -> str:
        """The latest value of one secret by id (the SOPS age key of spec.decryption)."""
        resp = self._rpc("access_secret_version", name, name=f"{self.secret_path(name)}/versions/latest")
        return bytes(resp.payload.data).decode("utf-8")

    def read_values(self, entries: list[StoredEntry]) -> dict[str, str]:
        """Latest values, read `max_concurrency` at a time (drift checks read every entry)."""
        from concurrent.futures import ThreadPoolExecutor

        def one(entry: StoredEntry) -> tuple[str, str | None]:
            path = (entry.handle or {}).get("path") or self.secret_path(entry.name)
            try:
                resp = self._rpc("access_secret_version", entry.name, name=f"{path}/versions/latest")
            except NotFoundError:
                return entry.name, None
            except StoreError as exc:
                if exc.code != "FailedPrecondition":  # no enabled version
                    raise
                return entry.name, None
            return entry.name, bytes(resp.payload.data).decode("utf-8", "replace")

        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            return {name: value for name, value in pool.map(one, entries) if value is not None}

    # -- first-run fingerprint key (core/fingerprint.py) ------------------------------------
    def read_fingerprint_secret(self, name: str) -> str | None:
        """The OLDEST enabled version is the key: a secret and its first version cannot be
        created in one call, so racing first runs may each add a version; all read the same."""
        path = self.secret_path(name)
        try:
            versions = list(self._rpc("list_secret_versions", name, request={"parent": path}))
        except NotFoundError:
            return None
        numbers = sorted(
            int(m.group(1)) for v in versions
            if v.state.name == "ENABLED" and (m := _VERSION_NO.search(v.name))
        )  # fmt: skip
        if not numbers:
            return None
        resp = self._rpc("access_secret_version", name, name=f"{path}/versions/{numbers[0]}")
        return bytes(resp.payload.data).decode("utf-8")

    def create_fingerprint_secret(self, name: str, value: str) -> str:
        """Create the secret (AlreadyExists: another run did), add our version only if it has
        none yet, and return the oldest enabled version: the same for every racer."""
        secret: dict[str, Any] = {"labels": {"smf-role": "fingerprint-key"}}
        replication = self._replication()
        if replication is not None:
            secret["replication"] = replication
        try:
            self._rpc(
                "create_secret", name, request={"parent": self.parent, "secret_id": name, "secret": secret}
            )
        except ConflictError:
            pass  # another run created it first
        if self.read_fingerprint_secret(name) is None:
            data = value.encode("utf-8")
            self._rpc("add_secret_version", name, scrub=data, request={
                "parent": self.secret_path(name), "payload": {"data": data, "data_crc32c": _gcp.crc32c(data)}})  # fmt: skip
        winner = self.read_fingerprint_secret(name)
        if winner is None:
            raise StoreError(f"{name}: no enabled version after adding one", field=name)
        return winner

    def version_states(self, name: str) -> dict[int, str]:
        """Version number → state name of one secret (for tests and operators)."""
        pager = self._rpc("list_secret_versions", name, request={"parent": self.secret_path(name)})
        out = {}
        for v in pager:
            m = _VERSION_NO.search(v.name)
            if m:
                out[int(m.group(1))] = v.state.name
        return out
