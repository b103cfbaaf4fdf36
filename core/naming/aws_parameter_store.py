"""AWS Systems Manager Parameter Store names.

Default: ``{path}/{key}{suffix}`` where `path` is `configs.parameterPath` or
``/{prefix}/{environment}`` (the seed's ``/service/environment/key``). Names allow
``a-zA-Z0-9_.-/``, at most 15 levels, and may not begin with ``aws`` or ``ssm`` (any case).
AWS counts the 1011-character limit over the whole ARN
(``arn:aws:ssm:us-east-1:123456789012:parameter/name``), so the name itself may use what the
longest ARN prefix leaves: 1011 - 56 = 955 characters. Values are at most 4 KB (Standard tier) or 8 KB (Advanced tier) and
cannot be empty.
"""

import re

from core.naming.base import NamingRules

MAX_DEPTH = 15
STANDARD_TIER_BYTES = 4096
ADVANCED_TIER_BYTES = 8192
#: 1011 for the full ARN minus the longest ARN prefix (arn:aws-us-gov:ssm:us-gov-west-1:...).
MAX_NAME = 1011 - len("arn:aws-us-gov:ssm:us-gov-west-1:123456789012:parameter/")


def _ssm_check(name: str) -> str | None:
    first = name.lstrip("/").split("/", 1)[0]
    if re.match(r"(?i)^(aws|ssm)", first):
        return "parameter names may not begin with 'aws' or 'ssm' (reserved by AWS)"
    if "/" in name and not name.startswith("/"):
        return "hierarchical parameter names must begin with '/'"
    depth = name.strip("/").count("/") + 1
    if depth > MAX_DEPTH:
        return f"name has {depth} levels; Parameter Store allows at most {MAX_DEPTH}"
    if "//" in name:
        return "name has an empty path level ('//')"
    return None


class _SsmRules(NamingRules):
    def normalize(self, name: str) -> str:
        return re.sub(r"/{2,}", "/", name)


RULES = _SsmRules(
    store="aws-parameter-store",
    default_template="{path}/{key}{suffix}",
    allowed=r"a-zA-Z0-9_./-",
    max_length=MAX_NAME,
    max_value_bytes=ADVANCED_TIER_BYTES,
    allow_empty_value=False,
    extra_check=_ssm_check,
    controller_style="parameter",
)
