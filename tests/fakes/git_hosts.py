"""A loopback fake of the Git hosts' status APIs, checked against their documentation:

- GitHub REST "Check runs" (``POST /repos/{owner}/{repo}/check-runs``: ``name`` and
  ``head_sha`` required, ``conclusion`` required when ``status`` is ``completed``, ``output``
  needs ``title`` and ``summary``, at most 50 ``annotations`` per request, each with ``path``,
  ``start_line``, ``end_line``, ``annotation_level`` notice|warning|failure and ``message``;
  ``PATCH .../check-runs/{id}`` appends annotations), "Commit statuses"
  (``POST /repos/{owner}/{repo}/statuses/{sha}``, state error|failure|pending|success), and the
  App flow ("Generating a JWT for a GitHub App": RS256, ``iat``/``exp`` at most 10 minutes
  apart, ``iss`` the App id; ``GET /repos/{owner}/{repo}/installation`` and
  ``POST /app/installations/{id}/access_tokens`` take the JWT, the latter answers 201
  ``{"token", "expires_at"}``). The JWT is verified against the App's public key.
- GitLab "Commits API: set the pipeline status of a commit"
  (``POST /projects/:id/statuses/:sha``, state pending|running|success|failed|canceled,
  ``PRIVATE-TOKEN``).
- Bitbucket Cloud "Commit statuses: create a build status"
  (``POST /2.0/repositories/{workspace}/{repo_slug}/commit/{commit}/statuses/build``; ``key``,
  ``state`` INPROGRESS|SUCCESSFUL|FAILED|STOPPED and ``url`` required).
- Gitea/Forgejo "CreateStatusOption" (``POST /api/v1/repos/{owner}/{repo}/statuses/{sha}``,
  state pending|success|error|failure|warning, ``Authorization: token``).

Each host lives under a prefix of one server (``/github``, ``/gitlab/api/v4``,
``/bitbucket/2.0``, ``/gitea/api/v1``). Every request is recorded (method, path, headers,
JSON body). ``fail(n, status)`` answers the next n requests with that status; ``hang()`` holds
requests until ``release()`` (to test a host that times out).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

from tests.fakes._loopback import base_url, start_server, stop_server

PREFIXES = {
    "github": "/github",
    "gitlab": "/gitlab/api/v4",
    "bitbucket": "/bitbucket/2.0",
    "gitea": "/gitea/api/v1",
}
SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class Request:
    method: str
    host: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes


@dataclass
class CheckRun:
    id: int
    repo: str
    body: dict[str, Any]
    annotations: list[dict[str, Any]] = field(default_factory=list)


class GitHostsFake:
    """Start with `start()`; `url(provider)` is the API root to configure."""

    def __init__(self, *, tokens: dict[str, str] | None = None) -> None:
        #: provider → the token it accepts (GitHub: also every issued installation token).
        self.tokens = dict(tokens or {})
        self.requests: list[Request] = []
        self.check_runs: dict[int, CheckRun] = {}
        self.statuses: list[tuple[str, str, dict[str, Any]]] = []  # (provider, sha, body)
        self.app_id: str | None = None
        self.app_public_key: Any = None
        #: installation id per "owner/repo" the App is installed on.
        self.installations: dict[str, int] = {}
        self.issued: dict[str, float] = {}  # installation token → expiry (epoch)
        self.token_ttl = 3600
        self._fail: list[int] = []
        self._hang = threading.Event()
        self._hang.set()
        self._lock = threading.Lock()
        self._server: Any = None

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> GitHostsFake:
        self._server = start_server(_Handler, fake=self)
        return self

    def stop(self) -> None:
        self.release()
        stop_server(self._server)

    def url(self, provider: str) -> str:
        return base_url(self._server) + PREFIXES[provider]

    # --- behaviour ------------------------------------------------------------------------
    def install_app(self, app_id: str, public_key: Any, repo: str, installation: int = 4242) -> None:
        self.app_id, self.app_public_key = app_id, public_key
        self.installations[repo] = installation

    def fail(self, n: int, status: int = 500) -> None:
        with self._lock:
            self._fail += [status] * n

    def hang(self) -> None:
        self._hang.clear()

    def release(self) -> None:
        self._hang.set()

    def calls(self, host: str | None = None) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests if host is None or r.host == host]

    # --- request handling -----------------------------------------------------------------
    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        host = next((h for h, p in PREFIXES.items() if path.startswith(p + "/")), None)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 400, {"message": "Problems parsing JSON"}
        with self._lock:
            self.requests.append(Request(method, host or "", path, headers, body, raw))
            failing = self._fail.pop(0) if self._fail else None
        if not self._hang.is_set():
            self._hang.wait(30)  # held until released (the client times out first)
            return 504, {"message": "hung"}
        if failing:
            return failing, {"message": "injected failure"}
        if host is None:
            return 404, {"message": "Not Found"}
        rest = path[len(PREFIXES[host]) :]
        return getattr(self, f"_{host}")(method, rest, headers, body)

    # GitHub
    def _github(self, method: str, rest: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        auth = headers.get("authorization", "")
        bearer = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/installation", rest)
        if m and method == "GET":
            if not self._jwt_ok(bearer):
                return 401, {"message": "A JSON web token could not be decoded"}
            inst = self.installations.get(m.group(1))
            return (
                (200, {"id": inst, "app_id": int(self.app_id or 0)})
                if inst
                else (404, {"message": "Not Found"})
            )
        m = re.fullmatch(r"/app/installations/(\d+)/access_tokens", rest)
        if m and method == "POST":
            if not self._jwt_ok(bearer):
                return 401, {"message": "A JSON web token could not be decoded"}
            if int(m.group(1)) not in self.installations.values():
                return 404, {"message": "Not Found"}
            token = "ghs_" + secrets.token_hex(18)
            expires = time.time() + self.token_ttl
            self.issued[token] = expires
            stamp = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return 201, {"token": token, "expires_at": stamp, "permissions": {"checks": "write"}}
        if not self._token_ok("github", bearer):
            return 401, {"message": "Bad credentials"}
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/check-runs", rest)
        if m and method == "POST":
            problem = _check_run_problem(body, create=True)
            if problem:
                return 422, {"message": problem}
            with self._lock:
                run = CheckRun(len(self.check_runs) + 1, m.group(1), body)
                self.check_runs[run.id] = run
            run.annotations += (body.get("output") or {}).get("annotations") or []
            return 201, {"id": run.id, "name": body["name"], "head_sha": body["head_sha"]}
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/check-runs/(\d+)", rest)
        if m and method == "PATCH":
            run = self.check_runs.get(int(m.group(2)))
            if run is None or run.repo != m.group(1):
                return 404, {"message": "Not Found"}
            problem = _check_run_problem(body, create=False)
            if problem:
                return 422, {"message": problem}
            run.annotations += (body.get("output") or {}).get("annotations") or []
            return 200, {"id": run.id}
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/statuses/([0-9a-f]{40})", rest)
        if m and method == "POST":
            if not isinstance(body, dict) or body.get("state") not in (
                "error",
                "failure",
                "pending",
                "success",
            ):
                return 422, {"message": "state is invalid"}
            self.statuses.append(("github", m.group(2), body))
            return 201, {"id": len(self.statuses), "state": body["state"]}
        return 404, {"message": "Not Found"}

    def _jwt_ok(self, token: str | None) -> bool:
        """RS256 over header.claims with the App's public key; iat/exp within 10 minutes."""
        if not token or self.app_public_key is None:
            return False
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            head, claims, sig = token.split(".")
            header = json.loads(_unb64(head))
            payload = json.loads(_unb64(claims))
            self.app_public_key.verify(
                _unb64(sig), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except (ValueError, InvalidSignature):
            return False
        now = time.time()
        return (
            header.get("alg") == "RS256"
            and str(payload.get("iss")) == self.app_id
            and payload["iat"] <= now + 1
            and payload["exp"] > now
            and payload["exp"] - payload["iat"] <= 600
        )

    def _token_ok(self, provider: str, token: str | None) -> bool:
        if token is None:
            return False
        if provider == "github" and self.issued.get(token, 0) > time.time():
            return True
        return token == self.tokens.get(provider)

    # GitLab
    def _gitlab(self, method: str, rest: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        if not self._token_ok("gitlab", headers.get("private-token")):
            return 401, {"message": "401 Unauthorized"}
        m = re.fullmatch(r"/projects/([^/]+)/statuses/([0-9a-f]{40})", rest)
        if not (m and method == "POST"):
            return 404, {"message": "404 Not Found"}
        if not isinstance(body, dict) or body.get("state") not in (
            "pending",
            "running",
            "success",
            "failed",
            "canceled",
        ):
            return 400, {"message": "state is missing or invalid"}
        self.statuses.append(("gitlab", m.group(2), {**body, "_project": unquote(m.group(1))}))
        return 201, {
            "id": len(self.statuses),
            "sha": m.group(2),
            "status": body["state"],
            "name": body.get("name"),
        }

    # Bitbucket Cloud
    def _bitbucket(self, method: str, rest: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        auth = headers.get("authorization", "")
        if not self._token_ok(
            "bitbucket", auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        ):
            return 401, {"type": "error", "error": {"message": "Unauthorized"}}
        m = re.fullmatch(r"/repositories/([^/]+)/([^/]+)/commit/([0-9a-f]{40})/statuses/build", rest)
        if not (m and method == "POST"):
            return 404, {"type": "error", "error": {"message": "Not found"}}
        ok = isinstance(body, dict) and body.get("key") and body.get("url")
        if not ok or body.get("state") not in ("INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"):
            return 400, {"type": "error", "error": {"message": "key, state and url are required"}}
        self.statuses.append(("bitbucket", m.group(3), body))
        return 201, {"type": "commitstatus", "key": body["key"], "state": body["state"]}

    # Gitea / Forgejo
    def _gitea(self, method: str, rest: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        auth = headers.get("authorization", "")
        if not self._token_ok("gitea", auth.removeprefix("token ") if auth.startswith("token ") else None):
            return 401, {"message": "token is required"}
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/statuses/([0-9a-f]{40})", rest)
        if not (m and method == "POST"):
            return 404, {"message": "Not Found"}
        if not isinstance(body, dict) or body.get("state") not in (
            "pending",
            "success",
            "error",
            "failure",
            "warning",
        ):
            return 422, {"message": "state is invalid"}
        self.statuses.append(("gitea", m.group(3), body))
        return 201, {"id": len(self.statuses), "status": body["state"], "context": body.get("context")}


def _check_run_problem(body: Any, *, create: bool) -> str | None:
    if not isinstance(body, dict):
        return "body is not an object"
    if create:
        if not body.get("name") or not SHA.match(str(body.get("head_sha", ""))):
            return "name and head_sha are required"
        if body.get("status", "queued") == "completed" and body.get("conclusion") not in (
            "action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"):  # fmt: skip
            return "conclusion is required when status is completed"
    output = body.get("output")
    if output is not None:
        if not output.get("title") or not output.get("summary"):
            return "output requires title and summary"
        if len(output["summary"]) > 65535:
            return "output.summary is too long"
        annotations = output.get("annotations") or []
        if len(annotations) > 50:
            return "at most 50 annotations per request"
        for a in annotations:
            if not all(a.get(k) for k in ("path", "start_line", "end_line", "annotation_level", "message")):
                return "annotation is missing a required field"
            if a["annotation_level"] not in ("notice", "warning", "failure"):
                return "annotation_level is invalid"
    return None


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        return None

    def _serve(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, data = self.server.fake.handle(self.command, self.path, headers, raw)  # type: ignore[attr-defined]
        out = json.dumps(data).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
        except OSError:  # the client gave up (a timeout test)
            pass

    do_GET = do_POST = do_PATCH = _serve
