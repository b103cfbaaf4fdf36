"""Secrets Manager store against a moto server, driven through core.sync.run."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from core.model import DesiredEntry, ListQuery
from core.source import LocalDirSource
from core.stores import _aws, open_store
from core.stores.aws_secrets_manager import SecretsManagerStore
from core.stores.base import ConflictError
from core.sync import run
from tests.aws.conftest import CallLog, Factory, all_secrets, make_config, service_files, write_tree

SECRETS = {"DB_PASSWORD": "hunter2-cart-db", "API_KEY": "k-1234567890"}


def _sync(cfg: Any, root: Path, *hooks: Any, **kw: Any) -> Any:
    return run([cfg], LocalDirSource(root), apply=True, store_factory=Factory(*hooks), **kw)


def _versions(sm: Any, name: str) -> int:
    return len(sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"])


def test_creates_one_secret_per_key_with_tags(aws_env: str, sm: Any, tmp_path: Path) -> None:
    root = write_tree(tmp_path, service_files("cart", SECRETS))
    cfg = make_config(
        aws_env,
        configs_enabled=False,
        aws={"secretsManager": {"description": "team cart", "tags": {"team": "cart"}}},
    )
    report = _sync(cfg, root)
    assert report.errors == []
    assert report.summary["create"] == 2
    assert all_secrets(sm) == {
        "cart/dev/DB_PASSWORD": SECRETS["DB_PASSWORD"],
        "cart/dev/API_KEY": SECRETS["API_KEY"],
    }
    desc = sm.describe_secret(SecretId="cart/dev/DB_PASSWORD")
    tags = _aws.tags_dict(desc["Tags"])
    assert tags["managed-by"] == "secret-manager-functions"
    assert tags["smf-owner"] == "shop-dev/cart/dev"
    assert tags["smf-source"].endswith("application.secrets.env:DB_PASSWORD")
    assert len(tags["smf-fingerprint"]) == 32
    assert tags["team"] == "cart"
    assert desc["Description"] == "team cart"


def test_noop_resync_lists_only_and_changed_value_adds_one_version(
    aws_env: str, sm: Any, tmp_path: Path
) -> None:
    root = write_tree(tmp_path, service_files("cart", SECRETS))
    cfg = make_config(aws_env, configs_enabled=False)
    _sync(cfg, root)
    log = CallLog()
    report = _sync(cfg, root, log)
    assert report.summary["unchanged"] == 2
    assert dict(log.calls) == {"ListSecrets": 1}

    write_tree(root, service_files("cart", {**SECRETS, "API_KEY": "k-changed-0987"}))
    log.reset()
    report = _sync(cfg, root, log)
    assert report.summary["update"] == 1 and report.summary["unchanged"] == 1
    assert log.calls["PutSecretValue"] == 1 and log.calls["CreateSecret"] == 0
    assert sm.get_secret_value(SecretId="cart/dev/API_KEY")["SecretString"] == "k-changed-0987"
    assert _versions(sm, "cart/dev/API_KEY") == 2
    assert _versions(sm, "cart/dev/DB_PASSWORD") == 1


def test_prune_schedules_deletion_and_restores_when_key_returns(
    aws_env: str, sm: Any, tmp_path: Path
) -> None:
    root = write_tree(tmp_path, service_files("cart", SECRETS))
    cfg = make_config(
        aws_env,
        configs_enabled=False,
        sync={"prune": True},
        aws={"secretsManager": {"recoveryWindowInDays": 7}},
    )
    _sync(cfg, root)
    arn = sm.describe_secret(SecretId="cart/dev/API_KEY")["ARN"]

    write_tree(root, service_files("cart", {"DB_PASSWORD": SECRETS["DB_PASSWORD"]}))
    log = CallLog()
    report = _sync(cfg, root, log)
    assert [(c.action, c.name) for c in report.changes if c.action == "delete"] == [
        ("delete", "cart/dev/API_KEY")
    ]
    assert log.calls["DeleteSecret"] == 1
    assert "DeletedDate" in sm.describe_secret(SecretId="cart/dev/API_KEY")
    assert set(all_secrets(sm)) == {"cart/dev/DB_PASSWORD"}

    write_tree(root, service_files("cart", SECRETS))
    log.reset()
    report = _sync(cfg, root, log)
    assert report.errors == []
    assert log.calls["RestoreSecret"] == 1 and log.calls["CreateSecret"] == 0
    assert log.calls["PutSecretValue"] == 0  # same value as before deletion: no new version
    desc = sm.describe_secret(SecretId="cart/dev/API_KEY")
    assert desc["ARN"] == arn and "DeletedDate" not in desc
    assert all_secrets(sm)["cart/dev/API_KEY"] == SECRETS["API_KEY"]


def test_force_delete_without_recovery(aws_env: str, sm: Any, tmp_path: Path) -> None:
    root = write_tree(tmp_path, service_files("cart", SECRETS))
    cfg = make_config(
        aws_env,
        configs_enabled=False,
        sync={"prune": True},
        aws={"secretsManager": {"forceDeleteWithoutRecovery": True}},
    )
    _sync(cfg, root)
    write_tree(root, service_files("cart", {"DB_PASSWORD": SECRETS["DB_PASSWORD"]}))
    _sync(cfg, root)
    assert set(all_secrets(sm, include_deleted=True)) == {"cart/dev/DB_PASSWORD"}


def test_unmanaged_secret_is_a_conflict_unless_adopt(aws_env: str, sm: Any, tmp_path: Path) -> None:
    sm.create_secret(Name="cart/dev/API_KEY", SecretString="hand-made-value")
    root = write_tree(tmp_path, service_files("cart", SECRETS))
    cfg = make_config(aws_env, configs_enabled=False, sync={"prune": True})
    report = _sync(cfg, root)
    actions = {c.name: c.action for c in report.changes}
    assert actions == {"cart/dev/API_KEY": "conflict", "cart/dev/DB_PASSWORD": "create"}
    assert sm.get_secret_value(SecretId="cart/dev/API_KEY")["SecretString"] == "hand-made-value"

    adopt = make_config(aws_env, configs_enabled=False, sync={"adopt": True})
    report = _sync(adopt, root)
    assert {c.name: c.action for c in report.changes}["cart/dev/API_KEY"] == "update"
    assert sm.get_secret_value(SecretId="cart/dev/API_KEY")["SecretString"] == SECRETS["API_KEY"]
    tags = _aws.tags_dict(sm.describe_secret(SecretId="cart/dev/API_KEY")["Tags"])
    assert tags["managed-by"] == "secret-manager-functions"


def _entry(name: str, value: str = "v-123456", owner: str = "shop-dev/cart/dev") -> DesiredEntry:
    return DesiredEntry(
        store="aws-secrets-manager",
        name=name,
        value=value,
        kind="secret",
        source="services/cart/x.env:K",
        owner=owner,
        fingerprint=hashlib.sha256(value.encode()).hexdigest()[:32],
    )


def test_create_race_with_hand_made_secret_raises_conflict(aws_env: str, sm: Any) -> None:
    store = open_store("aws-secrets-manager", make_config(aws_env))
    sm.create_secret(Name="race/dev/K", SecretString="theirs-123456")
    with pytest.raises(ConflictError):
        store.put(_entry("race/dev/K"), None)
    assert sm.get_secret_value(SecretId="race/dev/K")["SecretString"] == "theirs-123456"
    # A race with our own earlier write (same owner) is not a conflict: it becomes an update.
    store.put(_entry("race/dev/ours", "first-value"), None)
    store.put(_entry("race/dev/ours", "second-value"), None)
    assert sm.get_secret_value(SecretId="race/dev/ours")["SecretString"] == "second-value"


def test_kms_key_and_replica_regions_on_create(aws_env: str, sm: Any, tmp_path: Path) -> None:
    import boto3

    key = boto3.client("kms", endpoint_url=aws_env).create_key()["KeyMetadata"]["KeyId"]
    root = write_tree(tmp_path, service_files("cart", SECRETS))
    cfg = make_config(
        aws_env,
        configs_enabled=False,
        aws={"secretsManager": {"kmsKeyId": key, "replicaRegions": ["eu-west-1"]}},
    )
    assert _sync(cfg, root).errors == []
    desc = sm.describe_secret(SecretId="cart/dev/DB_PASSWORD")
    assert desc["KmsKeyId"].endswith(key)
    assert [r["Region"] for r in desc.get("ReplicationStatus", [])] == ["eu-west-1"]
    log = CallLog()
    assert _sync(cfg, root, log).summary["unchanged"] == 2
    assert log.writes == 0


def test_listing_many_services_and_read_values_in_batches_of_20(aws_env: str, tmp_path: Path) -> None:
    files: dict[str, str] = {}
    for i in range(13):
        files |= service_files(f"svc{i:02d}", {f"K{j}": f"value-{i}-{j}-xyz" for j in range(2)})
    root = write_tree(tmp_path, files)
    cfg = make_config(aws_env, configs_enabled=False)
    assert _sync(cfg, root).summary["create"] == 26
    store = open_store("aws-secrets-manager", cfg)
    log = CallLog()
    log.attach(store.client)
    owners = {f"shop-dev/svc{i:02d}/dev" for i in range(13)}
    listed = store.list_entries(ListQuery(owners=owners, names=set()))
    assert len(listed) == 26 and all(e.managed for e in listed)
    assert log.calls["ListSecrets"] == 1  # 13 owners > 10 filter values: one common prefix
    log.reset()
    values = store.read_values(listed)
    assert values["svc03/dev/K1"] == "value-3-1-xyz" and len(values) == 26
    assert log.calls["BatchGetSecretValue"] == 2


def test_drift_is_reported_on_resync(aws_env: str, sm: Any, tmp_path: Path) -> None:
    root = write_tree(tmp_path, service_files("cart", SECRETS))
    cfg = make_config(aws_env, configs_enabled=False)
    _sync(cfg, root)
    sm.put_secret_value(SecretId="cart/dev/API_KEY", SecretString="edited-by-hand")
    report = _sync(cfg, root, drift=True)
    assert {c.name: c.action for c in report.changes}["cart/dev/API_KEY"] == "drift"


def test_tag_values_round_trip_and_provenance_is_shortened(aws_env: str) -> None:
    store: SecretsManagerStore = open_store("aws-secrets-manager", make_config(aws_env))
    entry = _entry("odd/dev/K")
    entry.source = "services/caf\u00e9 #1/" + "d" * 400 + "/app.env:K"
    entry.owner = "shop-dev/caf\u00e9/dev"
    store.put(entry, None)
    [listed] = store.list_entries(ListQuery(owners={entry.owner}, names=set()))
    assert listed.owner == entry.owner and listed.managed
    assert listed.fingerprint == entry.fingerprint
    assert listed.source is not None and listed.source.endswith("...")
    assert entry.source.startswith(listed.source[:-3])


def test_errors_are_mapped_without_values(aws_env: str) -> None:
    from botocore.exceptions import EndpointConnectionError

    throttled = ClientError(
        {
            "Error": {"Code": "ThrottlingException", "Message": "x"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "PutSecretValue",
    )
    err = _aws.store_error(throttled, store="aws-secrets-manager", op="PutSecretValue", name="a/b")
    assert err.transient and "ThrottlingException" in str(err) and "a/b" in str(err)
    invalid = ClientError(
        {
            "Error": {"Code": "ValidationException", "Message": "Value 'hunter2-secret' at 'secretString'"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "PutSecretValue",
    )
    err = _aws.store_error(invalid, store="aws-secrets-manager", op="PutSecretValue", name="a/b")
    assert not err.transient and "hunter2-secret" not in str(err)
    err = _aws.store_error(
        EndpointConnectionError(endpoint_url="http://x"), store="aws-secrets-manager", op="ListSecrets"
    )
    assert err.transient


def test_size_limit_is_ours_and_templates_are_honoured(aws_env: str, sm: Any, tmp_path: Path) -> None:
    """moto accepts a 70,000-character secret; AWS refuses over 64 KiB, so the run must."""
    files = service_files("cart", {"HUGE": "x" * 70_000, "OK": "fine-value-1"})
    files |= service_files("shop", {"TOKEN": "shop-token-123"})
    root = write_tree(tmp_path, files)
    cfg = make_config(aws_env, configs_enabled=False)
    cfg.secrets.name_template = "apps/{prefix}/{environment}/{key}{suffix}"
    cfg.secrets.suffix = "_v1"
    report = _sync(cfg, root)
    [err] = report.errors
    assert err["service"] == "cart" and "70000 bytes" in err["message"] and err["field"] == "HUGE"
    assert all_secrets(sm) == {"apps/shop/dev/TOKEN_v1": "shop-token-123"}  # cart: nothing written


def test_assume_role_from_config(aws_env: str, sm: Any, tmp_path: Path) -> None:
    """provider.aws.auth.roleArn: the clients sign with refreshable sts:AssumeRole credentials."""
    role = "arn:aws:iam::123456789012:role/smf-writer"
    cfg = make_config(aws_env, configs_enabled=False, aws={"auth": {"roleArn": role}})
    store = open_store("aws-secrets-manager", cfg)
    creds = store.client._request_signer._credentials
    assert creds.method == "assume-role"
    assert creds.get_frozen_credentials().access_key != "testing"  # from moto's STS, not the env
    root = write_tree(tmp_path, service_files("cart", SECRETS))
    assert _sync(cfg, root).errors == []
    assert set(all_secrets(sm)) == {"cart/dev/DB_PASSWORD", "cart/dev/API_KEY"}
