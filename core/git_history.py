"""Commit ancestry for one remote repository, fetched lazily and commits only.

Plan asks "is the stored value's commit older than the pushed one?" for each entry whose
value changed. A push fetch holds the pushed commit at depth 1, which answers the common
case (the parent) once its parent is known; anything deeper is fetched here, separately from
the fetcher's content store so that tree-less commits never mix with the commits whose
trees we read:

- commits only (protocol v2 ``filter tree:0``, which GitHub, GitLab, Bitbucket and Gitea
  serve), into an in-memory store of their own;
- deepening 32 → 512 → full history, stopping as soon as the answer is known;
- walking from both ends: if ``newer`` is found below ``older`` the answer is False without
  reading the rest of the history, which is the common case of a push (before..after).

The fetcher hands in two callables (how to fetch commits, and how to look a commit up in
its content store), so this module knows nothing about transports, caches or credentials.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from core.errors import SourceError

_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
#: History depths fetched in turn until an ancestry question is answered (None = all).
DEEPEN_STEPS: tuple[int | None, ...] = (32, 512, None)

#: ``fetch_commits(target_repo, wants, depth, what)``: fetch commit objects only (no trees)
#: down to `depth` below `wants` (None: every branch and tag) into `target_repo`; raises
#: SourceError.
FetchCommits = Callable[[Any, list[bytes] | None, int | None, str], None]


class CommitHistory:
    """Answers ancestry questions, fetching only as much history as each answer needs."""

    def __init__(self, fetch_commits: FetchCommits, content_commit: Callable[[bytes], Any | None]):
        self._fetch_commits = fetch_commits
        self._content_commit = content_commit
        self._repo: Any = None
        self._answers: dict[tuple[str, str], bool | None] = {}

    @property
    def repo(self) -> Any:
        """The history store, made on first use: a fetch that never asks about ancestry
        does not import dulwich's repository code."""
        if self._repo is None:
            from dulwich.repo import MemoryRepo

            self._repo = MemoryRepo()
        return self._repo

    def commit(self, sha: bytes) -> Any | None:
        """The commit object `sha` from the content store or the history store, else None."""
        found = self._content_commit(sha)
        if found is not None:
            return found
        try:
            obj = self.repo.object_store[sha]
        except KeyError:
            return None
        return obj if obj.type_name == b"commit" else None

    def is_ancestor(self, older: str, newer: str) -> bool | None:
        """Whether `older` is `newer` or one of its ancestors; None when it cannot be told
        (not full ids, or `newer` unknown to the server)."""
        older, newer = (older or "").lower(), (newer or "").lower()
        if not (_FULL_SHA.match(older) and _FULL_SHA.match(newer)):
            return None
        if older == newer:
            return True
        key = (older, newer)
        if key not in self._answers:  # plan asks once per entry: answer once per pair
            self._answers[key] = self._search(older.encode(), newer.encode())
        return self._answers[key]

    def expand_short(self, prefix: str, content_ids: Any) -> set[str]:
        """Full ids of the commits starting with `prefix` in the whole history of every
        branch and tag (a short id that is no ref tip), plus those in `content_ids`."""
        self._fetch_commits(self.repo, None, None, f"history for {prefix}")
        return {
            sha.decode()
            for store in (content_ids, self.repo.object_store)
            for sha in store
            if sha.decode().startswith(prefix) and store[sha].type_name == b"commit"
        }

    def _search(self, o: bytes, n: bytes) -> bool | None:
        for depth in DEEPEN_STEPS:
            down = self._reaches(n, o)
            if down is not None:
                return down
            if self._reaches(o, n) is True:  # newer lies below older: not an ancestor
                return False
            if not self._deepen([o, n], depth):
                return None
        return self._reaches(n, o)

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
            commit = self.commit(sha)
            if commit is None:
                open_end = True
                continue
            for parent in commit.parents:
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return None if open_end else False

    def _deepen(self, shas: list[bytes], depth: int | None) -> bool:
        """Fetch commits (no trees) down to `depth` below `shas`. False if `newer` is unknown."""
        from dulwich.repo import MemoryRepo

        # A fresh store each round: the server sends commit objects only (tree:0), so
        # refetching from the tips is cheap and keeps the negotiation simple.
        fresh = MemoryRepo()
        known: list[bytes] = []
        for sha in shas:
            try:
                self._fetch_commits(fresh, [sha], depth, f"history of {sha.decode()}")
                known.append(sha)
            except SourceError:
                continue  # e.g. a recorded commit that was force-pushed away and pruned
        hist = self.repo.object_store
        for sha in fresh.object_store:
            obj = fresh.object_store[sha]
            if obj.type_name == b"commit" and sha not in hist:
                hist.add_object(obj)
        return shas[-1] in known or self.commit(shas[-1]) is not None
