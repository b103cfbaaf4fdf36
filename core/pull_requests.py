"""Pull-request previews: "plan on the pull request, apply on merge".

A pull request (GitHub and Gitea/Forgejo ``pull_request`` opened/synchronize(d)/reopened,
GitLab ``Merge Request Hook`` open/reopen/update with new commits, Bitbucket Cloud
``pullrequest:created``/``pullrequest:updated``) is verified like a push (core.webhook, same
signatures) and reduced to a `PullRequestEvent`. `run_preview` fetches the pull request's head
commit, diffs it against the base, plans — never applies — every config that follows the
target branch and whose files the pull request touches, and returns an Outcome of kind
``preview`` that the status hook posts as a check run / status named
``secret-manager-functions / <config> (plan)``. The preview fails when merging would break
the sync: a parse or decrypt error, a name clash, a conflict, a mass delete beyond the guard.

**Forks.** A pull request from a fork carries content chosen by anyone who can open one.
Planning it means decrypting its files with our keys (a KMS/age decrypt oracle for whatever
ciphertext the fork contains, with the result's shape reported back) and reading our stores'
metadata (which names exist, who owns them) into a status the fork's author can read. That is
why GitHub does not give ``pull_request`` workflows from forks any secrets. Here a fork's pull
request is planned only when the config says ``spec.pullRequests.forks: true``; otherwise it
gets a neutral "not planned" status and nothing is fetched, decrypted or read.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import SourceError, SyncError, WebhookError
from core.git_url import normalize_repo_url

log = logging.getLogger("smf.preview")

_HEX = re.compile(r"^[0-9a-fA-F]{7,40}$")
GITHUB_ACTIONS = ("opened", "synchronize", "reopened")
GITEA_ACTIONS = ("opened", "synchronize", "synchronized", "reopened")
GITLAB_ACTIONS = ("open", "reopen", "update")
BITBUCKET_EVENTS = ("pullrequest:created", "pullrequest:updated")


@dataclass
class PullRequestEvent:
    """One pull request's new head, as every host's payload is reduced to."""

    provider: str
    #: The target (base) repository's URLs: what configs are matched on.
    repo_urls: list[str]
    number: int
    action: str
    head_sha: str
    base_branch: str
    head_branch: str | None = None
    base_sha: str | None = None
    fork: bool = False
    delivery_id: str | None = None
    # What the intake's push-shaped helpers read (queue policy, answers, logs):
    more: list[Any] = field(default_factory=list)
    changed_paths: None = None
    paths_reliable = False
    accepted = True
    status = 202

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.head_branch}" if self.head_branch else f"pull/{self.number}"

    @property
    def after(self) -> str:
        return self.head_sha

    def to_message(self) -> dict[str, Any]:
        return {"provider": self.provider, "repo_urls": list(self.repo_urls), "number": self.number,
                "action": self.action, "head_sha": self.head_sha, "base_branch": self.base_branch,
                "head_branch": self.head_branch, "base_sha": self.base_sha, "fork": self.fork,
                "delivery_id": self.delivery_id}  # fmt: skip

    @classmethod
    def from_message(cls, data: Any) -> PullRequestEvent:
        if not isinstance(data, dict):
            raise WebhookError("queued pull request is not an object", status=400)
        urls = data.get("repo_urls")
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise WebhookError("queued pull request field repo_urls is not a list of URLs", status=400)
        for name in ("provider", "action", "base_branch"):
            if not isinstance(data.get(name), str):
                raise WebhookError(f"queued pull request field {name} is not a string", status=400)
        for name in ("head_branch", "base_sha", "delivery_id"):
            if data.get(name) is not None and not isinstance(data.get(name), str):
                raise WebhookError(f"queued pull request field {name} is not a string", status=400)
        if not isinstance(data.get("number"), int) or isinstance(data.get("number"), bool):
            raise WebhookError("queued pull request field number is not an integer", status=400)
        return cls(data["provider"], list(urls), data["number"], data["action"],
                   _sha(data.get("head_sha"), "head_sha"), data["base_branch"], data.get("head_branch"),
                   data.get("base_sha"), bool(data.get("fork")), data.get("delivery_id"))  # fmt: skip


def _sha(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _HEX.match(value):
        raise WebhookError(f"{name} is not a commit id", status=400)
    return value.lower()


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _urls(*values: Any) -> list[str]:
    out: list[str] = []
    for v in values:
        if isinstance(v, str) and v and v not in out:
            out.append(v)
    return out


def _repo_urls(repo: dict[str, Any]) -> list[str]:
    return _urls(repo.get("clone_url"), repo.get("html_url"), repo.get("ssh_url"), repo.get("git_url"),
                 repo.get("url"))  # fmt: skip


# --- parsers: (payload, delivery id) → event, or None for an action that needs no preview -------
def parse_github_like(provider: str, p: dict[str, Any], delivery: str | None) -> PullRequestEvent | str:
    """GitHub and Gitea/Forgejo ``pull_request``; a str is the reason it is ignored."""
    action = _str(p.get("action")) or ""
    if action not in (GITHUB_ACTIONS if provider == "github" else GITEA_ACTIONS):
        return f"pull_request action {action or '?'} needs no preview"
    pr = p.get("pull_request")
    if not isinstance(pr, dict):
        raise WebhookError("pull_request is missing", status=400)
    head, base = _obj(pr.get("head")), _obj(pr.get("base"))
    base_repo = _obj(base.get("repo")) or _obj(p.get("repository"))
    head_repo = _obj(head.get("repo"))
    urls = _urls(*_repo_urls(_obj(p.get("repository"))), *_repo_urls(base_repo))
    if not urls:
        raise WebhookError("repository has no URL", status=400)
    base_branch = _str(base.get("ref"))
    if base_branch is None:
        raise WebhookError("pull_request.base.ref is missing", status=400)
    number = p.get("number", pr.get("number"))
    if not isinstance(number, int):
        raise WebhookError("pull request number is missing", status=400)
    # A deleted fork has head.repo null: treat it as a fork (its content is not ours).
    fork = (
        not head_repo
        or (head_repo.get("full_name") != base_repo.get("full_name"))
        or bool(head_repo.get("fork"))
    )
    return PullRequestEvent(provider, urls, number, action, _sha(head.get("sha"), "pull_request.head.sha"),
                            base_branch, _str(head.get("ref")), _str(base.get("sha")), fork, delivery)  # fmt: skip


def parse_gitlab(p: dict[str, Any], delivery: str | None) -> PullRequestEvent | str:
    attrs = _obj(p.get("object_attributes"))
    action = _str(attrs.get("action")) or ""
    if action not in GITLAB_ACTIONS or (action == "update" and not attrs.get("oldrev")):
        return f"merge request action {action or '?'} needs no preview (no new commits)"
    project = _obj(p.get("project"))
    target = _obj(attrs.get("target")) or _obj(p.get("target"))
    urls = _urls(project.get("git_http_url"), project.get("http_url"), project.get("web_url"),
                 project.get("git_ssh_url"), target.get("git_http_url"), target.get("web_url"))  # fmt: skip
    if not urls:
        raise WebhookError("project has no URL", status=400)
    base_branch = _str(attrs.get("target_branch"))
    if base_branch is None:
        raise WebhookError("object_attributes.target_branch is missing", status=400)
    number = attrs.get("iid")
    if not isinstance(number, int):
        raise WebhookError("object_attributes.iid is missing", status=400)
    src_id, dst_id = attrs.get("source_project_id"), attrs.get("target_project_id")
    fork = src_id is None or src_id != dst_id
    head = _sha(_obj(attrs.get("last_commit")).get("id"), "object_attributes.last_commit.id")
    return PullRequestEvent("gitlab", urls, number, action, head, base_branch, _str(attrs.get("source_branch")),
                            None, fork, delivery)  # fmt: skip


def parse_bitbucket(event: str, p: dict[str, Any], delivery: str | None) -> PullRequestEvent | str:
    if event not in BITBUCKET_EVENTS:
        return f"event {event} needs no preview"
    pr = p.get("pullrequest")
    if not isinstance(pr, dict):
        raise WebhookError("pullrequest is missing", status=400)
    src, dst = _obj(pr.get("source")), _obj(pr.get("destination"))
    repo = _obj(p.get("repository")) or _obj(dst.get("repository"))
    links = _obj(repo.get("links"))
    full_name = _str(repo.get("full_name"))
    urls = _urls(
        _obj(links.get("html")).get("href"), f"https://bitbucket.org/{full_name}.git" if full_name else None
    )
    if not urls:
        raise WebhookError("repository has no URL", status=400)
    base_branch = _str(_obj(dst.get("branch")).get("name"))
    if base_branch is None:
        raise WebhookError("pullrequest.destination.branch.name is missing", status=400)
    number = pr.get("id")
    if not isinstance(number, int):
        raise WebhookError("pullrequest.id is missing", status=400)
    src_repo = _str(_obj(src.get("repository")).get("full_name"))
    dst_repo = _str(_obj(dst.get("repository")).get("full_name")) or full_name
    head = _sha(_obj(src.get("commit")).get("hash"), "pullrequest.source.commit.hash")  # (12 hex)
    return PullRequestEvent("bitbucket", urls, number, event.partition(":")[2], head, base_branch,
                            _str(_obj(src.get("branch")).get("name")), _str(_obj(dst.get("commit")).get("hash")),
                            src_repo is None or src_repo != dst_repo, delivery)  # fmt: skip


# --- matching and running ------------------------------------------------------------------
def previews_enabled(configs: Sequence[Any]) -> bool:
    """Whether any config wants pull-request previews (statuses to post them to, and on)."""
    return any(getattr(c, "statuses", None) and (getattr(c, "pull_requests", None) or {}).get("preview", True)
               for c in configs)  # fmt: skip


def configs_for_pull_request(configs: Sequence[Any], event: PullRequestEvent) -> list[Any]:
    """Configs that follow the pull request's target repository and branch, with previews on."""
    wanted = {normalize_repo_url(u) for u in event.repo_urls}
    out = []
    for cfg in configs:
        src = getattr(cfg, "source", None)
        url = getattr(src, "url", None)
        if not url or normalize_repo_url(url) not in wanted or not getattr(cfg, "statuses", None):
            continue
        if not (getattr(cfg, "pull_requests", None) or {}).get("preview", True):
            continue
        if (getattr(src, "branch", None) or "main").removeprefix("refs/heads/") == event.base_branch:
            out.append(cfg)
    return out


