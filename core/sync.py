"""One sync run: configs × source tree → report. The spine every trigger calls.

trigger → fetch (a SourceTree) → discover → decrypt → parse → route → name → plan → apply
→ report. A service whose files fail to read, decrypt, parse or name is reported and left
untouched in every store (its entries are neither written nor pruned); other services go on.
Naming, checks and clash settling are core/desired.py; planning and drift are core/plan.py.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from core import registry
from core.config import SecretManagerConfig
from core.desired import ServiceState, desired_state
from core.discover import ServiceFiles, discover
from core.errors import DecryptError, ParseError, SyncError
from core.fingerprint import fingerprint, resolve_key
from core.model import DesiredEntry, ListQuery
from core.parsers import decode_file, parse_file
from core.plan import check_drift, plan_store
from core.report import Change, Report
from core.route import RoutedItem, is_secret_file, route, secret_store
from core.source import SourceTree
from core.stores.base import AuthError

if TYPE_CHECKING:
    from core.desired_cache import DesiredCache
    from core.stores.base import Store

log = logging.getLogger("smf.sync")

StoreFactory = Callable[[str, SecretManagerConfig], "Store"]


class Progress:
    """What a run tells an observer as it goes (a no-op here; the CLI's display overrides)."""

    def services(self, config: str, total: int) -> None:
        """`total` services of `config` are about to be read."""

    def service_read(self, config: str, service: str) -> None:
        """One service's files were read, decrypted and parsed (or failed)."""

    def store_planned(self, store: str, changes: list[Change]) -> None:
        """A store's plan is ready; apply (if any) follows."""


_NO_PROGRESS = Progress()


def run(
    configs: list[SecretManagerConfig],
    source: SourceTree,
    *,
    apply: bool,
    prune: bool | None = None,
    changed_paths: set[str] | None = None,
    drift: bool = False,
    store_factory: StoreFactory | None = None,
    keyring: object | None = None,
    allow_mass_delete: bool = False,
    env: dict[str, str] | None = None,
    progress: Progress | None = None,
    cache: DesiredCache | None = None,
) -> Report:
    """Reconcile every config against `source`.

    `prune` overrides `spec.sync.prune`. `changed_paths` limits the run to the services a push
    touched (None = full resync). `drift` reads store values to find hand edits (resync).
    `progress` is told what the run is doing (the CLI's progress display; see core.results).
    `cache` skips reading services whose files are unchanged (core/desired_cache.py); it is
    not used with `drift`, which reads every value anyway.
    """
    report = Report(commit=source.commit, applied=apply)
    factory = store_factory or _open_store
    env = env if env is not None else dict(os.environ)
    for config in configs:
        report.warnings.extend(config.warnings)
        if config.suspend:
            report.warnings.append(f"{config.name}: suspended, skipped")
            continue
        try:
            _run_config(
                config,
                source,
                report,
                apply=apply,
                prune=config.sync.prune if prune is None else prune,
                changed_paths=changed_paths,
                drift=drift,
                factory=factory,
                keyring=keyring,
                allow_mass_delete=allow_mass_delete,
                env=env,
                progress=progress or _NO_PROGRESS,
                cache=None if drift else cache,
            )
        except SyncError as exc:
            report.add_error(exc, config=config.name)
    log.info("sync finished", extra={"summary": report.summary, "errors": len(report.errors)})
    return report


def _open_store(kind: str, config: SecretManagerConfig) -> Store:
    from core.stores import open_store

    return open_store(kind, config)


def _run_config(
    config: SecretManagerConfig,
    source: SourceTree,
    report: Report,
    *,
    apply: bool,
    prune: bool,
    changed_paths: set[str] | None,
    drift: bool,
    factory: StoreFactory,
    keyring: object | None,
    allow_mass_delete: bool,
    env: dict[str, str],
    progress: Progress,
    cache: DesiredCache | None,
) -> None:
    services = [ServiceState(s) for s in discover(config, source, changed_paths)]
    progress.services(config.name, len(services))
    full = changed_paths is None
    if not services and not (full and prune):
        return  # nothing this config cares about: no store calls at all

    stores: dict[str, Store] = {}

    def store(kind: str) -> Store:
        if kind not in stores:
            stores[kind] = factory(kind, config)
        return stores[kind]

    try:
        ring = keyring

        def ring_for() -> object:
            nonlocal ring
            if ring is None:
                ring = _make_keyring(config, store, env)
            return ring

        fp_key = None

        def key_for() -> bytes:
            nonlocal fp_key
            if fp_key is None:
                fp_key = resolve_key(
                    store(secret_store(config)), env, create=apply
                )  # the secret store keeps it
            return fp_key

        if cache is not None and services:
            try:
                key_for()
            except SyncError:
                cache = None  # the same error comes again below, where it always did
            else:
                _look_up(cache, config, services, source, key_for())
        # one request for the blobs of every service that must be read
        source.prefetch(p for s in services if s.cached is None for p in s.files.files)
        for svc in services:
            if svc.cached is None:
                mark = len(report.warnings)
                try:
                    svc.items = _collect(config, svc.files, source, report, ring_for, env)
                except AuthError:
                    raise  # no credentials (e.g. for the age key secret): once per config
                except SyncError as exc:
                    svc.failed = True
                    report.add_error(exc, config=config.name, service=svc.files.service)
                svc.warnings = report.warnings[mark:]
            progress.service_read(config.name, svc.files.service)

        desired = desired_state(config, services, store, report)
        failed_owners = {s.files.owner for s in services if s.failed}
        ok_owners = {s.files.owner for s in services if not s.failed}
        kinds = set(registry.kinds_in_use(config)) | set(desired)
        if not full and not prune:
            # An incremental run without pruning has nothing to do in a store it writes nothing
            # to; with pruning, a deleted file's entries must still be found and removed.
            kinds = set(desired)
        hydrate = _Hydrator(config, services, source, store, ring_for, env, report, cache)
        for kind in sorted(kinds):
            entries = [e for e in desired.get(kind, []) if e.owner in ok_owners]
            st = store(kind)
            key = key_for()
            for e in entries:
                if e.value is None:
                    continue  # from the cache: named, checked and fingerprinted last time
                e.fingerprint = _fingerprint(key, kind, e)
                e.commit = source.commit
                e.repo = e.repo or (config.source.url or source.origin)
            query = ListQuery(
                owners=ok_owners,
                names={e.name for e in entries},
                prefixes=_prefixes(entries),
                owner_prefixes={f"{config.name}/"} if full and prune else set(),
            )
            stored = st.list_entries(query)
            plan = plan_store(
                kind,
                entries,
                stored,
                policy=config.sync,
                prune=prune,
                owners=ok_owners,
                prune_owner_prefixes=query.owner_prefixes,
                case_insensitive=st.rules.case_insensitive,
                is_ancestor=source.is_ancestor,
                allow_mass_delete=allow_mass_delete,
                commit=source.commit,
                protected_owners=failed_owners,
            )
            for err in plan.errors:
                report.add_error(err, config=config.name, store=kind)
            if drift and config.sync.drift != "ignore" and st.can_read_values:
                check_drift(st, plan, key, config.sync.drift)
            hydrate(plan, key, ok_owners, failed_owners)
            progress.store_planned(kind, plan.changes)
            if apply:
                from core.apply import apply_store_plan

                apply_store_plan(st, plan, report, concurrency=config.sync.concurrency)
            report.changes.extend(plan.changes)
        if cache is not None and fp_key is not None:
            _save(cache, services, fp_key)
    finally:
        for st in stores.values():
            st.close()


def _look_up(
    cache: DesiredCache,
    config: SecretManagerConfig,
    services: list[ServiceState],
    source: SourceTree,
    fp_key: bytes,
) -> None:
    """Give every service whose inputs are unchanged its record (`svc.cached`)."""
    from core.desired_cache import config_digest

    config_id = config_digest(config)
    for svc in services:
        if svc.files.kustomize:
            continue
        blobs = [(p, source.blob_id(p)) for p in svc.files.files]
        if all(b is not None for _, b in blobs):
            svc.cache_key = cache.key(config_id, fp_key, svc.files, blobs)  # type: ignore[arg-type]
    found = cache.lookup([s.cache_key for s in services if s.cache_key], fp_key)
    for svc in services:
        svc.cached = found.get(svc.cache_key) if svc.cache_key else None


def _save(cache: DesiredCache, services: list[ServiceState], fp_key: bytes) -> None:
    from core.desired_cache import record

    records = {}
    for svc in services:
        if svc.cache_key and svc.cached is None and svc.by_store is not None and not svc.failed:
            rec = record(svc.by_store, svc.warnings, svc.adjusted)
            if rec is not None:
                records[svc.cache_key] = rec
    cache.save(records, fp_key)


class _Hydrator:
    """Values for the cached entries a plan would write: the service is read from Git again,
    exactly as without the cache. A service that now fails to read fails alone: its
    changes leave the plan and its entries are protected in the stores planned after it."""

    WRITES = ("create", "update")

    def __init__(self, config, services, source, store, ring_for, env, report, cache) -> None:  # type: ignore[no-untyped-def]
        self.config, self.source, self.store, self.ring_for, self.env = config, source, store, ring_for, env
        self.report, self.cache = report, cache
        self.by_owner = {s.files.owner: s for s in services}
        self.done: dict[str, dict[tuple[str, str], DesiredEntry] | None] = {}

    def __call__(self, plan, fp_key, ok_owners: set[str], failed_owners: set[str]) -> None:  # type: ignore[no-untyped-def]
        need = {c.owner for c in plan.changes if c.action in self.WRITES and plan.desired.get(c.name)
                is not None and plan.desired[c.name].value is None}  # fmt: skip
        for owner in sorted(need):
            fresh = self._read(owner, fp_key)
            if fresh is not None:
                for c in plan.changes:
                    entry = plan.desired.get(c.name)
                    if c.owner == owner and entry is not None and entry.value is None:
                        got = fresh.get((entry.store, entry.name))
                        if got is not None:
                            entry.value, entry.fingerprint = got.value, got.fingerprint
                if all(plan.desired[c.name].value is not None for c in plan.changes
                       if c.owner == owner and c.action in self.WRITES and c.name in plan.desired):  # fmt: skip
                    continue
            svc = self.by_owner[owner]
            if fresh is not None:  # read fine, but not into the recorded names: never write
                self.report.add_error(SyncError("desired state differs from its cached record; run again",
                                                path=svc.files.directory), config=self.config.name,
                                      service=svc.files.service)  # fmt: skip
            if self.cache is not None and svc.cache_key:
                self.cache.forget([svc.cache_key])
            svc.failed = True
            ok_owners.discard(owner)
            failed_owners.add(owner)
            plan.changes = [c for c in plan.changes if c.owner != owner]

    def _read(self, owner: str, fp_key: bytes) -> dict[tuple[str, str], DesiredEntry] | None:
        if owner in self.done:
            return self.done[owner]
        svc, scratch = self.by_owner[owner], Report(commit=self.source.commit, applied=False)
        out: dict[tuple[str, str], DesiredEntry] | None = {}
        try:
            again = ServiceState(svc.files)
            again.items = _collect(self.config, svc.files, self.source, scratch, self.ring_for, self.env)
            for kind, entries in desired_state(self.config, [again], self.store, scratch).items():
                for e in entries:
                    e.fingerprint = _fingerprint(fp_key, kind, e)
                    out[(kind, e.name)] = e
            if again.failed:
                out = None
        except AuthError:
            raise
        except SyncError as exc:
            self.report.add_error(exc, config=self.config.name, service=svc.files.service)
            out = None
        if out is None and scratch.errors:
            self.report.errors.extend(scratch.errors)
        self.done[owner] = out
        return out


def _fingerprint(key: bytes, kind: str, e: DesiredEntry) -> str:
    """The entry's fingerprint in store `kind` (a disabled secret's differs, core/fingerprint.py)."""
    return fingerprint(key, kind, e.name, e.value, disabled=bool(e.options.get("disabled")))


def _prefixes(entries: list[DesiredEntry]) -> set[str]:
    out = set()
    for e in entries:
        cut = max(e.name.rfind("/"), e.name.rfind(":"))
        out.add(e.name[: cut + 1] if cut > 0 else e.name)
    return out


def _make_keyring(config: SecretManagerConfig, store: Callable[[str], Store], env: dict[str, str]) -> object:
    from core.sops import KeyRing

    identities: list[str] = []
    secret_name = (config.decryption or {}).get("ageKeySecret")
    if secret_name:
        try:
            text = store(secret_store(config)).read_secret(secret_name)
        except SyncError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise SyncError(
                f"cannot read the age key secret ({type(exc).__name__})", field="spec.decryption.ageKeySecret"
            ) from None
        identities = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("AGE-SECRET-KEY-")]
    return KeyRing(age_identities=identities, env=env)


