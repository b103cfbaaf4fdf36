"""INI store: what sops writes through gopkg.in/ini.v1 (go-ini), read and written the same way.

Loading follows go-ini's parser for the subset sops emits: `[section]` headers, `key = value`
(delimiters `=` and `:`), `;`/`#` comment lines that attach to the next key or section,
quoted values (triple double quotes, backticks, surrounding quotes), inline comments and continuation
lines. Keys before any section live in `DEFAULT`. Writing mirrors go-ini's WriteTo with its
default PrettyFormat (aligned `=`) and a blank line between sections.
"""

from __future__ import annotations

from typing import Any

from core.sops.cipher import Comment
from core.sops.errors import FormatError, MetadataError
from core.sops.gotypes import val_to_string
from core.sops.metadata import unflatten
from core.sops.tree import Branch

DEFAULT = "DEFAULT"
_DELIMS = "=:"


class _Section:
    def __init__(self, name: str, comment: str = "") -> None:
        self.name = name
        self.comment = comment
        self.keys: list[str] = []
        self.values: dict[str, str] = {}
        self.comments: dict[str, str] = {}
        self.duplicates: list[str] = []

    def set(self, k: str, v: str, comment: str) -> None:
        if k in self.values:
            self.duplicates.append(k)
        else:
            self.keys.append(k)
        self.values[k] = v
        self.comments[k] = comment


def _strip_comment_char(c: str) -> str:
    if c.startswith(";"):
        return c.lstrip("; ")
    if c.startswith("#"):
        return c.lstrip("# ")
    return c


def _surrounded(s: str, q: str) -> bool:
    return len(s) >= 2 and s[0] == q and s[-1] == q and s[1:].find(q) == len(s) - 2


def _read_key(line: str, lineno: int) -> tuple[str, int]:
    quote = ""
    if line[0] == '"':
        quote = '"""' if len(line) > 6 and line.startswith('"""') else '"'
    elif line[0] == "`":
        quote = "`"
    if quote:
        start = len(quote)
        pos = line.find(quote, start)
        if pos == -1:
            raise FormatError("missing closing key quote", line=lineno)
        rest = line[pos + start :]
        i = min((rest.find(d) for d in _DELIMS if d in rest), default=-1)
        if i < 0:
            raise FormatError("key-value delimiter not found", line=lineno)
        return line[start:pos].strip(), pos + i + start + 1
    idx = min((line.find(d) for d in _DELIMS if d in line), default=-1)
    if idx < 0:
        raise FormatError("key-value delimiter not found", line=lineno)
    if idx == 0:
        raise FormatError("empty key name", line=lineno)
    return line[:idx].strip(), idx + 1


def _parse(text: str) -> list[_Section]:
    lines = text.split("\n")
    sections = [_Section(DEFAULT)]
    cur = sections[0]
    pending: list[str] = []
    i = 0
    n = len(lines)
    while i < n:
        raw = lines[i]
        lineno = i + 1
        i += 1
        line = raw.lstrip()
        if not line.strip():
            continue
        if line[0] in "#;":
            pending.append(line.rstrip("\r"))
            continue
        if line[0] == "[":
            close = line.rfind("]")
            if close == -1:
                raise FormatError("unclosed section", line=lineno)
            rest = line[close + 1 :]
            j = min((rest.find(c) for c in "#;" if c in rest), default=-1)
            if j >= 0:
                pending.append(rest[j:])
            cur = _Section(line[1:close], "\n".join(pending).strip())
            sections.append(cur)
            pending = []
            continue
        name, off = _read_key(line, lineno)
        val = line[off:].lstrip()
        if val.startswith('"""') and len(val) > 3 or val.startswith("`"):
            q = '"""' if val.startswith('"""') else "`"
            body = val[len(q) :]
            pos = body.rfind(q)
            if pos >= 0:
                value = body[:pos]
            else:
                parts = [body + "\n"]
                while True:
                    if i >= n:
                        raise FormatError("missing closing key quote", line=lineno)
                    nxt = lines[i]
                    i += 1
                    pos = nxt.rfind(q)
                    if pos >= 0:
                        parts.append(nxt[:pos])
                        break
                    parts.append(nxt + "\n")
                value = "".join(parts)
        else:
            v = val.strip()
            if v.endswith("\\"):
                v = v[:-1]
                while i < n:
                    nxt = lines[i].strip()
                    i += 1
                    if not nxt:
                        break
                    v += nxt
                    if not v.endswith("\\"):
                        break
                    v = v[:-1]
            else:
                j = min((v.find(c) for c in "#;" if c in v), default=-1)
                if j >= 0:
                    pending.append(v[j:])
                    v = v[:j].strip()
                if _surrounded(v, "'") or _surrounded(v, '"'):
                    v = v[1:-1]
            value = v
        cur.set(name, value, "\n".join(pending).strip())
        pending = []
    return sections


