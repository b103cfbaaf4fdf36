"""Naming rules per store: defaults, templates, mapping, limits, checked before any write."""

from __future__ import annotations

import pytest

from core.config import parse_config_text
from core.errors import NamingError
from core.naming import NameContext, rules_for
from core.naming.assign import check_entry, render_name

CFG = """apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata: {name: c}
spec:
  provider: {local: {}}
  secrets: {environment: prod, prefix: shop, suffix: -v2%s}
  configs: {enabled: true%s}
"""


def cfg(secrets: str = "", configs: str = ""):  # type: ignore[no-untyped-def]
    return parse_config_text(CFG % (secrets, configs))[0]


@pytest.mark.parametrize(
    ("store", "expected"),
    [
        ("local-secrets", "shop/prod/db.url-v2"),
        ("aws-secrets-manager", "shop/prod/db.url-v2"),
        ("aws-parameter-store", "/shop/prod/db.url-v2"),
        ("gcp-secret-manager", "shop-prod-db_url-v2"),
        ("gcp-parameter-manager", "shop-prod-db_url-v2"),
        ("azure-key-vault", "shop-prod-db-url-v2"),
    ],
)
def test_default_names(store: str, expected: str) -> None:
    name = render_name(cfg(), store, "secret", "orders", "shop", "prod", "db.url")
    assert name == expected
    assert rules_for(store).check_name(name) is None


def test_parameter_path_and_template() -> None:
    c = cfg(configs=", parameterPath: /teams/shop/prod/")
    assert (
        render_name(c, "aws-parameter-store", "config", "orders", "shop", "prod", "a.b")
        == "/teams/shop/prod/a.b-v2"
    )
    c = cfg(secrets=", nameTemplate: 'apps/{environment}/{service}/{key}'")
    assert (
        render_name(c, "aws-secrets-manager", "secret", "orders", "shop", "prod", "K") == "apps/prod/orders/K"
    )
    with pytest.raises(NamingError, match="unknown placeholder {team}") as info:
        render_name(
            cfg(secrets=", nameTemplate: '{team}/{key}'"), "local-secrets", "secret", "o", "o", "p", "k"
        )
    assert info.value.field == "spec.secrets.nameTemplate"


def test_key_vault_mapping_and_rules() -> None:
    rules = rules_for("azure-key-vault")
    ctx = NameContext(service="svc", environment="dev", key="DB__pass.word", kind="secret")
    assert rules.render(None, ctx, field_name="f") == "svc-dev-DB-pass-word"
    assert "start with a letter" in rules.check_name("1abc")
    assert "at most 127" in rules.check_name("a" * 128)
    assert rules.clash_key("Abc") == rules.clash_key("aBC")


def test_parameter_store_rules() -> None:
    rules = rules_for("aws-parameter-store")
    assert "reserved" in rules.check_name("/aws/x")
    assert "reserved" in rules.check_name("/SSM-things/x")
    assert "levels" in rules.check_name("/" + "/".join("abcdefghijklmnop"))
    assert rules.check_name("/" + "/".join("abcdefghijklmno")) is None
    assert "contains" in rules.check_name("/a/b c")


def test_value_limits_are_checked_before_writes() -> None:
    assert check_entry("aws-parameter-store", "/a/b", "x" * 8192, "f:k") is None
    err = check_entry("aws-parameter-store", "/a/b", "x" * 8193, "f.properties:k")
    assert err is not None and "8193 bytes" in err.message and err.path == "f.properties" and err.field == "k"
    err = check_entry("azure-key-vault", "kv-name", "é" * 13000, "f.env:K")
    assert err is not None and "26000 bytes" in err.message and "é" not in err.message
    assert check_entry("gcp-secret-manager", "bad.name", "v", "f.env:K").message.startswith(
        "gcp-secret-manager name"
    )
