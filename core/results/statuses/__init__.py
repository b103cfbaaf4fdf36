"""Commit statuses and check runs: a sync's (or a pull request's plan's) outcome posted on the
commit, where the developer looks.

After a push is synced (inline or from the queue) `post_outcome` — an `core.intake` after-sync
hook — builds one `Status` per config the push matched and that has ``spec.statuses``, and
posts it to each target: a GitHub check run (summary table from core.results.markdown,
annotations on the file and line of every error and conflict) or commit status, a GitLab
commit status, a Bitbucket Cloud build status, a Gitea/Forgejo commit status. `post_pending`
(a before-sync hook) marks the commit pending first on the hosts with a pending state.

A post that fails is retried once (per request) and then logged; it never fails the sync:
the stores are already written, and the host retrying the delivery would not help.

Nothing here carries a value: a report holds names, sources and positions only, and the
credentials (tokens, an App's private key) are read from the config's secret store, sent
only in the Authorization header, and never logged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.results.statuses.targets import Target


def _log() -> Any:
    """The module's logger, made on first use: core.config imports `targets` from this package
    at load, and a cold process should not pay for the logging package before it logs."""
    import logging

    return logging.getLogger("smf.statuses")


PRODUCT = "secret-manager-functions"
#: GitHub takes at most this many annotations per request (create, then one PATCH per batch).
ANNOTATIONS_PER_REQUEST = 50
#: And shows at most this many per check run: more are counted in the summary.
MAX_ANNOTATIONS = 1000
DESCRIPTION_CHARS = 140  # GitHub's commit-status limit; the shortest of the four hosts


@dataclass(frozen=True)
class Annotation:
    """A message on one file and line (repo-relative path)."""

    path: str
    line: int
    level: str  # failure | warning | notice
    title: str
    message: str

    def to_github(self) -> dict[str, Any]:
        return {"path": self.path, "start_line": self.line, "end_line": self.line,
                "annotation_level": self.level, "title": self.title[:255], "message": self.message[:64_000]}  # fmt: skip


@dataclass
class Status:
    """What is posted for one config on one commit."""

    config: str
    sha: str
    ref: str | None
    #: pending | success | failure | neutral (nothing to do)
    state: str
    title: str
    summary: str
    annotations: list[Annotation] = field(default_factory=list)
    preview: bool = False

    @property
    def name(self) -> str:
        """``secret-manager-functions / <config>``; a preview is ``… / <config> (plan)`` so a
        branch protection rule can require the preview and the sync separately."""
        return f"{PRODUCT} / {self.config}" + (" (plan)" if self.preview else "")

    @property
    def description(self) -> str:
        return (
            self.title if len(self.title) <= DESCRIPTION_CHARS else self.title[: DESCRIPTION_CHARS - 1] + "…"
        )


# --- building a status from a report ---------------------------------------------------------
def status_for(report: Any, config: str, sha: str, ref: str | None, *, preview: bool = False) -> Status:
    """The status of one config's part of a run (`report` already cut with ``for_config``)."""
    from core.results.markdown import summary_table

    outcome = report.outcome
    state = "failure" if outcome != "ok" else "success" if report.has_changes else "neutral"
    title = _title(report, preview)
    heading = f"{'Plan' if preview else 'Sync'} of {config}"
    return Status(config, sha, ref, state, title, summary_table(report, title=heading),
                  annotations_for(report), preview)  # fmt: skip


def _title(report: Any, preview: bool) -> str:
    s = report.summary
    verbs = (("create", "to create", "created"), ("update", "to update", "updated"),
             ("delete", "to delete", "deleted"), ("conflict", "conflicts", "conflicts"))  # fmt: skip
    parts = [f"{s[a]} {future if preview else past}" for a, future, past in verbs if s[a]]
    if report.errors:
        parts.append(f"{len(report.errors)} error{'s' if len(report.errors) != 1 else ''}")
    counts = ", ".join(parts) or "no changes"
    if report.outcome == "ok":
        head = "Plan" if preview else "Applied"
    else:
        head = "Would fail" if preview else "Failed" if report.outcome == "failed" else "Partly applied"
    return f"{head}: {counts}"


def annotations_for(report: Any) -> list[Annotation]:
    """One annotation per error that names a repository file (line 1 when the line is not
    known: GitHub requires one), and one warning per conflict at the key's line."""
    out: list[Annotation] = []
    for e in report.errors:
        path = str(e.get("path") or "")
        if not path or path.startswith("/") or e.get("kind") == "config":
            continue  # no file in the repository to point at (a guard, a store call, the config)
        message = str(e.get("message", ""))
        if e.get("field"):
            message += f" ({e['field']})"
        if e.get("name") and e.get("store"):
            message = f"{e['store']} {e['name']}: {message}"
        line = e.get("line")
        out.append(Annotation(path, int(line) if isinstance(line, int) and line > 0 else 1, "failure",
                              f"{e.get('kind', 'error')} error", message))  # fmt: skip
    for c in report.changes:
        if c.action != "conflict":
            continue
        path = c.source.rpartition(":")[0] or c.source
        if not path:
            continue
        note = f" ({c.reason})" if c.reason else ""
        out.append(Annotation(path, c.line or 1, "warning", "conflict",
                              f"{c.store} {c.name}: not applied{note}"))  # fmt: skip
    return out


