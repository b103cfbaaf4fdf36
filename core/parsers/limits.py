"""Hard limits for every parser, checked before the work can grow.

A hostile or broken file must fail its own service with an error naming the file (and line),
never take the run down with it: a 10,000-deep document would exhaust the recursion limit, a
billion-laughs anchor bomb would take minutes and gigabytes to construct, a complex key
(`? [x, y]`) cannot become a dict key, and a 5,000-digit integer trips Python's int/str limit.
So YAML is pre-scanned at the event level (a flat stream: no recursion, no construction) and
JSON at the bracket level, and only a document within these limits is ever built.

The limits are generous for real configuration (the deepest Spring or Kubernetes file nests a
dozen levels) and small enough that building what passes takes well under a second:

| limit | value | applies to |
|---|---|---|
| file size | `MAX_FILE_BYTES` (5 MiB, as Flux) | every file the sync reads (`SourceTree.read`: not held whole where its size is known first) |
| nesting depth | `MAX_DEPTH` | YAML, JSON, SOPS YAML/JSON, config documents |
| nodes after alias expansion | `MAX_NODES` | YAML (and the entries of every format) |
| nodes added by aliases | `MAX_ALIAS_NODES` | YAML |
| mapping key type | scalars only | YAML |
| integer size | `MAX_INT_DIGITS` digits | YAML, JSON, config documents |
"""

from __future__ import annotations

import re
from typing import Any

import yaml

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 100_000
MAX_ALIAS_NODES = 2_000  # `<<: *defaults` of 20 keys, 100 times; a 4-level 9x bomb is 6,561
MAX_INT_DIGITS = 1_000

try:  # libyaml's event parser when present (fast); the pure-Python one is iterative too
    from yaml.cyaml import CParser as _EventParser
except ImportError:  # pragma: no cover
    _EventParser = None  # type: ignore[assignment,misc]


class LimitError(ValueError):
    """A document exceeds a hard limit; `line` is 1-based where known. Never carries a value."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(message)


def _events(text: str) -> Any:
    if _EventParser is not None:
        parser = _EventParser(text)
        try:
            while parser.check_event():
                yield parser.get_event()
        finally:
            parser.dispose()
    else:  # pragma: no cover
        yield from yaml.parse(text, Loader=yaml.SafeLoader)


class _Frame:
    __slots__ = ("anchor", "children", "is_map", "size")

    def __init__(self, anchor: str | None, is_map: bool) -> None:
        self.anchor = anchor
        self.is_map = is_map
        self.children = 0
        self.size = 1


_DECIMAL = re.compile(r"[-+]?[0-9][0-9_]*\Z")


def check_yaml(text: str, *, int_digits: bool = True) -> None:
    """Raise LimitError if a YAML stream is too deep, too large after alias expansion, has a
    non-scalar mapping key or a recursive alias. A syntax error is raised here too (as
    "invalid YAML: ..." with its line): the loaders must never see a stream the scan could
    not finish, since libyaml gives up on deep flow nesting before yielding an event.

    `int_digits` refuses plain decimal scalars longer than MAX_INT_DIGITS (a YAML 1.1/1.2
    loader would turn them into a Python int); the SOPS loader turns them off, since go-yaml
    reads such a scalar as a string, which is harmless."""
    stack: list[_Frame] = []
    sizes: dict[str, int] = {}  # anchor -> expanded size of its node
    collections: set[str] = set()  # anchors of mappings/sequences (not usable as keys)
    total = alias_total = 0
    events = _events(text)
    while True:
        try:
            ev = next(events)
        except StopIteration:
            return
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise LimitError(f"invalid YAML: {problem}", mark.line + 1 if mark else None) from None
        line = ev.start_mark.line + 1 if ev.start_mark else None
        parent = stack[-1] if stack else None
        is_key = parent is not None and parent.is_map and parent.children % 2 == 0
        if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if is_key:
                raise LimitError("mapping keys must be scalars (complex keys are not supported)", line)
            if len(stack) >= MAX_DEPTH:
                raise LimitError(f"nesting is deeper than {MAX_DEPTH} levels", line)
            stack.append(_Frame(ev.anchor, isinstance(ev, yaml.MappingStartEvent)))
            total += 1
        elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            done = stack.pop()
            if done.anchor is not None:
                sizes[done.anchor] = done.size
                collections.add(done.anchor)
            _add(stack, done.size)
        elif isinstance(ev, yaml.ScalarEvent):
            if int_digits and len(ev.value) > MAX_INT_DIGITS and ev.implicit[0] and _DECIMAL.match(ev.value):
                raise LimitError(f"integer with more than {MAX_INT_DIGITS} digits", line)
            if ev.anchor is not None:
                sizes[ev.anchor] = 1
                collections.discard(ev.anchor)
            total += 1
            _add(stack, 1)
        elif isinstance(ev, yaml.AliasEvent):
            size = sizes.get(ev.anchor)
            if size is None:
                if any(f.anchor == ev.anchor for f in stack):
                    raise LimitError("recursive alias (an anchor used inside itself)", line)
                continue  # undefined alias: the loader reports it
            if is_key and ev.anchor in collections:
                raise LimitError("mapping keys must be scalars (complex keys are not supported)", line)
            total += size
            alias_total += size
            if alias_total > MAX_ALIAS_NODES:
                raise LimitError(f"aliases expand to more than {MAX_ALIAS_NODES} nodes", line)
            _add(stack, size)
        else:
            continue
        if total > MAX_NODES:
            raise LimitError(f"more than {MAX_NODES} nodes (after expanding aliases)", line)


def _add(stack: list[_Frame], size: int) -> None:
    if stack:
        top = stack[-1]
        top.children += 1
        top.size += size


_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]|-?\d{' + str(MAX_INT_DIGITS + 1) + ",}")


def check_json(text: str) -> None:
    """Raise LimitError if JSON nests deeper than MAX_DEPTH or has an over-long integer.

    A bracket scan that skips strings; malformed JSON is left to the decoder."""
    depth = 0
    for m in _JSON_TOKEN.finditer(text):
        tok = m.group()
        c = tok[0]
        if c == '"':
            continue
        if c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise LimitError(f"nesting is deeper than {MAX_DEPTH} levels", _line_at(text, m.start()))
        elif c in "]}":
            depth -= 1
        else:
            raise LimitError(f"integer with more than {MAX_INT_DIGITS} digits", _line_at(text, m.start()))


def check_int_text(text: str, line: int | None = None) -> None:
    """Refuse an integer literal too long to convert safely (before calling int())."""
    if len(text) > MAX_INT_DIGITS:
        raise LimitError(f"integer with more than {MAX_INT_DIGITS} digits", line)


def check_count(count: int, what: str = "entries", line: int | None = None) -> None:
    if count > MAX_NODES:
        raise LimitError(f"more than {MAX_NODES} {what}", line)


def _line_at(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1
