"""Deletion ordering on moto (issue #10 item 3): v1 → v2 (prune) → late v1 leaves v2.

Secrets Manager with a recovery window (the deleting commit tagged on the secret pending
deletion), with force delete (a tombstone secret), and Parameter Store (a tombstone parameter).
"""

from __future__ import annotations

from typing import Any

from core.stores import open_store
from tests.aws.conftest import make_config
from tests.support.ordering import HISTORY, Scenario, run_late_v1, run_readd

C1, C2, C3 = HISTORY
A, B = "cart/dev/A", "cart/dev/B"


def _live_secrets(sm: Any) -> dict[str, str]:
    out = {}
    for page in sm.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True):
        for item in page["SecretList"]:
            if item.get("DeletedDate") or item["Name"].startswith("smf-tombstones/"):
                continue
            out[item["Name"]] = sm.get_secret_value(SecretId=item["ARN"])["SecretString"]
    return out


def _tombstones(sm: Any) -> list[dict[str, Any]]:
    return [
        item
        for page in sm.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True)
        for item in page["SecretList"]
        if item["Name"].startswith("smf-tombstones/")
    ]


def test_secrets_manager_scheduled_deletion_is_not_restored_by_an_older_commit(aws_env: str, sm: Any) -> None:
    store = open_store(
        "aws-secrets-manager", make_config(aws_env, aws={"secretsManager": {"recoveryWindowInDays": 7}})
    )
    scn = Scenario(store, {A: "", B: ""})
    run_late_v1(scn, A, B)
    # Before: RestoreSecret brought B back. The secret pending deletion records who deleted it.
    desc = sm.describe_secret(SecretId=B)
    assert "DeletedDate" in desc
    assert {t["Key"]: t["Value"] for t in desc["Tags"]}["smf-commit"] == C2
    assert _live_secrets(sm) == {A: "a-two"}
    plan = run_readd(scn, A, B)
    assert {c.name: c.action for c in plan.changes}[B] == "update"  # RestoreSecret, same ARN
    assert _live_secrets(sm) == {A: "a-two", B: "b-three"}


def test_secrets_manager_force_delete_leaves_a_tombstone_that_orders_it(aws_env: str, sm: Any) -> None:
    store = open_store(
        "aws-secrets-manager",
        make_config(aws_env, aws={"secretsManager": {"forceDeleteWithoutRecovery": True}}),
    )
    scn = Scenario(store, {A: "", B: ""})
    run_late_v1(scn, A, B)
    # Before: the late v1 re-created B. Now one value-less tombstone records the delete.
    assert _live_secrets(sm) == {A: "a-two"}
    (tomb,) = _tombstones(sm)
    assert "DeletedDate" not in tomb
    assert sm.list_secret_version_ids(SecretId=tomb["ARN"])["Versions"] == []  # never a value
    tags = {t["Key"]: t["Value"] for t in tomb["Tags"]}
    assert tags["smf-commit"] == C2 and tags["smf-owner"] == scn.owner and tags["smf-tombstone"] == "1"
    listed = {e.name: e for e in scn.listed()}
    assert listed[B].tombstone and listed[B].deleted and listed[B].commit == C2
    plan = run_readd(scn, A, B)
    assert {c.name: c.action for c in plan.changes}[B] == "create"
    assert _live_secrets(sm) == {A: "a-two", B: "b-three"}
    assert _tombstones(sm) == []  # the create replaced the tombstone


def _live_parameters(ssm: Any) -> dict[str, str]:
    out = {}
    for page in ssm.get_paginator("get_parameters_by_path").paginate(
        Path="/", Recursive=True, WithDecryption=True
    ):
        for p in page["Parameters"]:
            out[p["Name"]] = p["Value"]
    return out


def test_parameter_store_delete_leaves_a_tombstone_that_orders_it(aws_env: str, ssm: Any) -> None:
    store = open_store("aws-parameter-store", make_config(aws_env))
    a, b = "/cart/dev/A", "/cart/dev/B"
    scn = Scenario(store, {a: "", b: ""}, kind="config")
    run_late_v1(scn, a, b)
    params = _live_parameters(ssm)
    # Before: the late v1 re-created /cart/dev/B.
    assert {k: v for k, v in params.items() if not k.startswith("/smf-tombstones/")} == {a: "a-two"}
    (tomb,) = [k for k in params if k.startswith("/smf-tombstones/")]
    assert params[tomb] == "deleted"  # a placeholder: a tombstone never carries a value
    plan = run_readd(scn, a, b)
    assert {c.name: c.action for c in plan.changes}[b] == "create"
    assert _live_parameters(ssm) == {a: "a-two", b: "b-three"}  # tombstone gone
