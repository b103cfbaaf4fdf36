"""Our names under `naming: controller` against the controller's naming code, per store.

Each expected name below is what the controller's code computes (sources at
microscaler/secret-manager-controller 4a200ca74170b45ca3062a85c37d0640a255bb79; the octopilot
fork f8024ef9be7a18bb9eb0ee1c80e3f1494364e045 has the same code at the same lines):

- [U41] crates/controller/src/controller/reconciler/utils.rs:41-64 `construct_secret_name`:
  parts prefix, key, suffix with leading '-' stripped (l.55), joined by '-' (l.62);
- [U74] utils.rs:74-107 `sanitize_secret_name`: '.', '/', ' ' -> '_' (l.80), alphanumerics,
  '-' and '_' kept (l.82), anything else -> '_' (l.84); dash runs collapse (l.90-103);
  leading/trailing '-' trimmed (l.106);
- [P318] processing/properties.rs:318-322: the properties blob is construct_secret_name(prefix,
  "properties", suffix);
- [S200] provider/aws/parameter_store.rs:200-206 `construct_parameter_name`: '.' and '/' ->
  '_' in the key, then `{path_prefix}/{key}`; [S75] l.75-85: path_prefix = parameterPath
  (with '/' prepended if missing) or `/{prefix}/{environment}`; no suffix;
- [A52] provider/azure/app_configuration/client.rs:52 key prefix `{prefix}:{environment}:` and
  operations.rs:22-24 `{key_prefix}{key}`; no suffix, label None (operations.rs:70).

Where the store refuses the controller's name, the expected value is our documented nearest
valid name (Key Vault: refused characters -> '-', runs collapsed, trimmed; Parameter Store
and App Configuration: -> '_'), marked "nearest".
"""

from __future__ import annotations

import pytest

from core.config import parse_config_text
from core.naming.assign import render_name_noting

CFG = """apiVersion: secret-management.microscaler.io/v1beta1
kind: SecretManagerConfig
metadata: {{name: orders}}
spec:
  sourceRef: {{kind: GitRepository, name: r, namespace: flux-system}}
  provider:
    {provider}
  secrets:
    environment: dev
    prefix: orders
{suffix}
  configs:
    enabled: {enabled}
{path}
"""
PROVIDERS = {
    "aws-secrets-manager": ("aws: {region: eu-west-1}", False),
    "aws-parameter-store": ("aws: {region: eu-west-1}", True),
    "gcp-secret-manager": ("gcp: {projectId: p}", False),
    "gcp-parameter-manager": ("gcp: {projectId: p}", True),
    "azure-key-vault": ("azure: {vaultName: v}", False),
    "azure-app-configuration": ("azure: {vaultName: v}", True),
}


def config(store: str, suffix: str | None = None, parameter_path: str | None = None):  # type: ignore[no-untyped-def]
    provider, enabled = PROVIDERS[store]
    text = CFG.format(
        provider=provider,
        suffix=f"    suffix: {suffix!r}" if suffix is not None else "",
        enabled="true" if enabled else "false",
        path=f"    parameterPath: {parameter_path}" if parameter_path else "",
    )
    if store == "gcp-parameter-manager":
        text = text.replace("enabled: true", "enabled: true\n    store: ParameterManager")
    [cfg] = parse_config_text(text)
    return cfg


def name(
    store: str, key: str, suffix: str | None = None, *, kind: str | None = None, path: str | None = None
):  # type: ignore[no-untyped-def]
    cfg = config(store, suffix, path)
    kind = kind or ("config" if PROVIDERS[store][1] else "secret")
    return render_name_noting(cfg, store, kind, "svc", "orders", "dev", key)


# key, suffix, expected secret-style name [U41][U74]
SECRET_CASES = [
    ("db.url", None, "orders-db_url"),  # U74 l.80
    ("db/url", None, "orders-db_url"),  # U74 l.80
    ("hosts[0]", None, "orders-hosts_0_"),  # U74 l.84
    ("my key", None, "orders-my_key"),  # U74 l.80
    ("API--KEY-", None, "orders-API-KEY"),  # U74 l.90-106: run collapsed, trailing trimmed
    ("-lead", None, "orders-lead"),  # "orders--lead" collapses
    ("DB_PASSWORD", "-prod", "orders-DB_PASSWORD-prod"),  # U41 l.55 leading dash stripped
    ("DB_PASSWORD", "prod", "orders-DB_PASSWORD-prod"),
    ("DB_PASSWORD", "--v2", "orders-DB_PASSWORD-v2"),
    ("DB_PASSWORD", "-", "orders-DB_PASSWORD"),  # U41 l.56: an all-dash suffix is dropped
    ("token", "-v1.2", "orders-token-v1_2"),  # the suffix is sanitized too
    ("a:b@c", None, "orders-a_b_c"),  # U74 l.84
]
# The nearest valid Key Vault name for each SECRET_CASES row (Key Vault allows 0-9a-zA-Z-).
KEY_VAULT = {
    "orders-db_url": "orders-db-url",
    "orders-hosts_0_": "orders-hosts-0",
    "orders-my_key": "orders-my-key",
    "orders-DB_PASSWORD-prod": "orders-DB-PASSWORD-prod",
    "orders-DB_PASSWORD-v2": "orders-DB-PASSWORD-v2",
    "orders-DB_PASSWORD": "orders-DB-PASSWORD",
    "orders-token-v1_2": "orders-token-v1-2",
    "orders-a_b_c": "orders-a-b-c",
}


