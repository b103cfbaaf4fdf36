"""The small HTTP layer the status posters use: JSON in, JSON out, on urllib, with a bounded
timeout and errors that name the method, the URL's path and the status, never a header or
a body.

Why not an SDK: four Git host APIs, a handful of calls each, and a function package that
should not carry an HTTP stack per host. urllib is in every runtime.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

#: Seconds one request may take (connect + answer): a hung host costs at most this per try.
DEFAULT_TIMEOUT = 10.0
USER_AGENT = "secret-manager-functions"


class HttpError(Exception):
    """A failed request: `status` is the HTTP status (None for a network error or timeout)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)

    @property
    def retryable(self) -> bool:
        """Network errors, timeouts, 429 and 5xx: worth the one retry."""
        return self.status is None or self.status == 429 or self.status >= 500


def timeout() -> float:
    """``SMF_STATUS_TIMEOUT`` seconds, else `DEFAULT_TIMEOUT`."""
    raw = os.environ.get("SMF_STATUS_TIMEOUT")
    try:
        return max(0.1, float(raw)) if raw else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    timeout_s: float | None = None,
) -> tuple[int, Any]:
    """Send `body` (JSON-encoded when not None) and return (status, decoded JSON or None).

    A status of 400 or more raises `HttpError`; so does a network error or a timeout."""
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise HttpError(f"{method} to a URL that is not http(s)")
    data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - scheme checked above
    req.add_header("User-Agent", USER_AGENT)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    where = f"{method} {urllib.parse.urlsplit(url).path}"
    try:
        with urllib.request.urlopen(req, timeout=timeout_s or timeout()) as resp:  # noqa: S310 - https/http API URLs from config
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        exc.close()
        raise HttpError(f"{where} answered {exc.code}", status=exc.code) from None
    except TimeoutError:
        raise HttpError(f"{where} timed out") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        kind = "timed out" if isinstance(reason, TimeoutError) else f"failed ({type(reason).__name__})"
        raise HttpError(f"{where} {kind}") from None
    if not raw:
        return status, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def call(
    method: str, url: str, *, headers: Mapping[str, str] | None = None, body: Any = None
) -> tuple[int, Any]:
    """`request`, retried once when the failure is worth it (`HttpError.retryable`): a
    status post is best-effort, so one retry and then the caller logs and moves on."""
    try:
        return request(method, url, headers=headers, body=body)
    except HttpError as exc:
        if not exc.retryable:
            raise
    return request(method, url, headers=headers, body=body)
