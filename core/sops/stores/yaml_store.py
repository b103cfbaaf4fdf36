"""YAML store: read what sops writes (go-yaml v3 typing, comments kept) and print like go-yaml.

Reading uses PyYAML's composer (libyaml when present) for structure and positions, then
types plain scalars with go-yaml v3's resolver (YAML 1.2-ish: `yes` is a string, `1e20` a
float, `2024-01-02` a time), because the MAC covers unencrypted values as Go typed them.
PyYAML drops comments, so full-line comments are re-attached from the source text: a
comment belongs to the innermost open mapping/sequence whose items start at its column, in
line order. Comments in a sequence that sops encrypted are ordinary `ENC[...]` items there.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from core.sops.cipher import Comment
from core.sops.errors import FormatError
from core.sops.gotypes import GoTime, GoUint, format_yaml_float, parse_yaml_timestamp
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


# --- go-yaml v3 resolver -----------------------------------------------------------------

_RESOLVE_MAP: dict[str, Any] = {}
for _v, _words in (
    (True, ("true", "True", "TRUE")),
    (False, ("false", "False", "FALSE")),
    (None, ("", "~", "null", "Null", "NULL")),
    (math.nan, (".nan", ".NaN", ".NAN")),
    (math.inf, (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")),
    (-math.inf, ("-.inf", "-.Inf", "-.INF")),
):
    for _w in _words:
        _RESOLVE_MAP[_w] = _v
_HINT_M = set("yYnNtTfFoO~")
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_GO_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def _go_parse_uint_base0(s: str) -> int | None:
    base = 10
    if len(s) >= 2 and s[0] == "0":
        p = s[1].lower()
        if p == "x":
            base, s = 16, s[2:]
        elif p == "o":
            base, s = 8, s[2:]
        elif p == "b":
            base, s = 2, s[2:]
        else:
            base, s = 8, s[1:]
    if not s or any(c not in _DIGITS[base] for c in s):
        return None
    return int(s, base)


def _go_parse_int(s: str) -> int | None:
    """strconv.ParseInt(s, 0, 64); None on syntax or range error."""
    neg = False
    body = s
    if body[:1] in "+-":
        neg = body[0] == "-"
        body = body[1:]
    v = _go_parse_uint_base0(body)
    if v is None:
        return None
    v = -v if neg else v
    if not -(2**63) <= v < 2**63:
        return None
    return v


def _go_parse_float(s: str) -> float | None:
    if not _GO_FLOAT.match(s):
        return None
    v = float(s)
    if math.isinf(v):
        return None
    return v


def go_resolve(value: str) -> Any:
    """go-yaml v3 resolve("", value) for a plain scalar, decoded into interface{}."""
    if value == "":
        return None
    c = value[0]
    if c in "+-":
        hint = "S"
    elif c.isascii() and c.isdigit():
        hint = "D"
    elif c in _HINT_M:
        hint = "M"
    elif c == ".":
        hint = "."
    else:
        return value
    if value in _RESOLVE_MAP:
        return _RESOLVE_MAP[value]
    if hint == "M":
        return value
    if hint == ".":
        f = _go_parse_float(value)
        return value if f is None else f
    t = parse_yaml_timestamp(value)
    if t is not None:
        return t
    plain = value.replace("_", "")
    i = _go_parse_int(plain)
    if i is not None:
        return i
    if plain[:1] != "-":
        u = _go_parse_uint_base0(plain[1:] if plain[:1] == "+" else plain)
        if u is not None and u < 2**64 and plain[:1] != "+":
            return GoUint(u)
    if _YAML_FLOAT.match(plain):
        f = _go_parse_float(plain)
        if f is not None:
            return f
    return value


def _resolve_tagged(tag: str, value: str) -> Any:
    short = "!!" + tag[len(_T) :] if tag.startswith(_T) else tag
    if short == "!!str":
        return value
    if short == "!!binary":
        try:
            raw = base64.b64decode(re.sub(r"\s+", "", value), validate=True)
        except (binascii.Error, ValueError):
            raise FormatError("!!binary value contains invalid base64 data") from None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
    if short in ("!!int", "!!float", "!!bool", "!!null", "!!timestamp"):
        if short == "!!timestamp":
            t = parse_yaml_timestamp(value)
            if t is not None:
                return t
        out = go_resolve(value)
        kind = {
            "!!int": int,
            "!!float": float,
            "!!bool": bool,
            "!!null": type(None),
            "!!timestamp": GoTime,
        }[short]
        if short == "!!float" and isinstance(out, int) and not isinstance(out, bool):
            return float(out)
        if isinstance(out, kind) and not (kind is int and isinstance(out, bool)):
            return out
        raise FormatError(f"cannot decode scalar as {short}")
    return value  # unknown tags decode as the plain string


def _scalar(node: ScalarNode) -> Any:
    if node.tag == _PLAIN:
        return go_resolve(node.value)
    if node.tag == _QUOTED:
        return node.value
    return _resolve_tagged(node.tag, node.value)


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


def _check_unique_keys(node: MappingNode) -> None:
    """go-yaml v3 refuses duplicate keys in the mappings it decodes into sops' metadata struct:
    the first document's top level and its `sops` block."""
    seen: dict[tuple[type, str], int] = {}
    for k, v in node.value:
        ident = (type(k), k.value)
        if ident in seen:
            raise FormatError(
                f"Error unmarshalling input yaml: mapping key already defined at line {seen[ident] + 1}",
                line=k.start_mark.line + 1,
            )
        seen[ident] = k.start_mark.line
        if isinstance(k, ScalarNode) and k.value == "sops" and isinstance(v, MappingNode):
            _check_unique_keys(v)


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


