"""GCP Parameter Manager parameter ids.

Default: ``{prefix}-{environment}-{key}{suffix}`` (one parameter per key); in document mode
(``parameterManager.mode: document``) one parameter per service and environment named
``{prefix}-{environment}{suffix}``. Parameter and version ids allow ``[A-Za-z0-9_-]``, at most
63 characters, and may not begin with a dash (Parameter Manager documentation, "Create a
parameter" / "Add a parameter version"); other characters in keys become ``_``. A version's
payload is at most 1 MiB.

In document mode every config entry of a service is named with the document's id (rendered
without the key), whatever the naming scheme or ``nameTemplate``: the store then bundles the
entries that share that name into the one parameter (core/stores/gcp_parameter_manager.py).
"""

from __future__ import annotations

from typing import Any

from core.naming.base import NamingRules

KIND = "gcp-parameter-manager"
MAX_ID_LENGTH = 63
DOCUMENT_TEMPLATE = "{prefix}-{environment}{suffix}"
DOCUMENT_FIELD = "spec.provider.gcp.parameterManager.documentName"


def _document_template(config: Any) -> tuple[str, str] | None:
    options = config.kind_options.get(KIND)  # (none: another provider's config)
    if options is None or options.mode != "document":
        return None
    return options.document_name or DOCUMENT_TEMPLATE, DOCUMENT_FIELD


def _no_leading_dash(name: str) -> str | None:
    if name.startswith("-"):
        return "name begins with '-'; gcp-parameter-manager ids may not begin with a dash"
    return None


RULES = NamingRules(
    store=KIND,
    default_template="{prefix}-{environment}-{key}{suffix}",
    allowed=r"A-Za-z0-9_-",
    max_length=MAX_ID_LENGTH,
    max_value_bytes=1024 * 1024,
    extra_check=_no_leading_dash,
    entry_template_for=_document_template,
)
