"""Fan-out: a run too large for one invocation becomes work items on the platform's queue.

Why: the stores cap write rates (tens of requests per second per account or project), so
100,000 first writes outlast a Lambda invocation (15 minutes), and one invocation cannot use
the platform's parallelism anyway. The receiving function (the queued push or resync job)
fetches the commit and discovers the services, as it would to sync them; when `FanoutPolicy`
says the run is too large, it registers the run in the run state (core.runstate) and puts
one work item per few services on the same queue, instead of syncing. Workers sync their
slice; the queue's retries and dead-lettering apply per item.

A work item is a ``work`` message (core.messages, signed like a push) whose data is::

    {"item": 1, "run": "<run id>", "id": "3", "op": "sync" | "prune", "config": "<name>",
     "repo": "<url>", "commit": "<sha>", "branch": "main", "services": ["<dir>", ...],
     "owners": [...], "kinds": [...], "drift": false, "prune": true, "apply": true,
     "budget": 600}

``item`` is the work-item schema version: a reader refuses a newer one (400, not retried)
rather than guess. Items are idempotent: a sync item reconciles its services to the commit
(a repeat finds fingerprints equal and writes nothing) and a prune item deletes entries whose
service is gone from that commit (a repeat finds nothing left to delete).

* **sync** items sync their services one after another, each with ``core.sync.run`` limited
  to that service's files (so other services are neither written nor pruned). Before each
  service after the first, a worker checks that the elapsed time plus the longest service
  so far fits the item's ``budget``; if not, it registers the remainder as a child item and
  queues it (core.runstate's `handoff`), then finishes its own part.
* **prune** items: services removed from Git are found once per run, by the dispatcher (one
  listing per store, the ``sync.maxDeleteFraction`` guard applied to the whole run), then
  fanned out by owner. The worker re-checks each owner against the commit's tree.

A store error in a slice (what the SDK's retries gave up on, e.g. throttling) answers 503 and
leaves the item pending: the queue redelivers it, and the repeat converges. When a worker
finishes the run's last item, it builds the run's one outcome and runs the after-sync hooks
once with it (core.intake.after_sync), so results are reported per run.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core import messages
from core.errors import GuardError, SyncError

if TYPE_CHECKING:
    from core.intake import Outcome, RunContext
    from core.source import SourceTree

log = logging.getLogger("smf.fanout")

KIND = "work"
#: The work-item schema this code writes and reads.
SCHEMA = 1


@dataclass(frozen=True)
class FanoutPolicy:
    """When a run is fanned out, and how it is cut (``SMF_FANOUT_*``, see docs/aws.md).

    A run fans out when it selects more than `max_services` services, when its estimated
    writes (services × `keys_per_service`) exceed `max_writes`, or when those writes at the
    store's assumed `write_rate` (per second) would not fit one item's `item_seconds`."""

    enabled: bool = True
    max_services: int = 200
    max_writes: int = 4000
    write_rate: float = 20.0
    keys_per_service: int = 20
    item_services: int = 10
    item_seconds: float = 600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FanoutPolicy:
        env = os.environ if env is None else env
        d = cls()

        def num(name: str, default: float) -> float:
            raw = env.get(name)
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise SyncError(f"{name} must be a number", field=name) from None
            if value <= 0:
                raise SyncError(f"{name} must be positive", field=name)
            return value

        mode = (env.get("SMF_FANOUT") or "auto").strip().lower()
        if mode not in ("auto", "off"):
            raise SyncError("SMF_FANOUT must be auto or off", field="SMF_FANOUT")
        return cls(
            enabled=mode == "auto",
            max_services=int(num("SMF_FANOUT_MAX_SERVICES", d.max_services)),
            max_writes=int(num("SMF_FANOUT_MAX_WRITES", d.max_writes)),
            write_rate=num("SMF_FANOUT_WRITE_RATE", d.write_rate),
            keys_per_service=int(num("SMF_FANOUT_KEYS_PER_SERVICE", d.keys_per_service)),
            item_services=int(num("SMF_FANOUT_ITEM_SERVICES", d.item_services)),
            item_seconds=num("SMF_FANOUT_ITEM_SECONDS", d.item_seconds),
        )

    def wants(self, services: int) -> bool:
        writes = services * self.keys_per_service
        return self.enabled and (
            services > self.max_services
            or writes > self.max_writes
            or writes / self.write_rate > self.item_seconds
        )


@dataclass
class WorkItem:
    run: str
    id: str
    op: str
    config: str
    repo: str
    commit: str
    branch: str | None = None
    services: list[str] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    drift: bool = False
    prune: bool = False
    apply: bool = True
    budget: float = 600.0

    def to_data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"item": SCHEMA, "run": self.run, "id": self.id, "op": self.op,
                               "config": self.config, "repo": self.repo, "commit": self.commit,
                               "branch": self.branch, "drift": self.drift, "prune": self.prune,
                               "apply": self.apply, "budget": self.budget}  # fmt: skip
        if self.op == "sync":
            out["services"] = list(self.services)
        else:
            out.update(owners=list(self.owners), kinds=list(self.kinds))
        return out

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> WorkItem:
        """The item `to_data` wrote; a field of the wrong shape is a `messages.MessageError`."""
        schema = data.get("item")
        if schema != SCHEMA:
            raise messages.MessageError(f"work item schema {schema!r} is not supported (expected {SCHEMA})")

        def text(name: str, optional: bool = False) -> Any:
            value = data.get(name)
            if isinstance(value, str) or (optional and value is None):
                return value
            raise messages.MessageError(f"work item field {name} is not a string")

        def texts(name: str) -> list[str]:
            value = data.get(name) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise messages.MessageError(f"work item field {name} is not a list of strings")
            return list(value)

        op = text("op")
        if op not in ("sync", "prune"):
            raise messages.MessageError("work item field op must be sync or prune")
        budget = data.get("budget", 600.0)
        if not isinstance(budget, int | float) or isinstance(budget, bool) or budget <= 0:
            raise messages.MessageError("work item field budget is not a positive number")
        return cls(text("run"), text("id"), op, text("config"), text("repo"), text("commit"),
                   text("branch", True), texts("services"), texts("owners"), texts("kinds"),
                   data.get("drift") is True, data.get("prune") is True, data.get("apply", True) is not False,
                   float(budget))  # fmt: skip

    def child(self, done: int) -> WorkItem:
        """The remainder after the first `done` services (its id names where it starts, so a
        redelivered parent handing off the same remainder hands off the same item)."""
        rest = self.services[done:]
        return WorkItem(self.run, f"{self.id}+{done}", self.op, self.config, self.repo, self.commit, self.branch,
                        rest, [], [], self.drift, self.prune, self.apply, self.budget)  # fmt: skip


def encode(item: WorkItem, key: bytes | None) -> str:
    return messages.encode(messages.Job(KIND, item.to_data()), key=key)


def run_id_for(kind: str, commit: str, configs: Sequence[str], event: Any = None) -> str:
    """A push's run id is stable (its delivery and ref), so a redelivered push job finds its
    run instead of starting a second one. A resync's is new every time: two scheduled resyncs
    of one commit are two runs, each reported (a redelivered resync job starts a new run; the
    earlier one's items still converge, and the new run reports the outcome)."""
    if event is None:
        import uuid

        return uuid.uuid4().hex[:20]
    raw = "|".join([kind, commit, ",".join(sorted(configs)), str(event.delivery_id or ""), event.ref])
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def _service_paths(config: Any, directory: str) -> set[str]:
    from core.discover import wanted_files

    prefix = f"{directory}/" if directory else ""
    return {prefix + name for name in wanted_files(config)}


class _KeptStores:
    """One store per kind for a whole item (its clients, fingerprint key and listing state are
    reused across the item's services); `core.sync.run`'s close is deferred to `close`."""

    def __init__(self, factory: Callable[[str, Any], Any] | None) -> None:
        self.factory = factory
        self.stores: dict[tuple[str, str], Any] = {}

    def __call__(self, kind: str, config: Any) -> Any:
        key = (kind, config.name)
        if key not in self.stores:
            if self.factory is not None:
                store = self.factory(kind, config)
            else:
                from core.stores import open_store

                store = open_store(kind, config)
            self.stores[key] = _NoClose(store)
        return self.stores[key]

    def close(self) -> None:
        for st in self.stores.values():
            st.really_close()
        self.stores.clear()


class _NoClose:
    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def close(self) -> None:
        """Kept open for the item's next service."""

    def really_close(self) -> None:
        close = getattr(self._store, "close", None)
        if close is not None:
            close()


# --- the dispatcher --------------------------------------------------------------------
def dispatch(
    configs: Sequence[Any],
    source: SourceTree,
    changed: set[str] | None,
    ctx: RunContext,
    *,
    kind: str,
    event: Any = None,
    drift: bool = False,
) -> dict[str, Any] | None:
    """Fan the run out when the policy says so; returns the job's result entry, or None to
    sync in this invocation (small run, fan-out off, no queue, run state or signing key)."""
    from core import runstate as rs
    from core.discover import discover

    policy = ctx.fanout or FanoutPolicy.from_env()
    if not policy.enabled or ctx.enqueue is None or ctx.mac_key is None:
        return None
    live = [c for c in configs if not c.suspend]
    found = [(cfg, discover(cfg, source, changed)) for cfg in live]
    total = sum(len(s) for _, s in found)
    if not policy.wants(total):
        return None
    state = ctx.runstate or rs.from_env()
    if state is None:
        log.info("fan-out wanted but no run state is configured (SMF_RUNSTATE_TABLE): syncing inline")
        return None
    run_id = run_id_for(kind, source.commit, [c.name for c in live], event)
    repo = getattr(source, "origin", None) or ""
    items: list[WorkItem] = []
    guard_errors: list[dict[str, Any]] = []

    def new_item(op: str, cfg: Any, **kw: Any) -> WorkItem:
        return WorkItem(run_id, f"{'p' if op == 'prune' else ''}{len(items)}", op, cfg.name,
                        cfg.source.url or repo, source.commit, getattr(cfg.source, "branch", None),
                        drift=drift, prune=bool(cfg.sync.prune), apply=ctx.apply, budget=policy.item_seconds,
                        **kw)  # fmt: skip

    for cfg, services in found:
        dirs = [s.directory for s in services]
        for i in range(0, len(dirs), policy.item_services):
            items.append(new_item("sync", cfg, services=dirs[i : i + policy.item_services]))
        if changed is None and cfg.sync.prune:
            owners, kinds, err = _plan_prune(cfg, {s.owner for s in services}, ctx)
            if err is not None:
                guard_errors.append(err)
            step = max(1, policy.item_services)
            for i in range(0, len(owners), step):
                items.append(new_item("prune", cfg, owners=owners[i : i + step], kinds=kinds))
    meta: dict[str, Any] = {"kind": kind, "commit": source.commit, "configs": [c.name for c in live]}
    if event is not None:
        lean = event.to_message()
        lean["changed_paths"] = None  # the record stays small; the run's outcome does not need them
        meta["event"] = lean
    if guard_errors:
        meta.update(errors=guard_errors, error_count=len(guard_errors), outcome="partial")
    to_send = set(state.start(run_id, [i.id for i in items], meta))
    sent = 0
    for item in items:
        if item.id in to_send:
            ctx.enqueue(encode(item, ctx.mac_key))
            sent += 1
    log.info("run fanned out", extra={"run": run_id, "items": len(items), "sent": sent, "services": total})
    return {"status": "fanned-out", "run": run_id, "items": len(items), "sent": sent, "services": total,
            "configs": [c.name for c in live], "commit": source.commit}  # fmt: skip


def _plan_prune(
    cfg: Any, present: set[str], ctx: RunContext
) -> tuple[list[str], list[str], dict[str, Any] | None]:
    """Owners of `cfg` with managed entries but no service in Git, and the stores they are in;
    the run's ``maxDeleteFraction`` guard is applied here, once, to all of them."""
    from core import registry
    from core.model import ListQuery
    from core.report import error_kind

    stores = _KeptStores(ctx.store_factory)
    prefix = f"{cfg.name}/"
    gone: dict[str, set[str]] = {}
    managed = deletes = 0
    try:
        for kind in registry.kinds_in_use(cfg):
            stored = stores(kind, cfg).list_entries(
                ListQuery(owners=set(), names=set(), owner_prefixes={prefix})
            )
            for e in stored:
                if not e.managed or e.deleted or not e.owner or not e.owner.startswith(prefix):
                    continue
                managed += 1
                if e.owner not in present:
                    deletes += 1
                    gone.setdefault(e.owner, set()).add(kind)
    finally:
        stores.close()
    limit = max(1, int(cfg.sync.max_delete_fraction * managed))
    if deletes > limit and not getattr(ctx, "allow_mass_delete", False):
        err = GuardError(
            f"refusing to delete {deletes} of {managed} managed entries of {cfg.name} (more than "
            f"sync.maxDeleteFraction={cfg.sync.max_delete_fraction}); check the source, or raise the limit",
            field="spec.sync.maxDeleteFraction",
        )
        data = err.to_dict()
        data.update(kind=error_kind(err), config=cfg.name)
        return [], [], data
    kinds = sorted({k for ks in gone.values() for k in ks})
    return sorted(gone), kinds, None


# --- the worker ------------------------------------------------------------------------
def run_item(data: dict[str, Any], configs: Sequence[Any], ctx: RunContext) -> Outcome:
    """One work item (the ``work`` job kind)."""
    from core import runstate as rs
    from core.intake import Outcome

    try:
        item = WorkItem.from_data(data)
    except messages.MessageError as exc:
        return Outcome(400, {"status": "rejected", "reason": str(exc)}, "rejected")
    base = {"run": item.run, "item": item.id, "op": item.op}
    state = ctx.runstate or rs.from_env()
    if state is None:
        return Outcome(500, {**base, "status": "error", "reason": "no run state configured (SMF_RUNSTATE_TABLE)"},
                       KIND)  # fmt: skip
    try:
        if not state.pending(item.run, item.id):
            return Outcome(200, {**base, "status": "duplicate", "reason": "item already finished or replaced"},
                           KIND)  # fmt: skip
        cfg = next((c for c in configs if c.name == item.config), None)
        if cfg is None:
            err = {"message": f"config {item.config} is no longer deployed", "kind": "config"}
            result = {"outcome": "failed", "errors": [err], "error_count": 1}
            return _finished(state, item, result, configs, base, 0.0, ctx)
        source = _source(cfg, item, ctx)
        try:
            clock = ctx.clock or time.monotonic
            started = clock()
            if item.op == "sync":
                report, done = _sync_slice(cfg, item, source, ctx, clock, started)
            else:
                report, done = _prune(cfg, item, source, ctx), len(item.owners)
            elapsed = clock() - started
        finally:
            source.close()
        retry = [e for e in report.errors if e.get("kind") in ("store", "source")]
        if retry:
            # What the store's SDK gave up on (throttling, 5xx): the queue redelivers the item.
            return Outcome(503, {**base, "status": "error", "reason": "store errors: the item is retried",
                                 "errors": retry[:5], "elapsed": elapsed}, KIND)  # fmt: skip
        if item.op == "sync" and done < len(item.services):
            child = item.child(done)
            if state.handoff(item.run, item.id, child.id):
                assert ctx.enqueue is not None, "a worker of a fanned-out run can always enqueue"
                ctx.enqueue(encode(child, ctx.mac_key))
                base["handoff"] = child.id
        result = {"summary": report.summary, "outcome": report.outcome, "errors": report.errors[: rs.MAX_ERRORS],
                  "error_count": len(report.errors), "services": done}  # fmt: skip
        return _finished(state, item, result, configs, base, elapsed, ctx)
    except SyncError as exc:  # the run state or the fetch: retried by the queue
        log.warning("work item failed", extra={**base, "error": exc.message})
        return Outcome(503 if not isinstance(exc, rs.RunStateError) else 500,
                       {**base, "status": "error", "reason": exc.message}, KIND)  # fmt: skip


def _finished(state: Any, item: WorkItem, result: dict[str, Any], configs: Sequence[Any], base: dict[str, Any],
              elapsed: float, ctx: RunContext) -> Outcome:  # fmt: skip
    from core.intake import Outcome, after_sync

    final = state.finish(item.run, item.id, result)
    body = {**base, "status": "done", "outcome": result.get("outcome", "ok"), "summary": result.get("summary"),
            "services": result.get("services", 0), "elapsed": elapsed, "budget": item.budget}  # fmt: skip
    if final is None:
        return Outcome(200, body, KIND)
    run = run_outcome(final, configs)
    run.context = ctx
    body.update(last=True, run_outcome=run.body)
    after_sync(run, configs)
    log.info("fanned-out run finished", extra={"run": item.run, "outcome": final.get("outcome"),
                                                "items": final.get("items"), "summary": final.get("summary")})  # fmt: skip
    return Outcome(200, body, KIND, run.events, run.configs, context=ctx)


def run_outcome(doc: Mapping[str, Any], configs: Sequence[Any]) -> Outcome:
    """The one outcome of a finished run, in the shape of a push or resync job's answer (its
    report holds counts and errors, not every change), for the after-sync hooks."""
    from core.intake import Outcome
    from core.webhook import PushEvent

    events = [PushEvent.from_message(doc["event"])] if doc.get("event") else []
    ev = events[0] if events else None
    outcome = str(doc.get("outcome") or "ok")
    report = {"commit": doc.get("commit"), "applied": True, "outcome": outcome, "changes": [],
              "summary": dict(doc.get("summary") or {}), "errors": list(doc.get("errors") or []),
              "error_count": doc.get("error_count", 0), "warnings": []}  # fmt: skip
    result = {"ref": ev.ref if ev else None, "after": ev.after if ev else doc.get("commit"),
              "delivery_id": ev.delivery_id if ev else None, "status": "applied",
              "configs": list(doc.get("configs") or []), "report": report}  # fmt: skip
    body = {"status": "ok" if outcome == "ok" else "partial", "mode": "fanned-out", "run": doc.get("run"),
            "items": doc.get("items"), "services": doc.get("services"), "results": [result]}  # fmt: skip
    if ev is not None:
        body["provider"] = ev.provider
    names = set(doc.get("configs") or [])
    return Outcome(200, body, str(doc.get("kind") or "push"), events, [c for c in configs if c.name in names])


def _source(cfg: Any, item: WorkItem, ctx: RunContext) -> SourceTree:
    if ctx.source_resolver is not None:
        return ctx.source_resolver(cfg, item.commit)
    from core.git_fetch import fetch_commit

    return fetch_commit(item.repo, item.commit, token=ctx.tokens()(cfg), username=getattr(cfg.source, "username", None),
                        cache_dir=ctx.cache(), branch=item.branch)  # fmt: skip


def _sync_slice(cfg: Any, item: WorkItem, source: SourceTree, ctx: RunContext, clock: Callable[[], float],
                started: float) -> tuple[Any, int]:  # fmt: skip
    """Sync the item's services one by one while the next one fits the budget."""
    from core.report import Report
    from core.sync import run

    total = Report(commit=source.commit, applied=item.apply)
    stores = _KeptStores(ctx.store_factory)
    longest = 0.0
    done = 0
    try:
        for directory in item.services:
            now = clock()
            if done and now - started + longest > item.budget:
                break
            rep = run([cfg], source, apply=item.apply, prune=item.prune, changed_paths=_service_paths(cfg, directory),
                      drift=item.drift, store_factory=stores)  # fmt: skip
            longest = max(longest, clock() - now)
            total.changes.extend(rep.changes)
            total.errors.extend(rep.errors)
            done += 1
    finally:
        stores.close()
    return total, done


def _prune(cfg: Any, item: WorkItem, source: SourceTree, ctx: RunContext) -> Any:
    from core.apply import apply_store_plan
    from core.discover import discover
    from core.model import ListQuery
    from core.plan import plan_store
    from core.report import Report

    report = Report(commit=source.commit, applied=item.apply)
    present = {s.owner for s in discover(cfg, source, None)}
    owners = {o for o in item.owners if o.startswith(f"{cfg.name}/") and o not in present}
    if not owners:
        return report
    stores = _KeptStores(ctx.store_factory)
    try:
        for kind in item.kinds:
            st = stores(kind, cfg)
            stored = st.list_entries(ListQuery(owners=set(owners), names=set()))
            plan = plan_store(kind, [], stored, policy=cfg.sync, prune=True, owners=owners,
                              prune_owner_prefixes=set(), case_insensitive=st.rules.case_insensitive,
                              is_ancestor=source.is_ancestor, allow_mass_delete=True,
                              commit=source.commit)  # fmt: skip
            for err in plan.errors:
                report.add_error(err, config=cfg.name, store=kind)
            if item.apply:
                apply_store_plan(st, plan, report, concurrency=cfg.sync.concurrency)
            report.changes.extend(plan.changes)
    finally:
        stores.close()
    return report


def items_for(services: int, policy: FanoutPolicy) -> int:
    """How many sync items `services` services make (docs and the bench quote it)."""
    return math.ceil(services / max(1, policy.item_services))
