"""AWS Secrets Manager: one secret per key, ownership/provenance/fingerprint in tags.

Listing (`list_entries`) uses ListSecrets only, 100 secrets a page, with
``IncludePlannedDeletion`` so a secret scheduled for deletion is seen and restored:

1. managed entries of the owners: filters ``tag-key=smf-owner`` + ``tag-value=<owners>``
   (AWS allows 10 values a filter and matches prefixes, so many owners are covered by their
   common prefix; the exact owner is checked here);
2. only for wanted names that step 1 did not return (new keys, hand-made secrets): a
   ``name`` filter by the per-service prefixes, exact names checked here.

A no-op resync therefore costs the pages of step 1 and nothing else. Values are read only
for drift detection (`read_values`: BatchGetSecretValue, 20 secrets a call).

Writes: CreateSecret (tags, KMS key, description, replica regions from
``provider.aws.secretsManager``); PutSecretValue only when the value's fingerprint changed
(plan calls put for metadata-only reasons too: restore, adoption); RestoreSecret for a
secret scheduled for deletion; TagResource last, so the fingerprint tag never runs ahead of
the value. Delete schedules deletion with ``recoveryWindowInDays`` (AWS default 30 when
unset) or ``forceDeleteWithoutRecovery``.

Deletion ordering (docs/aws.md): before DeleteSecret schedules a deletion, TagResource sets
``smf-commit`` to the deleting commit (a secret pending deletion keeps its tags and ListSecrets
with ``IncludePlannedDeletion`` returns them), so plan never lets an older commit restore it.
With ``forceDeleteWithoutRecovery`` nothing of the secret survives: a tombstone secret
``smf-tombstones/<sha256 of the name>`` with no value (CreateSecret without SecretString makes
a secret with no version) carries our tags, ``smf-tombstone`` and the original name in its
Description; the owner-tag listing returns it with the live secrets (no extra call), and a
create under that name deletes it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from core.errors import StoreError
from core.model import MANAGED_BY_KEY, MANAGED_BY_VALUE, META_COMMIT, META_OWNER, META_TOMBSTONE, tombstone_id
from core.options import build, option
from core.stores import _aws
from core.stores.base import ConflictError, NotFoundError

if TYPE_CHECKING:
    from core.config import SecretManagerConfig
    from core.model import DesiredEntry, ListQuery, StoredEntry

KIND = "aws-secrets-manager"
DEFAULT_DESCRIPTION = "Managed by secret-manager-functions (GitOps): do not edit by hand"
PAGE = 100  # ListSecrets MaxResults upper bound
FILTER_VALUES = 10  # values per ListSecrets filter
BATCH_GET = 20  # BatchGetSecretValue SecretIdList upper bound
TOMBSTONE_PREFIX = "smf-tombstones/"
TOMBSTONE_DESCRIPTION = "secret-manager-functions tombstone (a force-deleted secret, no value) of: "


@dataclass(frozen=True)
class SecretsManagerOptions:
    """``spec.provider.aws.secretsManager``."""

    kms_key_id: str | None = None
    description: str = DEFAULT_DESCRIPTION
    replica_regions: list[str] = option([])
    #: Days a pruned secret stays restorable (AWS: 7-30; its default is 30).
    recovery_window_in_days: int | None = None
    force_delete_without_recovery: bool = False
    tags: dict[str, str] = option({})

    def problems(self, provider: Mapping[str, Any]) -> list[tuple[str, str]]:
        out = []
        days = self.recovery_window_in_days
        if days is not None and not 7 <= days <= 30:
            out.append(("recoveryWindowInDays", "must be between 7 and 30 (days)"))
        if days is not None and self.force_delete_without_recovery:
            out.append(
                (
                    "forceDeleteWithoutRecovery",
                    "set recoveryWindowInDays or forceDeleteWithoutRecovery, not both",
                )
            )
        return out


@dataclass
class SecretHandle:
    arn: str
    description: str | None = None
    kms_key_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


class SecretsManagerStore(_aws.AwsStore):
    kind: ClassVar[str] = KIND
    service: ClassVar[str] = "secretsmanager"
    #: Secrets Manager allows ~50 writes/s per API; adaptive retries absorb the rest.
    max_concurrency: ClassVar[int] = int(os.environ.get("SMF_AWS_SM_CONCURRENCY", "8"))
    can_read_values: ClassVar[bool] = True

    def __init__(self, client: Any, options: dict[str, Any] | None = None) -> None:
        super().__init__(client, options)
        sm: SecretsManagerOptions = build(SecretsManagerOptions, (options or {}).get("secretsManager"))
        self.kms_key_id: str | None = sm.kms_key_id
        self.description: str = sm.description
        self.replica_regions: list[str] = list(sm.replica_regions)
        self.recovery_window: int | None = sm.recovery_window_in_days
        self.force_delete: bool = sm.force_delete_without_recovery
        self.extra_tags: dict[str, str] = dict(sm.tags)

    @classmethod
    def from_config(cls, config: SecretManagerConfig) -> SecretsManagerStore:
        return cls(*cls.client_for(config))

    # -- listing ------------------------------------------------------------------------
    def _list(self, query: ListQuery) -> list[StoredEntry]:
        found: dict[str, StoredEntry] = {}
        owner_prefixes = tuple(query.owner_prefixes)

        def wanted(owner: str | None) -> bool:
            return owner is not None and (owner in query.owners or owner.startswith(owner_prefixes))

        values = {_aws.encode_tag_value(o) for o in query.owners}
        values |= {p for p in owner_prefixes if _aws.encode_tag_value(p) == p}
        for batch in _owner_filter_values(sorted(values)):
            filters = [{"Key": "tag-key", "Values": [META_OWNER]}, {"Key": "tag-value", "Values": batch}]
            for item in self._list_secrets(filters):
                entry = _stored(item)
                if entry.managed and wanted(entry.owner):
                    if not (entry.tombstone and entry.name in found):  # a live secret wins
                        found[entry.name] = entry
        # A tombstoned name may have been taken by hand since: look it up like a new one.
        missing = set(query.names) - {n for n, e in found.items() if not e.tombstone}
        if missing:
            for batch in _name_filter_values(missing, query.prefixes):
                for item in self._list_secrets([{"Key": "name", "Values": batch}]):
                    if item["Name"] in missing and not item["Name"].startswith(TOMBSTONE_PREFIX):
                        found[item["Name"]] = _stored(item)
        return list(found.values())

    def read_secret(self, name: str) -> str:
        """One secret's current value (the age key named by spec.decryption.ageKeySecret)."""
        resp = self._call("GetSecretValue", name, self.client.get_secret_value, SecretId=name)
        return resp.get("SecretString") or ""

    def load_fingerprint_key(self) -> bytes | None:
        return _aws.fingerprint_key_from_secret(self.client)

    # -- first-run fingerprint key (core/fingerprint.py) ------------------------------------
    def read_fingerprint_secret(self, name: str) -> str | None:
        try:
            resp = self.client.get_secret_value(SecretId=name)
        except Exception as exc:  # noqa: BLE001
            if _aws.error_code(exc) == "ResourceNotFoundException":
                return None
            raise _aws.store_error(exc, store=KIND, op="GetSecretValue", name=name) from None
        return resp.get("SecretString")

    def create_fingerprint_secret(self, name: str, value: str) -> str:
        """CreateSecret with the value is atomic and fails with ResourceExistsException when
        another run won the race: then the winner's value is the key."""
        try:
            self.client.create_secret(
                Name=name,
                SecretString=value,
                Description="secret-manager-functions: HMAC key of value fingerprints (made by the first run)",
            )
        except Exception as exc:  # noqa: BLE001
            if _aws.error_code(exc) != "ResourceExistsException":
                raise _aws.store_error(exc, store=KIND, op="CreateSecret", name=name) from None
            winner = self.read_fingerprint_secret(name)
            if winner is None:
                raise StoreError(f"{KIND}: {name} exists but holds no value", field=name) from None
            return winner
        return value

    def _list_secrets(self, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"Filters": filters, "MaxResults": PAGE, "IncludePlannedDeletion": True}
        while True:
            page = self._call("ListSecrets", None, self.client.list_secrets, **kwargs)
            out.extend(page.get("SecretList") or [])
            token = page.get("NextToken")
            if not token:
                return out
            kwargs["NextToken"] = token

    # -- writes -------------------------------------------------------------------------
    def _put(self, entry: DesiredEntry, current: StoredEntry | None) -> None:
        tags = _aws.metadata_tags(entry.metadata(), self.extra_tags, store=KIND, name=entry.name)
        tombstone = current if current is not None and current.tombstone else None
        if tombstone is not None:
            current = None  # nothing holds the name: a create, then the tombstone goes
        if current is None:
            current = self._create(entry, tags)
            if current is None:
                if tombstone is not None:
                    self._drop_tombstone(tombstone)
                return
        handle: SecretHandle = current.handle
        if current.deleted:
            self._call("RestoreSecret", entry.name, self.client.restore_secret, SecretId=handle.arn)
        if not current.managed or current.fingerprint != entry.fingerprint:
            self._call(
                "PutSecretValue",
                entry.name,
                self.client.put_secret_value,
                SecretId=handle.arn,
                SecretString=entry.value,
            )
        update: dict[str, Any] = {}
        if handle.description != self.description:
            update["Description"] = self.description
        if self.kms_key_id and not _same_key(handle.kms_key_id, self.kms_key_id):
            update["KmsKeyId"] = self.kms_key_id
        if update:
            self._call("UpdateSecret", entry.name, self.client.update_secret, SecretId=handle.arn, **update)
        if any(handle.tags.get(t["Key"]) != t["Value"] for t in tags):
            self._call("TagResource", entry.name, self.client.tag_resource, SecretId=handle.arn, Tags=tags)
        if tombstone is not None:
            self._drop_tombstone(tombstone)

    def mark(self, entry: DesiredEntry, current: StoredEntry) -> None:
        """Add our metadata to an entry that already holds `entry.value`: no new version."""
        tags = _aws.metadata_tags(entry.metadata(), self.extra_tags, store=KIND, name=entry.name)
        self._call(
            "TagResource", entry.name, self.client.tag_resource, SecretId=current.handle.arn, Tags=tags
        )

    def _create(self, entry: DesiredEntry, tags: list[dict[str, str]]) -> StoredEntry | None:
        """CreateSecret; on a race with an existing secret, return it (ours) or conflict."""
        kwargs: dict[str, Any] = {
            "Name": entry.name,
            "SecretString": entry.value,
            "Description": self.description,
            "Tags": tags,
        }
        if self.kms_key_id:
            kwargs["KmsKeyId"] = self.kms_key_id
        if self.replica_regions:
            kwargs["AddReplicaRegions"] = [{"Region": r} for r in self.replica_regions]
        try:
            self._call("CreateSecret", entry.name, self.client.create_secret, **kwargs)
            return None
        except ConflictError as exc:  # ResourceExistsException: the name is taken
            failure: _aws.StoreError = exc
        except _aws.StoreError as exc:
            # InvalidRequestException: a secret of this name is scheduled for deletion
            if exc.code != "InvalidRequestException":
                raise
            failure = exc
        existing = self._describe(entry.name)
        if existing is None:
            raise failure
        if not existing.managed or existing.owner != entry.owner:
            raise ConflictError(
                f"{KIND}: {entry.name} already exists and is not managed by "
                "this config (set spec.sync.adopt to take it over)",
                field=entry.name,
            )
        return existing

    def _describe(self, name: str) -> StoredEntry | None:
        try:
            return _stored(self._call("DescribeSecret", name, self.client.describe_secret, SecretId=name))
        except NotFoundError:
            return None

    def _delete(self, current: StoredEntry, commit: str | None) -> None:
        if current.deleted:
            return
        arn = current.handle.arn
        kwargs: dict[str, Any] = {"SecretId": arn}
        if self.force_delete:
            if commit:  # first, so that no failure leaves a delete unrecorded
                self._write_tombstone(current, commit)
            kwargs["ForceDeleteWithoutRecovery"] = True
        else:
            if self.recovery_window:
                kwargs["RecoveryWindowInDays"] = self.recovery_window
            if commit and current.commit != commit:
                # The secret pending deletion keeps its tags: they now say who deleted it.
                tag = [
                    {
                        "Key": META_COMMIT,
                        "Value": _aws.fit_tag(META_COMMIT, commit, store=KIND, name=current.name),
                    }
                ]
                self._call("TagResource", current.name, self.client.tag_resource, SecretId=arn, Tags=tag)
        self._call("DeleteSecret", current.name, self.client.delete_secret, **kwargs)

    def _write_tombstone(self, current: StoredEntry, commit: str) -> None:
        """Record a force delete: a value-less secret carrying name, owner and deleting commit."""
        meta = {MANAGED_BY_KEY: MANAGED_BY_VALUE, META_OWNER: current.owner or "", META_COMMIT: commit,
                META_TOMBSTONE: "1"}  # fmt: skip
        tags = _aws.metadata_tags(meta, None, store=KIND, name=current.name)
        name = TOMBSTONE_PREFIX + tombstone_id(current.name)
        description = TOMBSTONE_DESCRIPTION + current.name
        try:
            self._call("CreateSecret", current.name, self.client.create_secret, Name=name,
                       Description=description, Tags=tags)  # fmt: skip
        except ConflictError:  # an earlier delete of this name left one: it now records this one
            self._call("TagResource", current.name, self.client.tag_resource, SecretId=name, Tags=tags)

    def _drop_tombstone(self, tombstone: StoredEntry) -> None:
        try:
            self._call("DeleteSecret", tombstone.name, self.client.delete_secret,
                       SecretId=tombstone.handle.arn, ForceDeleteWithoutRecovery=True)  # fmt: skip
        except NotFoundError:
            pass

    def read_values(self, entries: list[StoredEntry]) -> dict[str, str]:
        by_arn = {e.handle.arn: e.name for e in entries if not e.deleted}  # tombstones are deleted
        out: dict[str, str] = {}
        for batch in _aws.chunks(sorted(by_arn), BATCH_GET):
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {"SecretIdList": batch}
                if token:
                    kwargs["NextToken"] = token
                page = self._call("BatchGetSecretValue", None, self.client.batch_get_secret_value, **kwargs)
                for item in page.get("SecretValues") or []:
                    name = by_arn.get(item.get("ARN")) or item.get("Name")
                    if "SecretString" in item and name:
                        out[name] = item["SecretString"]
                token = page.get("NextToken")
                if not token:
                    break
        return out