# --- emitting (go-yaml v3 style, indent 4) -----------------------------------------------

_OLD_BOOL = {
    "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO", "off", "Off", "OFF",
}  # fmt: skip
_BASE60 = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?\Z")


def _printable(ch: str) -> bool:
    o = ord(ch)
    return o == 0x0A or 0x20 <= o <= 0x7E or 0xA0 <= o <= 0xD7FF or (0xE000 <= o <= 0xFFFD and o != 0xFEFF)


_BREAKS = "\r\n\x85\u2028\u2029"


def _analyze(s: str) -> dict[str, bool]:
    """yaml_emitter_analyze_scalar (block context)."""
    if not s:
        return {"plain": True, "single": True, "block": False, "multiline": False}
    block_ind = False
    if s.startswith("---") or s.startswith("..."):
        block_ind = True
    line_breaks = special = tabs = False
    leading_space = leading_break = trailing_space = trailing_break = False
    break_space = space_break = False
    prev_space = prev_break = False
    preceded_ws = True
    n = len(s)
    for i, ch in enumerate(s):
        followed_ws = i + 1 >= n or s[i + 1] in " \t"
        if i == 0:
            if ch in "#,[]{}&*!|>'\"%@`":
                block_ind = True
            elif ch in "?:" and followed_ws:
                block_ind = True
            elif ch == "-" and followed_ws:
                block_ind = True
        else:
            if ch == ":" and followed_ws:
                block_ind = True
            elif ch == "#" and preceded_ws:
                block_ind = True
        if ch == "\t":
            tabs = True
        elif not _printable(ch):
            special = True
        if ch == " ":
            if i == 0:
                leading_space = True
            if i == n - 1:
                trailing_space = True
            if prev_break:
                break_space = True
            prev_space, prev_break = True, False
        elif ch in _BREAKS:
            line_breaks = True
            if i == 0:
                leading_break = True
            if i == n - 1:
                trailing_break = True
            if prev_space:
                space_break = True
            prev_space, prev_break = False, True
        else:
            prev_space = prev_break = False
        preceded_ws = ch in " \t" or ch in _BREAKS
    plain = single = block = True
    if leading_space or leading_break or trailing_space or trailing_break:
        plain = False
    if trailing_space:
        block = False
    if break_space:
        plain = single = False
    if space_break or tabs or special:
        plain = single = False
    if space_break or special:
        block = False
    if line_breaks or block_ind:
        plain = False
    return {"plain": plain, "single": single, "block": block, "multiline": line_breaks}


