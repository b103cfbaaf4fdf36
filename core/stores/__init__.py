"""Stores: one module per cloud store behind `core.stores.base.Store`.

`open_store(kind, config)` imports the store's module (and so its SDK) only when asked.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.config import SecretManagerConfig
    from core.stores.base import Store

#: store kind → "module:Class"
STORE_CLASSES = {
    "local-secrets": "core.stores.local:LocalSecretStore",
    "local-configs": "core.stores.local:LocalConfigStore",
    "aws-secrets-manager": "core.stores.aws_secrets_manager:SecretsManagerStore",
    "aws-parameter-store": "core.stores.aws_parameter_store:ParameterStore",
    "gcp-secret-manager": "core.stores.gcp_secret_manager:SecretManagerStore",
    "gcp-parameter-manager": "core.stores.gcp_parameter_manager:ParameterManagerStore",
    "azure-key-vault": "core.stores.azure_key_vault:KeyVaultStore",
    "azure-app-configuration": "core.stores.azure_app_configuration:AppConfigurationStore",
}


def open_store(kind: str, config: SecretManagerConfig) -> Store:
    """Build the store for `kind` from the config's provider section."""
    module_name, _, class_name = STORE_CLASSES[kind].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls.from_config(config)
