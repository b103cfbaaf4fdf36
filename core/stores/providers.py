"""The options every store kind of one provider shares (``spec.provider.<type>``).

Each store kind declares its own options next to its class; what all kinds of a provider
read (region, project, credentials) is declared here once per provider and named by
`core.registry.Provider`. Defaults are written here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.options import Auth, option


@dataclass(frozen=True)
class LocalOptions:
    #: SQLite file both local kinds (secrets, configs) live in.
    path: str = ".smf/local-store.db"


@dataclass(frozen=True)
class AwsOptions:
    region: str | None = None
    auth: Auth = option(Auth)
    #: moto or another endpoint (else ``AWS_ENDPOINT_URL`` / the SDK's default).
    endpoint_url: str | None = None
    #: Where secrets go: Secrets Manager, or Parameter Store SecureStrings.
    secrets_store: str = option("SecretsManager", enum=("SecretsManager", "ParameterStore"))


@dataclass(frozen=True)
class GcpOptions:
    project_id: str = option(required=True)
    #: A region for regional secrets (else global).
    location: str | None = None
    auth: Auth = option(Auth)


@dataclass(frozen=True)
class AzureOptions:
    auth: Auth = option(Auth)
    #: The controller's field: the vault is found by vaultName or vaultUrl.
    location: Any = option(ignored="has no effect here (the vault is found by vaultName or vaultUrl)")
