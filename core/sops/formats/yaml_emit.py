"""YAML output the way `sops -d` prints it: go-yaml v3's emitter (indent 4, its quoting rules).

Kept apart from the loader (`yaml_format`) because it is the other half of the format: the
loader reads what sops wrote, this prints the decrypted tree as go-yaml would.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import yaml
from yaml.nodes import ScalarNode

from core.sops.cipher import Comment
from core.sops.errors import FormatError
from core.sops.gotypes import GoTime, format_yaml_float
from core.sops.goyaml import MergeKey, go_resolve
from core.sops.tree import Branch

_T = "tag:yaml.org,2002:"

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
    if isinstance(k, MergeKey):
        return "!!merge <<"  # as go-yaml prints a merge key (sops -d keeps it unmerged)
    if isinstance(k, str):
        return _emit_str(k, 0, key=True)
    return _scalar_text(k, 0)


def _comment(text: str, indent: int, out: list[str]) -> None:
    """sops sets HeadComment "#" + value; go-yaml's write_comment then starts every further
    line that does not begin with '#' with "# " (multi-line comments come from INI files,
    whose later comment lines keep their own '#' or ';'), and writes empty lines bare."""
    for i, ln in enumerate(text.split("\n")):
        if i == 0:
            out.append(" " * indent + "#" + ln + "\n")
        elif not ln:
            out.append("\n")
        else:
            out.append(" " * indent + (ln if ln.startswith("#") else "# " + ln) + "\n")


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
