"""The store-kind registry: every store kind is declared here, once.

A kind's entry says everything the spine needs to know about it without importing it:

- `id`: the name printed in reports and plans (``aws-secrets-manager``);
- `provider`: the ``spec.provider.type`` it belongs to;
- `roles`: which routing slot it fills (``secret`` and/or ``config``) and the condition on
  the config that selects it for that slot (Parameter Store is AWS's secret store only with
  ``secretsStore: ParameterStore``; GCP's config store is Parameter Manager only with
  ``configs.store: ParameterManager``). A provider's `default` kind fills a slot that no
  other kind's condition claims;
- `store_class`: ``"module:Class"``, imported only when a store of that kind is opened, so
  a handler imports only its own cloud's SDK;
- `naming`: ``"module:ATTR"`` holding the kind's `NamingRules` (charset, limits, default
  template);
- `joins_when`: a condition under which the kind takes part in a run although no value is
  routed to it (App Configuration deriving Key Vault references from a service's secrets);
- `options` / `options_section`: the kind's options dataclass (``"module:Class"``, see
  `core.options`) and where it sits in ``spec.provider.<type>``.

Each `Provider` names the dataclass of the options its kinds share (region, project, auth).

Routing (`core.route`), the store factory (`core.stores.open_store`), naming
(`core.naming.rules_for`) and the spine (`core.sync`) read this table; nothing else names a
kind. Adding a store kind is one new store module plus one entry here: see
docs/adding-a-store.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from core.config import SecretManagerConfig
    from core.naming.base import NamingRules
    from core.stores.base import Store

Role = Literal["secret", "config"]
#: A predicate on a loaded config: "this kind fills this slot for this config".
Condition = Callable[["SecretManagerConfig"], bool]
ROLES: tuple[Role, ...] = ("secret", "config")


def default(config: SecretManagerConfig) -> bool:
    """The condition of a provider's default kind for a slot: it fills the slot unless
    another kind's own condition selects that kind (so a new kind never edits the default)."""
    return True


def never(config: SecretManagerConfig) -> bool:
    return False


def provider_option(path: str, value: Any) -> Condition:
    """True when ``spec.provider.<type>.<path>`` (dotted) equals `value`."""

    def condition(config: SecretManagerConfig) -> bool:
        node: Any = config.provider_options or {}
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        return node == value

    condition.__doc__ = f"spec.provider.*.{path} == {value!r}"
    return condition


def configs_store(value: str) -> Condition:
    """True when ``spec.configs.store`` equals `value`."""

    def condition(config: SecretManagerConfig) -> bool:
        return config.configs.store == value

    condition.__doc__ = f"spec.configs.store == {value!r}"
    return condition


@dataclass(frozen=True)
class StoreKind:
    """One store kind (see the module docstring for each field's meaning)."""

    id: str
    provider: str
    roles: Mapping[Role, Condition]
    store_class: str
    naming: str
    joins_when: Condition = never
    #: ``"module:Class"`` of the kind's options dataclass (see `core.options`), or None.
    options: str | None = None
    #: Where its options sit in ``spec.provider.<type>``: a sub-section name
    #: (``secretsManager``), or None for fields directly in the provider's section.
    options_section: str | None = None
    description: str = field(default="", compare=False)

    def fills(self, role: Role, config: SecretManagerConfig) -> bool:
        condition = self.roles.get(role)
        return condition is not None and config.provider == self.provider and condition(config)

    def load_class(self) -> type[Store]:
        return _load(self.store_class)

    def rules(self) -> NamingRules:
        return _load(self.naming)

    def options_class(self) -> type | None:
        return _load(self.options) if self.options else None


@dataclass(frozen=True)
class Provider:
    """A ``spec.provider.type``: the options every kind of it shares (region, project, auth)."""

    id: str
    options: str

    def options_class(self) -> type:
        return _load(self.options)


#: Every provider, in the order ``spec.provider.type`` lists them.
PROVIDER_TABLE: tuple[Provider, ...] = (
    Provider("local", options="core.stores.providers:LocalOptions"),
    Provider("aws", options="core.stores.providers:AwsOptions"),
    Provider("gcp", options="core.stores.providers:GcpOptions"),
    Provider("azure", options="core.stores.providers:AzureOptions"),
)


@cache
def _load(ref: str) -> Any:
    module_name, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module_name), attr)


