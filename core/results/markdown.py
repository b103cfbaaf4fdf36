"""The Markdown summary of a run: the table a GitHub check run shows, and what
``python -m core plan --output markdown`` prints so a CI job on any system can post it.

Store, action, name and source ``path:key`` per change, then errors with file and line.
Never a value: a Report holds none. Long reports are cut to fit a check run's summary
(GitHub accepts 65,535 characters) with a line saying how many rows were left out.
"""

from __future__ import annotations

from core.report import ACTIONS, Report

#: GitHub's limit on a check run's `output.summary`, with room for the heading and cut line.
MAX_CHARS = 60_000


def code(text: str) -> str:
    """`text` as an inline code span safe inside a table cell."""
    text = str(text).replace("|", "\\|").replace("\n", " ")
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}" if text else ""


def cell(text: object) -> str:
    """Plain text for a table cell: pipes escaped, one line."""
    return str(text).replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def headline(report: Report) -> str:
    """One sentence: plan or applied, commit, outcome and counts."""
    s = report.summary
    head = "Applied" if report.applied else "Plan"
    commit = f"`{report.commit[:12]}`" if report.commit else "the working tree"
    counts = ", ".join(f"{s[a]} {a}" for a in ACTIONS if s[a] and a != "unchanged")
    counts = counts or "no changes"
    errors = f", {len(report.errors)} error{'s' if len(report.errors) != 1 else ''}" if report.errors else ""
    return f"**{head}** for {commit}: **{report.outcome}** ({counts}, {s['unchanged']} unchanged{errors})."


def summary_table(report: Report, *, title: str | None = None, max_chars: int = MAX_CHARS) -> str:
    """The whole summary: headline, changes table (unchanged counted, not listed), errors."""
    lines: list[str] = []
    if title:
        lines += [f"### {title}", ""]
    lines += [headline(report), ""]
    shown = sorted(
        (c for c in report.changes if c.action != "unchanged"),
        key=lambda c: (c.store, ACTIONS.index(c.action), c.name),
    )
    rows = [
        f"| {cell(c.store)} | {c.action} | {code(c.name)} | {code(c.source)} |"
        + (f" {cell(c.reason)} |" if c.reason else " |")
        for c in shown
    ]
    error_rows = [_error_row(e) for e in report.errors]
    budget = max_chars - sum(len(x) + 1 for x in lines) - sum(len(x) + 1 for x in error_rows) - 400
    if rows:
        lines += ["| Store | Action | Name | Source | Note |", "|---|---|---|---|---|"]
        used = 0
        for i, row in enumerate(rows):
            if used + len(row) + 1 > budget:
                lines.append(f"\n… and {len(rows) - i} more changes (see the run's log or `--json`).")
                break
            lines.append(row)
            used += len(row) + 1
        lines.append("")
    if error_rows:
        lines += ["| File | Line | Kind | Error |", "|---|---|---|---|", *error_rows, ""]
    if report.warnings:
        lines.append(
            f"{len(report.warnings)} warning{'s' if len(report.warnings) != 1 else ''} (see the run's log)."
        )
    return "\n".join(lines).rstrip() + "\n"


def _error_row(error: dict[str, object]) -> str:
    where = error.get("path") or error.get("config") or ""
    line = error.get("line") or ""
    message = str(error.get("message", ""))
    if error.get("field"):
        message = f"{message} ({error['field']})"
    if error.get("name") and error.get("store"):
        message = f"{error['store']} {error['name']}: {message}"
    return f"| {code(str(where))} | {line} | {cell(error.get('kind', 'error'))} | {cell(message)} |"
