"""Adopt what the Secret Manager Controller wrote: ``python -m core migrate --config FILE``.

The controller wrote bare entries: no ownership tag, label or annotation in any of its
providers (its GCP fork labels only ``environment`` and ``location``). So adoption cannot be
automatic, and it must not be blind. `migrate` takes over exactly the entries

- whose name is the one the controller's naming (core/naming/controller.py) gives for a key
  of this manifest, in the store the manifest routes that key to, and
- that carry no ownership marker at all (ours or another tool's, ``managed-by: terraform``).

For each of them the stored value is read and compared with Git's: equal → **adopt** (our
metadata is added with the store's tag/label operation, `Store.mark`, so no new version and
no value write); different → **adopt+update** (the value and our metadata are written, and
only with ``--apply``). Everything else under a desired name is a **conflict** and stays one.
Entries already ours are left to plan/apply; names not in the store are created by the
first apply. A second run finds nothing to adopt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core import sync
from core.config import SecretManagerConfig
from core.desired import ServiceState, desired_state
from core.discover import discover
from core.errors import SyncError
from core.fingerprint import fingerprint, resolve_key
from core.model import DesiredEntry, ListQuery, StoredEntry
from core.naming import controller as controller_naming
from core.naming import rules_for
from core.report import Report
from core.source import SourceTree

if TYPE_CHECKING:
    from core.stores.base import Store

ADOPT = "adopt"
ADOPT_UPDATE = "adopt+update"
CONFLICT = "conflict"
ACTIONS = (ADOPT, ADOPT_UPDATE, CONFLICT)


@dataclass
class Adoption:
    """One entry `migrate` adopts (or would), or refuses to adopt (`conflict`)."""

    action: str
    store: str
    name: str
    source: str
    reason: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"action": self.action, "store": self.store, "name": self.name, "source": self.source}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class MigrationReport:
    commit: str | None
    applied: bool
    adoptions: list[Adoption] = field(default_factory=list)
    #: Desired entries already ours, and names the store does not hold yet (apply creates them).
    ours: int = 0
    missing: int = 0
    #: Errors and warnings of reading the manifest's files (a `Report`'s, reused).
    run: Report = field(default_factory=lambda: Report(commit=None))

    @property
    def summary(self) -> dict[str, int]:
        out = {a: sum(1 for x in self.adoptions if x.action == a) for a in ACTIONS}
        return {**out, "ours": self.ours, "missing": self.missing}

    def to_dict(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "applied": self.applied,
            "adoptions": [a.to_dict() for a in self.adoptions],
            "summary": self.summary,
            "errors": self.run.to_dict()["errors"],
            "warnings": list(self.run.warnings),
        }

    def render(self) -> str:
        """Names, actions and sources only: never a value."""
        verb = {ADOPT: "adopted", ADOPT_UPDATE: "adopted+updated"} if self.applied else {}
        lines = [f"migrate {'apply' if self.applied else 'plan'} at commit {(self.commit or '?')[:12]}"]
        for store in sorted({a.store for a in self.adoptions}):
            lines.append(f"  {store}")
            for a in (x for x in self.adoptions if x.store == store):
                why = f"  ({a.reason})" if a.reason else ""
                lines.append(f"    {verb.get(a.action, a.action):<16} {a.name}  <- {a.source}{why}")
        s = self.summary
        if not (s[ADOPT] or s[ADOPT_UPDATE]):
            lines.append("Nothing to adopt.")
        lines.append(
            f"{s[ADOPT]} adopt (metadata only), {s[ADOPT_UPDATE]} adopt+update, {s[CONFLICT]} conflict, "
            f"{s['ours']} already ours, {s['missing']} not in the store yet"
        )
        lines += [f"warning: {w}" for w in self.run.warnings]
        lines += [
            f"error: {e.get('path') or e.get('field') or ''}: {e.get('message')}" for e in self.run.errors
        ]
        return "\n".join(lines)


def migrate(
    configs: list[SecretManagerConfig],
    source: SourceTree,
    *,
    apply: bool,
    store_factory: Callable[[str, SecretManagerConfig], Store] | None = None,
    env: dict[str, str] | None = None,
) -> MigrationReport:
    """Plan (or, with `apply`, perform) the adoption of the controller's entries."""
    report = MigrationReport(commit=source.commit, applied=apply, run=Report(commit=source.commit))
    factory = store_factory or sync._open_store
    env = env if env is not None else dict(os.environ)
    for config in configs:
        report.run.warnings.extend(config.warnings)
        try:
            _migrate_config(config, source, report, apply=apply, factory=factory, env=env)
        except SyncError as exc:
            report.run.add_error(exc, config=config.name)
    return report