@pytest.mark.parametrize("store", ["aws-secrets-manager", "gcp-secret-manager", "gcp-parameter-manager"])
@pytest.mark.parametrize(("key", "suffix", "expected"), SECRET_CASES)
def test_secret_style_stores_use_construct_secret_name(
    store: str, key: str, suffix: str | None, expected: str
) -> None:
    assert name(store, key, suffix) == (expected, None)


@pytest.mark.parametrize(("key", "suffix", "expected"), SECRET_CASES)
def test_key_vault_uses_the_nearest_valid_name_and_says_so(
    key: str, suffix: str | None, expected: str
) -> None:
    used, refused = name("azure-key-vault", key, suffix)
    assert used == KEY_VAULT.get(expected, expected)
    assert refused == (expected if expected in KEY_VAULT else None)


@pytest.mark.parametrize(
    ("key", "suffix", "path", "expected", "refused"),
    [
        ("db.url", "-prod", None, "/orders/dev/db_url", None),  # S200, S75; no suffix
        ("db/url", None, None, "/orders/dev/db_url", None),
        ("API--KEY-", None, None, "/orders/dev/API--KEY-", None),  # no dash handling in S200
        ("my key", None, None, "/orders/dev/my_key", "/orders/dev/my key"),  # nearest
        ("hosts[0]", None, None, "/orders/dev/hosts_0_", "/orders/dev/hosts[0]"),  # nearest
        ("db.url", None, "my/app", "/my/app/db_url", None),  # S75: '/' prepended
        ("db.url", None, "/my/app", "/my/app/db_url", None),
    ],
)
def test_parameter_store_uses_construct_parameter_name(
    key: str, suffix: str | None, path: str | None, expected: str, refused: str | None
) -> None:
    assert name("aws-parameter-store", key, suffix, path=path) == (expected, refused)


@pytest.mark.parametrize(
    ("key", "suffix", "expected", "refused"),
    [
        ("db.url", "-prod", "orders:dev:db.url", None),  # A52; no suffix, no sanitizing
        ("db/url", None, "orders:dev:db/url", None),
        ("hosts[0]", None, "orders:dev:hosts[0]", None),
        ("my key", None, "orders:dev:my key", None),
        ("API--KEY-", None, "orders:dev:API--KEY-", None),
        ("a*b", None, "orders:dev:a_b", "orders:dev:a*b"),  # '*' is reserved: nearest
    ],
)
def test_app_configuration_uses_prefix_environment_key(
    key: str, suffix: str | None, expected: str, refused: str | None
) -> None:
    assert name("azure-app-configuration", key, suffix) == (expected, refused)


@pytest.mark.parametrize(
    ("store", "suffix", "expected"),
    [
        ("aws-secrets-manager", "-prod", "orders-properties-prod"),  # P318 + U41 l.55
        ("gcp-secret-manager", None, "orders-properties"),
        ("azure-key-vault", "dev", "orders-properties-dev"),
    ],
)
def test_properties_blob_name(store: str, suffix: str | None, expected: str) -> None:
    assert name(store, "properties", suffix, kind="config") == (expected, None)


def test_configs_in_the_secret_store_are_named_like_secrets() -> None:
    # configs.enabled false: Parameter Store is not involved; config keys land in the secret store.
    assert name("aws-secrets-manager", "db.url", kind="config") == ("orders-db_url", None)


def test_a_name_template_is_an_explicit_choice_and_wins() -> None:
    cfg = config("gcp-secret-manager")
    cfg.secrets.name_template = "{prefix}-{environment}-{key}"
    assert render_name_noting(cfg, "gcp-secret-manager", "secret", "svc", "orders", "dev", "db.url") == (
        "orders-dev-db_url",
        None,
    )


def test_our_api_version_keeps_our_default_names() -> None:
    cfg = config("gcp-secret-manager")
    cfg.naming = "functions"
    assert render_name_noting(cfg, "gcp-secret-manager", "secret", "svc", "orders", "dev", "db.url") == (
        "orders-dev-db_url",
        None,
    )
