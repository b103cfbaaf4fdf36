"""Verify and parse push webhooks from GitHub, GitLab, Bitbucket Cloud, Gitea/Forgejo, or a
generic HMAC sender, reducing a push to one `PushEvent`.

Order of checks, so that nothing is parsed or fetched for a request we do not trust:
size (413) → provider and signature headers present (401) → signature/token matches the
configured secret in constant time (403) → body decodes as JSON (400) → event type
(ping → 200 ignored; other events → 202 ignored) → push fields (400 if malformed).

Signatures (the secret comes from configuration or the cloud's secret store, never from the
request):

=============  ===========================================  ==================================
provider       header                                       value
=============  ===========================================  ==================================
github         ``X-Hub-Signature-256``                      ``sha256=`` + HMAC-SHA256(body) hex
gitea/forgejo  ``X-Gitea-Signature`` / ``X-Forgejo-Signature``  HMAC-SHA256(body) hex; or
               or ``X-Hub-Signature-256``                   ``sha256=…`` as GitHub
bitbucket      ``X-Hub-Signature``                          ``sha256=`` + HMAC-SHA256(body) hex
gitlab         ``X-Gitlab-Token``                           the secret itself (compared in
                                                            constant time)
generic        ``X-Signature-256`` (or ``X-Hub-Signature-256``)  ``sha256=`` + HMAC hex
=============  ===========================================  ==================================

Pull/merge request events (``verify_and_parse(..., pull_requests=True)``, which the intake asks
for when a config wants previews) are verified the same way and reduced to a
`core.pull_requests.PullRequestEvent`; without it they are ignored as before.

Changed paths: GitHub, GitLab and Gitea list added/removed/modified files per commit; the
lists are used only when complete. GitHub and GitLab cap ``commits`` at 20 (GitLab and Gitea
report the real total), so a push with more commits is marked ``truncated``; a forced push,
a new branch or an empty list for a moving ref yield ``changed_paths=None``. Bitbucket Cloud
sends no file lists. Whenever the lists are missing or incomplete the intake computes a tree
diff of before..after instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from core.errors import WebhookError
from core.git_url import ZERO_SHA, normalize_repo_url

if TYPE_CHECKING:
    from core.pull_requests import PullRequestEvent

PROVIDERS = ("github", "gitlab", "bitbucket", "gitea", "generic")
DEFAULT_MAX_BODY = 8 * 1024 * 1024
#: GitHub and GitLab put at most this many commits in a push payload.
COMMIT_CAP = 20
#: A per-commit file list at least this long is treated as possibly capped.
FILES_CAP = 3000
_SHA = re.compile(r"^[0-9a-fA-F]{40}$")

#: Headers verification and parsing read: what a handler keeps when it hands a verified
#: delivery to a queue, so the worker can verify and parse it again (lower-case).
_DELIVERY_HEADERS = ("content-type", "user-agent")
_DELIVERY_HEADER_PREFIXES = ("x-github-", "x-hub-", "x-gitlab-", "x-gitea-", "x-forgejo-", "x-gogs-",
                             "x-event", "x-request-", "x-hook-", "x-signature", "x-delivery",
                             "x-bitbucket-")  # fmt: skip


def delivery_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers a queued delivery must carry to be verified and parsed again."""
    return {k: v for k, v in headers.items()
            if k.lower() in _DELIVERY_HEADERS or k.lower().startswith(_DELIVERY_HEADER_PREFIXES)}  # fmt: skip


@dataclass(frozen=True)
class Rejected:
    """The request is refused; answer with `status` and nothing else happens."""

    status: int
    reason: str
    provider: str | None = None
    accepted = False


@dataclass(frozen=True)
class Ignored:
    """A trusted request that needs no work (ping, other events, tags, branch deletion)."""

    status: int
    reason: str
    provider: str | None = None
    event: str | None = None
    delivery_id: str | None = None
    accepted = True


