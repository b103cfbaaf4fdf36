"""Embedded local store (SQLite): permissive, hierarchical names like Secrets Manager's.

Default name: ``{prefix}/{environment}/{key}{suffix}``; `prefix` defaults to the service.
Both namespaces (secrets, configs) share these rules; each has its own `store` label.
"""

from dataclasses import replace

from core.naming.base import NamingRules

RULES = NamingRules(
    store="local",
    default_template="{prefix}/{environment}/{key}{suffix}",
    allowed=r"A-Za-z0-9/_+=.@:\[\]-",
    max_length=512,
    max_value_bytes=1024 * 1024,
)
SECRET_RULES = replace(RULES, store="local-secrets")
CONFIG_RULES = replace(RULES, store="local-configs")