#: Every store kind, in the order reports list them.
KINDS: tuple[StoreKind, ...] = (
    StoreKind(
        "local-secrets",
        provider="local",
        roles={"secret": default},
        store_class="core.stores.local:LocalSecretStore",
        naming="core.naming.local:SECRET_RULES",
        description="embedded SQLite store, secrets namespace",
    ),
    StoreKind(
        "local-configs",
        provider="local",
        roles={"config": default},
        store_class="core.stores.local:LocalConfigStore",
        naming="core.naming.local:CONFIG_RULES",
        description="embedded SQLite store, configs namespace",
    ),
    StoreKind(
        "aws-secrets-manager",
        provider="aws",
        roles={"secret": default},
        store_class="core.stores.aws_secrets_manager:SecretsManagerStore",
        options="core.stores.aws_secrets_manager:SecretsManagerOptions",
        options_section="secretsManager",
        naming="core.naming.aws_secrets_manager:RULES",
        description="AWS Secrets Manager",
    ),
    StoreKind(
        "aws-parameter-store",
        provider="aws",
        roles={"secret": provider_option("secretsStore", "ParameterStore"), "config": default},
        store_class="core.stores.aws_parameter_store:ParameterStore",
        options="core.stores.aws_parameter_store:ParameterStoreOptions",
        options_section="parameterStore",
        naming="core.naming.aws_parameter_store:RULES",
        description="AWS Systems Manager Parameter Store",
    ),
    StoreKind(
        "gcp-secret-manager",
        provider="gcp",
        roles={"secret": default, "config": default},
        store_class="core.stores.gcp_secret_manager:SecretManagerStore",
        options="core.stores.gcp_secret_manager:SecretManagerOptions",
        naming="core.naming.gcp_secret_manager:RULES",
        description="GCP Secret Manager",
    ),
    StoreKind(
        "gcp-parameter-manager",
        provider="gcp",
        roles={"config": configs_store("ParameterManager")},
        store_class="core.stores.gcp_parameter_manager:ParameterManagerStore",
        options="core.stores.gcp_parameter_manager:ParameterManagerOptions",
        options_section="parameterManager",
        naming="core.naming.gcp_parameter_manager:RULES",
        description="GCP Parameter Manager",
    ),
    StoreKind(
        "azure-key-vault",
        provider="azure",
        roles={"secret": default},
        store_class="core.stores.azure_key_vault:KeyVaultStore",
        options="core.stores.azure_key_vault:KeyVaultOptions",
        naming="core.naming.azure_key_vault:RULES",
        description="Azure Key Vault",
    ),
    StoreKind(
        "azure-app-configuration",
        provider="azure",
        roles={"config": default},
        store_class="core.stores.azure_app_configuration:AppConfigurationStore",
        options="core.stores.azure_app_configuration:AppConfigOptions",
        options_section="appConfig",
        naming="core.naming.azure_app_configuration:RULES",
        # Key Vault references are derived from the service's secrets, so the store takes part
        # even when configs go to Key Vault (configs.enabled: false).
        joins_when=provider_option("appConfig.keyVaultReferences", True),
        description="Azure App Configuration",
    ),
)

_BY_ID: dict[str, StoreKind] = {k.id: k for k in KINDS}
#: Every kind id, in registry order.
KIND_IDS: tuple[str, ...] = tuple(_BY_ID)
#: Every provider id, in registry order.
PROVIDERS: tuple[str, ...] = tuple(p.id for p in PROVIDER_TABLE)


def register(kind: StoreKind) -> None:
    """Add a kind at run time (tests and out-of-tree stores); the id must be new."""
    global KINDS, KIND_IDS
    if kind.id in _BY_ID:
        raise ValueError(f"store kind {kind.id!r} is already registered")
    if kind.provider not in PROVIDERS:
        raise ValueError(f"store kind {kind.id!r}: unknown provider {kind.provider!r}")
    _BY_ID[kind.id] = kind
    KINDS = (*KINDS, kind)
    KIND_IDS = tuple(_BY_ID)


def unregister(kind_id: str) -> None:
    """Remove a kind added with `register` (tests clean up after themselves)."""
    global KINDS, KIND_IDS
    _BY_ID.pop(kind_id)
    KINDS = tuple(k for k in KINDS if k.id != kind_id)
    KIND_IDS = tuple(_BY_ID)


def get(kind_id: str) -> StoreKind:
    """The registered kind `kind_id`; KeyError names the kinds that exist."""
    try:
        return _BY_ID[kind_id]
    except KeyError:
        raise KeyError(f"unknown store kind {kind_id!r} (known: {', '.join(_BY_ID)})") from None


def get_provider(provider_id: str) -> Provider:
    return next(p for p in PROVIDER_TABLE if p.id == provider_id)


def kinds_of(provider: str) -> tuple[StoreKind, ...]:
    return tuple(k for k in KINDS if k.provider == provider)


def store_for(config: SecretManagerConfig, role: Role) -> str:
    """The kind id that fills `role` for `config`: the one kind of its provider whose own
    condition selects it, else the provider's default kind for that role."""
    candidates = [k for k in kinds_of(config.provider) if k.fills(role, config)]
    chosen = [k.id for k in candidates if k.roles[role] is not default]
    chosen = chosen or [k.id for k in candidates]
    if len(chosen) != 1:
        raise LookupError(
            f"{len(chosen)} store kinds fill the {role} role for provider {config.provider!r}"
            + (f" ({', '.join(chosen)})" if chosen else "")
        )
    return chosen[0]


def kinds_in_use(config: SecretManagerConfig) -> list[str]:
    """Kinds a run of `config` works with, the secret store first: the secret store, the
    config store when ``configs.enabled``, and every kind whose `joins_when` holds."""
    out = [store_for(config, "secret")]
    if config.configs.enabled and store_for(config, "config") not in out:
        out.append(store_for(config, "config"))
    for k in kinds_of(config.provider):
        if k.id not in out and k.joins_when(config):
            out.append(k.id)
    return out


def open_store(kind_id: str, config: SecretManagerConfig) -> Store:
    """Build the store of `kind_id` for `config` (imports its module, and so its SDK, now)."""
    return get(kind_id).load_class().from_config(config)


def rules_for(kind_id: str) -> NamingRules:
    return get(kind_id).rules()
