"""Real Git servers on loopback for tests: `git daemon` (git://) and smart HTTP with auth.

Register with ``pytest_plugins = ["tests.support.git_server"]`` (tests/conftest.py does).

Fixtures
--------
``git_server`` (session)
    A :class:`GitServer`: one temporary base directory served by

    * ``git daemon`` on ``git://127.0.0.1:<port>/<name>.git`` (no auth), and
    * ``git http-backend`` behind a small threaded HTTP server on
      ``http://127.0.0.1:<port>/<name>.git`` that demands a token: HTTP Basic with any user
      name and the token as password, or ``Authorization: Bearer <token>``.
      The token is ``git_server.token``; wrong or missing credentials get 401.

    Every repository has ``uploadpack.allowAnySHA1InWant``, ``allowReachableSHA1InWant`` and
    ``allowFilter`` set, so clients may fetch any commit by id (as GitHub/GitLab allow).

``make_repo``
    ``make_repo(files, *, name=None, branch="main") -> GitRepo(path, url, sha)``: a new bare
    repository with one commit holding ``files`` (``{"dir/file.yaml": "text" or b"bytes"}``).
    ``url`` is the git:// URL; ``git_server.http_url(repo)`` and ``repo.file_url`` give others.
    The result unpacks as a tuple: ``path, url, sha = make_repo({...})``.

``commit_files``
    ``commit_files(repo, files=None, *, delete=(), branch="main", parent=None,
    replace=False, message="...") -> sha``: push one more commit to ``branch``. ``parent``
    (a sha) commits on top of an older commit and moves the branch there: a force-push.
    ``replace=True`` drops every file not in ``files``.

Other helpers on ``git_server``: ``set_branch(repo, branch, sha)`` (force-push an existing
commit), ``delete_branch(repo, branch)``, ``tag(repo, name, sha)``, ``rev_parse(repo, rev)``,
``requests`` (log of HTTP requests: ``(method, path, authorized)``).

Everything binds 127.0.0.1 on free ports and is stopped at the end of the session.
"""

from __future__ import annotations

import base64
import hmac
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

import pytest

GIT = shutil.which("git") or "git"
_IDENT = "Test Pusher <pusher@example.com>"


class GitRepo(NamedTuple):
    """A bare repository served by the fixtures. Unpacks as ``(path, url, sha)``."""

    path: Path
    url: str
    sha: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def file_url(self) -> str:
        return self.path.as_uri()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen[bytes] | None = None) -> bool:
    """Poll until something accepts on 127.0.0.1:port (readiness, not timing)."""
    for _ in range(400):
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.05):
                return True
        except OSError:
            threading.Event().wait(0.01)
    return False


def _git(*args: str, cwd: Path | None = None, input: bytes | None = None) -> str:
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    out = subprocess.run([GIT, *args], cwd=cwd, input=input, capture_output=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"git {args[0]} failed: {out.stderr.decode(errors='replace')}")
    return out.stdout.decode().strip()


class _HttpBackend(BaseHTTPRequestHandler):
    """Runs `git http-backend` (CGI) for each request after checking the token."""

    server: _GitHttpServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        token = self.server.token.encode()
        if header.startswith("Bearer "):
            return hmac.compare_digest(header[7:].strip().encode(), token)
        if header.startswith("Basic "):
            try:
                raw = base64.b64decode(header[6:].strip())
            except ValueError:
                return False
            _, _, password = raw.partition(b":")
            return hmac.compare_digest(password, token)
        return False

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._read_body()
        ok = self._authorized()
        self.server.requests.append((self.command, self.path, ok))
        if not ok:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_PROJECT_ROOT": str(self.server.base),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "token",
            "REMOTE_ADDR": "127.0.0.1",
        }
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        proc = subprocess.run([GIT, "http-backend"], input=body, env=env, capture_output=True, check=False)
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = proc.stdout.partition(b"\n\n")
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _handle
    do_POST = _handle


class _GitHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, base: Path, token: str) -> None:
        super().__init__(("127.0.0.1", 0), _HttpBackend)
        self.base = base
        self.token = token
        self.requests: list[tuple[str, str, bool]] = []