_DQ_ESC = {
    "\0": "\\0", "\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f",
    "\r": "\\r", "\x1b": "\\e", '"': '\\"', "\\": "\\\\", "\x85": "\\N", "\xa0": "\\_",
    "\u2028": "\\L", "\u2029": "\\P",
}  # fmt: skip


def _double_quoted(s: str) -> str:
    out = ['"']
    for ch in s:
        e = _DQ_ESC.get(ch)
        if e is not None:
            out.append(e)
        elif not _printable(ch) or ch == "\ufeff":
            o = ord(ch)
            out.append(f"\\x{o:02X}" if o <= 0xFF else f"\\u{o:04X}" if o <= 0xFFFF else f"\\U{o:08X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_PY_RESOLVER = yaml.resolver.Resolver()
_PY_STR = _T + "str"


def _pyyaml_retypes(s: str) -> bool:
    return _PY_RESOLVER.resolve(ScalarNode, s, (True, False)) != _PY_STR


def _str_style(s: str, key: bool, hint_ok: bool = True) -> str:
    """Which style go-yaml picks for a string: 'plain', 'single', 'double' or 'literal'.

    A literal block whose first line starts with a space or is empty needs an indentation
    indicator (go-yaml writes `|4-`); that is only unambiguous for other readers in a plain
    mapping (hint_ok), so elsewhere such a string is double-quoted instead."""
    a = _analyze(s)
    if "\n" in s:
        if key or not a["block"] or "\r" in s or (s[0] in " \n" and not hint_ok):
            return "double"
        return "literal"
    resolved = go_resolve(s)
    can_plain = isinstance(resolved, str) and not (_BASE60.match(s) or s in _OLD_BOOL)
    if key and a["multiline"]:
        return "double"
    if can_plain:
        if not a["plain"] or (not s and key):
            return "single" if a["single"] else "double"
        if _pyyaml_retypes(s):
            # go-yaml prints it plain, but a YAML 1.1 reader (PyYAML) would not read it back
            # as a string ('1_000', '0b101', '=', '<<'...): quote it so every reader agrees.
            return "double"
        return "plain"
    return "double"


def _emit_str(s: str, indent: int, key: bool = False, hint_ok: bool = True) -> str:
    style = _str_style(s, key, hint_ok)
    if style == "plain":
        return s
    if style == "single":
        return "'" + s.replace("'", "''") + "'"
    if style == "double":
        return _double_quoted(s)
    chomp = "-" if not s.endswith("\n") else ("+" if s == "\n" or s.endswith("\n\n") else "")
    body = s[:-1] if s.endswith("\n") else s
    pad = " " * (indent + 4)
    lines = [(pad + ln) if ln else "" for ln in body.split("\n")]
    hint = "4" if s[0] in " \n" else ""
    return "|" + hint + chomp + "\n" + "\n".join(lines)


def _scalar_text(v: Any, indent: int, hint_ok: bool = True) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_yaml_float(v)
    if isinstance(v, GoTime):
        return v.rfc3339nano()
    if isinstance(v, bytes):
        return "!!binary " + base64.b64encode(v).decode()
    if isinstance(v, str):
        if any("\udc80" <= c <= "\udcff" for c in v):
            return "!!binary " + base64.b64encode(v.encode("utf-8", "surrogateescape")).decode()
        return _emit_str(v, indent, hint_ok=hint_ok)
    raise FormatError("cannot encode value as YAML")


def _key_text(k: Any) -> str:
    if isinstance(k, str):
        return _emit_str(k, 0, key=True)
    return _scalar_text(k, 0)


def _comment(text: str, indent: int, out: list[str]) -> None:
    for ln in text.split("\n"):
        out.append(" " * indent + "#" + ln + "\n")


def _is_empty(v: Any) -> bool:
    if isinstance(v, Branch):
        return not any(not isinstance(k, Comment) for k, _ in v)
    if isinstance(v, list):
        return not any(not isinstance(x, Comment) for x in v)
    return False


def _inline(v: Any, indent: int, hint_ok: bool = True) -> str | None:
    """Text after 'key:' / '- ' for a value that stays on the same line, or None."""
    if isinstance(v, Branch):
        return "{}" if _is_empty(v) else None
    if isinstance(v, list):
        return "[]" if _is_empty(v) else None
    return _scalar_text(v, indent, hint_ok)


def _leading_comments(items: list, is_map: bool) -> list[str]:
    out = []
    for it in items:
        c = it[0] if is_map else it
        if not isinstance(c, Comment):
            break
        out.append(c.value)
    return out


def _emit_map(b: Branch, ind: int, out: list[str], keycol: int, first_prefix: str | None = None) -> None:
    """Mapping entries. `ind` is go-yaml's emitter indent for this mapping (block scalars and
    nested collections hang off it); keys sit at `keycol` (ind, or ind + 2 inside '- ')."""
    prefix = first_prefix
    for k, v in b:
        if isinstance(k, Comment):
            _comment(k.value, keycol, out)
            continue
        lead = prefix if prefix is not None else " " * keycol
        prefix = None
        kt = _key_text(k)
        inline = _inline(v, ind, hint_ok=ind == keycol)
        if inline is not None:
            if isinstance(v, (Branch, list)):
                for com in _comments_of(v):
                    _comment(com, keycol, out)
            out.append(f"{lead}{kt}: {inline}\n")
        elif isinstance(v, Branch):
            out.append(f"{lead}{kt}:\n")
            _emit_map(v, ind + 4, out, ind + 4)
        else:
            out.append(f"{lead}{kt}:\n")
            _emit_seq(v, ind + 2, out)


def _comments_of(v: Any) -> list[str]:
    if isinstance(v, Branch):
        return [k.value for k, _ in v if isinstance(k, Comment)]
    return [x.value for x in v if isinstance(x, Comment)]


def _emit_seq(seq: list, ind: int, out: list[str]) -> None:
    """Sequence items: go-yaml's emitter indent `ind`, dashes at ind + 2."""
    dash = ind + 2
    for item in seq:
        if isinstance(item, Comment):
            _comment(item.value, dash, out)
            continue
        inline = _inline(item, ind, hint_ok=False)
        if inline is not None:
            if isinstance(item, (Branch, list)):
                for com in _comments_of(item):
                    _comment(com, dash, out)
            out.append(" " * dash + "- " + inline + "\n")
            continue
        is_map = isinstance(item, Branch)
        lead = _leading_comments(item, is_map)  # comments before the first entry go above '- '
        for com in lead:
            _comment(com, dash, out)
        rest = item[len(lead) :]
        if is_map:
            _emit_map(Branch(rest), dash, out, dash + 2, first_prefix=" " * dash + "- ")
        else:
            sub: list[str] = []
            _emit_seq(rest, ind + 2, sub)
            if sub:
                sub[0] = " " * dash + "- " + sub[0][dash + 2 :]
            out.extend(sub)


def emit(branches: list[Branch]) -> bytes:
    out: list[str] = []
    for i, b in enumerate(branches):
        if i > 0:
            out.append("---\n")
        if _is_empty(b):
            for com in _comments_of(b):
                _comment(com, 0, out)
            out.append("{}\n")
            continue
        _emit_map(b, 0, out, 0)
    return "".join(out).encode("utf-8")
