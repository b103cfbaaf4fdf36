"""Embedded local store (SQLite): permissive, hierarchical names like Secrets Manager's.

Default name: ``{prefix}/{environment}/{key}{suffix}``; `prefix` defaults to the service.
"""

from core.naming.base import NamingRules

RULES = NamingRules(
    store="local",
    default_template="{prefix}/{environment}/{key}{suffix}",
    allowed=r"A-Za-z0-9/_+=.@:\[\]-",
    max_length=512,
    max_value_bytes=1024 * 1024,
)
RULES_BY_STORE = {
    "local-secrets": NamingRules(**{**RULES.__dict__, "store": "local-secrets"}),
    "local-configs": NamingRules(**{**RULES.__dict__, "store": "local-configs"}),
}
