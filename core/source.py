"""The source tree a sync reads from: a local directory or one Git commit held in memory.

Discovery only ever asks a `SourceTree` for paths and bytes, so the same rules run over a
checkout on a laptop and over a commit fetched by dulwich inside a function, where no
checkout is written. Paths are POSIX, relative to the repository root, without a leading `/`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING

from core.errors import ParseError, SourceError, SyncError
from core.parsers.limits import MAX_FILE_BYTES

if TYPE_CHECKING:
    from pathlib import Path


class SourceTree(ABC):
    """Read-only view of a repository at one revision."""

    #: Full commit id when the tree is a Git commit, else None (a plain directory).
    commit: str | None = None
    #: Where the tree came from (a URL or a directory), for provenance.
    origin: str = ""

    @abstractmethod
    def walk_dirs(self, under: str = "") -> list[str]:
        """Every directory below `under` (included), as repo-relative paths ('' is the root)."""

    @abstractmethod
    def list_files(self, directory: str) -> list[str]:
        """Names of the regular files directly inside `directory` (not recursive)."""

    def read(self, path: str) -> bytes:
        """Bytes of one file. Raises SourceError when it is missing, ParseError when it is
        larger than `MAX_FILE_BYTES`: a hostile or generated file fails its own service, and
        is not held whole where the source can avoid it (a directory reads at most one byte
        past the limit; a Git source drops the blob as it arrives, core/git_wire.py, or, from a
        repository on this machine, does not copy it, core/git_fetch.py)."""
        path = path.strip("/")
        data = self._read(path, MAX_FILE_BYTES)
        if len(data) > MAX_FILE_BYTES:
            raise too_large(path, None)
        return data

    @abstractmethod
    def _read(self, path: str, limit: int) -> bytes:
        """The file `path`, of which more than `limit` bytes means "too large" (so reading
        `limit` + 1 is enough); raises SourceError when it is missing, or `too_large` when
        its size is known without reading it."""

    def is_dir(self, path: str) -> bool:
        return path.strip("/") in set(self.walk_dirs(_parent(path.strip("/"))))

    def prefetch(self, paths: Iterable[str]) -> None:
        """Say which files are about to be read, so that a source fetching contents on
        demand (a partial Git fetch) asks for all of them in one request. A no-op here."""
        return None

    def is_ancestor(self, older: str, newer: str) -> bool | None:
        """Whether commit `older` is an ancestor of (or equal to) `newer`; None if unknown."""
        return None

    def blob_id(self, path: str) -> str | None:
        """A content id of the file `path` (Git's blob id) without reading it where the source
        can; None when unknown (then nothing is cached for the service, core/desired_cache.py)."""
        return None

    def close(self) -> None:
        """Release what the source holds (a Git connection, a cache lock); a directory holds
        nothing. Callers close every source they opened, whatever its kind."""
        return None


def too_large(path: str, size: int | None) -> ParseError:
    """The error for a file over the limit, with its size when the source knows it."""
    if size is None:
        return ParseError(f"file is larger than the limit of {MAX_FILE_BYTES} bytes", path=path)
    return ParseError(f"file is {size} bytes; the limit is {MAX_FILE_BYTES} bytes", path=path)


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


class LocalDirSource(SourceTree):
    """A directory on disk (a working copy, or the examples/ repo of the quick start)."""

    def __init__(self, root: str | os.PathLike[str], commit: str | None = None) -> None:
        from pathlib import Path  # here, not at import: a Git fetch never loads pathlib

        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise SourceError(f"source directory does not exist: {root}")
        self.commit = commit
        self.origin = str(self.root)

    def _abs(self, rel: str) -> Path:
        path = (self.root / rel.strip("/")).resolve()
        if path != self.root and self.root not in path.parents:
            raise SourceError(f"path escapes the source directory: {rel}")
        return path

    def walk_dirs(self, under: str = "") -> list[str]:
        start = self._abs(under)
        if not start.is_dir():
            return []
        out: list[str] = []
        for dirpath, dirnames, _ in os.walk(start):
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            out.append("" if rel == "." else rel)
        return out

    def list_files(self, directory: str) -> list[str]:
        path = self._abs(directory)
        if not path.is_dir():
            return []
        return sorted(p.name for p in path.iterdir() if p.is_file())

    def _read(self, path: str, limit: int) -> bytes:
        try:
            with open(self._abs(path), "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size > limit:
                    raise too_large(path, size)
                return fh.read(limit + 1)  # a file that grows while read is still caught
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror}", path=path) from None

    def is_dir(self, path: str) -> bool:
        return self._abs(path).is_dir()

    def blob_id(self, path: str) -> str | None:
        """Git's blob id of the file's bytes (a directory has no tree to tell it unread)."""
        import hashlib

        try:
            data = self.read(path)
        except SyncError:  # missing or too large: no content id
            return None
        return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
