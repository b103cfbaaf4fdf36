"""Azure App Configuration store (key-values).

Keys come from `core.naming.azure_app_configuration`: ``{prefix}:{key}`` by default (or
``spec.configs.nameTemplate``), with ``provider.azure.appConfig.separator`` between prefix
and key when no template is set; naming renders them, `prepare` never renames. The **label** is ``provider.azure.appConfig.label``
(``{environment}`` may be used in it; an empty string means "no label") and defaults to the
environment, so one key holds one value per environment.

* **Listing**: one paged ``GET /kv?label=<ours>`` (100 per page). Ownership, owner, provenance and the fingerprint
  are tags on each key-value.
* **ETags**: a create is ``If-None-Match: *`` (an entry that appeared since the listing is a
  `ConflictError`); an update or delete is ``If-Match: <etag from the listing>``, so a
  concurrent edit is never silently clobbered: it fails that entry with ``412`` and the next
  sync plans again from what is there.
* **Pruning** deletes only entries that carry our ``managed-by`` tag, whose owner is a
  service of this config, and whose label is ours: unlike ``az appconfig kv import --strict``
  it never touches other applications' keys or other labels.
* **Key Vault references** (``provider.azure.appConfig.keyVaultReferences: true``): `prepare`
  adds, for every secret the service sends to Key Vault, a key-value whose value is
  ``{"uri": "https://<vault>/secrets/<name>"}`` with content type
  ``application/vnd.microsoft.appconfig.keyvaultref+json;charset=utf-8``, so an app reads
  configs and secrets from one place (providers resolve the reference with their own
  identity). The URI has no version, so readers always get the current one.
* **Deletion ordering** (docs/git-intake.md): App Configuration deletes for good, so a delete
  first writes a tombstone: the same key under the label ``smf-deleted:<label>``
  (``smf-deleted`` when there is no label), an empty value, and tags ``managed-by``, owner,
  deleting commit and ``smf-tombstone``. The listing asks for both labels in one filter
  (``label=<ours>,smf-deleted:<ours>``), so tombstones cost no extra call; a create under the
  key deletes its tombstone. Readers that select only their label never see tombstones.
* **Size**: a key-value (key, label, value, content type and tags) is at most 10,000
  characters; `prepare` refuses values that cannot fit before anything is written, `put`
  checks the exact total.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from core.errors import NamingError, StoreError
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
)
from core.naming import NameContext
from core.naming.azure_app_configuration import key_template
from core.options import option
from core.stores._azure import (
    AzureStore,
    app_config_client,
    app_config_endpoint,
    azure_options,
    clean_repo_url,
    vault_url,
)
from core.stores.azure_key_vault import KeyVaultStore
from core.stores.base import ConflictError, NotFoundError

if TYPE_CHECKING:
    from core.config import SecretManagerConfig

MAX_KV_CHARS = 10_000
KEY_VAULT_REF_CONTENT_TYPE = "application/vnd.microsoft.appconfig.keyvaultref+json;charset=utf-8"
#: The kind whose secrets references point at (its id is declared in core.registry).
KEY_VAULT_STORE = KeyVaultStore.kind
#: Fields listed. ``value`` is included although plan does not need it: azure-appconfiguration
#: (1.9/1.10) fails to parse a listed Key Vault reference without its value (json.loads(None)).
#: App Configuration values are configs and reference URIs, never secrets.
LIST_FIELDS = ["key", "label", "value", "content_type", "etag", "tags", "locked"]
#: Label of the tombstones of one label's deleted keys (label ``smf-deleted:<label>``).
TOMBSTONE_LABEL = "smf-deleted"


@dataclass
class AppConfigHandle:
    key: str
    label: str | None
    etag: str | None
    locked: bool = False


def escape_filter(text: str) -> str:
    """Escape App Configuration's reserved filter characters (``*``, ``,``, ``\\``)."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace(",", "\\,")


@dataclass(frozen=True)
class AppConfigOptions:
    """``spec.provider.azure.appConfig`` (see the module docstring)."""

    endpoint: str | None = None
    separator: str = option(":")
    #: ``{environment}`` may be used; empty means "no label"; unset means the environment.
    label: str | None = None
    content_type: str | None = None
    key_vault_references: bool = False

    def problems(self, provider: Mapping[str, Any]) -> list[tuple[str, str]]:
        if self.key_vault_references and not (provider.get("vaultName") or provider.get("vaultUrl")):
            return [("keyVaultReferences", "needs provider.azure.vaultName or vaultUrl")]
        return []


