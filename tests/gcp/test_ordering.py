"""Deletion ordering on drongo and the Parameter Manager fake (issue #10 item 3).

Neither GCP store has a soft delete: a prune leaves a version-less ``smf-tombstone-<sha256>``
secret or parameter that records the deleting commit, so a late v1 after v2 removed a key
does not re-create it, and a create under the name removes the tombstone.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.stores import _gcp
from core.stores.gcp_parameter_manager import ParameterManagerStore
from core.stores.gcp_secret_manager import SecretManagerStore
from tests.gcp.conftest import PROJECT
from tests.support.ordering import HISTORY, Scenario, run_late_v1, run_readd

C1, C2, C3 = HISTORY
A, B = "orders-dev-A", "orders-dev-B"


def _ids(items: Any) -> list[str]:
    return sorted(item.name.rsplit("/", 1)[-1] for item in items)


@pytest.fixture
def sm(gcp_env: Any) -> Any:
    st = SecretManagerStore(PROJECT)
    yield st
    st.close()


@pytest.fixture
def pm(gcp_env: Any) -> Any:
    st = ParameterManagerStore(PROJECT)
    yield st
    st.close()


def test_secret_manager_late_v1_does_not_recreate_a_pruned_secret(sm: SecretManagerStore) -> None:
    scn = Scenario(sm, {A: "", B: ""})
    run_late_v1(scn, A, B)
    # Before: the late v1 re-created B. Now B is gone and its tombstone has no version.
    tomb = _gcp.tombstone_name(B)
    assert _ids(sm.client.list_secrets(request={"parent": sm.parent})) == sorted([A, tomb])
    assert list(sm.client.list_secret_versions(request={"parent": sm.secret_path(tomb)})) == []
    assert sm.read_values([e for e in scn.listed() if e.name == A]) == {A: "a-two"}
    listed = {e.name: e for e in scn.listed()}
    assert listed[B].tombstone and listed[B].commit == C2 and listed[B].owner == scn.owner
    run_readd(scn, A, B)
    assert _ids(sm.client.list_secrets(request={"parent": sm.parent})) == [A, B]  # tombstone gone
    assert sm.read_values(scn.listed()) == {A: "a-two", B: "b-three"}


def test_parameter_manager_late_v1_does_not_recreate_a_pruned_parameter(pm: ParameterManagerStore) -> None:
    scn = Scenario(pm, {A: "", B: ""}, kind="config", prepare=True)
    run_late_v1(scn, A, B)
    tomb = _gcp.tombstone_name(B)
    assert _ids(pm.client.list_parameters(request={"parent": pm.parent})) == sorted([A, tomb])
    assert list(pm.client.list_parameter_versions(request={"parent": pm.parameter_path(tomb)})) == []
    run_readd(scn, A, B)
    assert _ids(pm.client.list_parameters(request={"parent": pm.parent})) == [A, B]
    assert pm.read_values(scn.listed()) == {A: "a-two", B: "b-three"}


def test_a_tombstone_is_not_a_conflict_for_another_service(sm: SecretManagerStore) -> None:
    scn = Scenario(sm, {A: "", B: ""})
    run_late_v1(scn, A, B)
    other = Scenario(sm, {B: ""}, owner="ordering/payments/dev")
    plan = other.push({B: "theirs"}, C1)  # even an old commit: the delete was another service's
    assert [(c.action, c.name) for c in plan.changes] == [("create", B)]
    assert _gcp.tombstone_name(B) not in _ids(sm.client.list_secrets(request={"parent": sm.parent}))
