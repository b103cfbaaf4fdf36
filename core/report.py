"""The report of a run: what would change (plan) or changed (apply), and what failed.

Shows names, actions, sources and fingerprints only. `to_dict()` is the `--json` shape:
``{"commit", "outcome", "changes": [{"action", "store", "name", "source"}], "summary", "errors"}``.

A run's **outcome** is what CI checks, Git host statuses and logs key on:
``ok`` (everything Git says is in the stores, or would be), ``partial`` (the run went through
but some entries Git asks for were not applied: a conflict with an entry we do not own, or a
guard such as the mass-delete limit refused them) and ``failed`` (an error: a file that does
not parse or decrypt, a name clash, a store call that failed). `apply` exits 1 unless ``ok``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("create", "update", "delete", "conflict", "drift", "skipped", "unchanged")
CHANGING = ("create", "update", "delete")
#: Outcomes in increasing order of badness.
OUTCOMES = ("ok", "partial", "failed")
#: Error kinds that are a guard refusing work rather than broken input or a failed call.
REFUSED_KINDS = ("guard",)
SYMBOLS = {
    "create": "+",
    "update": "~",
    "delete": "-",
    "conflict": "!",
    "drift": "?",
    "skipped": "=",
    "unchanged": " ",
}


@dataclass
class Change:
    action: str
    store: str
    name: str
    source: str
    owner: str = ""
    reason: str = ""
    #: True once apply has carried the change out.
    done: bool = False
    #: The source line of the key, when the parser knows it (for annotations).
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action,
            "store": self.store,
            "name": self.name,
            "source": self.source,
        }
        if self.reason:
            out["reason"] = self.reason
        if self.owner:  # names only: lets Report.from_dict(...).for_config split a webhook answer
            out["owner"] = self.owner
        if self.line:
            out["line"] = self.line
        return out

    @property
    def config(self) -> str:
        """The config this change belongs to (the first part of its owner)."""
        return self.owner.split("/", 1)[0]


@dataclass
class Report:
    commit: str | None = None
    applied: bool = False
    changes: list[Change] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add_error(self, error: Exception, **context: Any) -> None:
        data = error.to_dict() if hasattr(error, "to_dict") else {"message": type(error).__name__}
        data.setdefault("kind", error_kind(error))
        data.update({k: v for k, v in context.items() if v is not None})
        self.errors.append(data)

    @property
    def outcome(self) -> str:
        """``failed`` on any error other than a guard's refusal; ``partial`` when a conflict
        or a guard left entries Git asks for unapplied; else ``ok``."""
        if any(e.get("kind") not in REFUSED_KINDS for e in self.errors):
            return "failed"
        if self.errors or any(c.action == "conflict" for c in self.changes):
            return "partial"
        return "ok"

    @property
    def summary(self) -> dict[str, int]:
        counts = Counter(c.action for c in self.changes)
        return {a: counts.get(a, 0) for a in ACTIONS}

    def counts_by_store(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for c in self.changes:
            out.setdefault(c.store, Counter())[c.action] += 1
        for e in self.errors:
            if e.get("store"):
                out.setdefault(str(e["store"]), Counter())["error"] += 1
        return {s: dict(v) for s, v in out.items()}

    @property
    def has_changes(self) -> bool:
        return any(c.action in CHANGING for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "applied": self.applied,
            "outcome": self.outcome,
            "changes": [c.to_dict() for c in self.changes],
            "summary": self.summary,
            "errors": self.errors,
            "warnings": self.warnings,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Rebuild a report from its `to_dict()` form (e.g. a webhook response), to render it."""
        report = cls(
            commit=data.get("commit"),
            applied=bool(data.get("applied")),
            errors=list(data.get("errors", [])),
            warnings=list(data.get("warnings", [])),
        )
        for c in data.get("changes", []):
            report.changes.append(
                Change(
                    c["action"],
                    c["store"],
                    c["name"],
                    c.get("source", ""),
                    owner=c.get("owner", ""),
                    reason=c.get("reason", ""),
                    line=c.get("line"),
                )
            )
        return report

    def for_config(self, name: str) -> Report:
        """The part of this report that belongs to one config (one check run / status each)."""
        return Report(
            commit=self.commit,
            applied=self.applied,
            changes=[c for c in self.changes if c.config == name],
            errors=[e for e in self.errors if e.get("config") in (name, None)],
            warnings=[w for w in self.warnings if not _names_other_config(w, name)],
        )

    def grouped_warnings(self, *, shown: int = 3) -> list[str]:
        """Warnings with the same message about many files, as one line each:
        ``1,000 files: secrets file is not SOPS-encrypted: a, b, c, and 997 more``."""
        groups: dict[str, list[str]] = {}
        for w in self.warnings:
            where, sep, what = w.partition(": ")
            key = what if sep and ("/" in where or "." in where) else w
            groups.setdefault(key, []).append(where if key == what else "")
        out = []
        for what, wheres in groups.items():
            places = [p for p in wheres if p]
            if len(places) <= 1:
                out.append(f"{places[0]}: {what}" if places else what)
                continue
            listed = ", ".join(places[:shown])
            more = f", and {len(places) - shown:,} more" if len(places) > shown else ""
            out.append(f"{len(places):,} files: {what}: {listed}{more}")
        return out

    def error_lines(self) -> list[str]:
        """One line per error: ``path:line (field): message`` (never a value)."""
        lines = []
        for e in self.errors:
            where = e.get("path", "")
            if e.get("line"):
                where += f":{e['line']}"
            if e.get("field"):
                where += f" ({e['field']})" if where else str(e["field"])
            lines.append(f"{where + ': ' if where else ''}{e['message']}")
        return lines

    def render(self, show_unchanged: bool = False, *, warnings: bool = True, errors: bool = True) -> str:
        """Human output like `terraform plan`, grouped by store; never a value. The CLI passes
        ``warnings=False, errors=False`` and prints both on stderr instead."""
        lines: list[str] = []
        head = "Applied" if self.applied else "Plan"
        lines.append(f"{head} for commit {self.commit or '(working tree)'}")
        stores = sorted({c.store for c in self.changes})
        for store in stores:
            group = [c for c in self.changes if c.store == store]
            shown = [c for c in group if show_unchanged or c.action != "unchanged"]
            unchanged = sum(1 for c in group if c.action == "unchanged")
            lines.append("")
            lines.append(f"{store}:")
            for c in sorted(shown, key=lambda c: (ACTIONS.index(c.action), c.name)):
                extra = f"  ({c.reason})" if c.reason else ""
                lines.append(f"  {SYMBOLS[c.action]} {c.action:<9} {c.name}  <- {c.source}{extra}")
            if unchanged and not show_unchanged:
                lines.append(f"    {unchanged} unchanged")
        if self.warnings and warnings:
            lines.append("")
            lines.extend(f"warning: {w}" for w in self.warnings)
        if self.errors and errors:
            lines.append("")
            lines.extend(f"error: {line}" for line in self.error_lines())
        s = self.summary
        verb = "done" if self.applied else "to do"
        lines.append("")
        lines.append(
            f"Summary ({verb}): {s['create']} to create, {s['update']} to update, "
            f"{s['delete']} to delete, {s['conflict']} conflicts, {s['unchanged']} unchanged, "
            f"{len(self.errors)} errors."
            if not self.applied
            else f"Summary ({verb}): {s['create']} created, {s['update']} updated, "
            f"{s['delete']} deleted, {s['conflict']} conflicts, {s['unchanged']} unchanged, "
            f"{len(self.errors)} errors."
        )
        return "\n".join(lines)


def _names_other_config(warning: str, name: str) -> bool:
    """Config-level warnings start with ``"{config}: "``; those of another config are dropped."""
    head, sep, _ = warning.partition(": ")
    return bool(sep) and "/" not in head and "." not in head and head != name


def error_kind(error: Exception) -> str:
    """A short, stable name for what went wrong (``parse``, ``decrypt``, ``clash`` …), so a
    status post can say which check failed and an alert can count by kind."""
    from core import errors as e

    kinds = (
        (e.GuardError, "guard"),
        (e.ConfigError, "config"),
        (e.ParseError, "parse"),
        (e.DecryptError, "decrypt"),
        (e.NamingError, "naming"),
        (e.StoreError, "store"),
        (e.SourceError, "source"),
    )
    return next((kind for cls, kind in kinds if isinstance(error, cls)), "error")