class AppConfigurationStore(AzureStore):
    kind: ClassVar[str] = "azure-app-configuration"
    max_concurrency: ClassVar[int] = 8
    can_read_values: ClassVar[bool] = True

    def __init__(
        self,
        client: Any,
        *,
        label: str | None,
        separator: str = AppConfigOptions.separator,
        content_type: str | None = None,
        name_template: str | None = None,
        key_vault_references: bool = False,
        vault_url: str | None = None,
        suffix: str = "",
    ) -> None:
        if key_vault_references and not vault_url:
            raise StoreError("keyVaultReferences needs provider.azure.vaultName or vaultUrl",
                             field="spec.provider.azure.appConfig.keyVaultReferences")  # fmt: skip
        super().__init__(client)
        self.label = label
        self.separator = separator
        self.content_type = content_type
        self.name_template = name_template
        self.key_vault_references = key_vault_references
        self.vault_url = (vault_url or "").rstrip("/")
        self.suffix = suffix

    @classmethod
    def from_config(cls, config: SecretManagerConfig) -> AppConfigurationStore:
        options = azure_options(config)
        ac: AppConfigOptions = config.options_for(cls.kind)
        refs = ac.key_vault_references
        label = ac.label
        if label is None:  # the controller's keys carry the environment and no label
            label = "" if config.naming == "controller" else config.secrets.environment
        label = label.replace("{environment}", config.secrets.environment) or None
        return cls(
            app_config_client(app_config_endpoint(config, options), options),
            label=label,
            separator=ac.separator,
            content_type=ac.content_type,
            name_template=config.configs.name_template or config.secrets.name_template,
            key_vault_references=refs,
            vault_url=vault_url(options) if refs else None,
            suffix=config.secrets.suffix or "",
        )

    # -- naming and reshaping ------------------------------------------------------------
    def key_for(self, entry: DesiredEntry, kind: str) -> str:
        """The App Configuration key of one entry's (service, key)."""
        opts = entry.options
        ctx = NameContext(
            service=opts.get("service", ""),
            environment=opts.get("environment", ""),
            key=opts.get("key", ""),
            kind=kind,
            prefix=opts.get("prefix", ""),
            suffix=self.suffix,
        )
        template = self.name_template or key_template(self.separator)
        return self.rules.render(template, ctx, field_name="spec.configs.nameTemplate")

    def prepare(
        self, entries: list[DesiredEntry], service_entries: dict[str, list[DesiredEntry]]
    ) -> list[DesiredEntry]:
        out: list[DesiredEntry] = []
        for e in entries:  # named by core.naming (separator included): kept as named
            if not e.content_type and self.content_type:
                e.content_type = self.content_type
            e.options["label"] = self.label
            out.append(e)
        if self.key_vault_references:
            for secret in service_entries.get(KEY_VAULT_STORE, []):
                ref = DesiredEntry(
                    store=self.kind,
                    name=self.key_for(secret, secret.kind),
                    value=json.dumps({"uri": f"{self.vault_url}/secrets/{secret.name}"}),
                    kind=secret.kind,
                    source=secret.source,
                    owner=secret.owner,
                    content_type=KEY_VAULT_REF_CONTENT_TYPE,
                    options={**secret.options, "label": self.label, "keyVaultReference": True},
                )
                out.append(ref)
        for e in out:
            size = self._size(e.name, e.value, e.content_type, {})
            if size > MAX_KV_CHARS:
                path, _, key = e.source.rpartition(":")
                raise NamingError(
                    f"{self.kind} key-value {e.name!r} would be {size} characters (key, label, value "
                    f"and content type); App Configuration allows at most {MAX_KV_CHARS}",
                    path=path,
                    field=key,
                )
        return out

    def _size(self, key: str, value: str, content_type: str | None, tags: dict[str, str]) -> int:
        size = len(key) + len(self.label or "") + len(value) + len(content_type or "")
        return size + sum(len(k) + len(v) for k, v in tags.items())

    @staticmethod
    def tags_for(entry: DesiredEntry) -> dict[str, str]:
        meta = entry.metadata()
        if META_REPO in meta:
            meta[META_REPO] = clean_repo_url(meta[META_REPO])
        return meta

    # -- Store interface ----------------------------------------------------------------
    @property
    def label_filter(self) -> str:
        return "\0" if self.label is None else escape_filter(self.label)

    @property
    def tombstone_label(self) -> str:
        return f"{TOMBSTONE_LABEL}:{self.label}" if self.label else TOMBSTONE_LABEL

    def _list(self, query: ListQuery) -> list[StoredEntry]:
        out: list[StoredEntry] = []
        tombstones: dict[str, StoredEntry] = {}
        label_filter = f"{self.label_filter},{escape_filter(self.tombstone_label)}"
        settings = self._call("list_configuration_settings", None, self.client.list_configuration_settings,
                              label_filter=label_filter, fields=LIST_FIELDS)  # fmt: skip
        for s in settings:
            tags = dict(s.tags or {})
            handle = AppConfigHandle(s.key, s.label, s.etag, bool(s.read_only))
            if s.label == self.tombstone_label:
                if tags.get(MANAGED_BY_KEY) == MANAGED_BY_VALUE and tags.get(META_TOMBSTONE):
                    tomb = StoredEntry.tombstone_of(
                        s.key, tags.get(META_OWNER), tags.get(META_COMMIT), handle
                    )
                    if query.wants(tomb):
                        tombstones[s.key] = tomb
                continue
            if (s.label or None) != self.label:
                continue
            entry = StoredEntry.from_metadata(s.key, tags, handle=handle)
            if query.wants(entry):
                out.append(entry)
        live = {e.name for e in out}
        return out + [t for name, t in tombstones.items() if name not in live]  # a live key-value wins

    def map_error(self, exc: Exception, *, op: str, name: str | None) -> StoreError:
        """The Azure mapper, plus App Configuration's two refusals that need their own words:
        an ETag that no longer matches (412) and a locked key-value."""
        from azure.appconfiguration import ResourceReadOnlyError
        from azure.core.exceptions import ResourceModifiedError

        if isinstance(exc, ResourceModifiedError):
            return StoreError(
                "changed in App Configuration since it was listed (ETag mismatch); not "
                + (
                    "deleted"
                    if op == "delete_configuration_setting"
                    else "overwritten, the next sync plans again"
                ),
                field=name,
            )
        if isinstance(exc, ResourceReadOnlyError):
            return StoreError("key-value is locked (read-only) in App Configuration", field=name)
        return super().map_error(exc, op=op, name=name)

    def _put(self, entry: DesiredEntry, current: StoredEntry | None) -> None:
        from azure.appconfiguration import ConfigurationSetting
        from azure.core import MatchConditions

        tags = self.tags_for(entry)
        size = self._size(entry.name, entry.value, entry.content_type, tags)
        if size > MAX_KV_CHARS:
            raise StoreError(
                f"key-value would be {size} characters with its tags; App Configuration allows at most "
                f"{MAX_KV_CHARS}",
                field=entry.name,
            )
        setting = ConfigurationSetting(
            key=entry.name, label=self.label, value=entry.value, content_type=entry.content_type, tags=tags
        )
        tombstone = current if current is not None and current.tombstone else None
        if tombstone is not None:
            current = None  # nothing holds the key: a create, then the tombstone goes
        if current is None:
            try:  # If-None-Match: *
                self._call(
                    "add_configuration_setting", entry.name, self.client.add_configuration_setting, setting
                )
            except ConflictError:
                raise ConflictError(
                    "exists and is not managed by secret-manager-functions", field=entry.name
                ) from None
        else:
            etag = current.handle.etag if current.handle else None
            self._call("set_configuration_setting", entry.name, self.client.set_configuration_setting,
                       setting, match_condition=MatchConditions.IfNotModified, etag=etag)  # fmt: skip
        if tombstone is not None:
            try:
                self._call("delete_configuration_setting", entry.name, self.client.delete_configuration_setting,
                           entry.name, label=self.tombstone_label, etag=tombstone.handle.etag,
                           match_condition=MatchConditions.IfNotModified)  # fmt: skip
            except NotFoundError:
                pass

    def mark(self, entry: DesiredEntry, current: StoredEntry) -> None:
        """App Configuration keeps no versions and tags are part of the key-value: the same
        value is written back with our tags, conditional on the ETag listed."""
        self.put(entry, current)

    def _delete(self, current: StoredEntry, commit: str | None) -> None:
        from azure.core import MatchConditions

        handle = current.handle
        if handle is None or (handle.label or None) != self.label:
            raise StoreError("refusing to delete a key-value that is not ours (label or ownership)",
                             field=current.name)  # fmt: skip
        if current.tombstone:
            return
        if commit:  # first, so that no failure leaves a delete unrecorded
            self._write_tombstone(current, commit)
        self._call("delete_configuration_setting", current.name, self.client.delete_configuration_setting,
                   handle.key, label=self.label, etag=handle.etag,
                   match_condition=MatchConditions.IfNotModified)  # fmt: skip

    def _write_tombstone(self, current: StoredEntry, commit: str) -> None:
        """The key under the tombstone label: empty value, owner and deleting commit in tags."""
        from azure.appconfiguration import ConfigurationSetting

        tags = {MANAGED_BY_KEY: MANAGED_BY_VALUE, META_OWNER: current.owner or "", META_COMMIT: commit,
                META_TOMBSTONE: "1"}  # fmt: skip
        setting = ConfigurationSetting(key=current.name, label=self.tombstone_label, value="", tags=tags)
        self._call("set_configuration_setting", current.name, self.client.set_configuration_setting, setting)

    def read_values(self, entries: list[StoredEntry]) -> dict[str, str]:
        """Current values for drift detection, from one label-scoped listing (100 per page)
        rather than one GET per key."""
        wanted = {e.name for e in entries}
        out: dict[str, str] = {}
        settings = self._call("list_configuration_settings", None, self.client.list_configuration_settings,
                              label_filter=self.label_filter, fields=LIST_FIELDS)  # fmt: skip
        for s in self._mapped("reading", None, list, settings):
            if s.key in wanted and (s.label or None) == self.label:
                out[s.key] = s.value or ""
        return out
