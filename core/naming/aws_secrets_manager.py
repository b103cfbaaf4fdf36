"""AWS Secrets Manager names.

Default: ``{prefix}/{environment}/{key}{suffix}``. Names allow ``A-Za-z0-9/_+=.@-`` and up to
512 characters; any other character in a key becomes ``_``. SecretString is at most 64 KiB
(65,536 bytes) and cannot be empty.
"""

from core.naming.base import NamingRules

RULES = NamingRules(
    store="aws-secrets-manager",
    default_template="{prefix}/{environment}/{key}{suffix}",
    allowed=r"A-Za-z0-9/_+=.@-",
    max_length=512,
    max_value_bytes=65536,
    allow_empty_value=False,
)
