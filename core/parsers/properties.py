"""Java .properties files, with the `javaproperties` library (full java.util.Properties syntax).

Separators ``=``, ``:`` or whitespace; ``\\`` line continuations; ``\\uXXXX`` and the other
escapes; ``#`` and ``!`` comments. A malformed ``\\u`` escape is an error naming the line.
"""

from __future__ import annotations

from core.errors import ParseError
from core.parsers import ParsedItem


def parse_properties(text: str, path: str) -> list[ParsedItem]:
    import javaproperties

    items: list[ParsedItem] = []
    line = 1
    try:
        for element in javaproperties.parse(text):
            if isinstance(element, javaproperties.KeyValue):
                items.append(ParsedItem(element.key, element.value, line))
            line += element.source.count("\n") + element.source.count("\r") - element.source.count("\r\n")
    except javaproperties.InvalidUEscapeError as exc:
        bad_line = _line_of(text, exc.escape) or line
        raise ParseError(f"invalid \\u escape {exc.escape!r}", path=path, line=bad_line) from None
    return items


def _line_of(text: str, needle: str) -> int | None:
    index = text.find(needle)
    return text.count("\n", 0, index) + 1 if index >= 0 else None
