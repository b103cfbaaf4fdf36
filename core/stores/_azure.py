"""Shared Azure plumbing for the Key Vault and App Configuration stores.

Clients are built lazily (the Azure SDK is imported inside these functions, never at module
import) and cached per process, so a warm Functions worker reuses its token cache and its
HTTPS connection pool across invocations.

Authentication
--------------
* Deployed: `azure.identity.DefaultAzureCredential` — the Function App's managed identity
  (``provider.azure.auth.clientId`` selects a user-assigned identity), or the developer's
  ``az login`` / environment credentials when run locally.
* App Configuration may instead use an access key: ``AZURE_APPCONFIG_CONNECTION_STRING``
  (``Endpoint=...;Id=...;Secret=...``, requests signed with HMAC-SHA256). Prefer the managed
  identity with the "App Configuration Data Owner" role in production.

Test-only switches (never set them in a deployment; they exist because no Azure emulator
exists and the tests run the real SDK against local fakes):

``SMF_AZURE_TEST_CREDENTIAL=module:callable``
    A zero-argument callable returning a `TokenCredential`, used instead of
    DefaultAzureCredential (the tests' `FakeKeyVaultCredential`).
``SMF_AZURE_TEST_CA_BUNDLE=/path/cert.pem``
    CA bundle for Key Vault TLS (the fake's self-signed certificate). TLS stays verified.
``SMF_AZURE_TEST_SKIP_CHALLENGE_RESOURCE_CHECK=1``
    Turns off the Key Vault client's check that the bearer challenge's resource
    (``https://vault.azure.net``) matches the vault's domain: a local fake on 127.0.0.1 cannot
    match it.

``SMF_AZURE_RETRY_TOTAL`` (default 6) sets azure-core's per-call retries for throttling (429,
honouring ``Retry-After``) and 5xx: the one retry layer for Azure calls. What is left after
them becomes a transient `StoreError`; apply does not retry it again (`AzureStore.sdk_retries`).

Errors: `store_error` is the one mapper for both stores (throttling/5xx/network → transient,
404 → `NotFoundError`, 409 → `ConflictError`, 401 and missing credentials → `AuthError`).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import threading
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from core.errors import StoreError
from core.stores.base import AuthError, ConflictError, NotFoundError, Store

if TYPE_CHECKING:
    from core.config import SecretManagerConfig

ENV_APPCONFIG_CONNECTION_STRING = "AZURE_APPCONFIG_CONNECTION_STRING"
ENV_TEST_CREDENTIAL = "SMF_AZURE_TEST_CREDENTIAL"
ENV_TEST_CA_BUNDLE = "SMF_AZURE_TEST_CA_BUNDLE"
ENV_TEST_SKIP_CHALLENGE_CHECK = "SMF_AZURE_TEST_SKIP_CHALLENGE_RESOURCE_CHECK"
ENV_RETRY_TOTAL = "SMF_AZURE_RETRY_TOTAL"

_LOCK = threading.Lock()
_CREDENTIALS: dict[Any, Any] = {}
_CLIENTS: dict[Any, Any] = {}


def azure_options(config: SecretManagerConfig) -> dict[str, Any]:
    """The `spec.provider.azure` section (defaults applied by core.config)."""
    return dict(config.provider_options or {})


def _env(env: dict[str, str] | None) -> dict[str, str]:
    return dict(os.environ) if env is None else env


def credential(options: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    """The process-wide token credential (DefaultAzureCredential, or the test override)."""
    env = _env(env)
    client_id = (options.get("auth") or {}).get("clientId") or None
    override = env.get(ENV_TEST_CREDENTIAL) or None
    key = (override, client_id)
    with _LOCK:
        cached = _CREDENTIALS.get(key)
        if cached is not None:
            return cached
        if override:
            module_name, _, attr = override.partition(":")
            made = getattr(importlib.import_module(module_name), attr)()
        else:
            from azure.identity import DefaultAzureCredential

            made = DefaultAzureCredential(managed_identity_client_id=client_id)
        _CREDENTIALS[key] = made
        return made


def _retry_kwargs(env: dict[str, str]) -> dict[str, Any]:
    total = int(env.get(ENV_RETRY_TOTAL) or 6)
    return {"retry_total": total, "retry_backoff_factor": 0.5, "retry_backoff_max": 8}


def vault_url(options: dict[str, Any]) -> str:
    url = options.get("vaultUrl")
    if url:
        return str(url).rstrip("/")
    name = options.get("vaultName")
    if not name:
        raise StoreError("set spec.provider.azure.vaultName or vaultUrl", field="spec.provider.azure")
    return f"https://{name}.vault.azure.net"


def secret_client(options: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    """A cached `azure.keyvault.secrets.SecretClient` for the configured vault."""
    env = _env(env)
    url = vault_url(options)
    ca = env.get(ENV_TEST_CA_BUNDLE) or None
    skip_check = env.get(ENV_TEST_SKIP_CHALLENGE_CHECK) == "1"
    cred = credential(options, env)
    key = ("kv", url, ca, skip_check, id(cred), env.get(ENV_RETRY_TOTAL))
    with _LOCK:
        cached = _CLIENTS.get(key)
        if cached is not None:
            return cached
    from azure.keyvault.secrets import SecretClient

    kwargs: dict[str, Any] = _retry_kwargs(env)
    if ca:
        kwargs["connection_verify"] = ca
    if skip_check:
        kwargs["verify_challenge_resource"] = False
    made = SecretClient(url, cred, **kwargs)
    with _LOCK:
        return _CLIENTS.setdefault(key, made)


def app_config_endpoint(config: SecretManagerConfig, options: dict[str, Any]) -> str | None:
    return config.configs.app_config_endpoint or (options.get("appConfig") or {}).get("endpoint") or None


def app_config_client(
    endpoint: str | None, options: dict[str, Any], env: dict[str, str] | None = None
) -> Any:
    """A cached `AzureAppConfigurationClient`: connection string if set, else Entra ID."""
    env = _env(env)
    conn = env.get(ENV_APPCONFIG_CONNECTION_STRING) or None
    if not conn and not endpoint:
        raise StoreError(
            "set spec.configs.appConfigEndpoint (or provider.azure.appConfig.endpoint), "
            f"or {ENV_APPCONFIG_CONNECTION_STRING}",
            field="spec.configs.appConfigEndpoint",
        )
    cred = None if conn else credential(options, env)
    digest = hashlib.sha256(conn.encode()).hexdigest() if conn else None
    key = ("appconfig", endpoint, digest, id(cred), env.get(ENV_RETRY_TOTAL))
    with _LOCK:
        cached = _CLIENTS.get(key)
        if cached is not None:
            return cached
    from azure.appconfiguration import AzureAppConfigurationClient

    kwargs = _retry_kwargs(env)
    if conn:
        made = AzureAppConfigurationClient.from_connection_string(conn, **kwargs)
    else:
        made = AzureAppConfigurationClient(endpoint, cred, **kwargs)
    with _LOCK:
        return _CLIENTS.setdefault(key, made)


def clear_caches() -> None:
    """Forget cached clients and credentials (tests switch fakes between sessions)."""
    with _LOCK:
        _CLIENTS.clear()
        _CREDENTIALS.clear()


# -- errors --------------------------------------------------------------------------------
def error_code(exc: Exception) -> str | None:
    err = getattr(exc, "error", None)
    code = getattr(err, "code", None)
    inner = getattr(err, "innererror", None)
    if isinstance(inner, dict) and inner.get("code"):
        return str(inner["code"])
    return str(code) if code else None


#: What to set when no Azure credential is available (one line, no values).
NO_CREDENTIALS_HINT = (
    "no Azure credentials found: run with a managed identity (provider.azure.auth.clientId for "
    "a user-assigned one), set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or `az login`"
)


def store_error(exc: Exception, *, op: str, name: str | None = None) -> StoreError:
    """An Azure SDK exception as a `StoreError`: status and error code, never the message
    (a service message may echo the request)."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        ResourceExistsError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if type(exc).__name__ == "CredentialUnavailableError" or (
        isinstance(exc, ClientAuthenticationError) and getattr(exc, "status_code", None) is None
    ):  # azure-identity found no credential, or could not get a token
        return AuthError(f"{op} failed: {NO_CREDENTIALS_HINT}", field=name)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return StoreError(f"{op} failed: {type(exc).__name__} (network)", transient=True, field=name)
    status = getattr(exc, "status_code", None)
    code = error_code(exc)
    transient = status in (408, 429) or (status is not None and status >= 500)
    what = f"HTTP {status}" if status is not None else type(exc).__name__
    if code:
        what += f" {code}"
    message = f"{op} failed: {what}"
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        return NotFoundError(message, code=code, field=name)
    if isinstance(exc, ResourceExistsError) or status == 409:
        return ConflictError(message, code=code, field=name)
    if status == 401 or isinstance(exc, ClientAuthenticationError):
        return AuthError(message, code=code, field=name)
    return StoreError(message, transient=transient, code=code, field=name)


class AzureStore(Store):
    """What Key Vault and App Configuration share: the cached client, counted calls through
    `_call`, `store_error` as the mapper, and azure-core's retry policy as the one retry."""

    sdk_retries: ClassVar[bool] = True

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: dict[str, int] = {}

    def map_error(self, exc: Exception, *, op: str, name: str | None) -> StoreError:
        return store_error(exc, op=op, name=name)

    def close(self) -> None:
        """Clients are cached per process (warm invocations reuse them): nothing to release."""


# -- metadata --------------------------------------------------------------------------------
def clean_repo_url(url: str) -> str:
    """A repository URL without user info (a token in ``https://tok@host/...`` never lands
    in a tag)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


def fit(value: str, limit: int) -> str:
    """`value` cut to `limit` characters, keeping a hash of the whole so cut values differ."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:12]
    return value[: limit - 14] + "~" + digest