@dataclass
class PushEvent:
    """One pushed ref, as every host's payload is reduced to."""

    provider: str
    repo_urls: list[str]
    ref: str
    branch: str | None
    before: str
    after: str
    changed_paths: set[str] | None
    truncated: bool = False
    delivery_id: str | None = None
    deleted: bool = False
    #: True/False when the host says so (GitHub, Bitbucket, generic); None when unknown.
    forced: bool | None = None
    created: bool = False
    tag: str | None = None
    default_branch: str | None = None
    #: Further refs updated by the same delivery (Bitbucket sends several in one payload).
    more: list[PushEvent] = field(default_factory=list)
    accepted = True
    status = 202

    @property
    def paths_reliable(self) -> bool:
        """Whether `changed_paths` from the payload may be used instead of a tree diff."""
        return (
            self.changed_paths is not None
            and not self.truncated
            and self.forced is False
            and not self.created
        )

    def to_message(self) -> dict[str, Any]:
        """Every field, JSON-able: what a queue message carries (`from_message` reads it)."""
        return {
            "provider": self.provider, "repo_urls": list(self.repo_urls), "ref": self.ref,
            "branch": self.branch, "before": self.before, "after": self.after,
            "changed_paths": None if self.changed_paths is None else sorted(self.changed_paths),
            "truncated": self.truncated, "delivery_id": self.delivery_id, "deleted": self.deleted,
            "forced": self.forced, "created": self.created, "tag": self.tag,
            "default_branch": self.default_branch, "more": [e.to_message() for e in self.more],
        }  # fmt: skip

    @classmethod
    def from_message(cls, data: Any) -> PushEvent:
        """The event `to_message` wrote; a field of the wrong type is a `WebhookError`."""
        if not isinstance(data, dict):
            raise WebhookError("queued event is not an object", status=400)

        def text(name: str, *, optional: bool = False) -> Any:
            value = data.get(name)
            if (value is None and optional) or isinstance(value, str):
                return value
            raise WebhookError(f"queued event field {name} is not a string", status=400)

        urls, paths, more = data.get("repo_urls"), data.get("changed_paths"), data.get("more") or []
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise WebhookError("queued event field repo_urls is not a list of URLs", status=400)
        if paths is not None and (not isinstance(paths, list) or not all(isinstance(p, str) for p in paths)):
            raise WebhookError("queued event field changed_paths is not a list of paths", status=400)
        if not isinstance(more, list):
            raise WebhookError("queued event field more is not a list", status=400)
        forced = data.get("forced")
        return cls(
            provider=text("provider"), repo_urls=list(urls), ref=_ref(data.get("ref")),
            branch=text("branch", optional=True), before=_sha(data.get("before"), "before"),
            after=_sha(data.get("after"), "after"), changed_paths=None if paths is None else set(paths),
            truncated=bool(data.get("truncated")), delivery_id=text("delivery_id", optional=True),
            deleted=bool(data.get("deleted")), forced=forced if isinstance(forced, bool) else None,
            created=bool(data.get("created")), tag=text("tag", optional=True),
            default_branch=text("default_branch", optional=True),
            more=[cls.from_message(m) for m in more],
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "ref": self.ref,
            "branch": self.branch,
            "tag": self.tag,
            "before": self.before,
            "after": self.after,
            "delivery_id": self.delivery_id,
            "forced": self.forced,
            "created": self.created,
            "truncated": self.truncated,
            "changed_paths": None if self.changed_paths is None else len(self.changed_paths),
        }


WebhookOutcome = Rejected | Ignored | PushEvent


# --- headers ---------------------------------------------------------------------------
class _Headers:
    def __init__(self, headers: Mapping[str, str] | Iterable[tuple[str, str]]):
        items = headers.items() if isinstance(headers, Mapping) else headers
        self._h: dict[str, str] = {}
        for k, v in items:
            self._h[str(k).lower()] = v if isinstance(v, str) else str(v)

    def get(self, *names: str) -> str | None:
        for name in names:
            value = self._h.get(name.lower())
            if value is not None and value != "":
                return value.strip()
        return None


