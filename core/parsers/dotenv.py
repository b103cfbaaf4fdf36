"""dotenv files, with python-dotenv's parser (the de-facto convention).

Supported: ``KEY=value``, ``export KEY=value``, single quotes (literal), double quotes
(escapes ``\\n \\t \\" \\\\``), values spanning lines inside quotes, ``#`` comment lines and
`` #`` trailing comments on unquoted values, blank lines. No variable interpolation: ``${X}``
stays as written, because a sync must store exactly what the file says.

With the controller's file semantics (``controller=True``, docs/migration.md) two of the Secret
Manager Controller's rules apply (``parser/parsers.rs:184-213``): a commented ``#KEY=value`` line
is a *disabled* secret (its item carries ``disabled=True``; the store disables the entry where
it can), and a key given twice takes its last line, enabled or not (the controller's map
insert). A comment is read as a disabled secret only when the text after ``#`` parses as one
``KEY=value`` binding whose key is a plain name (letters, digits, ``_ . -``); prose such as
``# see https://x?a=b`` stays a comment (the controller made a secret of anything with ``=``).
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


_DISABLED_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def parse_dotenv(text: str, path: str, *, controller: bool = False) -> list[ParsedItem]:
    if controller:  # comments may be disabled secrets, and repeats are allowed: no fast path
        return _python_dotenv(text, path, controller=True)
    simple = _simple(text)
    return simple if simple is not None else _python_dotenv(text, path)


def _python_dotenv(text: str, path: str, *, controller: bool = False) -> list[ParsedItem]:
    from dotenv.parser import parse_stream

    items: list[ParsedItem] = []
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            raise ParseError("cannot parse this line (expected KEY=value)", path=path, line=line)
        if binding.key is None:
            if controller:
                disabled = _disabled_secret(binding.original.string, line)
                if disabled is not None:
                    items.append(disabled)
            continue  # blank or comment
        if binding.value is None:
            raise ParseError(
                f"key {binding.key!r} has no '=' and no value", path=path, line=line, field=binding.key
            )
        items.append(ParsedItem(binding.key, binding.value, line))
    if controller:
        last = {item.key: item for item in items}  # the controller's HashMap insert: last line wins
        items = [item for item in items if last[item.key] is item]
    return items


def _disabled_secret(original: str, line: int) -> ParsedItem | None:
    """A ``#KEY=value`` comment as a disabled item, or None for any other comment."""
    from dotenv.parser import parse_stream

    stripped = original.strip()
    if not stripped.startswith("#"):
        return None
    body = stripped[1:].strip()
    if "=" not in body:
        return None
    bindings = [b for b in parse_stream(io.StringIO(body)) if b.key is not None or b.error]
    if len(bindings) != 1 or bindings[0].error or bindings[0].value is None:
        return None
    key = bindings[0].key or ""
    if not _DISABLED_KEY.match(key):
        return None
    return ParsedItem(key, bindings[0].value, line, disabled=True)