class GitServer:
    """A base directory of bare repositories served over git:// and authenticated HTTP."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.token = "tok-" + secrets.token_hex(12)
        self._daemon: subprocess.Popen[bytes] | None = None
        self._http: _GitHttpServer | None = None
        self._counter = 0
        self._time = 1_700_000_000
        self._lock = threading.Lock()
        self.port = 0

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> GitServer:
        for _ in range(5):
            port = _free_port()
            proc = subprocess.Popen(
                [
                    GIT, "daemon", "--reuseaddr", f"--base-path={self.base}", "--export-all",
                    "--informative-errors", "--listen=127.0.0.1", f"--port={port}",
                    str(self.base),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
            if _wait_listening(port, proc):
                self._daemon, self.port = proc, port
                break
            proc.kill()
            proc.wait()
        else:
            raise RuntimeError("git daemon did not start")
        self._http = _GitHttpServer(self.base, self.token)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._daemon is not None:
            try:
                os.killpg(self._daemon.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self._daemon.wait()

    # --- URLs ------------------------------------------------------------------------
    @property
    def http_port(self) -> int:
        assert self._http is not None
        return self._http.server_address[1]

    def git_url(self, repo: GitRepo | str) -> str:
        name = repo.name if isinstance(repo, GitRepo) else repo
        return f"git://127.0.0.1:{self.port}/{name}"

    def http_url(self, repo: GitRepo | str) -> str:
        name = repo.name if isinstance(repo, GitRepo) else repo
        return f"http://127.0.0.1:{self.http_port}/{name}"

    @property
    def requests(self) -> list[tuple[str, str, bool]]:
        assert self._http is not None
        return self._http.requests

    # --- repositories ----------------------------------------------------------------
    def make_repo(
        self,
        files: Mapping[str, bytes | str],
        *,
        name: str | None = None,
        branch: str = "main",
        message: str = "initial",
    ) -> GitRepo:
        with self._lock:
            self._counter += 1
            name = name or f"repo{self._counter}"
        if not name.endswith(".git"):
            name += ".git"
        path = self.base / name
        _git("init", "--bare", "-q", f"--initial-branch={branch}", str(path))
        for key, value in (
            ("uploadpack.allowAnySHA1InWant", "true"),
            ("uploadpack.allowReachableSHA1InWant", "true"),
            ("uploadpack.allowFilter", "true"),
        ):
            _git("config", key, value, cwd=path)
        repo = GitRepo(path, self.git_url(name), "")
        sha = self.commit_files(repo, files, branch=branch, message=message, parent="")
        return repo._replace(sha=sha)

    def commit_files(
        self,
        repo: GitRepo | Path | str,
        files: Mapping[str, bytes | str] | None = None,
        *,
        delete: tuple[str, ...] | list[str] = (),
        branch: str = "main",
        parent: str | None = None,
        replace: bool = False,
        message: str = "update",
    ) -> str:
        """Commit `files` (and deletions) on `branch`; returns the new commit id.

        `parent=None` builds on the branch tip; a sha builds on that commit and force-moves
        the branch (a force-push); `parent=""` makes a root commit.
        """
        path = self._path(repo)
        ref = f"refs/heads/{branch}"
        if parent is None:
            parent = self._tip(path, ref)
        with self._lock:
            self._time += 60
            when = self._time
        msg = message.encode()
        out = [
            f"commit {ref}\n".encode(),
            f"committer {_IDENT} {when} +0000\n".encode(),
        ]
        out += [f"data {len(msg)}\n".encode(), msg, b"\n"]
        if parent:
            out.append(f"from {parent}\n".encode())
        if replace:
            out.append(b"deleteall\n")
        for name in delete:
            out.append(f"D {name}\n".encode())
        for name, content in (files or {}).items():
            data = content.encode() if isinstance(content, str) else content
            out.append(f"M 100644 inline {name}\ndata {len(data)}\n".encode())
            out += [data, b"\n"]
        out.append(b"\n")
        _git("fast-import", "--quiet", "--force", cwd=path, input=b"".join(out))
        return self._tip(path, ref)

    def set_branch(self, repo: GitRepo | Path | str, branch: str, sha: str) -> None:
        _git("update-ref", f"refs/heads/{branch}", sha, cwd=self._path(repo))

    def delete_branch(self, repo: GitRepo | Path | str, branch: str) -> None:
        _git("update-ref", "-d", f"refs/heads/{branch}", cwd=self._path(repo))

    def tag(self, repo: GitRepo | Path | str, name: str, sha: str) -> None:
        _git("update-ref", f"refs/tags/{name}", sha, cwd=self._path(repo))

    def rev_parse(self, repo: GitRepo | Path | str, rev: str) -> str:
        return _git("rev-parse", rev, cwd=self._path(repo))

    def _tip(self, path: Path, ref: str) -> str:
        try:
            return _git("rev-parse", "--verify", "-q", ref, cwd=path)
        except RuntimeError:
            return ""

    def _path(self, repo: GitRepo | Path | str) -> Path:
        if isinstance(repo, GitRepo):
            return repo.path
        p = Path(repo)
        return p if p.is_absolute() else self.base / (str(repo).removesuffix(".git") + ".git")


@pytest.fixture(scope="session")
def git_server() -> Iterator[GitServer]:
    base = Path(tempfile.mkdtemp(prefix="git-server-"))
    server = GitServer(base).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def make_repo(git_server: GitServer):  # type: ignore[no-untyped-def]
    return git_server.make_repo


@pytest.fixture
def commit_files(git_server: GitServer):  # type: ignore[no-untyped-def]
    return git_server.commit_files
