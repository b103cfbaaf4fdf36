"""GCP Parameter Manager parameter ids.

Default: ``{prefix}-{environment}-{key}{suffix}`` (one parameter per key); in document mode
(``parameterManager.mode: document``) one parameter per service and environment named
``{prefix}-{environment}{suffix}``. Parameter and version ids allow ``[A-Za-z0-9_-]``, at most
63 characters, and may not begin with a dash (Parameter Manager documentation, "Create a
parameter" / "Add a parameter version"); other characters in keys become ``_``. A version's
payload is at most 1 MiB.
"""

from core.naming.base import NamingRules

MAX_ID_LENGTH = 63
DOCUMENT_TEMPLATE = "{prefix}-{environment}{suffix}"


def _no_leading_dash(name: str) -> str | None:
    if name.startswith("-"):
        return "name begins with '-'; gcp-parameter-manager ids may not begin with a dash"
    return None


RULES = NamingRules(
    store="gcp-parameter-manager",
    default_template="{prefix}-{environment}-{key}{suffix}",
    allowed=r"A-Za-z0-9_-",
    max_length=MAX_ID_LENGTH,
    max_value_bytes=1024 * 1024,
    extra_check=_no_leading_dash,
)
