"""Fetch exactly one commit with dulwich and read it without a checkout, paying only for
what is read.

`fetch_commit(url, ref)` asks the server for one commit at depth 1 (a branch name, a
``refs/...`` name, or a full/short commit id) and returns a `GitCommitSource`: a `SourceTree`
whose files are read straight from the commit's tree objects. Nothing is written to a work
tree.

Cost proportional to what is read (a partial clone, as ``git clone --filter=blob:none``):

1. the commit and its trees, without blobs (protocol v2 ``filter blob:none``, which GitHub,
   GitLab, Bitbucket and Gitea serve, and ``git daemon`` with ``uploadpack.allowFilter``);
2. discovery walks the trees (names and modes only);
3. `GitCommitSource.prefetch` fetches the blobs of the files discovery selected, by object
   id, in one request (protocol v2 accepts any object id as a want); a `read` of a file not
   prefetched fetches its blob alone.

A server that refuses filters gets the same request without the filter: today's full fetch
at depth 1, with one warning in the log saying why.

The objects live in memory, or, with ``cache_dir``, in a bare repository under that
directory that is reused by later calls (a warm function instance, ``python -m core serve``):
the client tells the server which commits it already has, so a push receives the new commit
and only the trees on the changed paths, then the blobs it reads and does not hold yet. This
works for every scheme: for ``file://`` URLs and local paths the objects are copied from the
local repository with the same rules (trees not yet held, blobs only when asked for).

Ancestry (`is_ancestor`) lives in `core.git_history`; URL rules in `core.git_url`.

Credentials: ``token`` is sent as HTTP Basic password with the user name each host documents
for tokens (GitHub ``x-access-token``, GitLab ``oauth2``, Bitbucket ``x-token-auth``, anything
else ``git``), overridable with ``username``. Tokens never appear in errors or logs: every
message names the URL with its user-info removed.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Self
from urllib.parse import unquote, urlsplit, urlunsplit

from core.errors import SourceError
from core.git_history import CommitHistory
from core.git_url import (  # noqa: F401 - re-exported: callers import them from here
    TOKEN_USERNAMES,
    ZERO_SHA,
    cache_key,
    https_url_for,
    is_zero_sha,
    redact_url,
    token_username,
)
from core.parsers.limits import MAX_FILE_BYTES
from core.source import SourceTree, too_large


def _log() -> Any:
    """The "smf.git" logger, imported when there is something to say (a cold fetch that
    logs nothing does not pay for the logging package)."""
    import logging

    return logging.getLogger("smf.git")


_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_SHORT_SHA = re.compile(r"^[0-9a-f]{4,39}$")
#: Partial-clone filters: trees without blobs (content), commits only (history).
FILTER_BLOBS = b"blob:none"
FILTER_TREES = b"tree:0"
#: How many fetched commits a cache keeps as "haves" (refs) for the next fetch.
CACHE_KEEP_REFS = 16
#: A cache with more packs than this is thrown away and started again.
CACHE_MAX_PACKS = 64
#: Seconds an HTTP(S) request may wait for the server (``GIT_HTTP_TIMEOUT``).
HTTP_TIMEOUT = float(os.environ.get("GIT_HTTP_TIMEOUT") or 30)
#: Received packs up to this size stay in memory before spilling to a temporary file.
_PACK_SPOOL_BYTES = 16 * 1024 * 1024

_cache_locks: dict[str, threading.Lock] = {}
_cache_locks_guard = threading.Lock()

#: ``wants(refs, depth=None) -> [object id, ...]``: what to ask for, given the server's refs.
WantsFn = Callable[..., list[bytes]]


def user_cache_dir() -> str | None:
    """The warm cache of a long-running process on a workstation (``python -m core serve``):
    ``GIT_CACHE_DIR`` when set (empty = keep objects in memory), else
    ``$XDG_CACHE_HOME/secret-manager-functions/git`` (``~/.cache/...``)."""
    if "GIT_CACHE_DIR" in os.environ:
        return os.environ["GIT_CACHE_DIR"] or None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "secret-manager-functions", "git")


#: One tree entry: ``<octal mode> <name>\0<20-byte id>``, entries back to back.
_TREE_ENTRY = re.compile(rb"([0-7]+) ([^\0]*)\0(.{20})", re.S)
#: A whole tree: entries and nothing else (checked once, in C, before any entry is used).
_TREE_WHOLE = re.compile(rb"(?:[0-7]+ [^\0]*\0.{20})*", re.S)
#: Directory entries whole (mode 40000; very old trees wrote 040000); any other entry is
#: matched and comes back as b"" (one shared object): no Python work per file entry.
_TREE_DIRS = re.compile(rb"(0?40000 [^\0]*\0.{20})|[0-7]+ [^\0]*\0.{20}", re.S)


def _check_tree(sha: bytes, raw: bytes) -> None:
    if not _TREE_WHOLE.fullmatch(raw):
        raise SourceError(f"tree {sha.decode()} is malformed")


class _Listing:
    """What discovery needs of one tree: subdirectories by name at once, regular files by
    name when first asked for (discovery walks every directory but lists the files of a
    few, so most trees' file entries are never decoded)."""

    __slots__ = ("dirs", "subdirs", "size", "_sha", "_raw", "_files")

    def __init__(self, sha: bytes, raw: bytes):
        self.dirs: dict[str, bytes] = {}
        # Every directory entry holds the bytes "40000 "; a tree without them (most trees:
        # the leaves) has no subdirectory, and its entries are not scanned at all until its
        # files are asked for.
        if b"40000 " in raw:
            _check_tree(sha, raw)
            self.dirs = {e[e.index(b" ") + 1 : -21].decode("utf-8", "surrogateescape"): e[-20:].hex().encode()
                         for e in _TREE_DIRS.findall(raw) if e}  # fmt: skip
        self.subdirs = tuple(sorted(n for n in self.dirs if n != ".git"))  # sorted, without ".git"
        self.size = raw.count(b"\0") + 1  # entries (a name holds no NUL), for the cache bound
        self._sha, self._raw = sha, raw
        self._files: dict[str, bytes] | None = None

    @property
    def files(self) -> dict[str, bytes]:
        """Regular files (modes 100644, 100755, ...) by name; symlinks and submodules are left out."""
        if self._files is None:
            _check_tree(self._sha, self._raw)
            self._files = {n.decode("utf-8", "surrogateescape"): s.hex().encode()
                           for m, n, s in _TREE_ENTRY.findall(self._raw) if m[:3] == b"100"}  # fmt: skip
            self._raw = b""
        return self._files


#: Listings of trees already parsed in this process, by tree id (trees never change): a warm
#: function instance or ``serve`` walks an unchanged directory without reading its tree again.
#: Bounded by the number of entries held (about 100,000 files' worth).
_LISTINGS: OrderedDict[bytes, _Listing] = OrderedDict()
_LISTINGS_MAX_ENTRIES = 150_000
_TREE = 2  # Git's object type number for trees
_listings_size = 0
_listings_guard = threading.Lock()


def _listing(store: Any, sha: bytes) -> _Listing:
    global _listings_size
    with _listings_guard:
        found = _LISTINGS.get(sha)
        if found is not None:
            _LISTINGS.move_to_end(sha)
            return found
    type_num, raw = store.get_raw(sha)
    if type_num != _TREE:
        raise SourceError(f"object {sha.decode()} is not a tree")
    # The raw tree, not a dulwich Tree object: one regular-expression pass over the entries.
    listing = _Listing(sha, raw)
    with _listings_guard:
        if sha not in _LISTINGS:
            _LISTINGS[sha] = listing
            _listings_size += listing.size
            while _listings_size > _LISTINGS_MAX_ENTRIES and len(_LISTINGS) > 1:
                _, old = _LISTINGS.popitem(last=False)
                _listings_size -= old.size
    return listing


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
        self._root = _commit_tree(fetcher.repo.object_store, commit.encode())
        self._trees: dict[str, _Listing | None] = {}

    # -- SourceTree ---------------------------------------------------------------------
    def _tree(self, path: str) -> _Listing | None:
        path = path.strip("/")
        if path in self._trees:
            return self._trees[path]
        if not path:
            tree: _Listing | None = _listing(self._f.repo.object_store, self._root)
        else:
            parent = self._tree(_parent(path))
            sha = parent.dirs.get(path.rsplit("/", 1)[-1]) if parent is not None else None
            tree = _listing(self._f.repo.object_store, sha) if sha is not None else None
        self._trees[path] = tree
        return tree

    def walk_dirs(self, under: str = "") -> list[str]:
        under = under.strip("/")
        top = self._tree(under)
        if top is None:
            return []
        store, trees = self._f.repo.object_store, self._trees
        out: list[str] = []
        # Depth first, each directory's listing carried along (no lookups from the root).
        stack: list[tuple[str, _Listing]] = [(under, top)]
        while stack:
            d, tree = stack.pop()
            out.append(d)
            prefix = f"{d}/" if d else ""
            kids = []
            for name in tree.subdirs:
                path = prefix + name
                sub = trees.get(path)
                if sub is None:
                    sub = trees[path] = _listing(store, tree.dirs[name])
                kids.append((path, sub))
            stack.extend(reversed(kids))
        return out

    def list_files(self, directory: str) -> list[str]:
        tree = self._tree(directory)
        # Regular files only: symlinks and submodules are never followed.
        return sorted(tree.files) if tree is not None else []

    def _blob_id(self, path: str) -> bytes | None:
        """The blob id of the regular file `path`, or None when there is none."""
        path = path.strip("/")
        tree = self._tree(_parent(path))
        return tree.files.get(path.rsplit("/", 1)[-1]) if tree is not None else None

    def blob_id(self, path: str) -> str | None:
        sha = self._blob_id(path)
        return sha.decode() if sha is not None else None

    def prefetch(self, paths: Iterable[str]) -> None:
        """Fetch the blobs of `paths` not held yet, in one request (unknown paths are left
        for `read` to report)."""
        ids = [sha for sha in map(self._blob_id, paths) if sha is not None]
        self._f.fetch_blobs(ids)

    def _read(self, path: str, limit: int) -> bytes:
        sha = self._blob_id(path)
        if sha is None:
            raise SourceError(f"cannot read {path}: no such file in commit {self.commit}", path=path)
        store = self._f.repo.object_store
        if sha not in store and sha not in self._f.too_large:
            self._f.fetch_blobs([sha])
        if sha in self._f.too_large:  # dropped as it arrived (core/git_wire.py PackReader)
            raise too_large(path, self._f.too_large[sha])
        return store.get_raw(sha)[1]

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
        # Trees only: entries are compared by id, so no blob is needed (or fetched).
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
        history = self._f.history
        answer = history.is_ancestor(older, newer)
        if answer and self.tip and newer.lower() != self.tip and older.lower() != newer.lower():
            if history.is_ancestor(newer, self.tip) is False:
                return False
        return answer

    @property
    def stats(self) -> dict[str, int]:
        """Network fetches made, objects received, and of those the blobs fetched by id
        (for tests and reports)."""
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


def _commit_tree(store: Any, sha: bytes) -> bytes:
    """The tree id of commit `sha`, from its raw text (its first line is ``tree <id>``)."""
    type_num, raw = store.get_raw(sha)
    if type_num != 1 or not raw.startswith(b"tree "):
        raise SourceError(f"object {sha.decode()} is not a commit")
    return raw[5:45]


# --- an in-memory store that parses an object only when it is read ---------------------
class _RawMemoryStore:
    """Mixed into dulwich's MemoryObjectStore: received packs are kept as raw bytes and an
    object is parsed only when it is read, so a fetch costs inflating the pack and not
    building (and copying) a Python object per tree and blob."""

    def __init__(self) -> None:
        super().__init__()
        self._raw: dict[bytes, tuple[int, bytes]] = {}

    def __contains__(self, sha: bytes) -> bool:
        return sha in self._raw or super().__contains__(sha)

    def __iter__(self) -> Iterator[bytes]:
        yield from self._raw
        yield from super().__iter__()

    def get_raw(self, name: bytes) -> tuple[int, bytes]:
        raw = self._raw.get(name)
        return raw if raw is not None else super().get_raw(name)

    def __getitem__(self, name: bytes) -> Any:
        raw = self._raw.get(name)
        if raw is None:
            return super().__getitem__(name)
        from dulwich.objects import ShaFile

        return ShaFile.from_raw_string(raw[0], raw[1], sha=name)

    def raw_or_none(self, sha: bytes) -> tuple[int, bytes] | None:
        try:
            return self.get_raw(sha)
        except KeyError:
            return None

    def add_raw(self, objects: dict[bytes, tuple[int, bytes]]) -> None:
        self._raw.update(objects)


def _memory_repo() -> Any:
    from dulwich.object_store import MemoryObjectStore
    from dulwich.repo import MemoryRepo

    class Store(_RawMemoryStore, MemoryObjectStore):
        pass

    repo = MemoryRepo()
    repo.object_store = Store()
    return repo


# --- transports ------------------------------------------------------------------------
class _NoHaves:
    """A graph walker that advertises no commits: a request for objects by id must not be
    answered with "you already have them" (the commits we hold lack their blobs)."""

    def __next__(self) -> None:
        return None

    def ack(self, sha: bytes) -> None:
        return None

    def nak(self) -> None:
        return None


class _NetworkRemote:
    """git://, http(s):// (and ssh://) through dulwich's client, pack received by us so that
    negotiation, object counts and filter refusal are under our control, and read by the
    same `PackReader` as protocol v2's (blobs over the limit dropped into `too_large`)."""

    def __init__(self, client: Any, path: Any, too_large: dict[bytes, int]):
        self.client = client
        self.path = path
        self.too_large = too_large
        #: Deltas dropped with their too-large blob, whose ids are unknown (`PackReader`).
        self.dropped = 0

    def fetch(self, target: Any, wants: WantsFn, *, depth: int | None, filter_spec: bytes | None,
              ref_prefix: list[bytes] | None, haves: bool) -> tuple[dict[bytes, bytes], int, bool]:  # fmt: skip
        """Fetch into `target`. Returns (server refs, objects received, filter honoured)."""
        from tempfile import SpooledTemporaryFile

        from core.git_wire import receive_pack

        refused: list[bool] = []
        # dulwich reports a filter it could not send (no v2 ``filter`` capability) here.
        self.client._warn_filter_objects = lambda: refused.append(True)
        walker = target.get_graph_walker() if haves else _NoHaves()
        spool_dir = getattr(target.object_store, "path", None)
        with SpooledTemporaryFile(max_size=_PACK_SPOOL_BYTES, prefix="incoming-", dir=spool_dir) as pack:
            result = self.client.fetch_pack(
                self.path, wants, walker, pack.write, depth=depth, ref_prefix=ref_prefix,
                filter_spec=filter_spec, protocol_version=2 if filter_spec else None,
            )  # fmt: skip
            received = 0
            if pack.tell():
                pack.seek(0)
                chunks = iter(lambda: pack.read(1 << 16), b"")
                received = receive_pack(target.object_store, chunks, MAX_FILE_BYTES, self)
        if result.new_shallow or result.new_unshallow:
            target.update_shallow(result.new_shallow, result.new_unshallow)
        return dict(result.refs or {}), received, not refused

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


class _LocalRemote:
    """A repository on this machine (``file://`` or a path): objects are copied from it with
    the rules a server applies to a partial fetch (dulwich's local client ignores filters,
    and with a depth it ignores what the target already has, so it would copy everything).
    A blob over the file size limit is not copied: its size is read from its header and it
    goes into `too_large`, as a network fetch drops it (`PackReader`)."""

    def __init__(self, path: str, too_large: dict[bytes, int]):
        self.path = path
        self.too_large = too_large

    def fetch(self, target: Any, wants: WantsFn, *, depth: int | None, filter_spec: bytes | None,
              ref_prefix: list[bytes] | None, haves: bool) -> tuple[dict[bytes, bytes], int, bool]:  # fmt: skip
        from dulwich.repo import Repo

        with Repo(self.path) as src:
            refs = dict(src.get_refs())
            for name in [n for n in refs if n.startswith(b"refs/tags/")]:
                obj = src.object_store[refs[name]]
                while obj.type_name == b"tag":  # advertise the peeled id, as servers do
                    obj = src.object_store[obj.object[1]]
                if obj.id != refs[name]:
                    refs[name + b"^{}"] = obj.id
            copy = _LocalCopy(src.object_store, target.object_store, filter_spec, self.too_large)
            shallow = set()
            for want in wants(refs, depth):
                shallow |= copy.want(want, depth)
            target.object_store.add_objects([(obj, None) for obj in copy.objects])
        if shallow and filter_spec != FILTER_TREES:
            target.update_shallow(shallow, None)
        return refs, len(copy.objects), True

    def close(self) -> None:
        return None


class _LocalCopy:
    """The objects of one local fetch: commits at `depth`, their trees not held by the target
    (a held tree has all its subtrees), blobs unless filtered out or over the file size
    limit (recorded in `too_large` instead), objects wanted by id."""

    def __init__(self, src: Any, have: Any, filter_spec: bytes | None, too_large: dict[bytes, int]):
        self.src, self.have, self.filter, self.too_large = src, have, filter_spec, too_large
        self.objects: list[Any] = []
        self._seen: set[bytes] = set()

    def _get(self, sha: bytes) -> Any:
        try:
            return self.src[sha]
        except KeyError:
            raise LookupError(f"object {sha.decode()} not found") from None

    def _add(self, obj: Any) -> bool:
        if obj.id in self._seen or obj.id in self.have:
            return False
        self._seen.add(obj.id)
        self.objects.append(obj)
        return True

    def want(self, sha: bytes, depth: int | None) -> set[bytes]:
        """Copy what `sha` needs; returns the shallow boundary (commits without parents)."""
        if self._blob_too_large(sha):
            return set()
        obj = self._get(sha)
        while obj.type_name == b"tag":
            self._add(obj)
            obj = self._get(obj.object[1])
        if obj.type_name == b"tree":
            self._tree(obj.id)
        elif obj.type_name != b"commit":
            self._add(obj)  # a blob asked for by id (one over the limit was not read), or a tag's
        elif self.filter == FILTER_TREES:
            self._commits(obj, depth)
        else:
            self._add(obj)
            self._tree(obj.tree)
            return {obj.id} if depth == 1 else set()
        return set()

    def _blob_too_large(self, sha: bytes) -> bool:
        """Whether `sha` is a blob over the limit, told from its stored header (it is then
        recorded and not read); anything else, or a size the store cannot tell, is False."""
        if sha in self.too_large:
            return True
        found = stored_blob_size(self.src, sha)
        if found is None or found <= MAX_FILE_BYTES:
            return False
        self.too_large[sha] = found
        return True

    def _commits(self, start: Any, depth: int | None) -> None:
        level, generation = [start], 1
        while level and (depth is None or generation <= depth):
            nxt = []
            for commit in level:
                if self._add(commit) or commit.id in self.have:
                    # A shallow source lacks the parents below its boundary: stop there.
                    nxt.extend(self.src[p] for p in commit.parents if p not in self._seen and p in self.src)
            level, generation = nxt, generation + 1

    def _tree(self, sha: bytes) -> None:
        stack = [sha]
        while stack:
            tree = self._get(stack.pop())
            if not self._add(tree):
                continue  # held (or queued) already, with everything below it
            for entry in tree.iteritems():
                if stat.S_ISDIR(entry.mode):
                    stack.append(entry.sha)
                elif stat.S_ISREG(entry.mode) or stat.S_ISLNK(entry.mode):
                    if (
                        self.filter is None
                        and entry.sha not in self.have
                        and not self._blob_too_large(entry.sha)
                    ):
                        self._add(self._get(entry.sha))


def stored_blob_size(store: Any, sha: bytes) -> int | None:
    """The size of blob `sha` in a dulwich disk store, read from headers without inflating
    the object: a loose object's first bytes, or a pack entry's header (for a delta, the
    first bytes of the delta state the size it makes, and its chain of bases the type).
    None when it is not a blob or the store cannot tell (an alternate, an unreadable header):
    the caller then reads it as before."""
    from core.git_wire import WireError

    try:
        for pack in getattr(store, "packs", ()):
            try:
                offset = pack.index.object_offset(sha)
            except KeyError:
                continue
            with open(pack._data_path, "rb") as f:  # noqa: SLF001 - dulwich keeps no public path
                return _packed_blob_size(pack, f, offset)
        path = store._get_shafile_path(sha.decode())  # noqa: SLF001 - the loose object's file
        with open(path, "rb") as f:
            head = zlib.decompressobj().decompress(f.read(4096), 64)
    except (AttributeError, OSError, ValueError, KeyError, IndexError, zlib.error, WireError):
        return None
    kind, _, rest = head.partition(b" ")
    size = rest.split(b"\0", 1)[0]
    return int(size) if kind == b"blob" and size.isdigit() else None


def _packed_blob_size(pack: Any, f: Any, offset: int) -> int | None:
    """The size of the object at `offset` of an open pack file if it is a blob. A delta's
    own first bytes give the size it makes; its type is its base's, followed down the chain
    (at most the pack's object count of steps: a damaged pack's cycle ends there)."""
    from core.git_wire import delta_size, entry_header

    made: int | None = None
    for _ in range(len(pack.index) + 1):
        f.seek(offset)
        head = f.read(4096)
        found = entry_header(head, 0)
        if found is None:
            return None
        type_num, size, base, pos = found
        if type_num not in (6, 7):  # a whole object ends the chain
            return (size if made is None else made) if type_num == 3 else None
        if made is None:
            made = delta_size(zlib.decompressobj().decompress(head[pos:], 32))
        # OFS_DELTA: its base sits `base` bytes before it; REF_DELTA: in the same pack by id
        # (only a thin pack, never stored, has it elsewhere).
        base = offset - base if type_num == 6 else pack.index.object_offset(base)
        if base == offset or base < 0:
            return None
        offset = base
    return None


# --- the fetcher -----------------------------------------------------------------------
class _Fetcher:
    """A transport for one URL plus the object store it fills."""

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
            if password:
                username, token = username or unquote(user), token or unquote(password)
            else:
                token = token or unquote(user)
            url = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
        self.url = redact_url(url)
        self._secret = token
        self.stats = {"fetches": 0, "objects": 0, "blobs": 0}
        #: Filters this server refused: later requests go without them (full fetch).
        self.refused_filters: set[bytes] = set()
        #: Blobs over the file size limit, dropped as they arrived: id -> size.
        self.too_large: dict[bytes, int] = {}
        self._url, self._username = url, username
        self.remote: Any = self._wire_remote(parts, username, token) or self._dulwich_remote()
        self.cache_path: str | None = None
        self.repo = self._open_repo(cache_dir)
        self.history = CommitHistory(self._fetch_commits, self._content_commit)

    def _wire_remote(self, parts: Any, username: str | None, token: str | None) -> Any:
        """Protocol v2 with the standard library (`core.git_wire`) for git:// and http(s)://
        without a proxy; None sends everything else to dulwich."""
        from core.git_wire import WireRemote, proxied

        if parts is None or parts.scheme not in ("git", "http", "https") or not parts.hostname:
            return None
        if parts.scheme != "git" and proxied():
            return None
        try:
            port = parts.port
        except ValueError:
            return None
        if token and parts.scheme != "git":
            username = username or token_username(self._url)
        else:
            username = token = None
        return WireRemote(parts.scheme, parts.hostname, port, parts.path or "/", timeout=HTTP_TIMEOUT,
                          username=username, password=token, max_blob_bytes=MAX_FILE_BYTES,
                          too_large=self.too_large)  # fmt: skip

    def _dulwich_remote(self) -> Any:
        from dulwich.client import LocalGitClient, get_transport_and_path
        from dulwich.config import ConfigDict

        url, token = self._url, self._secret
        parts = urlsplit(url) if "://" in url else None
        config = ConfigDict()
        config.set((b"http",), b"timeout", str(HTTP_TIMEOUT).encode())
        kwargs: dict[str, Any] = {"config": config}
        if token and parts is not None and parts.scheme in ("http", "https"):
            kwargs.update(username=self._username or token_username(url), password=token)
        try:
            client, path = get_transport_and_path(url, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any parse failure is a bad URL
            raise SourceError(f"unsupported repository URL {self.url}: {type(exc).__name__}") from None
        if isinstance(client, LocalGitClient):
            return _LocalRemote(path, self.too_large)
        return _NetworkRemote(client, path, self.too_large)

    def _fall_back_to_dulwich(self) -> None:
        """The server does not speak protocol v2: dulwich's client from now on (protocol
        v0/v1, no filters), into a dulwich store holding what was received so far."""
        from core.git_wire import RawRepo

        _log().info("%s does not speak git protocol v2: using dulwich's client", self.url)
        self.remote.close()
        self.remote = self._dulwich_remote()
        if isinstance(self.repo, RawRepo):
            held = self.repo
            self.repo = _memory_repo()
            self.repo.object_store._raw.update(held.object_store._raw)
            if held.object_store.shallow:
                self.repo.update_shallow(held.object_store.shallow, None)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.repo.close()
        self.remote.close()

    # -- stores -------------------------------------------------------------------------
    def _open_repo(self, cache_dir: str | None) -> Any:
        if cache_dir:
            try:
                return self._open_disk_repo(cache_dir)
            except OSError:  # an unusable cache directory (read-only, full): work in memory
                self.cache_path = None
        if isinstance(self.remote, _LocalRemote | _NetworkRemote):
            return _memory_repo()
        from core.git_wire import RawRepo

        return RawRepo()  # raw objects, no dulwich at all on the cold path

    def _open_disk_repo(self, cache_dir: str) -> Any:
        import shutil

        from dulwich.repo import Repo

        path = os.path.join(cache_dir, f"git-{cache_key(self.url)}.git")
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
        import fcntl

        with _cache_locks_guard:
            lock = _cache_locks.setdefault(self.cache_path, threading.Lock())
        with lock, open(os.path.join(self.cache_path, "fetch.lock"), "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _content_commit(self, sha: bytes) -> Any | None:
        if not self._has_commit(sha.decode()):
            return None
        return self.repo.object_store[sha]

    def _has_commit(self, sha: str) -> bool:
        try:
            type_num, _ = self.repo.object_store.get_raw(sha.encode())
        except KeyError:
            return False
        return type_num == 1

    def _remember(self, shas: Iterable[str]) -> None:
        """Keep fetched commits as refs so the next fetch advertises them as haves (an
        in-memory raw store advertises every commit it holds instead)."""
        refs = getattr(self.repo, "refs", None)
        if refs is None:
            return
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
        from core.git_wire import WireError, WireHangup, WireUnauthorized

        unauthorized: tuple[type, ...] = (WireUnauthorized,)
        hangup: tuple[type, ...] = (WireHangup,)
        if isinstance(self.remote, _NetworkRemote):
            from dulwich.client import HTTPUnauthorized
            from dulwich.errors import HangupException

            unauthorized, hangup = (*unauthorized, HTTPUnauthorized), (*hangup, HangupException)
        text = str(exc)
        if self._secret:
            text = text.replace(self._secret, "***")
        if isinstance(exc, unauthorized):
            reason = "authentication refused (HTTP 401): check the access token"
        elif isinstance(exc, ConnectionError | TimeoutError | OSError) and not text:
            reason = type(exc).__name__
        elif isinstance(exc, hangup):
            reason = f"the server closed the connection ({what} not found or not allowed)"
        elif "not our ref" in text or "invalid object" in text or "not found" in text.lower():
            reason = f"{what} not found on the server"
        elif isinstance(exc, WireError) and text:
            reason = f"the server said: {text}".replace(self.url, "<url>")
        else:
            reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
            reason = reason.replace(self.url, "<url>")
        return SourceError(f"cannot fetch {what} from {self.url}: {reason}")

    # -- fetching -----------------------------------------------------------------------
    def _fetch(self, repo: Any, wants: WantsFn, what: str, *, depth: int | None = None,
               filter_spec: bytes | None = None, ref_prefix: list[bytes] | None = None,
               haves: bool = True, need_refs: bool = True) -> dict[bytes, bytes]:  # fmt: skip
        from core.git_wire import NotV2, WireRemote

        if filter_spec in self.refused_filters:
            filter_spec = None
        kw: dict[str, Any] = dict(depth=depth, filter_spec=filter_spec, ref_prefix=ref_prefix, haves=haves)
        try:
            try:
                if isinstance(self.remote, WireRemote):
                    refs, received, honoured = self.remote.fetch(repo, wants, need_refs=need_refs, **kw)
                else:
                    refs, received, honoured = self.remote.fetch(repo, wants, **kw)
            except NotV2:
                is_content = repo is self.repo
                self._fall_back_to_dulwich()
                refs, received, honoured = self.remote.fetch(self.repo if is_content else repo, wants, **kw)
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - dulwich/network errors are reported, redacted
            raise self._error(exc, what) from None
        self.stats["fetches"] += 1
        self.stats["objects"] += received
        if filter_spec and not honoured:
            self.refused_filters.add(filter_spec)
            _log().warning(
                "%s refuses partial-clone filters (no 'filter' capability in protocol v2): "
                "fetched %s without filter %s, so every file's content came too",
                self.url, what, filter_spec.decode(),
            )  # fmt: skip
        return refs

    def _fetch_content(self, wants: WantsFn, what: str, **kw: Any) -> dict[bytes, bytes]:
        """The commits `wants` names at depth 1 with their trees, without blobs."""
        return self._fetch(self.repo, wants, what, depth=1, filter_spec=FILTER_BLOBS, **kw)

    def fetch_blobs(self, shas: Iterable[bytes]) -> None:
        """Fetch the blobs not held yet, by id, in one request. A blob over the size limit
        is dropped as it arrives (`too_large`). One dropped as a delta (of a dropped blob, or
        to a blob over the limit) has no known id, so when the server's pack had such
        deltas the blobs still missing are asked for again one by one (a pack of one object
        holds no delta, so each comes whole)."""
        store, too_large = self.repo.object_store, self.too_large
        missing = [s for s in dict.fromkeys(shas) if s not in store and s not in too_large]
        if not missing:
            return
        with self._locked():
            missing = [s for s in missing if s not in store and s not in too_large]
            if not missing:
                return
            before = self.stats["objects"]
            batches = [missing]
            while batches:
                batch, dropped = batches.pop(), getattr(self.remote, "dropped", 0)
                # No haves: the server would otherwise leave out blobs of commits we hold.
                self._fetch(self.repo, lambda refs, depth=None, batch=batch: list(batch), f"{len(batch)} file(s)",
                            ref_prefix=[b"HEAD"], haves=False, filter_spec=None, need_refs=False)  # fmt: skip
                left = [s for s in batch if s not in store and s not in too_large]
                if left and len(batch) > 1 and getattr(self.remote, "dropped", 0) > dropped:
                    batches += [[s] for s in left]
            self.stats["blobs"] += self.stats["objects"] - before
            absent = sum(1 for s in missing if s not in store and s not in too_large)
        if absent:
            raise SourceError(f"cannot fetch {len(missing)} file(s) from {self.url}: "
                              f"the server did not send {absent} of them")  # fmt: skip

    def resolve_and_fetch(self, ref: str, branch: str | None = None) -> tuple[str, str | None, str | None]:
        """Fetch the commit `ref` names at depth 1 (trees, no blobs). Returns (commit,
        full ref, branch tip): the tip is the server's current commit of `branch` (or of
        `ref` when it is a branch), read from the same ref advertisement."""
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
            self._fetch_content(wants, f"ref {ref}", ref_prefix=prefixes)
            sha = found["sha"]
            if sha is None and _SHORT_SHA.match(low):
                sha = self._expand_short(low)
                if sha and not self._has_commit(sha):
                    self._fetch_content(lambda refs, depth=None: [sha.encode()], ref)
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
        store = self.repo.object_store
        if store.get_raw(sha.encode())[0] != 4:
            return sha  # not an annotated tag: nothing to parse
        obj = store[sha.encode()]
        while obj.type_name == b"tag":
            obj = self.repo.object_store[obj.object[1]]
        return obj.id.decode()

    def _expand_short(self, prefix: str) -> str | None:
        """A short id that is no ref tip: look it up in the full (commits-only) history."""
        matches = self.history.expand_short(prefix, self.repo.object_store)
        if len(matches) > 1:
            raise SourceError(f"cannot fetch {self.url}: commit id {prefix} is ambiguous")
        return matches.pop() if matches else None

    def ensure(self, shas: list[str]) -> None:
        """Make sure the commits (with their trees) are in the content store."""
        with self._locked():
            missing = [s for s in shas if not self._has_commit(s)]
            if missing:
                self._fetch_content(lambda refs, depth=None: [s.encode() for s in missing],
                                    "commit " + ", ".join(missing))  # fmt: skip
                self._remember(missing)

    def _fetch_commits(self, target: Any, wants: list[bytes] | None, depth: int | None, what: str) -> None:
        """Commit objects only (no trees) for `core.git_history`."""

        def pick(refs: dict[bytes, bytes], depth: int | None = None) -> list[bytes]:
            if wants is not None:
                return list(wants)
            return sorted({v for k, v in refs.items() if k.startswith(b"refs/") and not k.endswith(b"^{}")})

        self._fetch(target, pick, what, depth=depth, filter_spec=FILTER_TREES, haves=False)


def fetch_commit(
    url: str,
    ref: str,
    *,
    token: str | None = None,
    username: str | None = None,
    cache_dir: str | None = None,
    branch: str | None = None,
) -> GitCommitSource:
    """Fetch the commit `ref` names from `url` (depth 1, trees only) and return it as a
    source tree; file contents are fetched when read (see `GitCommitSource.prefetch`).

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
