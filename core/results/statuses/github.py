"""GitHub: a check run per config (or a commit status with ``checks: false``), authenticated
with a token or as a GitHub App.

Check runs can only be created by a GitHub App (an installation token; Actions' GITHUB_TOKEN
is one): a personal access token gets 403, so ``checks: false`` posts a commit status
instead. The check run is created completed, with the first 50 annotations (GitHub's limit
per request); further batches are PATCHed onto it, which appends them.

App authentication (GitHub's "Authenticating as a GitHub App installation"): a JWT signed
RS256 with the App's private key (``iat`` 60 s in the past against clock drift, ``exp`` at
most 10 minutes ahead, ``iss`` the App id) → ``GET /repos/{owner}/{repo}/installation``
(unless ``installationId`` is given) → ``POST /app/installations/{id}/access_tokens`` →
a token valid for an hour, cached in the instance until a minute before ``expires_at``.
The JWT is signed with `cryptography` (already a dependency) rather than PyJWT: three
base64url parts and one RSA signature do not need another package in every function.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import datetime
from typing import Any

from core.errors import SyncError
from core.results.statuses import ANNOTATIONS_PER_REQUEST, MAX_ANNOTATIONS, SecretReader, Status
from core.results.statuses.http import call
from core.results.statuses.targets import Target

API_VERSION = "2022-11-28"
#: A cached installation token is renewed this many seconds before it expires.
RENEW_BEFORE = 60
_TOKENS: dict[tuple[str, str, str], tuple[str, float]] = {}
_INSTALLATIONS: dict[tuple[str, str, str], int] = {}
_LOCK = threading.Lock()


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION}  # fmt: skip


def post(target: Target, config: Any, status: Status, read_secret: SecretReader) -> None:
    api = target.api(config.source.url)
    repo = target.repo(config.source.url)
    headers = _headers(token_for(target, config, read_secret))
    if not target.checks:
        state = {"neutral": "success"}.get(status.state, status.state)
        body: dict[str, Any] = {"state": state, "context": status.name, "description": status.description}
        if target.target_url:
            body["target_url"] = target.target_url
        call("POST", f"{api}/repos/{repo}/statuses/{status.sha}", headers=headers, body=body)
        return
    annotations = [a.to_github() for a in status.annotations[:MAX_ANNOTATIONS]]
    summary = status.summary
    if len(status.annotations) > MAX_ANNOTATIONS:
        summary += f"\n{len(status.annotations) - MAX_ANNOTATIONS} more annotations were left out.\n"
    output = {"title": status.title, "summary": summary}
    run: dict[str, Any] = {"name": status.name, "head_sha": status.sha, "external_id": status.config}
    if status.state == "pending":
        run["status"] = "in_progress"
    else:
        run.update(status="completed", conclusion=status.state)
    if target.target_url:
        run["details_url"] = target.target_url
    first, rest = annotations[:ANNOTATIONS_PER_REQUEST], annotations[ANNOTATIONS_PER_REQUEST:]
    _, created = call("POST", f"{api}/repos/{repo}/check-runs", headers=headers,
                      body={**run, "output": {**output, "annotations": first}})  # fmt: skip
    run_id = created.get("id") if isinstance(created, dict) else None
    if run_id is None:
        raise SyncError("GitHub answered a check run without an id", field="spec.statuses")
    for i in range(0, len(rest), ANNOTATIONS_PER_REQUEST):
        batch = rest[i : i + ANNOTATIONS_PER_REQUEST]
        call("PATCH", f"{api}/repos/{repo}/check-runs/{run_id}", headers=headers,
             body={"output": {**output, "annotations": batch}})  # fmt: skip


# --- credentials -----------------------------------------------------------------------------
def token_for(target: Target, config: Any, read_secret: SecretReader) -> str:
    """The token to post with: `tokenSecret`'s value, or an App installation token."""
    if target.token_secret:
        return _read(read_secret, config, target.token_secret, "tokenSecret")
    assert target.app_id and target.app_key_secret
    api = target.api(config.source.url)
    repo = target.repo(config.source.url)
    key = (api, target.app_id, str(target.installation_id or repo))
    with _LOCK:
        cached = _TOKENS.get(key)
    if cached and cached[1] - RENEW_BEFORE > time.time():
        return cached[0]
    pem = _read(read_secret, config, target.app_key_secret, "app.privateKeySecret")
    jwt = app_jwt(target.app_id, pem)
    installation = target.installation_id or _installation(api, repo, target.app_id, jwt)
    _, data = call("POST", f"{api}/app/installations/{installation}/access_tokens", headers=_headers(jwt))
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise SyncError(
            "GitHub answered an installation token request without a token", field="spec.statuses"
        )
    expires = _expiry(data.get("expires_at"))
    with _LOCK:
        _TOKENS[key] = (token, expires)
    return token


def _installation(api: str, repo: str, app_id: str, jwt: str) -> int:
    key = (api, app_id, repo)
    with _LOCK:
        if key in _INSTALLATIONS:
            return _INSTALLATIONS[key]
    _, data = call("GET", f"{api}/repos/{repo}/installation", headers=_headers(jwt))
    installation = data.get("id") if isinstance(data, dict) else None
    if not isinstance(installation, int):
        raise SyncError(f"the GitHub App is not installed on {repo}", field="spec.statuses.app")
    with _LOCK:
        _INSTALLATIONS[key] = installation
    return installation


def _expiry(value: Any) -> float:
    """``expires_at`` (``2016-07-11T22:14:10Z``) as epoch seconds; unknown → 50 minutes."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time() + 50 * 60


def _read(read_secret: SecretReader, config: Any, name: str, what: str) -> str:
    try:
        return read_secret(config, name)
    except Exception as exc:  # noqa: BLE001 - named, never the value
        raise SyncError(f"cannot read the status credential ({type(exc).__name__})",
                        field=f"spec.statuses.{what}") from None  # fmt: skip


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def app_jwt(app_id: str, private_key_pem: str, *, now: float | None = None) -> str:
    """The App's JWT: RS256 over ``{"iat": now-60, "exp": now+540, "iss": app_id}``."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise SyncError("the GitHub App private key is not an unencrypted PEM key",
                        field="spec.statuses.app.privateKeySecret") from None  # fmt: skip
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SyncError(
            "the GitHub App private key is not an RSA key", field="spec.statuses.app.privateKeySecret"
        )
    issued = int(now if now is not None else time.time())
    iss: int | str = int(app_id) if app_id.isdigit() else app_id
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = _b64(
        json.dumps({"iat": issued - 60, "exp": issued + 540, "iss": iss}, separators=(",", ":")).encode()
    )
    signing_input = f"{header}.{claims}".encode()
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{claims}.{_b64(signature)}"


def clear_cache() -> None:
    """Forget cached installation tokens and ids (tests; a rotated App key)."""
    with _LOCK:
        _TOKENS.clear()
        _INSTALLATIONS.clear()
