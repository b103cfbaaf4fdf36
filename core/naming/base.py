"""Naming rules shared by every store: render a template, map characters, check limits.

Each store kind has one module in this package defining `RULES`, the store's own charset,
length, depth, case sensitivity and value size. The rendering and checking logic lives
here once, so the stores only state their rules. Where a store option changes names (App
Configuration's separator, Parameter Manager's document mode), the rules say so with
`default_template_for` / `entry_template_for`, so a name is decided once, by naming, and
the name planned is the name written (no store renames entries afterwards).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from core.errors import NamingError

#: Placeholders a name template may use.
PLACEHOLDERS = ("prefix", "service", "environment", "key", "suffix", "path", "kind")
#: Bound of the memo of sanitised values (per rules object) and of checked templates.
_MEMO_SIZE = 65536
#: Templates whose placeholders were checked (and that rendered) once already.
_CHECKED_TEMPLATES: set[str] = set()


@dataclass(frozen=True)
class NameContext:
    """Everything a name may be built from, for one key of one service."""

    service: str
    environment: str
    key: str
    kind: str  # "secret" or "config"
    prefix: str = ""
    suffix: str = ""
    path: str = ""  # parameterPath (or the store's default path)

    def values(self) -> dict[str, str]:
        return {
            "prefix": self.prefix or self.service,
            "service": self.service,
            "environment": self.environment,
            "key": self.key,
            "suffix": self.suffix,
            "path": self.path,
            "kind": self.kind,
        }


@dataclass(frozen=True)
class NamingRules:
    """A store's naming and size rules.

    `allowed` is a regex character-class body (``A-Za-z0-9_-``) of the characters a name may
    contain. `translate` maps characters of *substituted values* (keys, prefixes) before any
    other disallowed character becomes `replacement`; template literals are never rewritten,
    so a template with characters the store refuses fails the name check instead of being
    silently changed.
    """

    store: str
    default_template: str
    allowed: str
    max_length: int
    max_value_bytes: int
    replacement: str = "_"
    #: Characters refused even though `allowed` covers them (App Configuration's `*,\\`).
    forbidden: str = ""
    translate: Mapping[str, str] = field(default_factory=dict)
    case_insensitive: bool = False
    allow_empty_value: bool = True
    #: Extra store rule (depth, reserved prefixes, first character): message or None.
    extra_check: Callable[[str], str | None] | None = None
    #: Collapse runs of the replacement and trim it from the ends of each component.
    squeeze: bool = False
    #: How the Secret Manager Controller named this kind's entries (core/naming/controller.py).
    controller_style: str = "secret"
    #: config -> the template a store option makes the default when the config sets no
    #: ``nameTemplate`` (the ``functions`` scheme), or None for `default_template`.
    default_template_for: Callable[[Any], str | None] | None = None
    #: config -> (template, the field it comes from) that a store option imposes on every
    #: entry whatever the scheme and ``nameTemplate`` say, rendered without the key (one
    #: document per service and environment); None when the option is off.
    entry_template_for: Callable[[Any], tuple[str, str] | None] | None = None

    # -- rendering ---------------------------------------------------------------------
    def sanitize(self, value: str) -> str:
        """Map one substituted value into the store's charset (documented per store)."""
        # Memoised (bounded): a run names every key of thousands of services, and all but the
        # key repeat (service, prefix, environment, kind, suffix); see bench/bench_scale.py.
        memo = self._sanitize_memo
        out = memo.get(value)
        if out is None:
            table, bad, forbidden, squeeze = self._sanitize_steps
            out = bad.sub(self.replacement, value.translate(table) if table else value)
            if forbidden is not None:
                out = forbidden.sub(self.replacement, out)
            if squeeze is not None:
                out = squeeze.sub(self.replacement, out)
            if len(memo) < _MEMO_SIZE:
                memo[value] = out
        return out

    @cached_property
    def _allowed_only(self) -> re.Pattern[str]:
        return re.compile(f"[{self.allowed}]*")

    @cached_property
    def _sanitize_memo(self) -> dict[str, str]:
        return {}

    @cached_property
    def _sanitize_steps(
        self,
    ) -> tuple[dict[int, str], re.Pattern[str], re.Pattern[str] | None, re.Pattern[str] | None]:
        """`sanitize`'s translation table and patterns, compiled once per rules object."""
        table = str.maketrans({k: v for k, v in self.translate.items() if len(k) == 1})
        forbidden = re.compile(f"[{re.escape(self.forbidden)}]") if self.forbidden else None
        squeeze = None
        if self.squeeze and self.replacement:
            squeeze = re.compile(f"{re.escape(self.replacement)}{{2,}}")
        return table, re.compile(f"[^{self.allowed}]"), forbidden, squeeze

    def render(self, template: str | None, ctx: NameContext, *, field_name: str) -> str:
        """Render `template` (or the default) for `ctx`. Unknown placeholders are errors."""
        tmpl = template or self.default_template
        values = {k: self.sanitize(v) if k not in ("path",) else v for k, v in ctx.values().items()}
        try:
            if tmpl not in _CHECKED_TEMPLATES:
                for _, name, _, _ in string.Formatter().parse(tmpl):
                    if name is not None and name not in PLACEHOLDERS:
                        raise NamingError(
                            f"unknown placeholder {{{name}}} in name template; "
                            f"use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}",
                            field=field_name,
                        )
            name = tmpl.format(**values)
        except (ValueError, IndexError) as exc:
            raise NamingError(f"invalid name template: {exc}", field=field_name) from None
        if len(_CHECKED_TEMPLATES) < _MEMO_SIZE:
            _CHECKED_TEMPLATES.add(tmpl)
        return self.normalize(name)

    def normalize(self, name: str) -> str:
        """Final clean-up of a rendered name (e.g. collapse `//` from an empty part)."""
        return name

    # -- checks ------------------------------------------------------------------------
    def check_name(self, name: str) -> str | None:
        """Why the store would refuse `name`, or None when it is valid."""
        if not name:
            return "name is empty"
        if len(name) > self.max_length:
            return f"name is {len(name)} characters; {self.store} allows at most {self.max_length}"
        if not self._allowed_only.fullmatch(name) or any(c in name for c in self.forbidden):
            bad = set(re.sub(f"[{self.allowed}]", "", name))
            bad |= {c for c in self.forbidden if c in name}
            shown = " ".join(repr(c) for c in sorted(bad))
            return f"name contains {shown}; {self.store} allows only [{self.allowed}]"
        if self.extra_check:
            return self.extra_check(name)
        return None

    def check_value(self, value: str) -> str | None:
        """Why the store would refuse the value (by size only: never shows the value)."""
        size = len(value.encode("utf-8"))
        if size > self.max_value_bytes:
            return f"value is {size} bytes; {self.store} allows at most {self.max_value_bytes}"
        return None

    def clash_key(self, name: str) -> str:
        """The form under which two names are the same entry in this store."""
        return name.lower() if self.case_insensitive else name
