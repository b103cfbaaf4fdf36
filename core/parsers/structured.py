"""YAML and JSON files, flattened to dotted keys.

Flattening rule (documented in the README):
- nested mappings join with ``.``: ``db: {host: x}`` → ``db.host``;
- sequences use Spring's index form: ``hosts: [a, b]`` → ``hosts[0]``, ``hosts[1]``;
- scalars become strings: booleans ``true``/``false``, integers in decimal, floats as Python's
  ``repr`` (``0.5``, ``1e+20``), null → empty string; empty mappings and sequences produce no key.

YAML is read with YAML 1.2 core-schema rules (as Go's yaml.v3, which SOPS uses, reads it):
only ``true``/``false`` are booleans (``yes``/``on`` stay strings), no implicit timestamps, and
numbers like ``1e20`` are floats. So a file means the same here as it does to SOPS.
Merge keys (``<<: *defaults``, or sops' own ``!!merge <<:``) are merged, explicit keys winning,
as every YAML 1.1 reader (Spring's SnakeYAML, PyYAML) reads them.

Every document is checked against the hard limits in `core.parsers.limits` (depth, nodes after
alias expansion, scalar keys, integer size) before anything is constructed.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from core.errors import ParseError
from core.parsers import ParsedItem
from core.parsers.limits import MAX_NODES, LimitError, check_count, check_int_text, check_json, check_yaml


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema implicit types and duplicate-key detection."""

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """Merge `<<` keys; one whose value cannot be merged (a scalar) stays an ordinary "<<"
        key. `sops -d` prints even a quoted `"<<": x` as `!!merge <<: x` (it re-tags every
        `<<` key), so this keeps such a value instead of failing the file."""
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE and not _mergeable(value_node):
                key_node.tag = "tag:yaml.org,2002:str"
        super().flatten_mapping(node)


_MERGE = "tag:yaml.org,2002:merge"


def _mergeable(node: yaml.Node) -> bool:
    if isinstance(node, yaml.MappingNode):
        return True
    return isinstance(node, yaml.SequenceNode) and all(isinstance(n, yaml.MappingNode) for n in node.value)


Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+0123456789."),
    ),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", ["<"]),
]:
    Yaml12Loader.add_implicit_resolver(_tag, re.compile(_regexp), _first)


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node))
    check_int_text(text.lstrip("+-"), node.start_mark.line + 1)
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text, 0) if text.startswith("0x") else int(text, 10)


def _construct_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    text = str(loader.construct_scalar(node)).lower()
    if text.endswith("inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    return float("nan") if text.endswith("nan") else float(text)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    """Refuse a key written twice in one mapping; a merged key that an explicit one overrides
    is not a duplicate (SafeLoader's flatten_mapping merges, later entries win)."""
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE:
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise ParseError(
                f"key {key!r} is defined twice (first on line {seen[key]})", line=line, field=str(key)
            )
        seen[key] = line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
Yaml12Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def scalar_to_string(value: Any) -> str:
    """The documented scalar → string rule."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def flatten(data: Any, path: str, lines: dict[str, int] | None = None) -> list[ParsedItem]:
    """Flatten one document; keys must be scalars and the entry count stays under MAX_NODES."""
    if not isinstance(data, dict):
        raise ParseError("top level must be a mapping of keys to values", path=path, line=1)
    out: list[ParsedItem] = []

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, (dict, list, tuple)):
                    raise ParseError("mapping keys must be scalars", path=path, line=(lines or {}).get(key))
                walk(v, f"{key}.{scalar_to_string(k)}" if key else scalar_to_string(k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{key}[{i}]")
        else:
            out.append(ParsedItem(key, scalar_to_string(value), (lines or {}).get(key)))
            if len(out) > MAX_NODES:
                raise ParseError(f"more than {MAX_NODES} entries", path=path, line=(lines or {}).get(key))

    walk(data, "")
    return out


def parse_yaml(text: str, path: str) -> list[ParsedItem]:
    items: list[ParsedItem] = []
    try:
        check_yaml(text)
        lines = _yaml_lines(text)
        for doc in yaml.load_all(text, Loader=Yaml12Loader):  # noqa: S506 (safe subclass)
            if doc is None:
                continue
            items.extend(flatten(doc, path, lines))
            check_count(len(items))
    except LimitError as exc:
        raise ParseError(exc.message, path=path, line=exc.line) from None
    except ParseError as exc:
        exc.path = path
        raise ParseError(exc.message, path=path, line=exc.line, field=exc.field) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ParseError(
            f"invalid YAML: {problem}", path=path, line=mark.line + 1 if mark else None
        ) from None
    return items


def _yaml_lines(text: str) -> dict[str, int]:
    """Flattened key → line, from the node graph (best effort, for error messages)."""
    lines: dict[str, int] = {}
    try:
        for node in yaml.compose_all(text, Loader=Yaml12Loader):
            _walk_nodes(node, "", lines)
    except yaml.YAMLError:
        pass
    return lines


def _walk_nodes(node: yaml.Node | None, key: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            child = f"{key}.{k.value}" if key else str(k.value)
            lines.setdefault(child, k.start_mark.line + 1)
            _walk_nodes(v, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            child = f"{key}[{i}]"
            lines.setdefault(child, v.start_mark.line + 1)
            _walk_nodes(v, child, lines)


def parse_json(text: str, path: str) -> list[ParsedItem]:
    def no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise ParseError(f"key {k!r} is defined twice", path=path, field=k)
            out[k] = v
        return out

    try:
        check_json(text)
        data = json.loads(text, object_pairs_hook=no_dupes)
    except LimitError as exc:
        raise ParseError(exc.message, path=path, line=exc.line) from None
    except json.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from None
    return flatten(data, path)