def fetch_failed_status(config: str, sha: str, ref: str | None, errors: list[dict[str, Any]], *,
                        preview: bool = False) -> Status:  # fmt: skip
    """A failure status for a commit that could not be fetched or read."""
    lines = [f"### {'Plan' if preview else 'Sync'} of {config}", "", "**The commit could not be read.**", ""]
    lines += [f"- {str(e.get('message', ''))}" for e in errors]
    return Status(config, sha, ref, "failure", "Failed: the commit could not be fetched",
                  "\n".join(lines) + "\n", [], preview)  # fmt: skip


def skipped_status(config: str, sha: str, ref: str | None, reason: str) -> Status:
    """A neutral preview that says why nothing was planned (a fork's pull request)."""
    summary = (f"### Plan of {config}\n\nNot planned: {reason}. A pull request from a fork is not "
               "decrypted or planned against the stores unless `spec.pullRequests.forks` is true.\n")  # fmt: skip
    return Status(config, sha, ref, "neutral", "Not planned: pull request from a fork", summary, [], True)


# --- posting ---------------------------------------------------------------------------------
#: (config, secret name) → value: reads the config's secret store (see `core.intake`).
SecretReader = Callable[[Any, str], str]


def post(target: Target, config: Any, status: Status, read_secret: SecretReader) -> bool:
    """Post `status` to `target`; True when it went through. Never raises: a failure (after the
    one retry each request gets) is logged with the host, config and error, never a value."""
    from core.results.statuses import github, hosts

    try:
        if target.provider == "github":
            github.post(target, config, status, read_secret)
        else:
            hosts.post(target, config, status, read_secret)
        return True
    except Exception as exc:  # noqa: BLE001 - a status post never fails the sync
        _log().warning("status post failed", extra={"provider": target.provider, "config": status.config,
                                                  "state": status.state, "error": _safe(exc)})  # fmt: skip
        return False


def _safe(exc: Exception) -> str:
    from core.errors import SyncError
    from core.results.statuses.http import HttpError

    if isinstance(exc, HttpError | SyncError):
        return str(exc)[:300]
    return type(exc).__name__


def statuses_of(config: Any) -> list[Target]:
    return list(getattr(config, "statuses", None) or [])


def reader_for(context: Any) -> SecretReader:
    """The secret reader of the run's store factory (tests and `serve` pass their own), cached
    per (config, name) for one outcome so several targets do not read a secret twice."""
    from core.intake import _secret_store_reader

    read = _secret_store_reader(getattr(context, "store_factory", None))
    cache: dict[tuple[str, str], str] = {}

    def cached(config: Any, name: str) -> str:
        key = (getattr(config, "name", ""), name)
        if key not in cache:
            cache[key] = read(config, name)
        return cache[key]

    return cached


def post_outcome(outcome: Any, configs: Sequence[Any]) -> None:
    """After-sync hook: post the outcome of a push (or a preview) for every matched config
    that has ``spec.statuses``. Resyncs post nothing (no one pushed the commit they read)."""
    if outcome.kind not in ("push", "preview"):
        return
    by_name = {c.name: c for c in configs if statuses_of(c)}
    if not by_name:
        return
    preview = outcome.kind == "preview"
    from core.report import Report

    read = reader_for(getattr(outcome, "context", None))
    for res in outcome.body.get("results") or []:
        sha, ref = res.get("after"), res.get("ref")
        if not sha or len(str(sha)) != 40:  # no full commit id to post on (a short hash not fetched)
            continue
        todo: list[Status] = []
        if res.get("report") is not None:
            report = Report.from_dict(res["report"])
            for name in res.get("configs") or []:
                if name in by_name:
                    todo.append(status_for(report.for_config(name), name, sha, ref, preview=preview))
        elif res.get("status") == "skipped" and preview:
            for name in res.get("configs") or []:
                if name in by_name:
                    todo.append(skipped_status(name, sha, ref, str(res.get("reason") or "not planned")))
        elif res.get("status") == "error":
            for name in res.get("configs") or _matched(outcome, res, configs):
                if name in by_name:
                    todo.append(fetch_failed_status(name, sha, ref, res.get("errors") or [], preview=preview))
        for status in todo:
            cfg = by_name[status.config]
            for target in statuses_of(cfg):
                post(target, cfg, status, read)


def _matched(outcome: Any, result: dict[str, Any], configs: Sequence[Any]) -> list[str]:
    from core.webhook import configs_for_push

    for ev in outcome.events:
        if ev.ref == result.get("ref") and ev.after == result.get("after"):
            return [c.name for c in configs_for_push(configs, ev)]
    return []


def post_pending(configs: Sequence[Any], sha: str, ref: str | None, context: Any = None, *,
                 preview: bool = False) -> None:  # fmt: skip
    """Before-sync: mark the commit pending for each config, on targets with a pending state
    (GitLab, Gitea, Bitbucket; GitHub only for commit statuses: a check run is posted once,
    completed)."""
    read = reader_for(context)
    for cfg in configs:
        for target in statuses_of(cfg):
            if not target.pending or (target.provider == "github" and target.checks):
                continue
            status = Status(
                cfg.name, sha, ref, "pending", "Planning…" if preview else "Syncing…", "", [], preview
            )
            post(target, cfg, status, read)
