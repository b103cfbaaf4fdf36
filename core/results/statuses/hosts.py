"""GitLab, Bitbucket Cloud and Gitea/Forgejo: one commit status per config.

=========  ==========================================================  ==========================
host       request                                                      states
=========  ==========================================================  ==========================
GitLab     ``POST /projects/:id/statuses/:sha`` (``:id`` the URL-encoded  pending, success, failed
           project path) ``{state, name, description, target_url, ref}``
           with ``PRIVATE-TOKEN``
Bitbucket  ``POST /repositories/{workspace}/{repo}/commit/{sha}/statuses/  INPROGRESS, SUCCESSFUL,
           build`` ``{key, state, name, description, url, refname}``,       FAILED
           ``Authorization: Bearer`` (an access token) or Basic
           (``user:app-password`` in the secret)
Gitea      ``POST /repos/{owner}/{repo}/statuses/{sha}``                    pending, success, failure
           ``{state, context, description, target_url}``,
           ``Authorization: token``
=========  ==========================================================  ==========================

"neutral" (nothing to do) is posted as success: these hosts have no neutral state.
Bitbucket requires a ``url``: without ``targetUrl`` the commit's own page is linked.
"""

from __future__ import annotations

import base64
import hashlib
import urllib.parse
from typing import Any

from core.results.statuses import SecretReader, Status
from core.results.statuses.github import _read
from core.results.statuses.http import call
from core.results.statuses.targets import Target

GITLAB_STATES = {"pending": "pending", "success": "success", "neutral": "success", "failure": "failed"}
BITBUCKET_STATES = {
    "pending": "INPROGRESS",
    "success": "SUCCESSFUL",
    "neutral": "SUCCESSFUL",
    "failure": "FAILED",
}
GITEA_STATES = {"pending": "pending", "success": "success", "neutral": "success", "failure": "failure"}


def post(target: Target, config: Any, status: Status, read_secret: SecretReader) -> None:
    api = target.api(config.source.url)
    repo = target.repo(config.source.url)
    assert target.token_secret
    token = _read(read_secret, config, target.token_secret, "tokenSecret")
    branch = _branch(status.ref)
    if target.provider == "gitlab":
        body: dict[str, Any] = {"state": GITLAB_STATES[status.state], "name": status.name,
                                "description": status.description}  # fmt: skip
        if branch:
            body["ref"] = branch
        if target.target_url:
            body["target_url"] = target.target_url
        project = urllib.parse.quote(repo, safe="")
        call(
            "POST",
            f"{api}/projects/{project}/statuses/{status.sha}",
            headers={"PRIVATE-TOKEN": token},
            body=body,
        )
    elif target.provider == "bitbucket":
        body = {"key": bitbucket_key(status.name), "state": BITBUCKET_STATES[status.state], "name": status.name,
                "description": status.description,
                "url": target.target_url or f"https://bitbucket.org/{repo}/commits/{status.sha}"}  # fmt: skip
        if branch:
            body["refname"] = branch
        call("POST", f"{api}/repositories/{repo}/commit/{status.sha}/statuses/build",
             headers={"Authorization": _bitbucket_auth(token)}, body=body)  # fmt: skip
    elif target.provider == "gitea":
        body = {
            "state": GITEA_STATES[status.state],
            "context": status.name,
            "description": status.description,
        }
        if target.target_url:
            body["target_url"] = target.target_url
        call("POST", f"{api}/repos/{repo}/statuses/{status.sha}", headers={"Authorization": f"token {token}"},
             body=body)  # fmt: skip
    else:  # pragma: no cover - rejected at load
        raise ValueError(f"unknown status provider {target.provider!r}")


def bitbucket_key(name: str) -> str:
    """A stable key per status name, short enough for Bitbucket (a new key = a new status)."""
    return "smf-" + hashlib.sha256(name.encode()).hexdigest()[:16]


def _bitbucket_auth(token: str) -> str:
    if ":" in token:  # "user:app-password" (or "email:api-token"): HTTP Basic
        return "Basic " + base64.b64encode(token.encode()).decode("ascii")
    return f"Bearer {token}"


def _branch(ref: str | None) -> str | None:
    if ref and ref.startswith("refs/heads/"):
        return ref[len("refs/heads/") :]
    return ref or None
