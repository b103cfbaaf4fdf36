"""Azure App Configuration keys.

Default key: ``{prefix}:{key}``, with the environment as the **label**. Keys are
case-sensitive; ``*``, ``,`` and ``\\`` are reserved and ``%`` is not allowed, so those become
``_``. A key-value (key, label, value, content type and tags together) is at most 10,000
characters; the value check uses that bound and the store checks the whole entry.

The store (core/stores/azure_app_configuration.py) refines this: without a name template,
``provider.azure.appConfig.separator`` replaces the ``:`` between prefix and key
(``orders/db.url``); the label is ``appConfig.label`` (default: the environment). Key Vault
references it derives from a service's secrets use the same key scheme with the secret's key
(``orders:DB_PASSWORD``), so a secret and a config of the same key are reported as a clash.
"""

from core.naming.base import NamingRules


def _appconfig_check(name: str) -> str | None:
    if name in (".", ".."):
        return "'.' and '..' are not valid App Configuration keys"
    return None


RULES = NamingRules(
    store="azure-app-configuration",
    default_template="{prefix}:{key}",
    allowed=r"\x20-\U0010ffff",
    forbidden="*,\\%",
    max_length=10000,
    max_value_bytes=10000,
    extra_check=_appconfig_check,
    controller_style="app-config",
)
