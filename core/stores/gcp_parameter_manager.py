"""GCP Parameter Manager: configs as parameters, global or regional.

Options (``spec.provider.gcp.parameterManager``):

``mode: perKey`` (default)
    One parameter per key (the seed's "individual properties"), format ``UNFORMATTED``: the
    version payload is the value itself. Use it when consumers read single values, or when
    several teams own keys of one service.
``mode: document``
    One parameter per service and environment (``documentName``, default
    ``{prefix}-{environment}{suffix}``) whose payload is one ``YAML`` (default) or ``JSON``
    document of all the service's config keys (``UNFORMATTED`` writes ``.properties`` text).
    With ``secretReferences: true`` the document also maps each of the service's Secret
    Manager keys to ``__REF__(//secretmanager.googleapis.com/projects/P/secrets/S/versions/latest)``,
    so an app reads one rendered document (``RenderParameterVersion``) holding configs and
    secrets, while secret values never enter Parameter Manager. A version holds at most 15
    references (a documented limit), so a service with more secrets fails naming, before any
    write.
``location``
    ``global`` (default) or a region (``us-central1``: served by
    ``parametermanager.us-central1.rep.googleapis.com``).

A parameter's format is immutable: when the configured format changes, a managed parameter is
deleted and re-created (its version history goes with it). Versions are immutable: a new one
is created only when the value changed (plan compares fingerprints; on adoption the newest
payload is compared), with an id that cannot collide:
``v{UTC yyyymmdd-HHMMSS}-{commit[:12]}-{8 random hex}``. Superseded versions are kept.

Parameters carry only labels, so all metadata (ownership, fingerprint, provenance) is stored
there with the label encoding of `core.stores._gcp`.

Deletion ordering: a delete removes the parameter and its versions for good, so it first
writes a version-less ``smf-tombstone-<sha256>`` parameter recording owner and deleting commit
(`core.stores._gcp`); the same listing returns it, and a create under the name deletes it.
"""

from __future__ import annotations

import json
import secrets as _random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from core.errors import NamingError, StoreError
from core.model import (
    DesiredEntry,
    ListQuery,
    StoredEntry,
)
from core.options import option
from core.stores import _gcp
from core.stores.base import ConflictError, NotFoundError
from core.stores.gcp_secret_manager import SecretManagerStore

if TYPE_CHECKING:
    from core.config import SecretManagerConfig

#: The kind whose secrets a document references (its id is declared in core.registry).
SECRET_STORE = SecretManagerStore.kind
#: Documented: a parameter version may hold at most 15 secret references.
MAX_REFERENCES = 15
_FORMATS = ("UNFORMATTED", "YAML", "JSON")


