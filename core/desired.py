"""Desired state: from routed values to the checked entries each store should hold.

One step of the spine (core/sync.py), in one place: **name** every routed value once (the
config's naming scheme and the store's rules, `core.naming.assign`), let each store the
config works with **prepare** its part of a service (bundle a document, derive references),
**check** every name and value against its store's rules, and **settle clashes**: two
sources landing on one name (case-insensitively where the store is) are an error naming
both, and every service involved is left untouched in every store.

A service that fails here is marked `failed`, so plan protects its stored entries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core import registry
from core.config import SecretManagerConfig
from core.discover import ServiceFiles
from core.errors import SyncError
from core.model import DesiredEntry
from core.naming import rules_for
from core.naming.assign import check_entry, clashes, render_name_noting
from core.report import Report
from core.route import RoutedItem
from core.stores.base import AuthError

if TYPE_CHECKING:
    from core.stores.base import Store

#: store kind → desired entries, for one service (or, merged, for one config).
ByStore = dict[str, list[DesiredEntry]]


@dataclass
class ServiceState:
    """One discovered service on its way through the run."""

    files: ServiceFiles
    items: list[RoutedItem] = field(default_factory=list)
    failed: bool = False
    #: Its desired-state cache key and, on a hit, the record (core/desired_cache.py).
    cache_key: str | None = None
    cached: dict[str, Any] | None = None
    #: What reading and naming it warned, and the controller names it had to adjust: kept
    #: in its record and replayed on a hit.
    warnings: list[str] = field(default_factory=list)
    adjusted: list[list[str]] = field(default_factory=list)
    #: Its checked entries by store when computed this run (what a record is made of).
    by_store: ByStore | None = None


def desired_state(
    config: SecretManagerConfig,
    services: list[ServiceState],
    store: Callable[[str], Store],
    report: Report,
) -> ByStore:
    """Checked desired entries per store kind of every service that did not fail."""
    per_service: dict[str, ByStore] = {}
    by_owner: dict[str, ServiceState] = {}
    #: store → (the controller's name the store refuses, the nearest valid name used)
    adjusted: dict[str, list[tuple[str, str]]] = {}
    for svc in services:
        if svc.failed:
            continue
        by_owner[svc.files.owner] = svc
        if svc.cached is not None:  # unchanged inputs: last time's entries, without values
            from core import desired_cache

            per_service[svc.files.owner] = desired_cache.entries(svc.cached)
            report.warnings.extend(svc.cached["warnings"])
            for kind, wanted, used in svc.cached["adjusted"]:
                adjusted.setdefault(kind, []).append((wanted, used))
            continue
        mark, own = len(report.warnings), {}
        try:
            by_store = _name_service(config, svc, report, own)
            _prepare(config, by_store, store)
            _check(by_store)
            _skip_undisableable(by_store, store, report)
        except AuthError:
            raise  # no credentials: the whole config fails, reported once (not per service)
        except SyncError as exc:
            svc.failed = True
            report.add_error(exc, config=config.name, service=svc.files.service)
            continue
        svc.warnings += report.warnings[mark:]
        for kind, pairs in own.items():
            adjusted.setdefault(kind, []).extend(pairs)
            svc.adjusted += [[kind, wanted, used] for wanted, used in pairs]
        per_service[svc.files.owner] = svc.by_store = by_store
    for kind, pairs in adjusted.items():
        wanted, used = pairs[0]
        report.warnings.append(
            f"{config.name}: {len(pairs)} controller name(s) are refused by {kind}; the nearest valid "
            f"names are used (e.g. {wanted!r} -> {used!r}; docs/migration.md, Names)"
        )
    _settle_clashes(config, per_service, by_owner, report)
    out: ByStore = {}
    for by_store in per_service.values():
        for kind, entries in by_store.items():
            out.setdefault(kind, []).extend(entries)
    return out


def _name_service(
    config: SecretManagerConfig,
    svc: ServiceState,
    report: Report,
    adjusted: dict[str, list[tuple[str, str]]],
) -> ByStore:
    """Name each of one service's routed items, once."""
    f = svc.files
    by_store: ByStore = {}
    items = _controller_merge(svc.items) if config.file_semantics == "controller" else svc.items
    for item in items:
        rules = rules_for(item.store)
        if item.value == "" and not rules.allow_empty_value:
            report.warnings.append(
                f"{item.source}: empty value not synced ({item.store} refuses empty values)"
            )
            continue
        name, refused = render_name_noting(
            config, item.store, item.kind, f.service, f.prefix, f.environment, item.key
        )
        if refused:
            adjusted.setdefault(item.store, []).append((refused, name))
        by_store.setdefault(item.store, []).append(
            DesiredEntry(
                store=item.store,
                name=name,
                value=item.value,
                kind=item.kind,  # type: ignore[arg-type]
                source=item.source,
                owner=f.owner,
                line=item.line,
                options={
                    "service": f.service,
                    "environment": f.environment,
                    "key": item.key,
                    "prefix": f.prefix,
                    "naming": config.naming,
                    **({"disabled": True} if item.disabled else {}),
                },
            )
        )
    return by_store


