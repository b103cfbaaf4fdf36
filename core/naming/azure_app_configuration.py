"""Azure App Configuration keys.

Default key: ``{prefix}:{key}``, with the environment as the **label**. Keys are
case-sensitive; ``*``, ``,`` and ``\\`` are reserved and ``%`` is not allowed, so those become
``_``. A key-value (key, label, value, content type and tags together) is at most 10,000
characters; the value check uses that bound and the store checks the whole entry.

Without a name template, ``provider.azure.appConfig.separator`` replaces the ``:`` between
prefix and key (``orders/db.url``): `key_template`, the rules' default for that config. The
label is ``appConfig.label`` (default: the environment; core/stores/azure_app_configuration.py).
Key Vault references the store derives from a service's secrets use the same key rule with
the secret's key (``orders:DB_PASSWORD``), so a secret and a config of the same key are
reported as a clash.
"""

from __future__ import annotations

from typing import Any

from core.naming.base import NamingRules

KIND = "azure-app-configuration"


def key_template(separator: str) -> str:
    """``{prefix}<separator>{key}``; the separator is literal (braces in it stay braces)."""
    return "{prefix}" + separator.replace("{", "{{").replace("}", "}}") + "{key}"


def _default_template(config: Any) -> str | None:
    options = config.kind_options.get(KIND)  # (none: another provider's config)
    return key_template(options.separator) if options is not None else None


def _appconfig_check(name: str) -> str | None:
    if name in (".", ".."):
        return "'.' and '..' are not valid App Configuration keys"
    return None


RULES = NamingRules(
    store=KIND,
    default_template="{prefix}:{key}",
    allowed=r"\x20-\U0010ffff",
    forbidden="*,\\%",
    max_length=10000,
    max_value_bytes=10000,
    extra_check=_appconfig_check,
    controller_style="app-config",
    default_template_for=_default_template,
)
