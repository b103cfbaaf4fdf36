"""dotenv files, with python-dotenv's parser (the de-facto convention).

Supported: ``KEY=value``, ``export KEY=value``, single quotes (literal), double quotes
(escapes ``\\n \\t \\" \\\\``), values spanning lines inside quotes, ``#`` comment lines and
`` #`` trailing comments on unquoted values, blank lines. No variable interpolation: ``${X}``
stays as written, because a sync must store exactly what the file says.
"""

from __future__ import annotations

import io

from core.errors import ParseError
from core.parsers import ParsedItem


def parse_dotenv(text: str, path: str) -> list[ParsedItem]:
    from dotenv.parser import parse_stream

    items: list[ParsedItem] = []
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            raise ParseError("cannot parse this line (expected KEY=value)", path=path, line=line)
        if binding.key is None:
            continue  # blank or comment
        if binding.value is None:
            raise ParseError(
                f"key {binding.key!r} has no '=' and no value", path=path, line=line, field=binding.key
            )
        items.append(ParsedItem(binding.key, binding.value, line))
    return items