def _controller_merge(items: list[RoutedItem]) -> list[RoutedItem]:
    """The controller's merge of one service's secrets files: a key in both
    `application.secrets.env` and `application.secrets.yaml` takes the yaml value
    (parser/parsers.rs:108-126: env inserted first, yaml overrides), instead of a clash."""
    yaml_keys = {i.key for i in items if _file_of(i) == "application.secrets.yaml"}
    return [i for i in items if not (_file_of(i) == "application.secrets.env" and i.key in yaml_keys)]


def _file_of(item: RoutedItem) -> str:
    path = item.source[: -len(item.key) - 1] if item.source.endswith(f":{item.key}") else item.source
    return path.rsplit("/", 1)[-1]


def _skip_undisableable(by_store: ByStore, store: Callable[[str], Store], report: Report) -> None:
    """A disabled secret in a store that has no way to disable an entry is neither created nor
    changed nor pruned: plan shows it as `skipped`, and one warning per store says why."""
    for kind, entries in by_store.items():
        if getattr(store(kind), "can_disable", False):
            continue
        off = [e for e in entries if e.options.get("disabled")]
        for e in off:
            e.options["skip_reason"] = f"disabled in Git; {kind} cannot disable an entry, left as it is"
        if off:
            report.warnings.append(
                f"{off[0].source}: {len(off)} commented-out secret(s) not synced: {kind} cannot "
                "disable an entry (docs/migration.md, File semantics)"
            )


def _prepare(config: SecretManagerConfig, by_store: ByStore, store: Callable[[str], Store]) -> None:
    """Let every store the config works with reshape its part of one service, in place.

    Each is asked (e.g. App Configuration's Key Vault references, a kind that joins the run
    by its registry condition), the secret store first, so a derived entry sees its sources.
    """
    kinds = registry.kinds_in_use(config)
    kinds += [k for k in by_store if k not in kinds]
    for kind in kinds:
        prepared = store(kind).prepare(by_store.get(kind, []), by_store)
        if prepared:
            by_store[kind] = prepared
        else:
            by_store.pop(kind, None)


def _check(by_store: ByStore) -> None:
    """Raise the first name or value a store would refuse (before anything is written)."""
    for entries in by_store.values():
        for e in entries:
            err = check_entry(e.store, e.name, e.value, e.source)
            if err:
                raise err


def _settle_clashes(
    config: SecretManagerConfig,
    per_service: dict[str, ByStore],
    by_owner: dict[str, ServiceState],
    report: Report,
) -> None:
    """Fail every service with an entry in a clash (both sides), each clash reported once."""
    entries = [e for by_store in per_service.values() for es in by_store.values() for e in es]
    for owner_a, owner_b, err in clashes((e.store, e.name, e.source, e.owner) for e in entries):
        for owner in (owner_a, owner_b):
            if owner in per_service:
                by_owner[owner].failed = True
                del per_service[owner]
        report.add_error(err, config=config.name)