def detect_provider(headers: Mapping[str, str]) -> str:
    h = _Headers(headers)
    if h.get("X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event"):
        return "gitea"
    if h.get("X-Gitlab-Event"):
        return "gitlab"
    if h.get("X-Event-Key") and h.get("X-Request-UUID", "X-Hook-UUID"):
        return "bitbucket"
    if h.get("X-GitHub-Event"):
        return "github"
    return "generic"


def _hmac_hex(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _check_prefixed(value: str, secret: bytes, body: bytes) -> bool:
    algo, sep, digest = value.partition("=")
    if not sep or algo.strip().lower() != "sha256":
        return False
    return hmac.compare_digest(digest.strip().lower().encode(), _hmac_hex(secret, body).encode())


def _check_plain_hex(value: str, secret: bytes, body: bytes) -> bool:
    return hmac.compare_digest(value.strip().lower().encode(), _hmac_hex(secret, body).encode())


def _verify(provider: str, h: _Headers, body: bytes, secret: bytes) -> Rejected | None:
    """None when the request is authentic; else the rejection."""
    if provider == "gitlab":
        token = h.get("X-Gitlab-Token")
        if token is None:
            return Rejected(401, "missing X-Gitlab-Token header", provider)
        if not hmac.compare_digest(token.encode(), secret):
            return Rejected(403, "X-Gitlab-Token does not match", provider)
        return None
    checks: list[tuple[str, Any]]
    if provider == "github":
        checks = [("X-Hub-Signature-256", _check_prefixed)]
    elif provider == "gitea":
        checks = [
            ("X-Gitea-Signature", _check_plain_hex),
            ("X-Forgejo-Signature", _check_plain_hex),
            ("X-Gogs-Signature", _check_plain_hex),
            ("X-Hub-Signature-256", _check_prefixed),
        ]
    elif provider == "bitbucket":
        checks = [("X-Hub-Signature", _check_prefixed)]
    else:
        checks = [
            ("X-Signature-256", _check_prefixed),
            ("X-Hub-Signature-256", _check_prefixed),
        ]
    present = [(name, fn, h.get(name)) for name, fn in checks if h.get(name) is not None]
    if not present:
        return Rejected(401, f"missing signature header {checks[0][0]}", provider)
    # Every signature header that is present must match (no downgrade by adding a bad one).
    for name, fn, value in present:
        if not fn(value, secret, body):
            return Rejected(403, f"{name} does not match the body", provider)
    return None


# --- entry point -----------------------------------------------------------------------
def verify_and_parse(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str | bytes,
    provider: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    tags: bool = False,
    pull_requests: bool = False,
) -> WebhookOutcome | PullRequestEvent:
    """Authenticate one webhook request and reduce it to a rejection, an ignored event or a
    `PushEvent`. `provider` None detects it from the headers; `tags` True turns tag pushes
    into `PushEvent`s (with `tag` set) instead of ignoring them; `pull_requests` True turns
    pull/merge request events into `core.pull_requests.PullRequestEvent`s (previews)."""
    h = _Headers(headers)
    if provider is not None and provider not in PROVIDERS:
        raise ValueError(f"unknown webhook provider {provider!r}; expected one of {PROVIDERS}")
    prov = provider or detect_provider(headers)
    if isinstance(secret, str):
        secret = secret.encode()
    if not secret:
        return Rejected(500, "webhook secret is not configured", prov)
    if not isinstance(body, bytes | bytearray | memoryview):
        return Rejected(400, "request body is not bytes", prov)
    body = bytes(body)
    if len(body) > max_body:
        return Rejected(413, f"request body larger than {max_body} bytes", prov)
    declared = h.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) != len(body):
        return Rejected(400, "request body is truncated (Content-Length mismatch)", prov)
    rejected = _verify(prov, h, body, secret)
    if rejected is not None:
        return rejected
    try:
        payload = _decode(body, h.get("Content-Type") or "")
    except ValueError as exc:
        return Rejected(400, f"malformed payload: {exc}", prov)
    try:
        if pull_requests:
            pr = _parse_pull_request(prov, h, payload)
            if pr is not None:
                return pr
        return _PARSERS[prov](h, payload, tags)
    except WebhookError as exc:
        return Rejected(exc.status, f"malformed push payload: {exc.message}", prov)
    except (TypeError, AttributeError, KeyError, ValueError, RecursionError) as exc:
        # A signed payload of an unexpected shape: the documented 400, never a traceback.
        return Rejected(400, f"malformed push payload ({type(exc).__name__})", prov)


