"""AWS Systems Manager Parameter Store: one parameter per key under the service's path.

Names come from `core.naming.aws_parameter_store` (``{parameterPath | /{prefix}/{env}}/{key}``).
Type: ``String`` for configs (``SecureString`` with ``provider.aws.parameterStore.type``), and
always ``SecureString`` for secrets routed here (``secretsStore: ParameterStore``), with the
configured KMS key. Tier: ``Auto`` picks Standard up to 4 KB and Advanced up to 8 KB (an
Advanced parameter stays Advanced: AWS cannot downgrade); ``Standard`` refuses values over
4 KB with an error naming the entry and its size, before any write.

Metadata lives twice: as tags (``managed-by``, ``smf-owner``, provenance, fingerprint: what
IAM conditions, governance tooling and the ownership check use) and as a compact JSON in the
parameter's Description. GetParametersByPath returns neither tags nor descriptions (only
values, 10 a page), so listing uses DescribeParameters, 50 a page, filtered server-side by
``tag:managed-by`` and ``tag:smf-owner`` (up to 50 owners a call): one listing covers every
service of a config and reads no value. Wanted names that are not ours are looked up with a
``Name`` filter (50 names a call); their tags are read only when one exists (a conflict).

Pruning only ever touches parameters carrying our tags and our owner, and, when
``configs.parameterPath`` is set, only parameters under that path.

Deletion ordering (docs/aws.md): DeleteParameter leaves nothing behind, so a delete first
writes a tombstone parameter ``/smf-tombstones/<sha256 of the name>`` (String, Standard tier,
the placeholder value ``deleted``) carrying our tags and, in its Description, the owner, the
deleting commit and the deleted name. The managed/owner tag listing returns it with the live
parameters (no extra call); plan refuses an older commit that would re-create the name, and a
create under that name deletes the tombstone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from core.errors import NamingError
from core.model import (
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    META_COMMIT,
    META_FINGERPRINT,
    META_OWNER,
    META_REPO,
    META_SOURCE,
    META_TOMBSTONE,
    tombstone_id,
)
from core.naming.aws_parameter_store import ADVANCED_TIER_BYTES, STANDARD_TIER_BYTES
from core.options import build, option
from core.stores import _aws
from core.stores.base import ConflictError, NotFoundError

if TYPE_CHECKING:
    from core.config import SecretManagerConfig
    from core.model import DesiredEntry, ListQuery, StoredEntry

KIND = "aws-parameter-store"
PAGE = 50  # DescribeParameters MaxResults upper bound
FILTER_VALUES = 50  # values per ParameterStringFilter
GET_BATCH = 10  # GetParameters Names upper bound
DESCRIPTION_PREFIX = "Managed by secret-manager-functions: "
MAX_DESCRIPTION = 1024
TOMBSTONE_PATH = "/smf-tombstones/"
TOMBSTONE_VALUE = "deleted"  # PutParameter needs a value: a placeholder, never the entry's


@dataclass(frozen=True)
class ParameterStoreOptions:
    """``spec.provider.aws.parameterStore``."""

    #: Type of config parameters (secrets routed here are always SecureString).
    type: str = option("String", enum=("String", "SecureString"))
    kms_key_id: str | None = None
    tier: str = option("Auto", enum=("Auto", "Standard", "Advanced"))
    tags: dict[str, str] = option({})


@dataclass
class ParameterHandle:
    type: str | None = None
    tier: str | None = None
    version: int | None = None
    tags: dict[str, str] = field(default_factory=dict)


class ParameterStore(_aws.AwsStore):
    kind: ClassVar[str] = KIND
    service: ClassVar[str] = "ssm"
    #: PutParameter is throttled at a few calls/s by default (standard throughput); the
    #: adaptive retry mode's client-side rate limiter paces the writers on top of this.
    max_concurrency: ClassVar[int] = int(os.environ.get("SMF_AWS_SSM_CONCURRENCY", "4"))
    can_read_values: ClassVar[bool] = True

    def __init__(
        self, client: Any, options: dict[str, Any] | None = None, parameter_path: str | None = None
    ) -> None:
        super().__init__(client, options)
        #: configs.parameterPath when set: pruning never reaches outside it.
        self.path = "/" + parameter_path.strip("/") if parameter_path else None
        ps: ParameterStoreOptions = build(ParameterStoreOptions, (options or {}).get("parameterStore"))
        self.config_type: str = ps.type
        self.kms_key_id: str | None = ps.kms_key_id
        self.tier: str = ps.tier
        self.extra_tags: dict[str, str] = dict(ps.tags)

    @classmethod
    def from_config(cls, config: SecretManagerConfig) -> ParameterStore:
        return cls(*cls.client_for(config), config.configs.parameter_path)

    # -- shaping ------------------------------------------------------------------------
    def prepare(
        self, entries: list[DesiredEntry], service_entries: dict[str, list[DesiredEntry]]
    ) -> list[DesiredEntry]:
        """Pick type and tier per entry; refuse values the configured tier cannot hold."""
        for entry in entries:
            entry.options["ssm_type"] = self.param_type(entry)
            entry.options["ssm_tier"] = self.pick_tier(entry)
        return entries

    def param_type(self, entry: DesiredEntry) -> str:
        wanted = entry.options.get("ssm_type") or entry.options.get("type")
        if entry.kind == "secret":
            return "SecureString"
        return wanted if wanted in ("String", "SecureString") else self.config_type

    def pick_tier(self, entry: DesiredEntry, current_tier: str | None = None) -> str:
        size = len(entry.value.encode("utf-8"))
        limit = STANDARD_TIER_BYTES if self.tier == "Standard" else ADVANCED_TIER_BYTES
        if size > limit:
            tier_note = (
                "the Standard tier (set parameterStore.tier to Auto or Advanced for up to 8 KB)"
                if self.tier == "Standard"
                else "the Advanced tier"
            )
            path, _, key = entry.source.rpartition(":")
            raise NamingError(
                f"{KIND} {entry.name!r}: value is {size} bytes; at most {limit} fit in {tier_note}",
                path=path or None,
                field=key or entry.name,
            )
        if self.tier == "Advanced" or current_tier == "Advanced":
            return "Advanced"
        if self.tier == "Standard":
            return "Standard"
        return "Standard" if size <= STANDARD_TIER_BYTES else "Advanced"

    # -- listing ------------------------------------------------------------------------
    def _list(self, query: ListQuery) -> list[StoredEntry]:
        found: dict[str, StoredEntry] = {}
        owner_prefixes = tuple(query.owner_prefixes)

        def wanted(owner: str | None) -> bool:
            return owner is not None and (owner in query.owners or owner.startswith(owner_prefixes))

        managed = [{"Key": f"tag:{MANAGED_BY_KEY}", "Values": [MANAGED_BY_VALUE]}]
        plain = sorted(p for p in owner_prefixes if _aws.encode_tag_value(p) == p)
        # (filters, whether the server matched the owner tag exactly or by prefix)
        listings: list[tuple[list[dict[str, Any]], bool]] = []
        if owner_prefixes and len(plain) < len(owner_prefixes):
            listings.append((managed, False))  # every managed parameter; owners checked here
        else:
            # Full resync with pruning: every owner of the config ("{config}/..."), one listing
            # for all services (DescribeParameters tag filters accept BeginsWith).
            listings += [
                ([*managed, {"Key": f"tag:{META_OWNER}", "Option": "BeginsWith", "Values": batch}], True)
                for batch in _aws.chunks(plain, FILTER_VALUES)
            ]
            rest = sorted({_aws.encode_tag_value(o) for o in query.owners if not o.startswith(tuple(plain))})
            listings += [
                ([*managed, {"Key": f"tag:{META_OWNER}", "Values": batch}], True)
                for batch in _aws.chunks(rest, FILTER_VALUES)
            ]
        for filters, owner_matched in listings:
            for item in self._describe(filters):
                entry = _from_description(item)
                if owner_matched and not wanted(entry.owner):
                    # Description edited by hand: the tags are the truth.
                    entry = _from_tags(item, self._tags(item["Name"]))
                if not wanted(entry.owner):
                    continue
                if self.path and entry.name not in query.names and not entry.name.startswith(self.path + "/"):
                    continue  # ours, but outside configs.parameterPath: never pruned
                if not (entry.tombstone and entry.name in found):  # a live parameter wins
                    found[entry.name] = entry
        # A tombstoned name may have been taken by hand since: look it up like a new one.
        missing = sorted(set(query.names) - {n for n, e in found.items() if not e.tombstone})
        for batch in _aws.chunks(missing, FILTER_VALUES):
            for item in self._describe([{"Key": "Name", "Option": "Equals", "Values": batch}]):
                found[item["Name"]] = _from_tags(item, self._tags(item["Name"]))
        return list(found.values())

    def read_secret(self, name: str) -> str:
        """One parameter's value, decrypted (the age key when secrets live here)."""
        resp = self._call("GetParameter", name, self.client.get_parameter, Name=name, WithDecryption=True)
        return (resp.get("Parameter") or {}).get("Value") or ""

    def load_fingerprint_key(self) -> bytes | None:
        if not os.environ.get(_aws.FINGERPRINT_SECRET_ENV):
            return None
        return _aws.fingerprint_key_from_secret(_aws.client("secretsmanager", self.options))

    def _describe(self, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"ParameterFilters": filters, "MaxResults": PAGE}
        while True:
            page = self._call("DescribeParameters", None, self.client.describe_parameters, **kwargs)
            out.extend(page.get("Parameters") or [])
            token = page.get("NextToken")
            if not token:
                return out
            kwargs["NextToken"] = token

    def _tags(self, name: str) -> dict[str, str]:
        resp = self._call(
            "ListTagsForResource",
            name,
            self.client.list_tags_for_resource,
            ResourceType="Parameter",
            ResourceId=name,
        )
        return _aws.tags_dict(resp.get("TagList"))

    # -- writes -------------------------------------------------------------------------
    def _put(self, entry: DesiredEntry, current: StoredEntry | None) -> None:
        if current is not None and current.tombstone:
            self._put(entry, None)  # nothing holds the name: a create, then the tombstone goes
            self._drop_tombstone(current)
            return
        meta = entry.metadata()
        kwargs: dict[str, Any] = {
            "Name": entry.name,
            "Value": entry.value,
            "Type": self.param_type(entry),
            "Description": _description(meta),
        }
        if kwargs["Type"] == "SecureString" and self.kms_key_id:
            kwargs["KeyId"] = self.kms_key_id
        tags = _aws.metadata_tags(meta, self.extra_tags, store=KIND, name=entry.name)
        if current is None:
            kwargs["Tier"] = self.pick_tier(entry)
            try:
                self._call("PutParameter", entry.name, self.client.put_parameter, **kwargs, Tags=tags,
                           Overwrite=False)  # fmt: skip
                return
            except ConflictError:  # ParameterAlreadyExists: ours from an interrupted run?
                pass
            current = self._lookup(entry.name)
            if current is None or not current.managed or current.owner != entry.owner:
                raise ConflictError(
                    f"{KIND}: {entry.name} already exists and is not managed "
                    "by this config (set spec.sync.adopt to take it over)",
                    field=entry.name,
                )
        handle: ParameterHandle = current.handle or ParameterHandle()
        kwargs["Tier"] = self.pick_tier(entry, handle.tier)
        self._call("PutParameter", entry.name, self.client.put_parameter, **kwargs, Overwrite=True)
        if any(handle.tags.get(t["Key"]) != t["Value"] for t in tags):
            self._call(
                "AddTagsToResource",
                entry.name,
                self.client.add_tags_to_resource,
                ResourceType="Parameter",
                ResourceId=entry.name,
                Tags=tags,
            )

    def mark(self, entry: DesiredEntry, current: StoredEntry) -> None:
        """Add our metadata as tags only: a PutParameter (even for the description) would
        write a new version. Listings read the tags when the description is not ours."""
        tags = _aws.metadata_tags(entry.metadata(), self.extra_tags, store=KIND, name=entry.name)
        self._call("AddTagsToResource", entry.name, self.client.add_tags_to_resource,
                   ResourceType="Parameter", ResourceId=entry.name, Tags=tags)  # fmt: skip

    def _lookup(self, name: str) -> StoredEntry | None:
        items = self._describe([{"Key": "Name", "Option": "Equals", "Values": [name]}])
        return _from_tags(items[0], self._tags(name)) if items else None

    def _delete(self, current: StoredEntry, commit: str | None) -> None:
        if current.tombstone:
            return
        if commit:  # first, so that no failure leaves a delete unrecorded
            self._write_tombstone(current, commit)
        self._call("DeleteParameter", current.name, self.client.delete_parameter, Name=current.name)

    def _write_tombstone(self, current: StoredEntry, commit: str) -> None:
        """Record a delete: a placeholder parameter with name, owner and deleting commit."""
        meta = {MANAGED_BY_KEY: MANAGED_BY_VALUE, META_OWNER: current.owner or "", META_COMMIT: commit,
                META_TOMBSTONE: "1"}  # fmt: skip
        tags = _aws.metadata_tags(meta, None, store=KIND, name=current.name)
        data = {"owner": current.owner or "", "commit": commit, "tombstone": current.name}
        text = DESCRIPTION_PREFIX + json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        name = TOMBSTONE_PATH + tombstone_id(current.name)
        if len(text) > MAX_DESCRIPTION:
            return  # a name of ~900+ characters: deleted unordered (docs/aws.md), as before
        kwargs: dict[str, Any] = {"Name": name, "Value": TOMBSTONE_VALUE, "Type": "String", "Tier": "Standard",
                                  "Description": text}  # fmt: skip
        try:
            self._call(
                "PutParameter", current.name, self.client.put_parameter, **kwargs, Tags=tags, Overwrite=False
            )
            return
        except ConflictError:  # an earlier delete of this name left one: it now records this one
            pass
        self._call("PutParameter", current.name, self.client.put_parameter, **kwargs, Overwrite=True)
        self._call("AddTagsToResource", current.name, self.client.add_tags_to_resource,
                   ResourceType="Parameter", ResourceId=name, Tags=tags)  # fmt: skip

    def _drop_tombstone(self, tombstone: StoredEntry) -> None:
        try:
            self._call("DeleteParameter", tombstone.name, self.client.delete_parameter, Name=tombstone.handle)
        except NotFoundError:
            pass

    def read_values(self, entries: list[StoredEntry]) -> dict[str, str]:
        out: dict[str, str] = {}
        for batch in _aws.chunks(sorted(e.name for e in entries), GET_BATCH):
            resp = self._call(
                "GetParameters", None, self.client.get_parameters, Names=batch, WithDecryption=True
            )
            for item in resp.get("Parameters") or []:
                out[item["Name"]] = item["Value"]
        return out


