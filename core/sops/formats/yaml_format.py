"""YAML format: read what sops writes (go-yaml v3 typing, comments kept).

Reading uses PyYAML's composer (libyaml when present) for structure and positions, then
types plain scalars with go-yaml v3's resolver (YAML 1.2-ish: `yes` is a string, `1e20` a
float, `2024-01-02` a time), because the MAC covers unencrypted values as Go typed them.
PyYAML drops comments, so full-line comments are re-attached from the source text: a
comment belongs to the innermost open mapping/sequence whose items start at its column, in
line order. Comments in a sequence that sops encrypted are ordinary `ENC[...]` items there.
The resolver lives in `core.sops.goyaml`, the emitter in `yaml_emit`.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from core.parsers.limits import LimitError, check_yaml
from core.sops.cipher import Comment
from core.sops.errors import FormatError, MetadataError
from core.sops.gotypes import GoTime
from core.sops.goyaml import MERGE_TAG, MergeKey, go_resolve, resolve_tagged
from core.sops.tree import Branch

_PLAIN = "!sops-plain"
_QUOTED = "!sops-quoted"
_T = "tag:yaml.org,2002:"

try:  # libyaml's parser when PyYAML was built with it (much faster), else pure Python
    from yaml.cyaml import CParser as _Parser
except ImportError:  # pragma: no cover
    _Parser = yaml.parser.Parser  # type: ignore[assignment,misc]


class _Composer(_Parser, yaml.resolver.BaseResolver):  # type: ignore[misc,valid-type]
    """Composes nodes only; untagged scalars keep a marker instead of a resolved tag."""

    def __init__(self, stream: Any) -> None:
        if _Parser is yaml.parser.Parser:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
        else:
            _Parser.__init__(self, stream)
        yaml.resolver.BaseResolver.__init__(self)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            return _PLAIN if implicit[0] else _QUOTED
        if kind is SequenceNode:
            return _T + "seq"
        return _T + "map"


if _Parser is yaml.parser.Parser:  # pure-Python fallback needs the composer mixins
    _Composer.__bases__ = (  # type: ignore[assignment]
        yaml.reader.Reader,
        yaml.scanner.Scanner,
        yaml.parser.Parser,
        yaml.composer.Composer,
        yaml.resolver.BaseResolver,
    )


def _scalar(node: ScalarNode) -> Any:
    if node.tag == _PLAIN:
        return go_resolve(node.value)
    if node.tag == _QUOTED:
        return node.value
    return resolve_tagged(node.tag, node.value)


# --- loading -----------------------------------------------------------------------------


class _Container:
    __slots__ = ("col", "entries", "is_map", "meta", "parent", "line")

    def __init__(self, node: Any, parent: _Container | None, meta: bool) -> None:
        self.col = node.start_mark.column
        self.line = node.start_mark.line
        self.is_map = isinstance(node, MappingNode)
        self.entries: list[tuple[int, int, Any]] = []
        self.parent = parent
        self.meta = meta


class _Builder:
    def __init__(self) -> None:
        self.containers: list[_Container] = []
        self.item_lines: list[tuple[int, _Container]] = []
        self.multiline_scalars: list[ScalarNode] = []

    def value(self, node: Any, parent: _Container | None, meta: bool) -> Any:
        if isinstance(node, ScalarNode):
            if node.start_mark.line != node.end_mark.line:
                self.multiline_scalars.append(node)
            return _scalar(node)
        c = _Container(node, parent, meta)
        self.containers.append(c)
        if isinstance(node, SequenceNode):
            for item in node.value:
                ln = item.start_mark.line
                c.entries.append((ln, item.start_mark.column, self.value(item, c, meta)))
                self.item_lines.append((ln, c))
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                ln = k.start_mark.line
                key = self.value(k, c, meta)
                if isinstance(k, ScalarNode) and (
                    k.tag == MERGE_TAG or (k.tag == _PLAIN and k.value == "<<")
                ):
                    key = MergeKey(key)
                sub_meta = meta or (parent is None and key == "sops")
                c.entries.append((ln, k.start_mark.column, (key, self.value(v, c, sub_meta))))
                self.item_lines.append((ln, c))
        else:  # pragma: no cover
            raise FormatError("unexpected YAML node")
        return c

    @staticmethod
    def finish(v: Any) -> Any:
        if not isinstance(v, _Container):
            return v
        v.entries.sort(key=lambda e: (e[0], e[1]))
        if v.is_map:
            return Branch(
                (k, None) if isinstance(k, Comment) else (_Builder.finish(k), _Builder.finish(x))
                for _, _, (k, x) in v.entries
            )
        return [_Builder.finish(x) for _, _, x in v.entries]


def _chain(c: _Container | None) -> list[_Container]:
    out = []
    while c is not None:
        out.append(c)
        c = c.parent
    return out


def _attach_comments(b: _Builder, root: _Container, comments: list[tuple[int, int, str]]) -> None:
    if not comments:
        return
    items = sorted(b.item_lines, key=lambda e: e[0])
    lines = [ln for ln, _ in items]
    import bisect

    for ln, col, text in comments:
        pos = bisect.bisect_left(lines, ln)
        prev_c = items[pos - 1][1] if pos > 0 else None
        next_c = items[pos][1] if pos < len(items) else None
        cands = _chain(prev_c) + _chain(next_c)
        target = None
        best_depth = -1
        for c in cands:
            if c.col == col:
                depth = len(_chain(c))
                if depth > best_depth:
                    target, best_depth = c, depth
        if target is None:
            target = next_c or prev_c or root
        if target.meta:
            continue
        com = Comment(text)
        target.entries.append((ln, col, (com, None) if target.is_map else com))


def _comment_lines(lines: list[str], b: _Builder) -> list[tuple[int, int, str]]:
    covered: dict[int, int] = {}
    for node in b.multiline_scalars:
        s, e = node.start_mark.line, node.end_mark.line
        for ln in range(s + 1, e):
            covered[ln] = 1 << 30
        covered[e] = max(covered.get(e, -1), node.end_mark.column)
    out = []
    for i, line in enumerate(lines):
        stripped = line.lstrip(" \t")
        if not stripped.startswith("#"):
            continue
        col = len(line) - len(stripped)
        if i in covered and covered[i] > col:
            continue
        out.append((i, col, stripped[1:].rstrip("\r")))
    return out


def load(data: bytes) -> tuple[list[Branch], dict[str, Any] | None]:
    """Parse an encrypted YAML file: one Branch per document, metadata from the first `sops`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("Error unmarshalling input yaml: invalid UTF-8") from None
    try:
        check_yaml(text, int_digits=False)  # depth, alias expansion, key types: before anything is built
    except LimitError as exc:
        raise FormatError(f"Error unmarshalling input yaml: {exc.message}", line=exc.line) from None
    loader = _Composer(text)
    docs: list[tuple[Any, _Builder]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            docs.append((node, _Builder()))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise FormatError("Error unmarshalling input yaml", line=(mark.line + 1) if mark else None) from None
    finally:
        loader.dispose()
    has_comments = "#" in text
    lines = text.split("\n") if has_comments else []
    seps = [i for i, ln in enumerate(lines) if ln.startswith("---")] if has_comments else []
    branches: list[Branch] = []
    metadata: dict[str, Any] | None = None
    roots = []
    for node, b in docs:
        if node is None or (isinstance(node, ScalarNode) and _scalar(node) is None):
            roots.append((None, b))
            continue
        if isinstance(node, SequenceNode):
            raise FormatError("YAML documents that are sequences are not supported")
        if isinstance(node, ScalarNode):
            raise FormatError("YAML documents that are values are not supported")
        if not roots:
            _check_unique_keys(node)  # sops unmarshals the first document into a struct
        roots.append((b.value(node, None, False), b))
    if has_comments:
        comments = _comment_lines(lines, _Builder() if not docs else _merge_scalars(docs))
        # Split comments between documents by the '---' separators before them.
        doc_seps = []
        for node, _ in docs:
            start = node.start_mark.line if node is not None else 0
            doc_seps.append(sum(1 for s in seps if s < start))
        per_doc: list[list[tuple[int, int, str]]] = [[] for _ in docs]
        for com in comments:
            nsep = sum(1 for s in seps if s < com[0])
            idx = 0
            for i, ds in enumerate(doc_seps):
                if ds <= nsep:
                    idx = i
            if per_doc:
                per_doc[idx].append(com)
        for (root, b), coms in zip(roots, per_doc, strict=True):
            if root is None:
                continue
            _attach_comments(b, root, coms)
    for i, (root, _b) in enumerate(roots):
        branch = Branch() if root is None else _Builder.finish(root)
        body = Branch()
        for k, v in branch:
            if k == "sops":
                if i == 0 and metadata is None:  # sops reads the metadata of the first document
                    metadata = _plain(v)
                continue
            body.append((k, v))
        branches.append(body)
    return branches, metadata


def _check_unique_keys(node: MappingNode, block: str | None = None) -> None:
    """go-yaml v3 refuses duplicate keys in the mappings it decodes into sops' metadata struct:
    the first document's top level and its `sops` block (a duplicate there is bad metadata)."""
    seen: dict[tuple[type, str], int] = {}
    for k, v in node.value:
        ident = (type(k), k.value)
        if ident in seen:
            message = f"mapping key already defined at line {seen[ident] + 1}"
            if block is not None or k.value == "sops":
                raise MetadataError(
                    f"sops metadata field {k.value} is defined twice ({message})", line=k.start_mark.line + 1
                )
            raise FormatError(f"Error unmarshalling input yaml: {message}", line=k.start_mark.line + 1)
        seen[ident] = k.start_mark.line
        if block is None and isinstance(k, ScalarNode) and k.value == "sops" and isinstance(v, MappingNode):
            _check_unique_keys(v, "sops")


def _merge_scalars(docs: list[tuple[Any, _Builder]]) -> _Builder:
    m = _Builder()
    for _, b in docs:
        m.multiline_scalars.extend(b.multiline_scalars)
    return m


def _plain(v: Any) -> Any:
    if isinstance(v, Branch):
        return {str(k): _plain(x) for k, x in v if not isinstance(k, Comment)}
    if isinstance(v, list):
        return [_plain(x) for x in v if not isinstance(x, Comment)]
    if isinstance(v, GoTime):
        return v.rfc3339nano()
    return v


def has_metadata(data: bytes) -> bool:
    return b"\nsops:" in data or data.startswith(b"sops:")