def _decode(body: bytes, content_type: str) -> dict[str, Any]:
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(body.decode("utf-8", "strict"), strict_parsing=False)
        except UnicodeDecodeError:
            raise ValueError("form body is not UTF-8") from None
        if "payload" not in form:
            raise ValueError("form body without a payload field")
        body = form["payload"][0].encode()
    try:
        data = json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON ({type(exc).__name__} at byte {getattr(exc, 'pos', 0)})") from None
    except ValueError:  # e.g. an integer longer than Python's int-string limit
        raise ValueError("not JSON (a number out of range)") from None
    if not isinstance(data, dict):
        raise ValueError("JSON body is not an object")
    return data


# --- payload helpers -------------------------------------------------------------------
def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _sha(value: Any, name: str, *, allow_null: bool = False) -> str:
    if value is None and allow_null:
        return ZERO_SHA
    if not isinstance(value, str) or not _SHA.match(value):
        raise WebhookError(f"{name} is not a 40-hex commit id", status=400)
    return value.lower()


def _ref(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("refs/"):
        raise WebhookError("ref is missing or not a full ref name", status=400)
    return value


def _paths_from_commits(commits: Any) -> tuple[set[str] | None, bool]:
    """Union of added/removed/modified; (None, False) when the commits carry no lists."""
    if not isinstance(commits, list):
        return None, False
    out: set[str] = set()
    capped = False
    for commit in commits:
        if not isinstance(commit, dict):
            return None, False
        lists = [commit.get(k) for k in ("added", "removed", "modified")]
        if all(v is None for v in lists):
            return None, False
        for paths in lists:
            if paths is None:
                continue
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                raise WebhookError("commit file lists are not lists of paths", status=400)
            capped |= len(paths) >= FILES_CAP
            out.update(p.lstrip("/") for p in paths)
    return out, capped


def _field(obj: Any, name: str) -> Any:
    """``obj[name]`` when `obj` is an object, else None (the caller rejects a missing field)."""
    return obj.get(name) if isinstance(obj, dict) else None


def _urls(*values: Any) -> list[str]:
    out: list[str] = []
    for v in values:
        if isinstance(v, str) and v and v not in out:
            out.append(v)
    return out


def _finish(event: PushEvent, tags: bool, what: str) -> WebhookOutcome:
    if event.deleted or event.after == ZERO_SHA:
        return Ignored(200, f"{what} deleted: nothing to sync", event.provider, "push",
                       event.delivery_id)  # fmt: skip
    if event.tag is not None and not tags:
        return Ignored(202, f"tag push {event.tag} ignored", event.provider, "push",
                       event.delivery_id)  # fmt: skip
    if event.branch is None and event.tag is None:
        return Ignored(202, f"push to {event.ref} ignored (not a branch or tag)",
                       event.provider, "push", event.delivery_id)  # fmt: skip
    return event


def _split_ref(ref: str) -> tuple[str | None, str | None]:
    if ref.startswith("refs/heads/"):
        return ref[len("refs/heads/") :], None
    if ref.startswith("refs/tags/"):
        return None, ref[len("refs/tags/") :]
    return None, None


# --- GitHub and Gitea/Forgejo (same payload shape) ------------------------------------
def _parse_github_like(h: _Headers, p: dict[str, Any], tags: bool, prov: str) -> WebhookOutcome:
    if prov == "gitea":
        event = h.get("X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event", "X-GitHub-Event")
        delivery = h.get("X-Gitea-Delivery", "X-Forgejo-Delivery", "X-Gogs-Delivery",
                         "X-GitHub-Delivery")  # fmt: skip
    else:
        event = h.get("X-GitHub-Event")
        delivery = h.get("X-GitHub-Delivery")
    if event is None:
        return Rejected(400, "missing event header", prov)
    if event == "ping":
        return Ignored(200, "ping", prov, event, delivery)
    if event != "push":
        return Ignored(202, f"event {event} ignored", prov, event, delivery)
    ref = _ref(p.get("ref"))
    before = _sha(p.get("before"), "before")
    after = _sha(p.get("after"), "after")
    repo = p.get("repository")
    if not isinstance(repo, dict):
        raise WebhookError("repository is missing", status=400)
    urls = _urls(repo.get("clone_url"), repo.get("html_url"), repo.get("ssh_url"),
                 repo.get("git_url"), repo.get("url"))  # fmt: skip
    if not urls:
        raise WebhookError("repository has no URL", status=400)
    commits = p.get("commits")
    paths, capped = _paths_from_commits(commits)
    total = p.get("total_commits")  # Gitea reports the real count
    n = len(commits) if isinstance(commits, list) else 0
    truncated = capped or (isinstance(total, int) and total > n)
    if prov == "github" and n >= COMMIT_CAP:
        truncated = True
    created = bool(p.get("created")) or before == ZERO_SHA
    deleted = bool(p.get("deleted")) or after == ZERO_SHA
    forced = p.get("forced") if isinstance(p.get("forced"), bool) else None
    if before != after and n == 0:
        paths = None  # a moved ref with no listed commits (e.g. reset to an older commit)
    branch, tag = _split_ref(ref)
    default_branch = _str(repo.get("default_branch")) or _str(repo.get("master_branch"))
    ev = PushEvent(prov, urls, ref, branch, before, after, paths, truncated, delivery,
                   deleted, forced, created, tag, default_branch)  # fmt: skip
    return _finish(ev, tags, f"branch {branch or ref}")


def _parse_github(h: _Headers, p: dict[str, Any], tags: bool) -> WebhookOutcome:
    return _parse_github_like(h, p, tags, "github")


def _parse_gitea(h: _Headers, p: dict[str, Any], tags: bool) -> WebhookOutcome:
    return _parse_github_like(h, p, tags, "gitea")


# --- GitLab ----------------------------------------------------------------------------
def _parse_gitlab(h: _Headers, p: dict[str, Any], tags: bool) -> WebhookOutcome:
    event = h.get("X-Gitlab-Event") or ""
    delivery = h.get("Idempotency-Key", "X-Gitlab-Event-UUID")
    kind = p.get("object_kind") or p.get("event_name")
    if event not in ("Push Hook", "Tag Push Hook", "System Hook") or kind not in (
        "push",
        "tag_push",
    ):
        return Ignored(202, f"event {event or kind} ignored", "gitlab", event, delivery)
    ref = _ref(p.get("ref"))
    before = _sha(p.get("before"), "before")
    after = _sha(p.get("after"), "after")
    project = p.get("project") if isinstance(p.get("project"), dict) else {}
    repo = p.get("repository") if isinstance(p.get("repository"), dict) else {}
    urls = _urls(project.get("git_http_url"), project.get("http_url"), project.get("web_url"),
                 project.get("git_ssh_url"), project.get("ssh_url"), repo.get("git_http_url"),
                 repo.get("homepage"), repo.get("git_ssh_url"), repo.get("url"))  # fmt: skip
    if not urls:
        raise WebhookError("project has no URL", status=400)
    commits = p.get("commits")
    paths, capped = _paths_from_commits(commits)
    n = len(commits) if isinstance(commits, list) else 0
    total = p.get("total_commits_count")
    truncated = capped or (isinstance(total, int) and total > n) or n >= COMMIT_CAP
    if before != after and n == 0:
        paths = None
    branch, tag = _split_ref(ref)
    ev = PushEvent("gitlab", urls, ref, branch, before, after, paths, truncated, delivery,
                   after == ZERO_SHA, None, before == ZERO_SHA, tag,
                   _str(project.get("default_branch")))  # fmt: skip
    return _finish(ev, tags, f"branch {branch or ref}")


# --- Bitbucket Cloud -------------------------------------------------------------------
def _parse_bitbucket(h: _Headers, p: dict[str, Any], tags: bool) -> WebhookOutcome:
    event = h.get("X-Event-Key") or ""
    delivery = h.get("X-Request-UUID")
    if event != "repo:push":
        status = 200 if "ping" in event else 202
        return Ignored(status, f"event {event} ignored", "bitbucket", event, delivery)
    repo = p.get("repository")
    push = p.get("push")
    if not isinstance(repo, dict) or not isinstance(push, dict):
        raise WebhookError("repository or push is missing", status=400)
    links = repo.get("links") if isinstance(repo.get("links"), dict) else {}
    html = links.get("html", {}).get("href") if isinstance(links.get("html"), dict) else None
    full_name = _str(repo.get("full_name"))
    urls = _urls(html, f"https://bitbucket.org/{full_name}.git" if full_name else None)
    if not urls:
        raise WebhookError("repository has no URL", status=400)
    changes = push.get("changes")
    if not isinstance(changes, list) or not changes:
        raise WebhookError("push.changes is empty", status=400)
    events: list[PushEvent] = []
    skipped: list[str] = []
    for change in changes:
        if not isinstance(change, dict):
            raise WebhookError("push.changes holds a non-object", status=400)
        new, old = change.get("new"), change.get("old")
        side = new if isinstance(new, dict) else old if isinstance(old, dict) else None
        if side is None:
            raise WebhookError("a change has neither new nor old", status=400)
        kind, name = side.get("type"), _str(side.get("name"))
        if name is None or kind not in ("branch", "tag", "named_branch"):
            raise WebhookError("a change has no branch or tag name", status=400)
        ref = f"refs/tags/{name}" if kind == "tag" else f"refs/heads/{name}"
        after = ZERO_SHA
        if isinstance(new, dict):
            after = _sha(_field(new.get("target"), "hash"), "new.target.hash")
        before = ZERO_SHA
        if isinstance(old, dict):
            before = _sha(_field(old.get("target"), "hash"), "old.target.hash")
        branch, tag = _split_ref(ref)
        ev = PushEvent("bitbucket", urls, ref, branch, before, after, None,
                       bool(change.get("truncated")), delivery,
                       bool(change.get("closed")) or new is None,
                       bool(change.get("forced")), bool(change.get("created")) or old is None,
                       tag)  # fmt: skip
        out = _finish(ev, tags, f"branch {name}")
        if isinstance(out, PushEvent):
            events.append(out)
        else:
            skipped.append(out.reason)
    if not events:
        return Ignored(200, "; ".join(skipped), "bitbucket", event, delivery)
    first = events[0]
    first.more = events[1:]
    return first


# --- generic ---------------------------------------------------------------------------
def _parse_generic(h: _Headers, p: dict[str, Any], tags: bool) -> WebhookOutcome:
    """``{"repository": url | {"url": ...}, "ref", "before", "after",
    "changed_paths": [...]?, "forced": bool?}``; event in ``X-Event`` (push | ping)."""
    event = h.get("X-Event") or _str(p.get("event")) or "push"
    delivery = h.get("X-Delivery-Id", "X-Request-Id") or _str(p.get("delivery_id"))
    if event == "ping":
        return Ignored(200, "ping", "generic", event, delivery)
    if event != "push":
        return Ignored(202, f"event {event} ignored", "generic", event, delivery)
    repo = p.get("repository")
    urls = _urls(repo) if isinstance(repo, str) else []
    if isinstance(repo, dict):
        extra = repo.get("urls")
        urls = _urls(repo.get("url"), repo.get("clone_url"), *(extra if isinstance(extra, list) else ()))
    if not urls:
        raise WebhookError("repository URL is missing", status=400)
    ref = _ref(p.get("ref"))
    before = _sha(p.get("before"), "before", allow_null=True)
    after = _sha(p.get("after"), "after")
    listed = p.get("changed_paths")
    paths: set[str] | None = None
    if listed is not None:
        if not isinstance(listed, list) or not all(isinstance(x, str) for x in listed):
            raise WebhookError("changed_paths is not a list of paths", status=400)
        paths = {x.lstrip("/") for x in listed}
    forced = p.get("forced") if isinstance(p.get("forced"), bool) else False
    branch, tag = _split_ref(ref)
    ev = PushEvent("generic", urls, ref, branch, before, after, paths,
                   bool(p.get("truncated")), delivery, after == ZERO_SHA, forced,
                   before == ZERO_SHA, tag)  # fmt: skip
    return _finish(ev, tags, f"branch {branch or ref}")


def _parse_pull_request(prov: str, h: _Headers, p: dict[str, Any]) -> PullRequestEvent | Ignored | None:
    """A pull/merge request event (core.pull_requests), or None when the event is another kind."""
    from core import pull_requests as prs

    if prov == "github" and h.get("X-GitHub-Event") == "pull_request":
        event, delivery = "pull_request", h.get("X-GitHub-Delivery")
        out = prs.parse_github_like("github", p, delivery)
    elif prov == "gitea" and h.get("X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event", "X-GitHub-Event") in (
        "pull_request", "pull_request_sync"):  # fmt: skip
        event = "pull_request"
        delivery = h.get("X-Gitea-Delivery", "X-Forgejo-Delivery", "X-Gogs-Delivery", "X-GitHub-Delivery")
        out = prs.parse_github_like("gitea", p, delivery)
    elif prov == "gitlab" and h.get("X-Gitlab-Event") == "Merge Request Hook":
        event, delivery = "Merge Request Hook", h.get("Idempotency-Key", "X-Gitlab-Event-UUID")
        out = prs.parse_gitlab(p, delivery)
    elif prov == "bitbucket" and (h.get("X-Event-Key") or "").startswith("pullrequest:"):
        event, delivery = h.get("X-Event-Key") or "", h.get("X-Request-UUID")
        out = prs.parse_bitbucket(event, p, delivery)
    else:
        return None
    if isinstance(out, str):
        return Ignored(202, out, prov, event, delivery)
    return out


_PARSERS = {
    "github": _parse_github,
    "gitea": _parse_gitea,
    "gitlab": _parse_gitlab,
    "bitbucket": _parse_bitbucket,
    "generic": _parse_generic,
}


# --- matching configs to a push --------------------------------------------------------
def _source_of(cfg: Any) -> Any:
    return getattr(cfg, "source", None) or getattr(getattr(cfg, "spec", None), "source_ref", None)


def configs_for_push(configs: Sequence[Any], event: PushEvent) -> list[Any]:
    """The configs whose ``source.url`` is the pushed repository and whose ``source.branch``
    is the pushed branch (tags only for configs with ``source.tags``). Deletions match none."""
    if event.deleted or event.after == ZERO_SHA:
        return []
    wanted = {normalize_repo_url(u) for u in event.repo_urls}
    out = []
    for cfg in configs:
        src = _source_of(cfg)
        url = getattr(src, "url", None) if src is not None else None
        if not url or normalize_repo_url(url) not in wanted:
            continue
        if event.tag is not None:
            if getattr(src, "tags", False):
                out.append(cfg)
            continue
        branch = getattr(src, "branch", None) or event.default_branch or "main"
        branch = branch.removeprefix("refs/heads/")
        if branch == event.branch:
            out.append(cfg)
    return out