def _migrate_config(
    config: SecretManagerConfig,
    source: SourceTree,
    report: MigrationReport,
    *,
    apply: bool,
    factory: Callable[[str, SecretManagerConfig], Store],
    env: dict[str, str],
) -> None:
    services = [ServiceState(s) for s in discover(config, source)]
    stores: dict[str, Store] = {}

    def store(kind: str) -> Store:
        if kind not in stores:
            stores[kind] = factory(kind, config)
        return stores[kind]

    ring: object | None = None

    def ring_for() -> object:
        nonlocal ring
        if ring is None:
            ring = sync._make_keyring(config, store, env)
        return ring

    try:
        for svc in services:
            try:
                svc.items = sync._collect(config, svc.files, source, report.run, ring_for, env)
            except SyncError as exc:
                svc.failed = True
                report.run.add_error(exc, config=config.name, service=svc.files.service)
        desired = desired_state(config, services, store, report.run)
        for kind in sorted(desired):
            _migrate_store(config, store(kind), desired[kind], source, report, apply=apply, env=env)
    finally:
        for st in stores.values():
            st.close()


def _migrate_store(
    config: SecretManagerConfig,
    st: Store,
    entries: list[DesiredEntry],
    source: SourceTree,
    report: MigrationReport,
    *,
    apply: bool,
    env: dict[str, str],
) -> None:
    fp_key = resolve_key(st.load_fingerprint_key(), env)
    for e in entries:
        e.fingerprint = fingerprint(fp_key, st.kind, e.name, e.value)
        e.commit = source.commit
        e.repo = e.repo or (config.source.url or source.origin)
    query = ListQuery(owners=set(), names={e.name for e in entries}, prefixes=sync._prefixes(entries))
    fold = (lambda n: n.lower()) if st.rules.case_insensitive else (lambda n: n)
    stored = {fold(s.name): s for s in st.list_entries(query)}
    candidates: list[tuple[DesiredEntry, StoredEntry]] = []
    for e in entries:
        cur = stored.get(fold(e.name))
        if cur is None or cur.tombstone:  # a tombstone only records a delete: nothing is there
            report.missing += 1
        elif cur.managed:
            report.ours += 1
        elif cur.deleted:
            report.adoptions.append(Adoption(CONFLICT, st.kind, e.name, e.source, "deleted in the store"))
        elif cur.foreign_owner:
            report.adoptions.append(
                Adoption(CONFLICT, st.kind, e.name, e.source, f"owned by another tool ({cur.foreign_owner})")
            )
        elif not is_controller_name(config, e) or cur.name != e.name:
            report.adoptions.append(
                Adoption(CONFLICT, st.kind, e.name, e.source, "not a name the controller wrote for this key")
            )
        else:
            candidates.append((e, cur))
    values = st.read_values([cur for _, cur in candidates]) if candidates else {}
    for e, cur in candidates:
        equal = cur.name in values and same_value(e, values[cur.name])
        report.adoptions.append(Adoption(ADOPT if equal else ADOPT_UPDATE, st.kind, e.name, e.source))
        if apply:
            if equal:
                st.mark(e, cur)
            else:
                st.put(e, cur)


def is_controller_name(config: SecretManagerConfig, entry: DesiredEntry) -> bool:
    """Whether `entry.name` is exactly what the controller computed for its key and store
    (a nearest valid name the store forced is not: the controller never wrote it)."""
    opts = entry.options
    if "key" not in opts or opts.get("keyVaultReference"):
        return False
    name, wanted = controller_naming.name_for(
        rules_for(entry.store),
        prefix=opts.get("prefix", ""),
        environment=opts.get("environment", ""),
        key=opts["key"],
        suffix=config.secrets.suffix,
        parameter_path_option=config.configs.parameter_path,
        config_store=entry.kind == "config" and config.configs.enabled,
    )
    return name == wanted == entry.name


def same_value(entry: DesiredEntry, stored: str) -> bool:
    """Git's value equals the stored one. The properties blob compares as JSON: the
    controller serialised a hash map, so its key order is arbitrary."""
    if entry.value == stored:
        return True
    if entry.source.endswith(":*"):
        try:
            return json.loads(entry.value) == json.loads(stored)
        except ValueError:
            return False
    return False
