"""Git repository URLs in one place: what a URL names, how it is shown, where it is cached.

A repository reaches us spelled several ways: a webhook payload gives ``clone_url``,
``ssh_url`` and ``html_url``; a config gives ``sourceRef.url``; the CLI gives ``--source``.
Matching a push to a config, picking the warm cache directory and turning an SSH URL into
the HTTPS URL a token works with must agree on what "the same repository" means, so every
rule lives here:

- `normalize_repo_url`: one spelling per repository (``host[:port]/path``, lower case, no
  scheme, user, ``.git`` or trailing slash; local paths keep their case).
- `parse_scp`: the SCP form ``[user@]host:path`` that git accepts without a scheme.
- `https_url_for`: the HTTPS URL for an SSH URL (functions have no SSH keys).
- `redact_url`: the URL without user-info, for every message and log line.
- `cache_key`: the directory name of a repository's warm cache.
- `ZERO_SHA` / `is_zero_sha`: the all-zeros id hosts send for "no commit" (a created or
  deleted branch).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

ZERO_SHA = "0" * 40
#: Token user names documented by each host for HTTPS Git access with a token.
TOKEN_USERNAMES = {
    "github.com": "x-access-token",
    "gitlab.com": "oauth2",
    "bitbucket.org": "x-token-auth",
}
_DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git": 9418}
# git's rule: a colon before the first slash makes ``host:path`` (no scheme). A one-letter
# "host" is a Windows drive (``C:/repos/x``), and a path starting with a backslash too.
_SCP = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[A-Za-z0-9._-]{2,}):(?!//)(?P<path>[^\\].*)$")


def is_zero_sha(sha: str | None) -> bool:
    """True for a missing id or the all-zeros id (no commit on that side of a push)."""
    return not sha or set(sha) == {"0"}


def parse_scp(url: str) -> tuple[str | None, str, str] | None:
    """``(user, host, path)`` of an SCP-form URL (``git@github.com:acme/repo.git``), else None.

    URLs with a scheme and local paths (``/srv/x``, ``./x``) are not SCP form."""
    url = url.strip()
    if "://" in url or url.startswith(("/", ".")):
        return None
    m = _SCP.match(url)
    if m is None:
        return None
    return m.group("user"), m.group("host"), m.group("path")


def is_remote_url(text: str) -> bool:
    """Whether `text` names a remote repository (a URL with a scheme or SCP form) rather
    than a local directory."""
    return "://" in text or parse_scp(text) is not None


def normalize_repo_url(url: str) -> str:
    """One spelling per repository: ``host[:port]/path`` in lower case, no scheme, no user,
    no ``.git``. SSH ports are dropped (hosts serve SSH on another port than HTTPS); local
    paths and file:// URLs stay case-sensitive (``file:/abs/path``)."""
    url = url.strip()
    if not url:
        return ""
    if "://" not in url:
        scp = parse_scp(url)
        if scp is not None:
            _, host, path = scp
            return f"{host.lower()}/{_clean_path(path).lower()}"
        return "file:" + _clean_path(url, local=True)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return "file:" + _clean_path(parts.path, local=True)
    host = (parts.hostname or "").lower()
    port = parts.port
    if port and port != _DEFAULT_PORTS.get(scheme) and scheme not in ("ssh", "git+ssh"):
        host = f"{host}:{port}"
    return f"{host}/{_clean_path(parts.path).lower()}"


def _clean_path(path: str, *, local: bool = False) -> str:
    path = path.strip().rstrip("/")
    path = path.removesuffix(".git")
    return path if local else path.lstrip("/")


def cache_key(url: str) -> str:
    """A short stable directory name for the repository `url` names (any scheme, any
    spelling of the same repository gives the same key; credentials never matter)."""
    import hashlib  # here, not at the top: a fetch without a cache does not load OpenSSL

    return hashlib.sha256(normalize_repo_url(redact_url(url)).encode()).hexdigest()[:24]


def redact_url(url: str) -> str:
    """The URL without user-info (user names, passwords, tokens)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.scheme and "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


def token_username(url: str) -> str:
    """The user name a host documents for HTTPS access with a token (``git`` otherwise)."""
    host = (urlsplit(url).hostname or "").lower()
    for known, name in TOKEN_USERNAMES.items():
        if host == known or host.endswith("." + known):
            return name
    if "gitlab" in host:
        return "oauth2"
    return "git"


def https_url_for(url: str) -> str:
    """The HTTPS form of an SSH URL (``git@host:owner/repo.git``, ``ssh://git@host/...``):
    functions have no SSH keys or ssh binary, but the same token works over HTTPS."""
    if url.startswith(("ssh://", "git+ssh://")):
        parts = urlsplit(url)
        return f"https://{parts.hostname}{parts.path}"
    scp = parse_scp(url)
    if scp is not None and "." in scp[1]:
        return f"https://{scp[1]}/{scp[2].lstrip('/')}"
    return url