def load(data: bytes) -> tuple[list[Branch], dict[str, Any] | None]:
    text = data.decode("utf-8", "surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    sections = _parse(text)
    branch = Branch()
    md = None
    for sec in sections:
        if sec.name == "sops":
            if md is not None:
                raise MetadataError("sops metadata section [sops] is defined twice")
            if sec.duplicates:
                raise MetadataError(f"sops metadata field {sec.duplicates[0]} is defined twice")
            md = unflatten({k: sec.values[k] for k in sec.keys})
            continue
        items = Branch()
        if sec.comment:
            items.append((Comment(_strip_comment_char(sec.comment)), None))
        for k in sec.keys:
            items.append((k, sec.values[k]))
            if sec.comments[k]:
                items.append((Comment(_strip_comment_char(sec.comments[k])), None))
        branch.append((sec.name, items))
    return [branch], md


def has_metadata(data: bytes) -> bool:
    return b"[sops]" in data and b"mac" in data


def _comment_lines(comment: str, trim_plain: bool) -> list[str]:
    out = []
    for ln in comment.split("\n"):
        if not ln:
            ln = " "
        if ln[0] not in "#;":
            out.append("; " + (ln.strip() if trim_plain else ln))
        else:
            out.append(ln[:1] + " " + ln[1:].strip())
    return out


def emit(branches: list[Branch]) -> bytes:
    sections: list[_Section] = []
    for branch in branches:
        for k, v in branch:
            if isinstance(k, Comment):
                continue
            if not k:
                raise FormatError("Error encoding section: empty section name")
            if not isinstance(v, Branch):
                raise FormatError("Error encoding section: Section values should always be TreeBranches")
            sec = _Section(k)
            items = list(v)
            first = 0
            if items and isinstance(items[0][0], Comment):
                sec.comment = items[0][0].value
                first = 1
            last: str | None = None
            for kk, vv in items[first:]:
                if isinstance(kk, Comment):
                    if last is not None:
                        sec.comments[last] = kk.value
                    continue
                if not kk:
                    raise FormatError("Error encoding key: empty key name")
                if isinstance(vv, (Branch, list)):
                    raise FormatError(f"Error encoding key: complex value for key {kk}")
                sval = vv if isinstance(vv, str) else val_to_string(vv)
                prev_comment = sec.comments.get(kk, "")
                sec.set(kk, sval, prev_comment)
                last = kk
            sections.append(sec)
    out: list[str] = []
    lastidx = len(sections) - 1
    for i, sec in enumerate(sections):
        if sec.comment:
            out.extend(ln + "\n" for ln in _comment_lines(sec.comment, trim_plain=False))
        if i > 0 or sec.name.upper() != DEFAULT:
            out.append("[" + sec.name + "]\n")
        elif not sec.keys:
            continue
        align = 0
        for kn in sec.keys:
            ln = len(kn.encode("utf-8", "surrogateescape"))
            if '"' in kn or any(d in kn for d in _DELIMS):
                ln += 2
            elif "`" in kn:
                ln += 6
            align = max(align, ln)
        for kn in sec.keys:
            if sec.comments.get(kn):
                out.extend(ln + "\n" for ln in _comment_lines(sec.comments[kn], trim_plain=True))
            name = kn
            if '"' in kn or any(d in kn for d in _DELIMS):
                name = "`" + kn + "`"
            elif "`" in kn:
                name = '"""' + kn + '"""'
            val = sec.values[kn]
            if "\n" in val or "`" in val:
                val = '"""' + val + '"""'
            elif "#" in val or ";" in val:
                val = "`" + val + "`"
            elif len(val.strip()) != len(val):
                val = '"' + val + '"'
            pad = " " * max(0, align - len(name.encode("utf-8", "surrogateescape")))
            out.append(name + pad + " = " + val + "\n")
        if i != lastidx:
            out.append("\n")
    return "".join(out).encode("utf-8", "surrogateescape")
