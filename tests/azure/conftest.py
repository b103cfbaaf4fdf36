"""Azure test fixtures: one fake Key Vault (HTTPS) and one fake App Configuration (HTTP) per
session on free loopback ports, reset before every test; the environment that points the real
SDK clients at them; helpers to write configs and build stores."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from core.config import SecretManagerConfig, parse_config_text
from core.model import DesiredEntry
from core.stores import _azure
from tests.fakes.azure_app_configuration import FakeAppConfiguration
from tests.fakes.azure_key_vault import FakeKeyVault, FakeKeyVaultCredential

FP_KEY = "azure-test-fingerprint-key-0123456789"

_VAULT: FakeKeyVault | None = None


def test_credential() -> FakeKeyVaultCredential:
    """What ``SMF_AZURE_TEST_CREDENTIAL=tests.azure.conftest:test_credential`` builds."""
    assert _VAULT is not None, "the key_vault fixture is not running"
    return _VAULT.credential()


test_credential.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


@pytest.fixture(scope="session")
def key_vault() -> Iterator[FakeKeyVault]:
    global _VAULT
    vault = FakeKeyVault().start()
    _VAULT = vault
    yield vault
    _VAULT = None
    _azure.clear_caches()
    vault.stop()


@pytest.fixture(scope="session")
def app_config() -> Iterator[FakeAppConfiguration]:
    store = FakeAppConfiguration().start()
    yield store
    store.stop()


def azure_test_env(key_vault: FakeKeyVault, app_config: FakeAppConfiguration) -> dict[str, str]:
    return {
        _azure.ENV_TEST_CREDENTIAL: "tests.azure.conftest:test_credential",
        _azure.ENV_TEST_CA_BUNDLE: str(key_vault.cert_path),
        _azure.ENV_TEST_SKIP_CHALLENGE_CHECK: "1",
        _azure.ENV_APPCONFIG_CONNECTION_STRING: app_config.connection_string,
        _azure.ENV_RETRY_TOTAL: "0",
        "SMF_FINGERPRINT_KEY": FP_KEY,
    }


@pytest.fixture(autouse=True)
def azure_env(
    key_vault: FakeKeyVault, app_config: FakeAppConfiguration, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Clean fakes and the test environment for every Azure test."""
    key_vault.reset()
    app_config.reset()
    env = azure_test_env(key_vault, app_config)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("GIT_TOKEN", raising=False)
    return env


def azure_config_text(
    key_vault: FakeKeyVault,
    app_config: FakeAppConfiguration,
    *,
    name: str = "shop-dev",
    url: str = "",
    environment: str = "dev",
    configs_enabled: bool = True,
    prune: bool = True,
    app_config_extra: str = "",
    azure_extra: str = "",
    spec_extra: str = "",
) -> str:
    source = f"  sourceRef:\n    url: {url}\n    branch: main\n" if url else ""
    return f"""
apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata:
  name: {name}
spec:
{source}  provider:
    type: azure
    azure:
      vaultUrl: {key_vault.url}
{azure_extra}      appConfig:
        contentType: null
{app_config_extra}  secrets:
    environment: {environment}
  configs:
    enabled: {str(configs_enabled).lower()}
    appConfigEndpoint: {app_config.url}
  sync:
    prune: {str(prune).lower()}
  webhook:
    provider: github
{spec_extra}"""


def azure_config(key_vault: FakeKeyVault, app_config: FakeAppConfiguration, **kw: Any) -> SecretManagerConfig:
    return parse_config_text(azure_config_text(key_vault, app_config, **kw))[0]


def entry(
    store: str,
    name: str,
    value: str,
    *,
    owner: str = "shop-dev/orders/dev",
    fingerprint: str = "fp-1",
    source: str | None = None,
    kind: str = "secret",
    key: str | None = None,
    **options: Any,
) -> DesiredEntry:
    return DesiredEntry(
        store=store,
        name=name,
        value=value,
        kind=kind,  # type: ignore[arg-type]
        source=source or f"orders/application.secrets.env:{key or name}",
        owner=owner,
        fingerprint=fingerprint,
        repo="https://user:tok3n@example.com/shop.git",
        commit="c" * 40,
        options={
            "service": "orders",
            "environment": "dev",
            "key": key or name,
            "prefix": "orders",
            **options,
        },
    )
