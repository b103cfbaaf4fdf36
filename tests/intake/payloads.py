"""Signed webhook requests built from each host's documented headers and payload shapes.

Shapes follow the hosts' documentation: GitHub "Webhook events and payloads: push" and
"Validating webhook deliveries"; GitLab "Webhook events: Push events" (X-Gitlab-Token,
X-Gitlab-Event: Push Hook); Bitbucket Cloud "Event payloads: repo:push" (X-Event-Key,
X-Request-UUID, X-Hub-Signature sha256=); Gitea "Webhooks" (X-Gitea-Event, X-Gitea-Delivery,
X-Gitea-Signature hex, also X-GitHub-* compatibility headers).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

ZERO = "0" * 40


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _commit(sha: str, added=(), removed=(), modified=()) -> dict[str, Any]:
    return {
        "id": sha,
        "message": "update",
        "timestamp": "2024-03-13T13:52:11-04:00",
        "author": {"name": "Dev", "email": "dev@example.com"},
        "added": list(added),
        "removed": list(removed),
        "modified": list(modified),
        "distinct": True,
    }


def github_push(
    url: str,
    *,
    ref: str = "refs/heads/main",
    before: str,
    after: str,
    modified=(),
    added=(),
    removed=(),
    commits: list[dict[str, Any]] | None = None,
    forced: bool = False,
    created: bool | None = None,
    deleted: bool | None = None,
    secret: str,
    delivery: str | None = None,
    event: str = "push",
) -> tuple[dict[str, str], bytes]:
    name = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    if commits is None:
        commits = [] if after == ZERO else [_commit(after, added, removed, modified)]
    payload = {
        "ref": ref,
        "before": before,
        "after": after,
        "created": before == ZERO if created is None else created,
        "deleted": after == ZERO if deleted is None else deleted,
        "forced": forced,
        "base_ref": None,
        "compare": f"https://github.com/acme/{name}/compare/{before[:12]}...{after[:12]}",
        "commits": commits,
        "head_commit": commits[-1] if commits else None,
        "repository": {
            "id": 1296269,
            "name": name,
            "full_name": f"acme/{name}",
            "html_url": f"https://github.com/acme/{name}",
            "clone_url": url,
            "git_url": f"git://github.com/acme/{name}.git",
            "ssh_url": f"git@github.com:acme/{name}.git",
            "default_branch": "main",
        },
        "pusher": {"name": "dev", "email": "dev@example.com"},
        "sender": {"login": "dev", "id": 1},
    }
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/044aadd",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "292430182",
        "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": "sha256=" + sign(secret, body),
    }
    return headers, body


def gitlab_push(
    url: str,
    *,
    ref: str = "refs/heads/main",
    before: str,
    after: str,
    modified=(),
    commits: list[dict[str, Any]] | None = None,
    total: int | None = None,
    secret: str,
    tag: bool = False,
) -> tuple[dict[str, str], bytes]:
    if commits is None:
        commits = [] if after == ZERO else [_commit(after, modified=modified)]
    payload = {
        "object_kind": "tag_push" if tag else "push",
        "event_name": "tag_push" if tag else "push",
        "before": before,
        "after": after,
        "ref": ref,
        "ref_protected": True,
        "checkout_sha": None if after == ZERO else after,
        "user_id": 4,
        "user_name": "John Smith",
        "project_id": 15,
        "project": {
            "id": 15,
            "name": "Diaspora",
            "web_url": "http://example.com/mike/diaspora",
            "git_ssh_url": "git@example.com:mike/diaspora.git",
            "git_http_url": url,
            "path_with_namespace": "mike/diaspora",
            "default_branch": "main",
        },
        "commits": commits,
        "total_commits_count": len(commits) if total is None else total,
        "repository": {
            "name": "Diaspora",
            "url": "git@example.com:mike/diaspora.git",
            "homepage": "http://example.com/mike/diaspora",
            "git_http_url": url,
            "git_ssh_url": "git@example.com:mike/diaspora.git",
        },
    }
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitLab/17.0.0",
        "X-Gitlab-Event": "Tag Push Hook" if tag else "Push Hook",
        "X-Gitlab-Token": secret,
        "X-Gitlab-Event-UUID": str(uuid.uuid4()),
        "X-Gitlab-Instance": "https://gitlab.example.com",
    }
    return headers, body


def bitbucket_push(
    full_name: str,
    *,
    branch: str = "main",
    before: str | None,
    after: str | None,
    forced: bool = False,
    secret: str,
    extra_changes: list[dict[str, Any]] | None = None,
    html: str | None = None,
) -> tuple[dict[str, str], bytes]:
    def side(sha: str | None) -> dict[str, Any] | None:
        if sha is None:
            return None
        return {"type": "branch", "name": branch, "target": {"type": "commit", "hash": sha}}

    change = {
        "new": side(after),
        "old": side(before),
        "created": before is None,
        "closed": after is None,
        "forced": forced,
        "truncated": False,
        "commits": [{"type": "commit", "hash": after}] if after else [],
    }
    payload = {
        "actor": {"type": "user", "display_name": "Dev"},
        "repository": {
            "type": "repository",
            "full_name": full_name,
            "name": full_name.split("/")[-1],
            "links": {"html": {"href": html or f"https://bitbucket.org/{full_name}"}},
            "scm": "git",
        },
        "push": {"changes": [change, *(extra_changes or [])]},
    }
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Bitbucket-Webhooks/2.0",
        "X-Event-Key": "repo:push",
        "X-Hook-UUID": str(uuid.uuid4()),
        "X-Request-UUID": str(uuid.uuid4()),
        "X-Attempt-Number": "1",
        "X-Hub-Signature": "sha256=" + sign(secret, body),
    }
    return headers, body


def gitea_push(
    url: str,
    *,
    ref: str = "refs/heads/main",
    before: str,
    after: str,
    modified=(),
    secret: str,
    total: int | None = None,
    forgejo: bool = False,
) -> tuple[dict[str, str], bytes]:
    commits = [_commit(after, modified=modified)]
    payload = {
        "ref": ref,
        "before": before,
        "after": after,
        "compare_url": "http://localhost:3000/gitea/webhooks/compare/a...b",
        "commits": commits,
        "total_commits": len(commits) if total is None else total,
        "head_commit": commits[-1],
        "repository": {
            "id": 140,
            "name": "webhooks",
            "full_name": "gitea/webhooks",
            "html_url": "http://localhost:3000/gitea/webhooks",
            "ssh_url": "ssh://gitea@localhost:2222/gitea/webhooks.git",
            "clone_url": url,
            "default_branch": "main",
        },
        "pusher": {"login": "gitea"},
        "sender": {"login": "gitea"},
    }
    body = json.dumps(payload).encode()
    delivery = str(uuid.uuid4())
    sig = sign(secret, body)
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Event": "push",
        "X-Gogs-Delivery": delivery,
        "X-Gogs-Event": "push",
        "X-Gitea-Delivery": delivery,
        "X-Gitea-Event": "push",
        "X-Gitea-Signature": sig,
        "X-Gogs-Signature": sig,
        "X-Hub-Signature-256": "sha256=" + sig,
    }
    if forgejo:
        for k in ("Delivery", "Event", "Signature"):
            headers[f"X-Forgejo-{k}"] = headers[f"X-Gitea-{k}"]
    return headers, body


def generic_push(
    url: str,
    *,
    ref: str = "refs/heads/main",
    before: str,
    after: str,
    changed: list[str] | None = None,
    secret: str,
    delivery: str | None = None,
) -> tuple[dict[str, str], bytes]:
    payload: dict[str, Any] = {"repository": url, "ref": ref, "before": before, "after": after}
    if changed is not None:
        payload["changed_paths"] = changed
    body = json.dumps(payload).encode()
    return {
        "Content-Type": "application/json",
        "X-Event": "push",
        "X-Delivery-Id": delivery or str(uuid.uuid4()),
        "X-Signature-256": "sha256=" + sign(secret, body),
    }, body