def _collect(
    config: SecretManagerConfig,
    svc: ServiceFiles,
    source: SourceTree,
    report: Report,
    keyring: Callable[[], object],
    env: dict[str, str],
) -> list[RoutedItem]:
    """Read, decrypt, parse and route every file of one service. Raises on the first bad file.

    Fails closed: whatever a file holds, the outcome is its items or a SyncError naming it
    (the caller then fails only this service), never an exception that ends the run."""
    if svc.kustomize:
        from core.kustomize import routed_items

        return routed_items(
            config, svc.directory, source, report, lambda p: _decrypted(config, p, source, keyring)
        )
    items: list[RoutedItem] = []
    for path in svc.files:
        try:
            items.extend(_read_file(config, path, source, report, keyring))
        except SyncError:
            raise
        except Exception as exc:  # noqa: BLE001 (a parser bug must not stop the other services)
            log.warning("unexpected %s reading %s", type(exc).__name__, path)
            raise ParseError(f"cannot read this file ({type(exc).__name__})", path=path) from None
    return items


def _read_file(
    config: SecretManagerConfig, path: str, source: SourceTree, report: Report, keyring: Callable[[], object]
) -> list[RoutedItem]:
    from core import sops

    data = source.read(path)  # a file over the size limit is a ParseError there
    fmt = sops.detect_format(path)
    # A file with any ENC[...] value or any sops metadata is decrypted or fails; it is never
    # read as plaintext, whatever requireEncrypted says (stripped metadata must not turn
    # ciphertext and data-key envelopes into stored values).
    encrypted = sops.looks_encrypted(data, fmt)
    if encrypted:
        try:
            data = sops.decrypt(data, fmt, path=path, keyring=keyring(), strict=True)  # type: ignore[arg-type]
        except (sops.NotEncryptedError, sops.MetadataError, sops.FormatError) as exc:
            if isinstance(exc, sops.FormatError) and fmt != "binary":
                raise  # the file is unreadable YAML/JSON/...: its own error says where
            # (a binary-format file, e.g. .properties, that is not a sops JSON envelope has
            # no metadata at all)
            raise DecryptError(
                f"looks SOPS-encrypted but its metadata is missing or invalid ({exc.message})",
                path=path,
                line=exc.line,
                field=exc.field,
            ) from None
    text, warning = decode_file(path, data)
    parsed = parse_file(path, text, controller=config.file_semantics == "controller")
    if not encrypted:
        for item in parsed:  # what the byte test cannot see (escapes) the parsed entries show
            if sops.metadata_marker(item.key, item.value):
                raise DecryptError(
                    "looks SOPS-encrypted but its metadata is missing or invalid"
                    " (an ENC[...] value or a sops metadata key in a file without valid metadata)",
                    path=path,
                    line=item.line,
                )
        if is_secret_file(path):
            if config.secrets.require_encrypted:
                raise SyncError(
                    "secrets file is not SOPS-encrypted (spec.secrets.requireEncrypted)", path=path
                )
            report.warnings.append(f"{path}: secrets file is not SOPS-encrypted")
    if warning:
        report.warnings.append(warning)
    return route(config, path, parsed)


def _decrypted(
    config: SecretManagerConfig, path: str, source: SourceTree, keyring: Callable[[], object]
) -> bytes:
    """A file a kustomization names, decrypted when SOPS-encrypted (never read as plaintext)."""
    from core import sops

    data = source.read(path)  # a file over the size limit is a ParseError there
    fmt = sops.detect_format(path)
    if sops.looks_encrypted(data, fmt):
        return sops.decrypt(data, fmt, path=path, keyring=keyring(), strict=True)  # type: ignore[arg-type]
    return data
