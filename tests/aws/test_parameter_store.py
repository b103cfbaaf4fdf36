"""Parameter Store store against a moto server: names, types, tiers, listing, pruning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.model import ListQuery
from core.source import LocalDirSource
from core.stores import _aws, open_store
from core.sync import run
from tests.aws.conftest import CallLog, Factory, all_parameters, make_config, service_files, write_tree

PROPS = {"server.port": "8080", "feature.checkout": "on", "db.url": "jdbc:postgresql://db/cart"}


def _sync(cfg: Any, root: Path, *hooks: Any, **kw: Any) -> Any:
    return run([cfg], LocalDirSource(root), apply=True, store_factory=Factory(*hooks), **kw)


def _param(ssm: Any, name: str) -> dict[str, Any]:
    [meta] = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"]
    return meta


def test_configs_become_string_parameters_under_the_service_path(
    aws_env: str, ssm: Any, tmp_path: Path
) -> None:
    root = write_tree(tmp_path, service_files("cart", None, PROPS))
    cfg = make_config(aws_env, aws={"parameterStore": {"tags": {"team": "cart"}}})
    report = _sync(cfg, root)
    assert report.errors == [] and report.summary["create"] == 3
    assert all_parameters(ssm) == {f"/cart/dev/{k}": v for k, v in PROPS.items()}
    meta = _param(ssm, "/cart/dev/server.port")
    assert meta["Type"] == "String" and meta["Tier"] == "Standard"
    tags = _aws.tags_dict(
        ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="/cart/dev/server.port")["TagList"]
    )
    assert tags["managed-by"] == "secret-manager-functions"
    assert tags["smf-owner"] == "shop-dev/cart/dev" and tags["team"] == "cart"
    assert len(tags["smf-fingerprint"]) == 32
    assert tags["smf-fingerprint"] in meta["Description"]


def test_noop_resync_describes_only_and_one_change_writes_one(aws_env: str, ssm: Any, tmp_path: Path) -> None:
    root = write_tree(tmp_path, service_files("cart", None, PROPS))
    cfg = make_config(aws_env)
    _sync(cfg, root)
    log = CallLog()
    report = _sync(cfg, root, log)
    assert report.summary["unchanged"] == 3
    # one listing page per store (the secret store is listed too: a full sync may prune it)
    assert dict(log.calls) == {"DescribeParameters": 1, "ListSecrets": 1}

    write_tree(root, service_files("cart", None, {**PROPS, "server.port": "9090"}))
    log.reset()
    report = _sync(cfg, root, log)
    assert report.summary["update"] == 1
    assert log.calls["PutParameter"] == 1 and log.calls["AddTagsToResource"] == 1
    assert all_parameters(ssm)["/cart/dev/server.port"] == "9090"
    assert _param(ssm, "/cart/dev/server.port")["Version"] == 2
    assert _param(ssm, "/cart/dev/feature.checkout")["Version"] == 1


def test_parameter_path_and_secure_string_option(aws_env: str, ssm: Any, tmp_path: Path) -> None:
    import boto3

    key = boto3.client("kms", endpoint_url=aws_env).create_key()["KeyMetadata"]["KeyId"]
    root = write_tree(tmp_path, service_files("cart", None, PROPS))
    text = make_config(aws_env, aws={"parameterStore": {"type": "SecureString", "kmsKeyId": key}})
    text.configs.parameter_path = "/teams/cart/dev"
    report = _sync(text, root)
    assert report.errors == []
    assert set(all_parameters(ssm)) == {f"/teams/cart/dev/{k}" for k in PROPS}
    meta = _param(ssm, "/teams/cart/dev/db.url")
    assert meta["Type"] == "SecureString" and meta["KeyId"].endswith(key)


def test_secrets_routed_to_parameter_store_are_secure_strings(aws_env: str, ssm: Any, tmp_path: Path) -> None:
    root = write_tree(tmp_path, service_files("cart", {"DB_PASSWORD": "hunter2-cart-db"}, PROPS))
    cfg = make_config(aws_env, aws={"secretsStore": "ParameterStore"})
    assert _sync(cfg, root).errors == []
    assert _param(ssm, "/cart/dev/DB_PASSWORD")["Type"] == "SecureString"
    assert _param(ssm, "/cart/dev/server.port")["Type"] == "String"
    assert all_parameters(ssm)["/cart/dev/DB_PASSWORD"] == "hunter2-cart-db"


def test_tier_by_size_and_clear_errors(aws_env: str, ssm: Any, tmp_path: Path) -> None:
    big = "x" * 5000
    files = service_files("cart", None, {"small": "1", "big": big}) | service_files(
        "huge", None, {"too.big": "y" * 9000, "fine": "2"}
    )
    root = write_tree(tmp_path, files)
    report = _sync(make_config(aws_env), root)
    assert _param(ssm, "/cart/dev/big")["Tier"] == "Advanced"
    assert _param(ssm, "/cart/dev/small")["Tier"] == "Standard"
    # The oversized value fails its whole service before any write, naming file, key and size.
    assert not [n for n in all_parameters(ssm) if n.startswith("/huge/")]
    [err] = report.errors
    assert err["service"] == "huge" and "9000 bytes" in err["message"]
    assert err["path"].endswith("application.properties") and err["field"] == "too.big"
    assert "y" * 50 not in str(report.to_dict())

    # Once Advanced, always Advanced (AWS cannot downgrade); a forced Standard tier refuses 5 KB.
    write_tree(root, service_files("cart", None, {"small": "1", "big": "now small"}))
    report = _sync(make_config(aws_env), root)
    assert [e for e in report.errors if e.get("service") != "huge"] == []
    assert report.summary["update"] == 1
    assert _param(ssm, "/cart/dev/big")["Tier"] == "Advanced"
    write_tree(root, service_files("cart", None, {"small": "1", "big": big}))
    report = _sync(make_config(aws_env, aws={"parameterStore": {"tier": "Standard"}}), root)
    assert any("Standard tier" in e["message"] and "5000 bytes" in e["message"] for e in report.errors)


def test_names_are_checked_against_ssm_rules(aws_env: str, ssm: Any, tmp_path: Path) -> None:
    deep = "/".join(f"l{i}" for i in range(16))
    files = service_files("cart", None, {deep: "1"}) | service_files("awsome", None, {"k": "v"})
    files |= service_files("long", None, {"k" * 950: "v"})
    files |= service_files("ok", None, {"k": "v"})
    report = _sync(make_config(aws_env), write_tree(tmp_path, files))
    messages = " | ".join(e["message"] for e in report.errors)
    assert "levels" in messages and "reserved" in messages and "at most 955" in messages
    assert set(all_parameters(ssm)) == {"/ok/dev/k"}


def test_prunes_only_our_parameters(aws_env: str, ssm: Any, tmp_path: Path) -> None:
    root = write_tree(tmp_path, service_files("cart", None, PROPS))
    cfg = make_config(aws_env, sync={"prune": True, "maxDeleteFraction": 1.0})
    _sync(cfg, root)
    ssm.put_parameter(Name="/cart/dev/hand.made", Value="keep me", Type="String")
    other = make_config(aws_env, name="other-dev")
    other_root = write_tree(tmp_path / "other", service_files("cart2", None, {"x": "1"}))
    _sync(other, other_root)

    write_tree(root, service_files("cart", None, {"server.port": "8080"}))
    report = _sync(cfg, root)
    deleted = sorted(c.name for c in report.changes if c.action == "delete")
    assert deleted == ["/cart/dev/db.url", "/cart/dev/feature.checkout"]
    assert set(all_parameters(ssm)) == {"/cart/dev/server.port", "/cart/dev/hand.made", "/cart2/dev/x"}


def test_parameter_path_bounds_pruning(aws_env: str, ssm: Any, tmp_path: Path) -> None:
    """With configs.parameterPath set, our own parameters outside it are never listed for pruning."""
    cfg = make_config(aws_env)
    store = open_store("aws-parameter-store", cfg)
    root = write_tree(tmp_path, service_files("cart", None, PROPS))
    _sync(cfg, root)
    cfg.configs.parameter_path = "/teams/cart/dev"
    store = open_store("aws-parameter-store", cfg)
    listed = store.list_entries(ListQuery(owners={"shop-dev/cart/dev"}, names=set()))
    assert listed == []
    cfg.configs.parameter_path = None
    store = open_store("aws-parameter-store", cfg)
    assert len(store.list_entries(ListQuery(owners={"shop-dev/cart/dev"}, names=set()))) == 3


def test_unmanaged_parameter_is_a_conflict(aws_env: str, ssm: Any, tmp_path: Path) -> None:
    ssm.put_parameter(Name="/cart/dev/server.port", Value="1234", Type="String")
    root = write_tree(tmp_path, service_files("cart", None, PROPS))
    report = _sync(make_config(aws_env), root)
    assert {c.name: c.action for c in report.changes}["/cart/dev/server.port"] == "conflict"
    assert all_parameters(ssm)["/cart/dev/server.port"] == "1234"


def test_read_values_and_drift(aws_env: str, ssm: Any, tmp_path: Path) -> None:
    root = write_tree(tmp_path, service_files("cart", None, PROPS))
    cfg = make_config(aws_env, sync={"drift": "correct"})
    _sync(cfg, root)
    ssm.put_parameter(Name="/cart/dev/server.port", Value="1", Type="String", Overwrite=True)
    report = _sync(cfg, root, drift=True)
    assert {c.name: c.action for c in report.changes}["/cart/dev/server.port"] == "update"
    assert all_parameters(ssm)["/cart/dev/server.port"] == "8080"


def test_full_resync_prunes_a_service_removed_from_git(
    aws_env: str, ssm: Any, sm: Any, tmp_path: Path
) -> None:
    """A service deleted from the repo is found through its owner prefix ("{config}/") and
    pruned; another config's entries are never listed for pruning."""
    import shutil

    files = service_files("cart", {"TOKEN": "cart-token-123"}, {"a": "1", "b": "2"})
    files |= service_files("shop", {"TOKEN": "shop-token-123"}, {"a": "1"})
    root = write_tree(tmp_path / "repo", files)
    cfg = make_config(aws_env, sync={"prune": True})
    _sync(cfg, root)
    other = make_config(aws_env, name="shop-dev2", sync={"prune": True})
    _sync(other, write_tree(tmp_path / "other", service_files("legacy", {"K": "legacy-value-1"}, {"x": "1"})))

    shutil.rmtree(root / "services" / "shop")
    log = CallLog()
    report = _sync(cfg, root, log)
    assert report.errors == []
    assert sorted(c.name for c in report.changes if c.action == "delete") == ["/shop/dev/a", "shop/dev/TOKEN"]
    assert set(all_parameters(ssm)) == {"/cart/dev/a", "/cart/dev/b", "/legacy/dev/x"}
    assert log.calls["DeleteParameter"] == 1 and log.calls["DeleteSecret"] == 1
    assert log.calls["ListTagsForResource"] == 0  # ownership came from the listing, not per entry
