"""Plan: desired entries versus what a store holds → create/update/unchanged/delete/conflict.

Rules, each a promise to users:
- An existing entry without our `managed-by` marker is a **conflict**, never written, unless
  `sync.adopt` is on (then it is updated and marked as ours).
- A fingerprint equal to the desired one is **unchanged**: no read, no write.
- An entry whose recorded commit is *newer* than the incoming one (the incoming commit is an
  ancestor of it) is **skipped**: a late, older push never overwrites newer values.
- Deletions are ordered like writes. What a delete leaves behind (a soft-deleted entry, or a
  tombstone on stores that delete for good) records the *deleting* commit; an incoming commit
  older than that one is **skipped** and never restores the entry. When the order cannot be
  told (unrelated or shallow history) the entry is restored as before, and the reason says so.
- **delete** only with pruning on, only managed entries whose owner is a service this run
  reconciled, and never more than `sync.maxDeleteFraction` of that store's managed entries in
  one run (a single delete is always allowed): beyond that, the deletes become one error.
- `sync.createOnly` (ESO's IfNotExists): existing managed entries are left as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.config import SyncPolicy
from core.errors import GuardError, SyncError
from core.fingerprint import fingerprint
from core.model import DesiredEntry, StoredEntry
from core.report import Change

if TYPE_CHECKING:
    from core.stores.base import Store


@dataclass
class StorePlan:
    store: str
    changes: list[Change] = field(default_factory=list)
    #: name → desired entry for create/update, name → stored entry for update/delete
    desired: dict[str, DesiredEntry] = field(default_factory=dict)
    current: dict[str, StoredEntry] = field(default_factory=dict)
    errors: list[SyncError] = field(default_factory=list)
    #: The commit this plan syncs: apply records it on what a delete leaves behind.
    commit: str | None = None


def plan_store(
    store: str,
    desired: list[DesiredEntry],
    stored: list[StoredEntry],
    *,
    policy: SyncPolicy,
    prune: bool,
    owners: set[str],
    prune_owner_prefixes: set[str],
    case_insensitive: bool,
    is_ancestor: Callable[[str, str], bool | None] | None = None,
    allow_mass_delete: bool = False,
    commit: str | None = None,
    protected_owners: set[str] | frozenset[str] = frozenset(),
) -> StorePlan:
    """Plan one store. `owners` are the services reconciled this run."""
    fold = (lambda n: n.lower()) if case_insensitive else (lambda n: n)
    by_name = {fold(s.name): s for s in stored}
    plan = StorePlan(store, commit=commit)
    wanted: set[str] = set()
    for entry in desired:
        key = fold(entry.name)
        wanted.add(key)
        cur = by_name.get(key)
        plan.desired[entry.name] = entry
        if cur is not None:
            plan.current[entry.name] = cur
        action, reason = _decide(entry, cur, policy, is_ancestor)
        plan.changes.append(Change(action, store, entry.name, entry.source, entry.owner, reason=reason,
                                   line=entry.line))  # fmt: skip

    if prune:
        deletes: list[Change] = []
        managed_in_scope = 0
        for cur in stored:
            in_scope = (
                cur.managed
                and not cur.deleted
                and cur.owner is not None
                and cur.owner not in protected_owners
                and (cur.owner in owners or any(cur.owner.startswith(p) for p in prune_owner_prefixes))
            )
            if not in_scope:
                continue
            managed_in_scope += 1
            if fold(cur.name) in wanted:
                continue
            if _is_newer(cur.commit, commit, is_ancestor):
                continue
            plan.current[cur.name] = cur
            deletes.append(Change("delete", store, cur.name, cur.source or "", cur.owner or ""))
        limit = max(1, int(policy.max_delete_fraction * managed_in_scope))
        if len(deletes) > limit and not allow_mass_delete:
            plan.errors.append(
                GuardError(
                    f"refusing to delete {len(deletes)} of {managed_in_scope} managed entries in {store} "
                    f"(more than sync.maxDeleteFraction={policy.max_delete_fraction}); "
                    "check the source, or raise the limit / pass --allow-mass-delete",
                    field="spec.sync.maxDeleteFraction",
                )
            )
        else:
            plan.changes.extend(deletes)
    return plan


def _decide(
    entry: DesiredEntry,
    cur: StoredEntry | None,
    policy: SyncPolicy,
    is_ancestor: Callable[[str, str], bool | None] | None,
) -> tuple[str, str]:
    """(action, reason) for one desired entry against what the store holds under its name."""
    if entry.options.get("skip_reason"):
        return "skipped", entry.options["skip_reason"]  # e.g. a disabled secret (core/desired.py)
    if cur is None:
        return "create", ""
    if not cur.managed:
        if policy.adopt:
            return "update", "adopting an entry not created by us"
        return "conflict", "exists and is not managed by secret-manager-functions"
    if cur.tombstone:
        # A hard-deleting store's record of a delete: nothing holds the name, so this is a
        # create (the store replaces the tombstone) unless the delete came from a newer commit
        # of the same service.
        if cur.owner != entry.owner:
            return "create", ""
        return _after_delete(cur, entry, is_ancestor, "create", "re-creating a deleted entry")
    if cur.owner and cur.owner != entry.owner:
        return "conflict", f"managed for another service ({cur.owner})"
    if cur.deleted:
        return _after_delete(cur, entry, is_ancestor, "update", "restoring an entry scheduled for deletion")
    if _is_newer(cur.commit, entry.commit, is_ancestor):
        return "skipped", f"store already has newer commit {(cur.commit or '')[:12]}"
    if cur.fingerprint == entry.fingerprint:
        return "unchanged", ""
    if policy.create_only:
        return "unchanged", "createOnly: existing value kept"
    return "update", ""


def _after_delete(
    cur: StoredEntry,
    entry: DesiredEntry,
    is_ancestor: Callable[[str, str], bool | None] | None,
    action: str,
    what: str,
) -> tuple[str, str]:
    """Restore (or re-create) a deleted entry unless the deleting commit is newer.

    `cur.commit` is the commit whose plan deleted the entry (records older than deletion
    ordering may lack it: then the entry is restored, as it always was).
    """
    reason = what + (f" (deleted by commit {cur.commit[:12]})" if cur.commit else "")
    if not cur.commit or not entry.commit or cur.commit == entry.commit or is_ancestor is None:
        return action, reason
    order = is_ancestor(entry.commit, cur.commit)
    if order:
        return "skipped", f"deleted by newer commit {cur.commit[:12]}"
    if order is None:
        return action, f"{reason}; commit order unknown (unrelated or shallow history)"
    return action, reason


def _is_newer(
    recorded: str | None, incoming: str | None, is_ancestor: Callable[[str, str], bool | None] | None
) -> bool:
    """True when the store's recorded commit is strictly newer than the incoming one."""
    if not recorded or not incoming or recorded == incoming or is_ancestor is None:
        return False
    return bool(is_ancestor(incoming, recorded))


def check_drift(store: Store, plan: StorePlan, fp_key: bytes, mode: str) -> None:
    """Drift on resync: read the values behind `unchanged` changes and compare fingerprints.

    A hand edit leaves our fingerprint tag in place, so only the value tells; `mode` is
    ``sync.drift``: ``correct`` turns the change into an update restoring Git's value,
    ``report`` into a ``drift`` change. Values are read, fingerprinted and dropped here.
    """
    unchanged = [
        c
        for c in plan.changes
        if c.action == "unchanged"
        and c.name in plan.current
        and not plan.desired[c.name].options.get("disabled")  # a disabled value cannot be read
    ]
    if not unchanged:
        return
    values = store.read_values([plan.current[c.name] for c in unchanged])
    for c in unchanged:
        if c.name not in values:
            continue
        actual = fingerprint(fp_key, store.kind, c.name, values[c.name])
        if actual != plan.desired[c.name].fingerprint:
            if mode == "correct":
                c.action, c.reason = "update", "drift: changed outside Git, restoring"
            else:
                c.action, c.reason = "drift", "changed outside Git (sync.drift=report)"
