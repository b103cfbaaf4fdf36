"""The log records of a run, the same on every cloud: the handlers only write them.

`records(outcome, message)` gives, in order:

- one ``smf: run`` record: what `core.intake.log_summary` says (status, result, ref, commit,
  counts per action, drift, error messages) plus ``outcome`` and the counts per store. Its
  level is ERROR when the run failed or partly failed — a file that does not parse or
  decrypt, a clash, a failed store call or fetch, a conflict, a refused mass delete — WARNING
  for a refused delivery (a bad signature is someone else's problem, not a failed sync),
  else INFO. Before this, a resync with an error logged at INFO and never named the file;
- one ``smf: error`` record (ERROR) per error, naming the config, service, store, file, line
  and field, the message saying where (``path:line (field): message``) so a reader of the
  plain text (Application Insights' ``message``) sees it too;
- one ``smf: drift`` record (WARNING) per drifted entry: config(s), store, entry name, source;
- with ``per_store=True``, one ``smf: store`` record per store with its counts and outcome,
  which GCP's log-based metrics and Azure's log query alert count by store (AWS has EMF).

At most `MAX_LINES` error and drift records each are written per run (one more says how
many were left out; the run record has the full counts). Field names avoid the attributes
of `logging.LogRecord` (``message``, ``name``, ``filename`` ...) so every record can go
through ``extra=`` unchanged. Nothing here holds a value: errors are built from names and
positions (core.errors), changes carry store names and sources.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_LINES = 100
ACTIONS = ("create", "update", "delete", "unchanged", "conflict", "drift", "skipped", "error")


@dataclass(frozen=True)
class Record:
    level: int
    message: str
    fields: dict[str, Any]

    @property
    def method(self) -> str:
        """The logger method for the level (``info``, ``warning``, ``error``): Powertools'
        Logger has those, not ``log``."""
        return logging.getLevelName(self.level).lower()


def run_outcome(outcome: Any) -> str:
    """``ok`` | ``partial`` | ``failed`` for a sync; ``rejected`` / ``ignored`` / ``queued``
    for a delivery that did not sync here (a 5xx of those is ``failed``)."""
    body: Mapping[str, Any] = outcome.body
    results = body.get("results") or []
    if outcome.kind in ("rejected", "ignored", "queued") and not results:
        return "failed" if outcome.status >= 500 else str(outcome.kind)
    worst = "ok"
    for res in results:
        if res.get("errors"):
            return "failed"
        o = (res.get("report") or {}).get("outcome", "ok")
        if o == "failed":
            return "failed"
        if o == "partial":
            worst = "partial"
    if outcome.status >= 500:
        return "failed"
    return worst


def where(e: Mapping[str, Any]) -> str:
    """``path:line (field)`` of an error, as the CLI prints it (notifications use it too)."""
    out = str(e.get("path") or "")
    if e.get("line"):
        out += f":{e['line']}"
    if e.get("field"):
        out = f"{out} ({e['field']})" if out else str(e["field"])
    return out


def _by_store(body: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    from core.intake import counts_by_store

    return counts_by_store(body)


def records(outcome: Any, message: str, *, per_store: bool = False, **extra: Any) -> list[Record]:
    """Every record of one delivery or job (see the module docstring); `extra` goes into the
    run record (the handler's own fields: function, trace, duration)."""
    from core.intake import log_summary

    body: Mapping[str, Any] = outcome.body
    result = run_outcome(outcome)
    stores = _by_store(body)
    level = (
        logging.ERROR
        if result in ("failed", "partial")
        else logging.WARNING
        if outcome.status >= 400
        else logging.INFO
    )
    summary = log_summary(outcome)
    run = {"smf": "run", **summary, **extra, "outcome": result, "stores": stores}
    run["configs"] = sorted({str(n) for r in body.get("results") or [] for n in r.get("configs") or []})
    ev = outcome.events[0] if getattr(outcome, "events", None) else None
    base = {"ref": getattr(ev, "ref", None), "commit": getattr(ev, "after", None)}
    errors: list[Record] = []
    drift: list[Record] = []
    for res in body.get("results") or []:
        names = [str(n) for n in res.get("configs") or []]
        report = res.get("report") or {}
        commit = report.get("commit") or res.get("after") or base["commit"]
        ctx = {"ref": res.get("ref") or base["ref"], "commit": commit}
        for e in [*(report.get("errors") or []), *(res.get("errors") or [])]:
            where_ = where(e)
            text = str(e.get("message", ""))[:500]
            fields = {"smf": "error", "config": e.get("config") or ", ".join(names), **ctx}
            for k in ("service", "store", "kind", "path", "line", "field"):
                if e.get(k) is not None:
                    fields[k] = e[k]
            fields["error"] = text
            errors.append(
                Record(logging.ERROR, f"sync error: {where_ + ': ' if where_ else ''}{text}", fields)
            )
        for c in report.get("changes") or []:
            if c.get("action") != "drift":
                continue
            fields = {"smf": "drift", "config": ", ".join(names), "store": c.get("store"),
                      "entry": c.get("name"), "source": c.get("source"), **ctx}  # fmt: skip
            drift.append(
                Record(
                    logging.WARNING, f"drift: {c.get('store')}: {c.get('name')} changed outside Git", fields
                )
            )
    out = [Record(level, message, run)]
    for kind, items in (("error", errors), ("drift", drift)):
        out.extend(items[:MAX_LINES])
        if len(items) > MAX_LINES:
            left = len(items) - MAX_LINES
            out.append(Record(items[0].level, f"{left} more {kind} records left out",
                              {"smf": kind, "omitted": left}))  # fmt: skip
    if per_store:
        for store, by in sorted(stores.items()):
            bad = by.get("error", 0) > 0
            fields = {
                "smf": "store",
                "store": store,
                "outcome": "failed" if bad else "ok",
                "kind": outcome.kind,
            }
            fields.update({a: int(by.get(a, 0)) for a in ACTIONS})
            out.append(Record(logging.ERROR if bad else logging.INFO, f"store {store}", fields))
    return out
