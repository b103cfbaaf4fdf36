"""Fetch exactly one commit with dulwich and read it without a checkout.

`fetch_commit(url, ref)` asks the server for one commit at depth 1 (a branch name, a
``refs/...`` name, or a full/short commit id) and returns a `GitCommitSource`: a `SourceTree`
whose files are read straight from the commit's tree objects. Nothing is written to a work
tree. The objects live in memory, or, with ``cache_dir``, in a bare repository under that
directory that is reused by later calls in the same (warm) function instance: the client then
tells the server which commits it already has and receives only the new objects.

History for `is_ancestor` is fetched lazily, and only when the depth-1 objects cannot answer:
commits only (protocol v2 ``filter tree:0`` when the server allows it, which GitHub, GitLab,
Bitbucket and Gitea do), into a separate in-memory store so that tree-less commits never mix
with the content store, deepening 32 → 512 → full history and stopping as soon as the answer is
known. Walks go from both ends: if ``newer`` is found below ``older`` the answer is False
without reading the rest of the history, which is the common case of a push (before..after).
Ordering is judged against the branch's current history: with the branch tip known (a branch
fetch, or ``branch=`` with a commit id), a commit that was force-pushed away is never "newer".

Credentials: ``token`` is sent as HTTP Basic password with the user name each host documents
for tokens (GitHub ``x-access-token``, GitLab ``oauth2``, Bitbucket ``x-token-auth``, anything
else ``git``), overridable with ``username``. Tokens never appear in errors or logs: every
message names the URL with its user-info removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import stat
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

from core.errors import SourceError
from core.source import SourceTree

ZERO_SHA = "0" * 40
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_SHORT_SHA = re.compile(r"^[0-9a-f]{4,39}$")
#: Token user names documented by each host for HTTPS Git access with a token.
TOKEN_USERNAMES = {
    "github.com": "x-access-token",
    "gitlab.com": "oauth2",
    "bitbucket.org": "x-token-auth",
}
#: How many fetched commits a cache keeps as "haves" (refs) for the next fetch.
CACHE_KEEP_REFS = 16
#: A cache with more packs than this is thrown away and started again.
CACHE_MAX_PACKS = 64
_DEEPEN_STEPS: tuple[int | None, ...] = (32, 512, None)
#: Seconds an HTTP(S) request may wait for the server (``GIT_HTTP_TIMEOUT``).
HTTP_TIMEOUT = float(os.environ.get("GIT_HTTP_TIMEOUT") or 30)
_SCP_URL = re.compile(r"^(?:[A-Za-z0-9._-]+@)?([A-Za-z0-9.-]+):(?!//)([^\\].*)$")

_cache_locks: dict[str, threading.Lock] = {}
_cache_locks_guard = threading.Lock()


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
    if "://" not in url and not url.startswith(("/", ".")):
        m = _SCP_URL.match(url)
        if m and "." in m.group(1):
            return f"https://{m.group(1)}/{m.group(2).lstrip('/')}"
    return url


def is_zero_sha(sha: str | None) -> bool:
    return not sha or set(sha) == {"0"}


class GitCommitSource(SourceTree):
    """One commit of a remote repository, read from its tree objects (no checkout)."""

    def __init__(self, fetcher: _Fetcher, commit: str, *, ref: str | None, tip: str | None):
        self._f = fetcher
        self.commit = commit
        self.origin = fetcher.url
        #: The full ref name the commit was resolved from (``refs/heads/main``), if any.
        self.ref = ref
        #: The ref's commit on the server at fetch time (equals `commit` for a branch fetch).
        self.tip = tip
        obj = fetcher.repo[commit.encode()]
        self._root = obj.tree
        self._trees: dict[str, Any] = {}

    # -- SourceTree ---------------------------------------------------------------------
    def _tree(self, path: str) -> Any | None:
        path = path.strip("/")
        if path in self._trees:
            return self._trees[path]
        store = self._f.repo.object_store
        if not path:
            tree = store[self._root]
        else:
            parent = self._tree(_parent(path))
            tree = None
            if parent is not None:
                name = path.rsplit("/", 1)[-1].encode("utf-8", "surrogateescape")
                try:
                    mode, sha = parent[name]
                except KeyError:
                    mode = sha = None
                if mode is not None and stat.S_ISDIR(mode):
                    tree = store[sha]
        self._trees[path] = tree
        return tree

    @staticmethod
    def _entries(tree: Any) -> Iterator[tuple[str, int, bytes]]:
        for entry in tree.iteritems():
            yield entry.path.decode("utf-8", "surrogateescape"), entry.mode, entry.sha

    def walk_dirs(self, under: str = "") -> list[str]:
        under = under.strip("/")
        if self._tree(under) is None:
            return []
        out: list[str] = []
        stack = [under]
        while stack:
            d = stack.pop()
            out.append(d)
            tree = self._tree(d)
            subdirs = sorted(n for n, mode, _ in self._entries(tree) if stat.S_ISDIR(mode) and n != ".git")
            stack.extend(f"{d}/{n}" if d else n for n in reversed(subdirs))
        return out

    def list_files(self, directory: str) -> list[str]:
        tree = self._tree(directory)
        if tree is None:
            return []
        # Regular files only: symlinks and submodules are never followed.
        return sorted(n for n, mode, _ in self._entries(tree) if stat.S_ISREG(mode))

    def read(self, path: str) -> bytes:
        path = path.strip("/")
        tree = self._tree(_parent(path))
        name = path.rsplit("/", 1)[-1].encode("utf-8", "surrogateescape")
        try:
            mode, sha = tree[name] if tree is not None else (None, None)
        except KeyError:
            mode = sha = None
        if mode is None or not stat.S_ISREG(mode):
            raise SourceError(f"cannot read {path}: no such file in commit {self.commit}", path=path)
        return self._f.repo.object_store[sha].data

    def is_dir(self, path: str) -> bool:
        return self._tree(path) is not None

    # -- history ------------------------------------------------------------------------
    def changed_paths(self, before: str | None, after: str | None = None) -> set[str] | None:
        """Paths that differ between two commits (tree diff); None means "everything".

        None when `before` is missing or all zeros (a new branch) or no longer on the server.
        """
        after = after or self.commit
        if is_zero_sha(before) or is_zero_sha(after):
            return None
        assert before is not None and after is not None
        before, after = before.lower(), after.lower()
        if not (_FULL_SHA.match(before) and _FULL_SHA.match(after)):
            return None
        if before == after:
            return set()
        try:
            self._f.ensure([before, after])
        except SourceError:
            return None
        from dulwich.diff_tree import tree_changes

        repo = self._f.repo
        t1 = repo[before.encode()].tree
        t2 = repo[after.encode()].tree
        out: set[str] = set()
        for change in tree_changes(repo.object_store, t1, t2):
            for side in (change.old, change.new):
                if side is not None and side.path is not None:
                    out.add(side.path.decode("utf-8", "surrogateescape"))
        return out

    def is_ancestor(self, older: str, newer: str) -> bool | None:
        """Whether `older` is `newer` or one of its ancestors *in the branch's current
        history*; None when it cannot be told (not a full sha, `newer` unknown).

        With a known branch tip (`tip`), a `newer` that is no longer reachable from the tip
        was force-pushed away: it is not "newer" than anything, and the answer is False. So
        a reset of a branch to an older commit is applied, while a late delivery of an older
        commit of the current history is still refused."""
        answer = self._f.is_ancestor(older, newer)
        if answer and self.tip and newer.lower() != self.tip and older.lower() != newer.lower():
            if self._f.is_ancestor(newer, self.tip) is False:
                return False
        return answer

    @property
    def stats(self) -> dict[str, int]:
        """Network fetches made and objects received so far (for tests and reports)."""
        return dict(self._f.stats)

    def close(self) -> None:
        """Release file handles of an on-disk cache (a no-op in memory)."""
        self._f.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


class _Fetcher:
    """A dulwich client for one URL plus the object stores it fills."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        username: str | None,
        cache_dir: str | None,
    ):
        if token:
            url = https_url_for(url)
        parts = urlsplit(url) if "://" in url else None
        if parts is not None and parts.scheme in ("http", "https") and "@" in parts.netloc:
            # Credentials embedded in the URL are taken out of it and used like `token`.
            userinfo, host = parts.netloc.rsplit("@", 1)
            user, _, password = userinfo.partition(":")
            from urllib.parse import unquote

            if password:
                username, token = username or unquote(user), token or unquote(password)
            else:
                token = token or unquote(user)
            url = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
        self.url = redact_url(url)
        self._secret = token
        self.stats = {"fetches": 0, "objects": 0}
        from dulwich.client import get_transport_and_path
        from dulwich.config import ConfigDict

        config = ConfigDict()
        config.set((b"http",), b"timeout", str(HTTP_TIMEOUT).encode())
        kwargs: dict[str, Any] = {"config": config}
        if token and parts is not None and parts.scheme in ("http", "https"):
            kwargs.update(username=username or token_username(url), password=token)
        try:
            self.client, self.path = get_transport_and_path(url, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any parse failure is a bad URL
            raise SourceError(f"unsupported repository URL {self.url}: {type(exc).__name__}") from None
        self.cache_path: str | None = None
        self.repo = self._open_repo(cache_dir)
        self._history: Any = None  # commits-only MemoryRepo for ancestry, made on demand
        self._answers: dict[tuple[str, str], bool | None] = {}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.repo.close()

    # -- stores -------------------------------------------------------------------------
    def _open_repo(self, cache_dir: str | None) -> Any:
        from dulwich.repo import MemoryRepo

        if not cache_dir:
            return MemoryRepo()
        try:
            return self._open_disk_repo(cache_dir)
        except OSError:  # an unusable cache directory (read-only, full): work in memory
            self.cache_path = None
            return MemoryRepo()

    def _open_disk_repo(self, cache_dir: str) -> Any:
        from dulwich.repo import Repo

        key = hashlib.sha256(_normalise_for_cache(self.url).encode()).hexdigest()[:24]
        path = os.path.join(cache_dir, f"git-{key}.git")
        self.cache_path = path
        packs = os.path.join(path, "objects", "pack")
        if os.path.isdir(packs) and len(os.listdir(packs)) > 2 * CACHE_MAX_PACKS:
            shutil.rmtree(path, ignore_errors=True)
        if os.path.isdir(os.path.join(path, "objects")):
            try:
                return Repo(path)
            except Exception:  # noqa: BLE001 - a damaged cache is rebuilt
                shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)
        repo = Repo.init_bare(path, mkdir=False)
        open(os.path.join(path, "fetch.lock"), "a").close()  # noqa: SIM115 - touch
        return repo

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self.cache_path is None:
            yield
            return
        with _cache_locks_guard:
            lock = _cache_locks.setdefault(self.cache_path, threading.Lock())
        with lock, open(os.path.join(self.cache_path, "fetch.lock"), "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _has_commit(self, sha: str) -> bool:
        try:
            return self.repo.object_store[sha.encode()].type_name == b"commit"
        except KeyError:
            return False

    def _remember(self, shas: Iterable[str]) -> None:
        """Keep fetched commits as refs so the next fetch advertises them as haves."""
        refs = self.repo.refs
        prefix = b"refs/heads/_fetched/"
        for sha in shas:
            refs[prefix + sha.encode()] = sha.encode()
        self._order = [s for s in getattr(self, "_order", []) if s not in shas] + list(shas)
        names = [r for r in refs.allkeys() if r.startswith(prefix)]
        if len(names) > CACHE_KEEP_REFS:
            recent = {prefix + s.encode() for s in self._order[-CACHE_KEEP_REFS:]}
            # Oldest first is unknown across invocations; keep this instance's recent ones.
            for name in sorted(names)[: len(names) - CACHE_KEEP_REFS]:
                if name not in recent:
                    refs.remove_if_equals(name, None)

    # -- errors -------------------------------------------------------------------------
    def _error(self, exc: BaseException, what: str) -> SourceError:
        from dulwich.client import HTTPUnauthorized
        from dulwich.errors import HangupException

        text = str(exc)
        if self._secret:
            text = text.replace(self._secret, "***")
        if isinstance(exc, HTTPUnauthorized):
            reason = "authentication refused (HTTP 401): check the access token"
        elif isinstance(exc, ConnectionError | TimeoutError | OSError) and not text:
            reason = type(exc).__name__
        elif isinstance(exc, HangupException):
            reason = f"the server closed the connection ({what} not found or not allowed)"
        elif "not our ref" in text or "invalid object" in text or "not found" in text.lower():
            reason = f"{what} not found on the server"
        else:
            reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
            reason = reason.replace(self.url, "<url>")
        return SourceError(f"cannot fetch {what} from {self.url}: {reason}")

    # -- fetching -----------------------------------------------------------------------
    def _fetch(self, repo: Any, wants_fn: Any, what: str, **kw: Any) -> Any:
        before = _count(repo)
        try:
            result = self.client.fetch(self.path, repo, determine_wants=wants_fn, **kw)
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - dulwich/network errors are reported, redacted
            raise self._error(exc, what) from None
        self.stats["fetches"] += 1
        self.stats["objects"] += max(0, _count(repo) - before)
        return result

    def resolve_and_fetch(self, ref: str, branch: str | None = None) -> tuple[str, str | None, str | None]:
        """Fetch the commit `ref` names at depth 1. Returns (commit, full ref, branch tip):
        the tip is the server's current commit of `branch` (or of `ref` when it is a branch),
        read from the same ref advertisement."""
        ref = ref.strip()
        if not ref:
            raise SourceError(f"no ref given for {self.url}")
        low = ref.lower()
        candidates: list[bytes]
        if ref.startswith("refs/"):
            candidates = [ref.encode()]
        else:
            candidates = [f"refs/heads/{ref}".encode(), f"refs/tags/{ref}".encode()]
            if ref == "HEAD":
                candidates = [b"HEAD"]
        found: dict[str, str | None] = {"ref": None, "sha": None, "tip": None}
        branch_ref = f"refs/heads/{branch.removeprefix('refs/heads/')}".encode() if branch else None

        def wants(refs: dict[bytes, bytes], depth: int | None = None) -> list[bytes]:
            if branch_ref is not None and refs.get(branch_ref):
                found["tip"] = refs[branch_ref].decode()
            sha: bytes | None = None
            for name in candidates:
                peeled = refs.get(name + b"^{}")
                if refs.get(name) is not None:
                    sha = peeled or refs[name]
                    found["ref"] = name.decode()
                    break
            if sha is None and _FULL_SHA.match(low):
                sha = low.encode()
            elif sha is None and _SHORT_SHA.match(low):
                matches = {v for v in refs.values() if v and v.decode().startswith(low)}
                if len(matches) == 1:
                    sha = matches.pop()
            if sha is None:
                return []
            found["sha"] = sha.decode()
            return [] if self._has_commit(sha.decode()) else [sha]

        if _FULL_SHA.match(low) and self._has_commit(low) and branch_ref is None:
            return low, None, None  # already in the cache: nothing to ask the server
        with self._locked():
            prefixes = None if _SHORT_SHA.match(low) or ref == "HEAD" else candidates
            if prefixes is not None and branch_ref is not None:
                prefixes = [*prefixes, branch_ref]
            self._fetch(self.repo, wants, f"ref {ref}", depth=1, ref_prefix=prefixes)
            sha = found["sha"]
            if sha is None and _SHORT_SHA.match(low):
                sha = self._expand_short(low)
                if sha and not self._has_commit(sha):
                    self._fetch(self.repo, lambda refs, depth=None: [sha.encode()], ref, depth=1)
            if sha is None:
                raise SourceError(f"cannot fetch {self.url}: no branch, tag or commit named {ref}")
            sha = self._peel(sha)
            if not self._has_commit(sha):
                raise SourceError(f"cannot fetch {self.url}: {ref} is not a commit")
            self._remember([sha])
        tip = found["tip"]
        if tip is None and (found["ref"] or "").startswith("refs/heads/"):
            tip = sha
        return sha, found["ref"], tip

    def _peel(self, sha: str) -> str:
        obj = self.repo.object_store[sha.encode()]
        while obj.type_name == b"tag":
            obj = self.repo.object_store[obj.object[1]]
        return obj.id.decode()

    def _expand_short(self, prefix: str) -> str | None:
        """A short id that is no ref tip: look it up in the full (commits-only) history."""
        hist = self._history_repo()
        self._fetch(
            hist,
            lambda refs, depth=None: sorted({v for k, v in refs.items() if k.startswith(b"refs/")}),
            f"history for {prefix}",
            filter_spec=b"tree:0",
            protocol_version=2,
        )
        matches = {
            sha.decode()
            for store in (self.repo.object_store, hist.object_store)
            for sha in store
            if sha.decode().startswith(prefix) and store[sha].type_name == b"commit"
        }
        if len(matches) > 1:
            raise SourceError(f"cannot fetch {self.url}: commit id {prefix} is ambiguous")
        return matches.pop() if matches else None

    def ensure(self, shas: list[str]) -> None:
        """Make sure the commits (with their trees) are in the content store."""
        with self._locked():
            missing = [s for s in shas if not self._has_commit(s)]
            if missing:
                self._fetch(
                    self.repo,
                    lambda refs, depth=None: [s.encode() for s in missing],
                    "commit " + ", ".join(missing),
                    depth=1,
                )
                self._remember(missing)

    # -- ancestry -----------------------------------------------------------------------
    def _history_repo(self) -> Any:
        if self._history is None:
            from dulwich.repo import MemoryRepo

            self._history = MemoryRepo()
        return self._history

    def _commit(self, sha: bytes) -> Any | None:
        for store in (self.repo.object_store, self._history_repo().object_store):
            try:
                obj = store[sha]
            except KeyError:
                continue
            if obj.type_name == b"commit":
                return obj
        return None

    def _reaches(self, start: bytes, target: bytes) -> bool | None:
        """Whether `target` is reachable from `start` in the loaded history; None when a
        missing parent (a shallow boundary) leaves it open."""
        seen = {start}
        stack = [start]
        open_end = False
        while stack:
            sha = stack.pop()
            if sha == target:
                return True
            commit = self._commit(sha)
            if commit is None:
                open_end = True
                continue
            for parent in commit.parents:
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return None if open_end else False

    def is_ancestor(self, older: str, newer: str) -> bool | None:
        older, newer = (older or "").lower(), (newer or "").lower()
        if not (_FULL_SHA.match(older) and _FULL_SHA.match(newer)):
            return None
        if older == newer:
            return True
        key = (older, newer)
        if key not in self._answers:  # plan asks once per entry: answer once per pair
            self._answers[key] = self._is_ancestor(older, newer)
        return self._answers[key]

    def _is_ancestor(self, older: str, newer: str) -> bool | None:
        o, n = older.encode(), newer.encode()
        for depth in _DEEPEN_STEPS:
            down = self._reaches(n, o)
            if down is not None:
                return down
            if self._reaches(o, n) is True:  # newer lies below older: not an ancestor
                return False
            if not self._deepen([o, n], depth):
                return None
        return self._reaches(n, o)

    def _deepen(self, shas: list[bytes], depth: int | None) -> bool:
        """Fetch commits (no trees) down to `depth` below `shas`. False if `newer` is unknown."""
        hist = self._history_repo()
        # A fresh store each round: the server sends commit objects only (tree:0), so
        # refetching from the tips is cheap and keeps the negotiation simple.
        from dulwich.repo import MemoryRepo

        fresh = MemoryRepo()
        known: list[bytes] = []
        for sha in shas:
            try:
                self._fetch(
                    fresh,
                    lambda refs, depth=None, s=sha: [s],
                    f"history of {sha.decode()}",
                    depth=depth,
                    filter_spec=b"tree:0",
                    protocol_version=2,
                )
                known.append(sha)
            except SourceError:
                continue  # e.g. a recorded commit that was force-pushed away and pruned
        for sha in fresh.object_store:
            obj = fresh.object_store[sha]
            if obj.type_name == b"commit" and sha not in hist.object_store:
                hist.object_store.add_object(obj)
        return shas[-1] in known or self._commit(shas[-1]) is not None


def _count(repo: Any) -> int:
    try:
        return sum(1 for _ in repo.object_store)
    except Exception:  # noqa: BLE001 - statistics only
        return 0


def _normalise_for_cache(url: str) -> str:
    return url.rstrip("/").removesuffix(".git").lower()


def fetch_commit(
    url: str,
    ref: str,
    *,
    token: str | None = None,
    username: str | None = None,
    cache_dir: str | None = None,
    branch: str | None = None,
) -> GitCommitSource:
    """Fetch the commit `ref` names from `url` (depth 1) and return it as a source tree.

    `ref`: a branch (``main`` or ``refs/heads/main``), a tag, or a full or short commit id.
    `cache_dir`: keep the objects in a bare repository there (e.g. ``/tmp/git-cache``) and
    fetch only what is new on the next call; None keeps everything in memory.
    `branch`: when `ref` is a commit id, also note that branch's current tip (same round
    trip) so `is_ancestor` judges ordering against the branch's current history.
    Raises `SourceError` naming the URL (never the token).
    """
    fetcher = _Fetcher(url, token=token, username=username, cache_dir=cache_dir)
    commit, full_ref, tip = fetcher.resolve_and_fetch(ref, branch)
    return GitCommitSource(fetcher, commit, ref=full_ref, tip=tip)
