"""The deletion-ordering scenario of issue #10 item 3, shared by every store's test.

Push v1 (keys A and B), then v2 (A changed, B removed, pruning on), then a late redelivery
of v1: the store must end up equal to v2 (B stays deleted, A keeps v2's value), and v3 (a
descendant of v2 that adds B back) must restore it. It drives plan and apply directly with a
linear history ``c1 < c2 < c3`` as the ancestry oracle, so each store's own list/put/delete
and its record of the deleting commit are what is under test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.apply import apply_store_plan
from core.config import SyncPolicy
from core.fingerprint import fingerprint
from core.model import DesiredEntry, ListQuery, StoredEntry
from core.plan import StorePlan, plan_store
from core.report import Report
from core.stores.base import Store

HISTORY = ["c1" * 20, "c2" * 20, "c3" * 20]  # 40 characters, like SHA-1 commit ids
FP_KEY = b"ordering-test-fingerprint-key-01"


def is_ancestor(older: str, newer: str) -> bool | None:
    """A linear history: `older` is an ancestor of (or equal to) `newer`."""
    if older not in HISTORY or newer not in HISTORY:
        return None
    return HISTORY.index(older) <= HISTORY.index(newer)


@dataclass
class Scenario:
    store: Store
    #: The names `listed` asks for (keys; values unused). Every push has the same owner.
    names: dict[str, str]
    owner: str = "ordering/orders/dev"
    kind: str = "secret"
    #: Store-side shaping (e.g. Parameter Manager's one document per service).
    prepare: bool = False
    plans: list[StorePlan] = field(default_factory=list)

    def entries(self, values: dict[str, str], commit: str) -> list[DesiredEntry]:
        out = [
            DesiredEntry(
                store=self.store.kind,
                name=n,
                value=v,
                kind=self.kind,  # type: ignore[arg-type]
                source=f"app.env:{n}",
                owner=self.owner,
                commit=commit,
            )  # fmt: skip
            for n, v in values.items()
        ]
        if self.prepare:
            out = self.store.prepare(out, {self.store.kind: out})
        for e in out:
            e.fingerprint = fingerprint(FP_KEY, self.store.kind, e.name, e.value)
            e.commit = commit
        return out

    def push(self, values: dict[str, str], commit: str, *, is_ancestor=is_ancestor) -> StorePlan:  # type: ignore[no-untyped-def]
        """One sync of `values` at `commit` with pruning on; returns the applied plan."""
        entries = self.entries(values, commit)
        query = ListQuery(owners={self.owner}, names={e.name for e in entries})
        stored = self.store.list_entries(query)
        plan = plan_store(
            self.store.kind,
            entries,
            stored,
            policy=SyncPolicy(
                prune=True,
                adopt=False,
                create_only=False,
                max_delete_fraction=0.5,
                drift="ignore",
                concurrency=None,
            ),
            prune=True,
            owners={self.owner},
            prune_owner_prefixes=set(),
            case_insensitive=self.store.rules.case_insensitive,
            is_ancestor=is_ancestor,
            commit=commit,
        )
        assert plan.errors == []
        report = Report()
        apply_store_plan(self.store, plan, report)
        assert report.errors == []
        self.plans.append(plan)
        return plan

    def listed(self) -> list[StoredEntry]:
        names = set(self.names)
        return self.store.list_entries(ListQuery(owners={self.owner}, names=names))


def actions(plan: StorePlan) -> dict[str, tuple[str, str]]:
    return {c.name: (c.action, c.reason) for c in plan.changes}


def run_late_v1(scn: Scenario, a: str, b: str) -> None:
    """v1 {a, b} → v2 {a changed}, b pruned → late v1: b stays deleted, a keeps v2's value."""
    c1, c2, _ = HISTORY
    scn.push({a: "a-one", b: "b-one"}, c1)
    v2 = scn.push({a: "a-two"}, c2)
    assert actions(v2)[b][0] == "delete"
    late = scn.push({a: "a-one", b: "b-one"}, c1)
    got = actions(late)
    assert got[a] == ("skipped", f"store already has newer commit {c2[:12]}")
    assert got[b] == ("skipped", f"deleted by newer commit {c2[:12]}")
    listed = {e.name: e for e in scn.listed()}
    # Nothing live under b, whatever the store keeps to remember the delete.
    assert b not in listed or listed[b].deleted
    # A deleted entry, or a tombstone, never counts as a live managed entry to prune again.
    again = scn.push({a: "a-two"}, c2)
    assert actions(again) == {a: ("unchanged", "")}


def run_readd(scn: Scenario, a: str, b: str) -> StorePlan:
    """v3, a descendant of the deleting commit, adds b back: it is restored or re-created."""
    _, _, c3 = HISTORY
    plan = scn.push({a: "a-two", b: "b-three"}, c3)
    assert actions(plan)[b][0] in ("create", "update")
    listed = {e.name: e for e in scn.listed()}
    assert not listed[b].deleted and listed[b].commit == c3
    return plan
