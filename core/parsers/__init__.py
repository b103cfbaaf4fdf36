"""Parsers: one module per file format, each turning text into flat `key → string` items.

Every parser returns `ParsedItem`s in file order with the line they came from, and raises
`ParseError` naming the file and line. A key repeated in one file is an error (naming both
lines) rather than a silent last-wins, because it is almost always a mistake and the two
values may land in different stores after renaming. A key that is empty or has an empty, `.`
or `..` path segment (`../../alpha/dev/x`, `a//b`, `/a`) is refused too: a store name is built
by joining `<service>/<env>/<key>`, and a consumer that normalises paths would read such a
name as another service's.

`decode_file` turns the raw bytes into text (UTF-8; `.properties` falls back to ISO-8859-1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.errors import ParseError
from core.parsers.limits import MAX_NODES


@dataclass
class ParsedItem:
    key: str
    value: str = field(repr=False)
    line: int | None = None
    #: A commented ``#KEY=value`` line under the controller's file semantics (dotenv.py).
    disabled: bool = False


def parse_file(path: str, text: str, *, controller: bool = False) -> list[ParsedItem]:
    """Parse one discovered file by its name: .env, .properties, .yaml/.yml or .json.

    `controller`: the Secret Manager Controller's dotenv rules (core/parsers/dotenv.py)."""
    name = path.rsplit("/", 1)[-1]
    if name.endswith(".env"):
        from core.parsers.dotenv import parse_dotenv

        items = parse_dotenv(text, path, controller=controller)
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
    if len(items) > MAX_NODES:
        raise ParseError(f"more than {MAX_NODES} entries", path=path, line=items[MAX_NODES].line)
    return reject_duplicates(reject_unsafe_keys(items, path), path)


def decode_file(path: str, data: bytes) -> tuple[str, str | None]:
    """Bytes -> (text, warning or None). UTF-8 everywhere; a `.properties` file that is not
    UTF-8 is read as ISO-8859-1 with a warning, because that is what
    `java.util.Properties.load(InputStream)` reads and Spring Boot users keep such files."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        if path.endswith(".properties"):
            return data.decode("iso-8859-1"), (
                f"{path}:{line}: not valid UTF-8, read as ISO-8859-1 (save it as UTF-8 to silence this)"
            )
        raise ParseError("file is not valid UTF-8", path=path, line=line) from None


_SEGMENT_SPLIT = re.compile(r"[/\\]")


def reject_unsafe_keys(items: list[ParsedItem], path: str) -> list[ParsedItem]:
    """Refuse keys that would change the meaning of a path-like store name (see module doc)."""
    for item in items:
        if item.key == "":
            raise ParseError("empty key", path=path, line=item.line)
        if _SEGMENT_SPLIT.search(item.key) is None:
            continue
        if any(seg in ("", ".", "..") for seg in _SEGMENT_SPLIT.split(item.key)):
            raise ParseError(
                "key has an empty, '.' or '..' path segment (keys cannot climb out of their service)",
                path=path,
                line=item.line,
                field=item.key,
            )
    return items


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