def run_preview(event: PullRequestEvent, configs: Sequence[Any], ctx: Any) -> tuple[int, dict[str, Any]]:
    """Fetch the head commit, plan (apply=False) the configs whose files the pull request
    touches. Returns (status, body) shaped like a push's answer, with kind ``preview``."""
    from core.git_fetch import fetch_commit
    from core.sync import run

    matched = configs_for_pull_request(configs, event)
    base = {
        "ref": event.ref,
        "after": event.head_sha,
        "delivery_id": event.delivery_id,
        "number": event.number,
    }
    results: list[dict[str, Any]] = []
    blocked = [c for c in matched if event.fork and not (c.pull_requests or {}).get("forks")]
    if blocked:
        results.append({**base, "status": "skipped", "configs": [c.name for c in blocked],
                        "reason": "pull request from a fork: not planned (spec.pullRequests.forks)"})  # fmt: skip
    allowed = [c for c in matched if c not in blocked]
    status = 200
    if allowed:
        cfg0 = allowed[0]
        try:
            token = ctx.tokens()(cfg0)
            # No branch: the head is not on the target branch, and must not be judged against its tip.
            source = fetch_commit(cfg0.source.url, event.head_sha, token=token,
                                  username=getattr(cfg0.source, "username", None), cache_dir=ctx.cache())  # fmt: skip
        except SyncError as exc:
            log.error("preview fetch failed", extra={"error": str(exc)})
            results.append({**base, "status": "error", "configs": [c.name for c in allowed],
                            "errors": [exc.to_dict()]})  # fmt: skip
            return (502 if isinstance(exc, SourceError) else 500), _body(event, results, error=True)
        try:
            changed = source.changed_paths(event.base_sha) if event.base_sha else None
            report = run(list(allowed), source, apply=False, changed_paths=changed,
                         store_factory=ctx.store_factory)  # fmt: skip
        finally:
            source.close()
        data = report.to_dict()
        touched = sorted({c["owner"].split("/", 1)[0] for c in data["changes"] if c.get("owner")}
                         | {str(e["config"]) for e in data["errors"] if e.get("config")})  # fmt: skip
        names = [c.name for c in allowed if changed is None or c.name in touched]
        results.append({**base, "after": source.commit, "status": "planned", "configs": names,
                        "changed_paths": None if changed is None else len(changed), "report": data})  # fmt: skip
    return status, _body(event, results)


def _body(event: PullRequestEvent, results: list[dict[str, Any]], *, error: bool = False) -> dict[str, Any]:
    failed = any((r.get("report") or {}).get("outcome", "ok") != "ok" for r in results)
    label = "error" if error else "failed" if failed else "ok"
    if not results:
        label = "ignored"
    return {"status": label, "kind": "preview", "provider": event.provider, "number": event.number,
            "results": results}  # fmt: skip
