"""Parsers: one module per file format, each turning text into flat `key → string` items.

Every parser returns `ParsedItem`s in file order with the line they came from, and raises
`ParseError` naming the file and line. A key repeated in one file is an error (naming both
lines) rather than a silent last-wins, because it is almost always a mistake and the two
values may land in different stores after renaming.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import ParseError


@dataclass
class ParsedItem:
    key: str
    value: str = field(repr=False)
    line: int | None = None


def parse_file(path: str, text: str) -> list[ParsedItem]:
    """Parse one discovered file by its name: .env, .properties, .yaml/.yml or .json."""
    name = path.rsplit("/", 1)[-1]
    if name.endswith(".env"):
        from core.parsers.dotenv import parse_dotenv

        items = parse_dotenv(text, path)
    elif name.endswith(".properties"):
        from core.parsers.properties import parse_properties

        items = parse_properties(text, path)
    elif name.endswith((".yaml", ".yml")):
        from core.parsers.structured import parse_yaml

        items = parse_yaml(text, path)
    elif name.endswith(".json"):
        from core.parsers.structured import parse_json

        items = parse_json(text, path)
    else:
        raise ParseError("unsupported file type (expected .env, .properties, .yaml or .json)", path=path)
    return reject_duplicates(items, path)


def reject_duplicates(items: list[ParsedItem], path: str) -> list[ParsedItem]:
    seen: dict[str, ParsedItem] = {}
    for item in items:
        first = seen.get(item.key)
        if first is not None:
            where = f" (first on line {first.line})" if first.line else ""
            raise ParseError(
                f"key {item.key!r} is defined twice{where}", path=path, line=item.line, field=item.key
            )
        seen[item.key] = item
    return items