# -- metadata in the Description ----------------------------------------------------------
_SHORT = {
    META_OWNER: "owner",
    META_SOURCE: "source",
    META_REPO: "repo",
    META_COMMIT: "commit",
    META_FINGERPRINT: "fp",
}


def _description(meta: dict[str, str]) -> str:
    """Compact JSON of our metadata after a human-readable prefix, within 1024 characters."""
    data = {short: meta[key] for key, short in _SHORT.items() if meta.get(key)}
    text = DESCRIPTION_PREFIX + json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    for key in ("repo", "source"):  # provenance only: shortened before anything else
        while len(text) > MAX_DESCRIPTION and data.get(key):
            data[key] = data[key][: max(0, len(data[key]) - 16)]
            text = DESCRIPTION_PREFIX + json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text


def _parse_description(text: str | None) -> dict[str, str]:
    if not text or not text.startswith(DESCRIPTION_PREFIX):
        return {}
    try:
        data = json.loads(text[len(DESCRIPTION_PREFIX) :])
    except ValueError:
        return {}
    return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _handle(item: dict[str, Any], tags: dict[str, str] | None = None) -> ParameterHandle:
    return ParameterHandle(
        type=item.get("Type"), tier=item.get("Tier"), version=item.get("Version"), tags=tags or {}
    )


def _from_description(item: dict[str, Any]) -> StoredEntry:
    """An entry the server matched by our tags; details from its Description."""
    from core.model import StoredEntry

    data = _parse_description(item.get("Description"))
    if item["Name"].startswith(TOMBSTONE_PATH) and data.get("tombstone"):
        return StoredEntry.tombstone_of(
            data["tombstone"], data.get("owner"), data.get("commit"), item["Name"]
        )
    meta = {key: data[short] for key, short in _SHORT.items() if short in data}
    return StoredEntry.from_metadata(
        item["Name"], {MANAGED_BY_KEY: MANAGED_BY_VALUE, **meta}, handle=_handle(item)
    )


def _from_tags(item: dict[str, Any], tags: dict[str, str]) -> StoredEntry:
    from core.model import StoredEntry

    if item["Name"].startswith(TOMBSTONE_PATH):
        return _from_description(item)
    return StoredEntry.from_metadata(item["Name"], _aws.decoded_tags(tags), handle=_handle(item, tags))