@dataclass(frozen=True)
class ParameterManagerOptions:
    """``spec.provider.gcp.parameterManager`` (see the module docstring)."""

    mode: str = option("perKey", enum=("perKey", "document"))
    format: str = option("YAML", enum=("YAML", "JSON", "UNFORMATTED"))
    location: str = "global"
    secret_references: bool = False
    #: Document mode: the parameter id template.
    document_name: str | None = None

    def problems(self, provider: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
        if self.mode == "document" and self.secret_references and self.format == "UNFORMATTED":
            return [("secretReferences", "need format YAML or JSON (UNFORMATTED is never rendered)")]
        return []


class ParameterManagerStore(_gcp.GcpStore):
    kind: ClassVar[str] = "gcp-parameter-manager"
    #: Parameter Manager allows 1,200 requests/min per project; 8 in flight stays below it.
    max_concurrency: ClassVar[int] = 8
    can_read_values: ClassVar[bool] = True
    #: Parameters per ListParameters page.
    list_page_size: int = 1000

    def __init__(
        self,
        project: str,
        *,
        location: str = ParameterManagerOptions.location,
        mode: str = ParameterManagerOptions.mode,
        document_format: str = ParameterManagerOptions.format,
        secret_references: bool = ParameterManagerOptions.secret_references,
        secret_location: str | None = None,
        client: Any = None,
    ) -> None:
        if document_format not in _FORMATS:
            raise StoreError(
                f"unknown parameter format {document_format!r}",
                field="spec.provider.gcp.parameterManager.format",
            )
        chosen = ParameterManagerOptions(
            mode=mode, format=document_format, secret_references=secret_references
        )
        for where, problem in chosen.problems():
            raise StoreError(f"{where} {problem}", field=f"spec.provider.gcp.parameterManager.{where}")
        super().__init__(client)
        self.project = project
        self.location = location or "global"
        self.mode = mode
        self.document_format = document_format
        self.secret_references = secret_references
        self.secret_location = None if secret_location in (None, "", "global") else secret_location

    @classmethod
    def from_config(cls, config: SecretManagerConfig) -> ParameterManagerStore:
        gcp = config.provider_settings
        pm: ParameterManagerOptions = config.options_for(cls.kind)
        return cls(
            gcp.project_id,
            location=pm.location,
            mode=pm.mode,
            document_format=pm.format,
            secret_references=pm.secret_references,
            secret_location=gcp.location,
        )

    # -- plumbing ----------------------------------------------------------------------
    def _make_client(self) -> Any:
        return _gcp.parameter_manager_client(self.location)

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    def parameter_path(self, name: str) -> str:
        return f"{self.parent}/parameters/{name}"

    def secret_reference(self, secret_name: str) -> str:
        parent = f"projects/{self.project}"
        if self.secret_location:
            parent += f"/locations/{self.secret_location}"
        return f"__REF__(//secretmanager.googleapis.com/{parent}/secrets/{secret_name}/versions/latest)"

    # -- prepare: the document mode ----------------------------------------------------
    def prepare(
        self, entries: list[DesiredEntry], service_entries: dict[str, list[DesiredEntry]]
    ) -> list[DesiredEntry]:
        """Document mode: bundle the service's entries into the one parameter they are all
        named after (core.naming.gcp_parameter_manager names them so; nothing is renamed)."""
        if self.mode != "document":
            for e in entries:
                e.options["format"] = "UNFORMATTED"
            return entries
        if not entries:
            return entries
        first = entries[0]
        names = sorted({e.name for e in entries})
        if len(names) != 1:
            raise NamingError(f"one document per service, but its entries are named {', '.join(names)}",
                              field=str(first.options.get("service")))  # fmt: skip
        doc: dict[str, str] = {}
        origin: dict[str, str] = {}
        for e in entries:
            key = str(e.options.get("key") or e.source.rsplit(":", 1)[-1])
            if key in doc:
                raise NamingError(
                    f"key {key!r} is set twice for one document ({origin[key]})", field=e.source
                )
            doc[key], origin[key] = e.value, e.source
        if self.secret_references:
            refs = [e for e in service_entries.get(SECRET_STORE, []) if e.kind == "secret"]
            if len(refs) > MAX_REFERENCES:
                raise NamingError(
                    f"{len(refs)} secrets to reference; a Parameter Manager version holds at most "
                    f"{MAX_REFERENCES} (set parameterManager.secretReferences: false or split the service)",
                    field=str(first.options.get("service")),
                )
            for e in refs:
                key = str(e.options.get("key") or e.source.rsplit(":", 1)[-1])
                if key in doc:
                    raise NamingError(
                        f"key {key!r} is both a config ({origin[key]}) and a secret", field=e.source
                    )
                doc[key], origin[key] = self.secret_reference(e.name), e.source
        paths = sorted({e.source.rsplit(":", 1)[0] for e in entries})
        return [
            DesiredEntry(
                store=self.kind, name=first.name, value=self._serialize(doc), kind="config",
                source=",".join(paths) + ":*", owner=first.owner, repo=first.repo,
                commit=first.commit,
                content_type={"YAML": "application/yaml", "JSON": "application/json"}.get(
                    self.document_format, "text/x-java-properties"),
                options={**{k: first.options[k] for k in ("service", "environment", "prefix")
                            if k in first.options},
                         "key": "*", "format": self.document_format, "document": True,
                         "keys": sorted(doc)},
            )
        ]  # fmt: skip

    def _serialize(self, doc: dict[str, str]) -> str:
        if self.document_format == "JSON":
            return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        if self.document_format == "YAML":
            import yaml

            return yaml.safe_dump(doc, sort_keys=True, allow_unicode=True, default_flow_style=False)
        import javaproperties

        return javaproperties.dumps(doc, timestamp=False, sort_keys=True)

    # -- Store -------------------------------------------------------------------------
    def _list(self, query: ListQuery) -> list[StoredEntry]:
        # Filtered here, not by the server: unmanaged entries named in the query count too.
        request: dict[str, Any] = {"parent": self.parent, "page_size": self.list_page_size}
        return _gcp.live_first(
            self._list_wanted("list_parameters", request, "parameters", self._stored, query)
        )

    def _stored(self, param: Any) -> StoredEntry:
        labels = dict(param.labels)
        meta = _gcp.decode_labels(labels)
        tomb = _gcp.tombstone_entry(
            param.name.rsplit("/", 1)[-1], meta, {"path": param.name, "labels": labels}
        )
        if tomb is not None:
            return tomb
        return StoredEntry.from_metadata(
            param.name.rsplit("/", 1)[-1],
            meta,
            handle={"path": param.name, "labels": labels, "format": _format_name(param.format_)},
        )

    def _put(self, entry: DesiredEntry, current: StoredEntry | None) -> None:
        if current is not None and current.tombstone:
            self._put(entry, None)  # nothing holds the name: a create, then the tombstone goes
            self._drop_tombstone(current)
            return
        from google.cloud.parametermanager_v1 import ParameterFormat

        fmt = entry.options.get("format") or (
            "UNFORMATTED" if self.mode != "document" else self.document_format
        )
        data = entry.value.encode("utf-8")
        labels = _gcp.entry_labels(entry.metadata(), entry.options)
        path = self.parameter_path(entry.name)
        if current is not None and (current.handle or {}).get("format") not in (None, fmt):
            if not current.managed:
                raise ConflictError(
                    f"parameter has format {current.handle['format']}, not {fmt}; formats are "
                    "immutable, so it cannot be adopted",
                    field=entry.name,
                )
            self._delete_all(entry.name, path)  # format changed in the config: re-create
            current = None
        if current is None:
            try:
                self._rpc(
                    "create_parameter",
                    entry.name,
                    request={
                        "parent": self.parent,
                        "parameter_id": entry.name,
                        "parameter": {
                            "format_": ParameterFormat[fmt],
                            "labels": _gcp.merge_labels({}, labels),
                        },
                    },
                )
            except ConflictError:  # AlreadyExists
                existing = self._stored(self._rpc("get_parameter", entry.name, name=path))
                if not (existing.managed and existing.owner == entry.owner):
                    raise ConflictError(
                        "a parameter of this name exists and is not managed by this config", field=entry.name
                    ) from None
                current = existing
            else:
                try:
                    self._add_version(entry, path, data)
                except StoreError:
                    self._rollback_create(path)
                    raise
                return
        if not (current.fingerprint is None and self._latest_payload(path) == data):
            self._add_version(entry, path, data)
        self._rpc(
            "update_parameter",
            entry.name,
            parameter={"name": path, "labels": _gcp.merge_labels(current.handle.get("labels", {}), labels)},
            update_mask={"paths": ["labels"]},
        )

    def mark(self, entry: DesiredEntry, current: StoredEntry) -> None:
        """Add our metadata to an entry that already holds `entry.value`: no new version."""
        labels = _gcp.entry_labels(entry.metadata(), entry.options)
        self._rpc(
            "update_parameter", entry.name,
            parameter={"name": self.parameter_path(entry.name),
                       "labels": _gcp.merge_labels((current.handle or {}).get("labels", {}), labels)},
            update_mask={"paths": ["labels"]},
        )  # fmt: skip

    def _rollback_create(self, path: str) -> None:
        """A parameter created without its version would carry a fingerprint it lacks."""
        try:
            self._rpc("delete_parameter", path, name=path)
        except StoreError:  # best effort; the error being raised says more
            pass

    def _add_version(self, entry: DesiredEntry, path: str, data: bytes) -> None:
        for attempt in range(3):
            vid = new_version_id(entry.commit)
            try:
                self._rpc(
                    "create_parameter_version",
                    entry.name,
                    scrub=data,
                    request={
                        "parent": path,
                        "parameter_version_id": vid,
                        "parameter_version": {"payload": {"data": data}},
                    },
                )
                return
            except ConflictError:
                if attempt < 2:
                    continue  # practically impossible (random suffix); pick another id
                raise

    def _versions(self, name: str, path: str) -> list[Any]:
        pager = self._rpc("list_parameter_versions", name, request={"parent": path, "page_size": 1000})
        return sorted(pager, key=lambda v: (v.create_time, v.name))

    def _latest_payload(self, path: str) -> bytes | None:
        name = path.rsplit("/", 1)[-1]
        versions = [v for v in self._versions(name, path) if not v.disabled]
        if not versions:
            return None
        v = self._rpc("get_parameter_version", name, name=versions[-1].name)
        return bytes(v.payload.data)

    def _delete_all(self, name: str, path: str) -> None:
        for v in self._versions(name, path):
            self._rpc("delete_parameter_version", name, name=v.name)
        self._rpc("delete_parameter", name, name=path)

    def _delete(self, current: StoredEntry, commit: str | None) -> None:
        if current.tombstone:
            return
        if commit:  # first, so that no failure leaves a delete unrecorded
            self._write_tombstone(current, commit)
        path = (current.handle or {}).get("path") or self.parameter_path(current.name)
        self._delete_all(current.name, path)

    def _write_tombstone(self, current: StoredEntry, commit: str) -> None:
        """A parameter with no version (no value) recording the delete."""
        tomb = _gcp.tombstone_name(current.name)
        labels = _gcp.tombstone_labels(current, commit)
        try:
            self._rpc("create_parameter", current.name, request={
                "parent": self.parent, "parameter_id": tomb, "parameter": {"labels": labels}})  # fmt: skip
        except ConflictError:  # an earlier delete of this name left one: it now records this one
            self._rpc("update_parameter", current.name, parameter={"name": self.parameter_path(tomb), "labels": labels},
                      update_mask={"paths": ["labels"]})  # fmt: skip

    def _drop_tombstone(self, tombstone: StoredEntry) -> None:
        try:
            self._rpc("delete_parameter", tombstone.name, name=tombstone.handle["path"])
        except NotFoundError:
            pass

    def read_values(self, entries: list[StoredEntry]) -> dict[str, str]:
        """Newest payloads, read `max_concurrency` parameters at a time."""
        from concurrent.futures import ThreadPoolExecutor

        def one(entry: StoredEntry) -> tuple[str, bytes | None]:
            path = (entry.handle or {}).get("path") or self.parameter_path(entry.name)
            return entry.name, self._latest_payload(path)

        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            return {n: d.decode("utf-8", "replace") for n, d in pool.map(one, entries) if d is not None}

    def render(self, name: str) -> str:
        """The newest version of a parameter rendered (secret references resolved)."""
        path = self.parameter_path(name)
        versions = [v for v in self._versions(name, path) if not v.disabled]
        if not versions:
            raise StoreError("parameter has no enabled version", field=name)
        resp = self._rpc("render_parameter_version", name, name=versions[-1].name)
        return bytes(resp.rendered_payload).decode("utf-8")


def new_version_id(commit: str | None) -> str:
    """``v20260101-120000-0123456789ab-1a2b3c4d``: time-ordered, tied to the commit, unique."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"v{stamp}-{(commit or 'nocommit')[:12]}-{_random.token_hex(4)}"


def _format_name(value: Any) -> str:
    name = getattr(value, "name", None) or str(value)
    return "UNFORMATTED" if name in ("PARAMETER_FORMAT_UNSPECIFIED", "0") else name
