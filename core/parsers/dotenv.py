"""dotenv files, with python-dotenv's parser (the de-facto convention).

Supported: ``KEY=value``, ``export KEY=value``, single quotes (literal), double quotes
(escapes ``\\n \\t \\" \\\\``), values spanning lines inside quotes, ``#`` comment lines and
`` #`` trailing comments on unquoted values, blank lines. No variable interpolation: ``${X}``
stays as written, because a sync must store exactly what the file says.
"""

from __future__ import annotations

import io
import re

from core.errors import ParseError
from core.parsers import ParsedItem

#: A line python-dotenv reads as exactly ``KEY`` and ``value`` as written: an optional
#: ``export``, a plain key, ``=``, an unquoted value without whitespace, ``#``, quotes,
#: backslashes or ``$``. tests/core/test_scale_paths.py checks it against python-dotenv.
_SIMPLE = re.compile(r"(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.-]*)=([A-Za-z0-9_./:@+,=%~^-]*)")


def _simple(text: str) -> list[ParsedItem] | None:
    """The items of a file whose every line is simple, blank or a ``#`` comment, without
    python-dotenv's character-by-character reader (a 5,000-service sync reads 5,000 such
    files; bench/bench_scale.py); None when any line is not, so that python-dotenv reads
    it. Line numbers are python-dotenv's: blank lines belong to the binding after them."""
    items: list[ParsedItem] = []
    start = 1
    for number, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        if line[0] == "#":
            start = number + 1
            continue
        m = _SIMPLE.fullmatch(line)
        if m is None:
            return None
        items.append(ParsedItem(m.group(1), m.group(2), start))
        start = number + 1
    return items


def parse_dotenv(text: str, path: str) -> list[ParsedItem]:
    simple = _simple(text)
    return simple if simple is not None else _python_dotenv(text, path)


def _python_dotenv(text: str, path: str) -> list[ParsedItem]:
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
