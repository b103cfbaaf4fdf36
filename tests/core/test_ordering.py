"""Deletion ordering (issue #10 item 3): a late, older commit never brings a deleted entry back.

Plan rules on their own, then the v1 → v2 (prune) → late v1 scenario on the local store.
"""

from __future__ import annotations

from pathlib import Path

from core.config import SyncPolicy
from core.model import DesiredEntry, StoredEntry
from core.plan import plan_store
from core.stores.local import LocalSecretStore
from tests.support.ordering import HISTORY, Scenario, actions, is_ancestor, run_late_v1, run_readd

C1, C2, C3 = HISTORY
OWNER = "cfg/orders/dev"
POLICY = SyncPolicy(prune=True, adopt=False, create_only=False, max_delete_fraction=0.5, drift="ignore",
                    concurrency=None)  # fmt: skip


def _want(commit: str, name: str = "B", owner: str = OWNER) -> DesiredEntry:
    return DesiredEntry(store="s", name=name, value="v", kind="secret", source="f:B", owner=owner,
                        fingerprint="fp", commit=commit)  # fmt: skip


def _plan(stored: StoredEntry, commit: str, oracle=is_ancestor, owner: str = OWNER) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    plan = plan_store("s", [_want(commit, owner=owner)], [stored], policy=POLICY, prune=True, owners={OWNER},
                      prune_owner_prefixes=set(), case_insensitive=False, is_ancestor=oracle, commit=commit)  # fmt: skip
    return actions(plan)["B"]


def _soft_deleted(commit: str | None) -> StoredEntry:
    return StoredEntry("B", managed=True, owner=OWNER, fingerprint="old", commit=commit, deleted=True)


def test_an_older_commit_does_not_restore_a_soft_deleted_entry() -> None:
    # Before: "update, restoring an entry scheduled for deletion" whatever the commits.
    assert _plan(_soft_deleted(C2), C1) == ("skipped", f"deleted by newer commit {C2[:12]}")


def test_a_newer_commit_restores_it_and_says_which_commit_deleted_it() -> None:
    action, reason = _plan(_soft_deleted(C2), C3)
    assert action == "update"
    assert reason == f"restoring an entry scheduled for deletion (deleted by commit {C2[:12]})"


def test_unknown_order_restores_as_before_and_says_so() -> None:
    action, reason = _plan(_soft_deleted(C2), C1, oracle=lambda older, newer: None)
    assert action == "update" and "commit order unknown" in reason
    # A delete recorded before ordering existed (no commit): restored, as it always was.
    assert _plan(_soft_deleted(None), C1) == ("update", "restoring an entry scheduled for deletion")


def test_a_tombstone_is_ordered_like_a_soft_delete_and_replaced_by_a_create() -> None:
    tomb = StoredEntry.tombstone_of("B", OWNER, C2, handle="t")
    assert _plan(tomb, C1) == ("skipped", f"deleted by newer commit {C2[:12]}")
    assert _plan(tomb, C3) == ("create", f"re-creating a deleted entry (deleted by commit {C2[:12]})")
    # Another service may take a deleted name: a tombstone is never a conflict.
    assert _plan(tomb, C1, owner="cfg/payments/dev") == ("create", "")


def test_tombstones_are_not_live_entries_for_pruning_or_the_mass_delete_guard() -> None:
    live = [StoredEntry(f"L{i}", managed=True, owner=OWNER, fingerprint="fp", commit=C1) for i in range(2)]
    tombs = [StoredEntry.tombstone_of(f"T{i}", OWNER, C1, handle=i) for i in range(50)]
    plan = plan_store("s", [], [*live, *tombs], policy=POLICY, prune=True, owners={OWNER},
                      prune_owner_prefixes=set(), case_insensitive=False, is_ancestor=is_ancestor, commit=C2)  # fmt: skip
    # 2 live entries, limit max(1, 0.5 * 2) = 1: the tombstones did not raise the count.
    assert [c.name for c in plan.changes] == [] and len(plan.errors) == 1
    assert "2 of 2 managed entries" in str(plan.errors[0])


def test_local_store_late_v1_does_not_resurrect_a_pruned_key(tmp_path: Path) -> None:
    scn = Scenario(LocalSecretStore(str(tmp_path / "s.db")), {"orders/A": "", "orders/B": ""})
    run_late_v1(scn, "orders/A", "orders/B")
    assert scn.store.get_value("orders/A") == "a-two"
    assert scn.store.get_value("orders/B") is None
    run_readd(scn, "orders/A", "orders/B")
    assert scn.store.get_value("orders/B") == "b-three"
