"""Per-store naming rules. `rules_for(store)` returns a store kind's `NamingRules`.

Modules are imported lazily so that naming costs nothing until a store is used.
"""

from __future__ import annotations

import importlib

from core.naming.base import NameContext, NamingRules

#: store kind → module holding its RULES
_MODULES = {
    "local-secrets": "core.naming.local",
    "local-configs": "core.naming.local",
    "aws-secrets-manager": "core.naming.aws_secrets_manager",
    "aws-parameter-store": "core.naming.aws_parameter_store",
    "gcp-secret-manager": "core.naming.gcp_secret_manager",
    "gcp-parameter-manager": "core.naming.gcp_parameter_manager",
    "azure-key-vault": "core.naming.azure_key_vault",
    "azure-app-configuration": "core.naming.azure_app_configuration",
}

STORE_KINDS = tuple(_MODULES)


def rules_for(store: str) -> NamingRules:
    module = importlib.import_module(_MODULES[store])
    rules = getattr(module, "RULES_BY_STORE", {}).get(store) or module.RULES
    return rules


__all__ = ["NameContext", "NamingRules", "rules_for", "STORE_KINDS"]
