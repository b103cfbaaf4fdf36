"""Azure Key Vault secret names.

Default: ``{prefix}-{environment}-{key}{suffix}``. Names allow only ``0-9a-zA-Z-``, must start
with a letter, are 1–127 characters and are **case-insensitive**. In substituted values ``_``
and ``.`` (and any other character) become ``-``, runs of ``-`` collapse to one, so
``db.url`` and ``DB_URL`` map to ``db-url``/``DB-URL`` — the same secret — and are reported as
a clash. Values are at most 25 KB (25,600 bytes).
"""

import re

from core.naming.base import NamingRules


def _kv_check(name: str) -> str | None:
    if not re.match(r"^[A-Za-z]", name):
        return "Key Vault names must start with a letter"
    return None


RULES = NamingRules(
    store="azure-key-vault",
    default_template="{prefix}-{environment}-{key}{suffix}",
    allowed=r"0-9a-zA-Z-",
    replacement="-",
    translate={"_": "-", ".": "-"},
    squeeze=True,
    max_length=127,
    max_value_bytes=25 * 1024,
    case_insensitive=True,
    extra_check=_kv_check,
)