def _stored(item: dict[str, Any]) -> StoredEntry:
    from core.model import StoredEntry

    tags = _aws.tags_dict(item.get("Tags"))
    handle = SecretHandle(arn=item["ARN"], description=item.get("Description"), kms_key_id=item.get("KmsKeyId"),
                          tags=tags)  # fmt: skip
    description = item.get("Description") or ""
    if (
        tags.get(META_TOMBSTONE)
        and tags.get(MANAGED_BY_KEY) == MANAGED_BY_VALUE
        and description.startswith(TOMBSTONE_DESCRIPTION)
    ):
        meta = _aws.decoded_tags(tags)
        return StoredEntry.tombstone_of(
            description[len(TOMBSTONE_DESCRIPTION) :], meta.get(META_OWNER), meta.get(META_COMMIT), handle
        )
    return StoredEntry.from_metadata(
        item["Name"],
        _aws.decoded_tags(tags),
        deleted=item.get("DeletedDate") is not None,
        handle=handle,
    )


def _same_key(current: str | None, wanted: str) -> bool:
    """KMS key ids compare equal as id, alias, or ARN ending in either."""
    if not current:
        return False
    return current == wanted or current.endswith(("/" + wanted, ":" + wanted))


def _owner_filter_values(owners: list[str]) -> list[list[str]]:
    """Tag-value filter values covering `owners` (prefix match): few values, few calls."""
    kept: list[str] = []
    for value in sorted(owners):  # a value covered by a shorter one adds nothing
        if not any(value.startswith(k) for k in kept):
            kept.append(value)
    owners = kept
    if not owners:
        return []
    if len(owners) > FILTER_VALUES:
        common = os.path.commonprefix(owners)
        if common:
            return [[common]]
    return _aws.chunks(owners, FILTER_VALUES)


def _name_filter_values(names: set[str], prefixes: set[str]) -> list[list[str]]:
    """Name filter values (prefix match) covering `names`: the service prefixes when given."""
    values: set[str] = set()
    for name in names:
        covering = [p for p in prefixes if p and name.startswith(p)]
        values.add(max(covering, key=len) if covering else name)
    ordered = sorted(values)
    if len(ordered) > FILTER_VALUES * 5:
        common = os.path.commonprefix(ordered)
        if common:
            return [[common]]
    return _aws.chunks(ordered, FILTER_VALUES)
