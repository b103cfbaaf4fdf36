"""`spec.statuses`: where a config's outcome is posted, and with which credentials.

::

    statuses:
      - provider: github            # github | gitlab | bitbucket | gitea (Forgejo too)
        repository: acme/configs    # default: the path of spec.sourceRef.url
        apiUrl: https://api.github.com   # default per provider (see API_DEFAULTS)
        app: {id: "123456", privateKeySecret: smf-github-app-key}   # GitHub App, or:
        tokenSecret: smf-status-token    # a token read from the config's secret store
        checks: true                # github: a check run (needs an App token); false: a commit status
        targetUrl: https://console.example.com/logs   # the "Details" link (Bitbucket needs one)
        pending: true               # gitlab/gitea/bitbucket: post "pending" before the sync

Credentials are names of secrets in the config's own secret store (as
``spec.webhook.secretRef``): a value never sits in the manifest or the environment.
Problems are returned as (field path, message) so `core.config` raises them with the file
and line of the field, like every other config error.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

PROVIDERS = ("github", "gitlab", "bitbucket", "gitea")
#: The public hosts' API roots; another host gets ``https://<host>`` + `API_PATHS`.
API_DEFAULTS = {
    "github.com": "https://api.github.com",
    "gitlab.com": "https://gitlab.com/api/v4",
    "bitbucket.org": "https://api.bitbucket.org/2.0",
}
#: Self-hosted API roots (GitHub Enterprise Server, GitLab, Gitea/Forgejo).
API_PATHS = {"github": "/api/v3", "gitlab": "/api/v4", "gitea": "/api/v1", "bitbucket": "/2.0"}
_REPO = re.compile(r"^[A-Za-z0-9_.~-]+(/[A-Za-z0-9_.~-]+)+$")


@dataclass(frozen=True)
class Target:
    """One place a config's outcome goes (validated at load)."""

    provider: str
    repository: str | None
    api_url: str | None
    token_secret: str | None = None
    app_id: str | None = None
    app_key_secret: str | None = None
    installation_id: int | None = None
    checks: bool = True
    target_url: str | None = None
    pending: bool = True

    def api(self, source_url: str | None) -> str:
        """The API root: `api_url`, else the default for the source's host."""
        if self.api_url:
            return self.api_url.rstrip("/")
        host = urllib.parse.urlsplit(source_url or "").hostname or ""
        if host in API_DEFAULTS:
            return API_DEFAULTS[host]
        return f"https://{host}{API_PATHS[self.provider]}"

    def repo(self, source_url: str | None) -> str:
        """``owner/name`` (GitLab: the project's full path): `repository`, else the source URL's path."""
        if self.repository:
            return self.repository.strip("/")
        return repo_from_url(source_url or "")


def repo_from_url(url: str) -> str:
    """``https://github.com/acme/configs.git`` → ``acme/configs``; ``git@host:a/b.git`` too."""
    if "://" not in url and ":" in url:  # scp-like ssh
        url = "ssh://" + url.replace(":", "/", 1)
    path = urllib.parse.urlsplit(url).path
    return path.strip("/").removesuffix(".git")


SCHEMA_FIELDS = ("provider", "repository", "apiUrl", "tokenSecret", "app", "checks", "targetUrl", "pending")


def load_targets(
    items: list[dict[str, Any]], source_url: str | None
) -> tuple[list[Target], list[tuple[str, str]]]:
    """Typed targets and the problems found, as (field path under spec.statuses, message)."""
    targets: list[Target] = []
    problems: list[tuple[str, str]] = []
    for i, item in enumerate(items):
        at = str(i)
        provider = item.get("provider")
        app = item.get("app") or {}
        token = item.get("tokenSecret")
        has_app = any(app.get(k) is not None for k in ("id", "privateKeySecret", "installationId"))
        if has_app and provider != "github":
            problems.append((f"{at}.app", "only a github status can authenticate as a GitHub App"))
        if has_app and token:
            problems.append((f"{at}.tokenSecret", "give either tokenSecret or app, not both"))
        if not has_app and not token:
            problems.append((f"{at}.tokenSecret", "is required (or, for github, app)"))
        if has_app:
            for key in ("id", "privateKeySecret"):
                if not app.get(key):
                    problems.append((f"{at}.app.{key}", "is required"))
        if item.get("checks") is False and provider != "github":
            problems.append((f"{at}.checks", "applies to github only"))
        repo = item.get("repository")
        if repo is not None and not _REPO.match(repo.strip("/")):
            problems.append((f"{at}.repository", "must be owner/name (GitLab: group/project)"))
        if repo is None and not (source_url and repo_from_url(source_url).count("/") >= 1):
            problems.append(
                (f"{at}.repository", "is required when spec.sourceRef.url has no owner/name path")
            )
        for key in ("apiUrl", "targetUrl"):
            url = item.get(key)
            if url is not None and urllib.parse.urlsplit(url).scheme not in ("https", "http"):
                problems.append((f"{at}.{key}", "must be an http(s) URL"))
        installation = app.get("installationId")
        targets.append(
            Target(
                provider=provider or "",
                repository=repo,
                api_url=item.get("apiUrl"),
                token_secret=token,
                app_id=None if app.get("id") is None else str(app["id"]),
                app_key_secret=app.get("privateKeySecret"),
                installation_id=int(installation) if installation is not None else None,
                checks=item.get("checks") is not False,
                target_url=item.get("targetUrl"),
                pending=item.get("pending") is not False,
            )
        )
    return targets, problems
