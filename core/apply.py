"""Apply: carry out a store plan with bounded concurrency and retries.

Order per store: every create/update first (inside the store's `batch`), then deletes — and a service's deletes only run
when all of its writes succeeded, so a half-finished run never leaves a service with values
removed but not replaced. Anything that fails an entry is reported and leaves the other
services to proceed.

Retries: one layer, never two. The cloud stores' SDKs retry throttling and 5xx themselves
(botocore's adaptive mode, google-api-core's `Retry`, azure-core's retry policy: see
`Store.sdk_retries`); what they give up on is reported here, not retried again. The backoff
below (exponential, with jitter) is kept only for stores whose client has no retry of its
own: the embedded SQLite store (a locked database).
"""

from __future__ import annotations

import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor

from core.errors import StoreError
from core.plan import StorePlan
from core.report import Change, Report
from core.stores.base import ConflictError, Store

log = logging.getLogger("smf.apply")

MAX_ATTEMPTS = 6
BACKOFF_BASE = 0.2
BACKOFF_CAP = 8.0


def _with_retries(fn, *, what: str, sdk_retries: bool = False) -> None:  # type: ignore[no-untyped-def]
    """Run `fn`, retrying transient errors unless the store's SDK already did."""
    attempts = 1 if sdk_retries else MAX_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            fn()
            return
        except StoreError as exc:
            if not exc.transient or attempt == attempts:
                raise
            delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            log.warning("transient error on %s (attempt %d/%d), retrying", what, attempt, MAX_ATTEMPTS)
            time.sleep(delay)


def apply_store_plan(
    store: Store, plan: StorePlan, report: Report, *, concurrency: int | None = None
) -> None:
    workers = max(1, min(store.max_concurrency, concurrency or store.max_concurrency))
    writes = [c for c in plan.changes if c.action in ("create", "update")]
    deletes = [c for c in plan.changes if c.action == "delete"]
    failed_owners: set[str] = set()

    def write(change: Change) -> None:
        entry = plan.desired[change.name]
        current = plan.current.get(change.name)
        try:
            _with_retries(lambda: store.put(entry, current), what=f"{store.kind} {change.name}",
                          sdk_retries=store.sdk_retries)  # fmt: skip
            change.done = True
        except ConflictError as exc:
            change.action, change.reason = "conflict", "exists and is not managed by secret-manager-functions"
            failed_owners.add(change.owner)
            log.warning("conflict on %s %s", store.kind, change.name)
            del exc
        except StoreError as exc:
            failed_owners.add(change.owner)
            report.add_error(exc, store=store.kind, name=change.name, source=change.source)
        except Exception as exc:  # noqa: BLE001 - an SDK bug must not stop other services
            failed_owners.add(change.owner)
            report.add_error(
                StoreError(f"{type(exc).__name__} while writing"),
                store=store.kind,
                name=change.name,
                source=change.source,
            )

    def remove(change: Change) -> None:
        if change.owner in failed_owners:
            change.reason = "not deleted: a write for this service failed"
            change.action = "skipped"
            return
        try:
            _with_retries(
                lambda: store.delete(plan.current[change.name], commit=plan.commit),
                what=f"{store.kind} {change.name}",
                sdk_retries=store.sdk_retries,
            )
            change.done = True
        except Exception as exc:  # noqa: BLE001
            err = exc if isinstance(exc, StoreError) else StoreError(f"{type(exc).__name__} while deleting")
            report.add_error(err, store=store.kind, name=change.name, source=change.source)

    if writes:
        try:
            # One batch around the write phase (one transaction on the embedded store; see
            # Store.batch). It ends before any delete starts, so the rule above still holds.
            with store.batch():
                with ThreadPoolExecutor(
                    max_workers=workers, thread_name_prefix=f"apply-{store.kind}"
                ) as pool:
                    list(pool.map(write, writes))
        except StoreError as exc:
            # The batch could not start or commit: none of its writes are stored.
            for change in writes:
                change.done = False
                failed_owners.add(change.owner)
            report.add_error(exc, store=store.kind)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"prune-{store.kind}") as pool:
        list(pool.map(remove, deletes))
