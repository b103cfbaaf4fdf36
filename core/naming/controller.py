"""The Secret Manager Controller's names, per store, exactly as its code computed them.

A team switching from the controller must find every value under the name the controller
wrote, or its applications keep reading the old copy. The rules (controller sources at
microscaler/secret-manager-controller 4a200ca7; identical in the octopilot fork f8024ef9):

- Secret stores (Secrets Manager, Secret Manager, Key Vault), GCP Parameter Manager, and GCP
  Secret Manager as config store: ``construct_secret_name(prefix, key, suffix)``
  (crates/controller/src/controller/reconciler/utils.rs:41-64): ``{prefix}-{key}-{suffix}``,
  leading dashes stripped from the suffix, then ``sanitize_secret_name`` (utils.rs:74-107):
  ``.`` ``/`` space and every character that is not alphanumeric, ``-`` or ``_`` → ``_``;
  runs of ``-`` collapse to one; leading and trailing ``-`` are trimmed. No environment.
- The ``application.properties`` blob (configs disabled): the same, with key ``properties``
  (processing/properties.rs:318-322), value ``serde_json::to_string`` of the map: compact JSON.
- AWS Parameter Store (configs enabled): ``construct_parameter_name``
  (provider/aws/parameter_store.rs:200-206): ``{path}/{key with . and / → _}``, path =
  ``configs.parameterPath`` (a ``/`` prepended if missing) or ``/{prefix}/{environment}``
  (parameter_store.rs:75-85). No suffix.
- Azure App Configuration (configs enabled): ``{prefix}:{environment}:{key}``
  (provider/azure/app_configuration/client.rs:50-52, operations.rs:22-24), with no label.

The prefix is ``secrets.prefix``, else the service directory (raw file mode,
processing/application_files.rs:37-48), and ``default`` in kustomize mode
(reconcile/sync.rs:63).

Where the controller's name is one the store refuses, the nearest valid name is used and
reported once: Key Vault allows only ``0-9a-zA-Z-``, so every other character (``_`` above
all) becomes ``-``, with dash runs collapsed and trimmed as the controller does (the controller
itself failed to write such names, so nothing of it exists under them); Parameter Store
refuses characters outside ``a-zA-Z0-9_.-/``, which become ``_``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.naming.base import NamingRules

#: The blob the controller wrote application.properties to when configs were disabled.
PROPERTIES_KEY = "properties"
#: The service name the controller used in kustomize mode without `secrets.prefix`.
KUSTOMIZE_DEFAULT_PREFIX = "default"


def sanitize_secret_name(name: str) -> str:
    """The controller's `sanitize_secret_name` (utils.rs:74-107)."""
    mapped = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return re.sub(r"-{2,}", "-", mapped).strip("-")


def construct_secret_name(prefix: str | None, key: str, suffix: str | None) -> str:
    """The controller's `construct_secret_name` (utils.rs:41-64)."""
    parts = [prefix] if prefix else []
    parts.append(key)
    trimmed = (suffix or "").lstrip("-")
    if trimmed:
        parts.append(trimmed)
    return sanitize_secret_name("-".join(parts))


def parameter_path(parameter_path_option: str | None, prefix: str, environment: str) -> str:
    """The controller's Parameter Store path prefix (parameter_store.rs:75-85)."""
    if parameter_path_option:
        return parameter_path_option if parameter_path_option.startswith("/") else f"/{parameter_path_option}"
    return f"/{prefix}/{environment}"


def construct_parameter_name(path: str, key: str) -> str:
    """The controller's `construct_parameter_name` (parameter_store.rs:200-206)."""
    return f"{path}/{key.replace('.', '_').replace('/', '_')}"


def app_config_key(prefix: str, environment: str, key: str) -> str:
    """The controller's App Configuration key: ``{prefix}:{environment}:{key}`` (client.rs:52)."""
    return f"{prefix}:{environment}:{key}"


# -- per store ------------------------------------------------------------------------------
#: `NamingRules.controller_style`: how the controller named entries of a store kind.
SECRET_STYLE = "secret"  # noqa: S105 (a style name) construct_secret_name: secret stores, Parameter Manager
PARAMETER_STYLE = "parameter"  # construct_parameter_name, when the store holds configs
APP_CONFIG_STYLE = "app-config"  # {prefix}:{environment}:{key}


def nearest_valid(rules: NamingRules, name: str) -> str:
    """The store's nearest valid name for a controller name it refuses: every refused
    character becomes the store's replacement (``-`` for Key Vault, ``_`` for Parameter Store),
    with runs collapsed and trimmed where the store collapses them (Key Vault)."""
    out = re.sub(f"[^{rules.allowed}]", rules.replacement, name)
    if rules.forbidden:
        out = re.sub(f"[{re.escape(rules.forbidden)}]", rules.replacement, out)
    if rules.squeeze:
        rep = re.escape(rules.replacement)
        out = re.sub(f"{rep}{{2,}}", rules.replacement, out).strip(rules.replacement)
    return out


def name_for(
    rules: NamingRules,
    *,
    prefix: str,
    environment: str,
    key: str,
    suffix: str | None,
    parameter_path_option: str | None,
    config_store: bool,
) -> tuple[str, str]:
    """(the name we use, the name the controller computed) for one key in one store kind.

    `config_store` is true for configs routed to a config store (``configs.enabled``).
    """
    if rules.controller_style == PARAMETER_STYLE and config_store:
        wanted = construct_parameter_name(parameter_path(parameter_path_option, prefix, environment), key)
    elif rules.controller_style == APP_CONFIG_STYLE:
        wanted = app_config_key(prefix, environment, key)
    else:
        wanted = construct_secret_name(prefix, key, suffix)
    return (wanted if rules.check_name(wanted) is None else nearest_valid(rules, wanted)), wanted
