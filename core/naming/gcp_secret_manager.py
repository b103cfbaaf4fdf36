"""GCP Secret Manager secret ids.

Default: ``{prefix}-{environment}-{key}{suffix}``. Ids allow ``[A-Za-z0-9_-]`` and up to 255
characters; ``.``, ``/`` and ``:`` in keys become ``_`` (``db.url`` → ``db_url``), as does any
other character. Ids are case-sensitive. Payloads are at most 64 KiB (65,536 bytes).
"""

from core.naming.base import NamingRules

RULES = NamingRules(
    store="gcp-secret-manager",
    default_template="{prefix}-{environment}-{key}{suffix}",
    allowed=r"A-Za-z0-9_-",
    max_length=255,
    max_value_bytes=65536,
)
