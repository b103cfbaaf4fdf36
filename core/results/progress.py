"""The CLI's progress display on stderr: per config the services read, per store the entries
written or deleted, with counts (``local-secrets: apply  512/1000``).

Shown only when stderr is a terminal and ``--quiet`` is not given: a CI log or a pipe gets no
control sequences and no partial lines. `rich` is imported here, when the display starts,
never by core.sync or a handler.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from core.report import CHANGING, Change
from core.sync import Progress, StoreFactory


class QuietProgress(Progress):
    """No display: a pipe, a CI log, or ``--quiet``."""

    def __enter__(self) -> QuietProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def wrap_factory(self, factory: StoreFactory | None) -> StoreFactory | None:
        """The store factory to run with (None: core.sync's default)."""
        return factory


def progress_for(*, quiet: bool, apply: bool, stream: IO[str] | None = None) -> QuietProgress:
    """A live display on `stream` (stderr) when it is a terminal and not `quiet`, else a no-op."""
    stream = sys.stderr if stream is None else stream
    if quiet or not _is_terminal(stream):
        return QuietProgress()
    try:
        return RichProgress(stream, apply=apply)
    except ImportError:  # a function package without rich: no display, same run
        return QuietProgress()


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class RichProgress(QuietProgress):
    """One bar per config (services read) and per store (entries applied)."""

    def __init__(self, stream: IO[str], *, apply: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
        from rich.progress import Progress as Bars

        self._bars = Bars(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[current]}"),
            console=Console(file=stream, stderr=True),
            transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._applying = apply
        self._finished: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    def _task(self, key: str, description: str, total: int) -> Any:
        if key not in self._tasks:
            self._tasks[key] = self._bars.add_task(description, total=total, current="")
        else:
            self._bars.update(self._tasks[key], total=total, description=description)
        return self._tasks[key]

    def services(self, config: str, total: int) -> None:
        self._task(f"config:{config}", f"{config}: services", total)

    def service_read(self, config: str, service: str) -> None:
        self._bars.update(self._tasks[f"config:{config}"], advance=1, current=service)

    def store_planned(self, store: str, changes: list[Change]) -> None:
        todo = sum(1 for c in changes if c.action in CHANGING)
        verb = "apply" if self._applying else "to change"
        task = self._task(f"store:{store}", f"{store}: {verb}", todo)
        if not self._applying:
            self._bars.update(task, completed=todo)

    def wrap_factory(self, factory: StoreFactory | None) -> StoreFactory | None:
        """A store factory whose stores advance the store's bar on every put and delete."""
        from core.sync import _open_store

        opener = factory or _open_store

        def open_counted(kind: str, config: Any) -> Any:
            return _CountedStore(opener(kind, config), lambda name, owner: self._advance(kind, name, owner))

        return open_counted

    def _advance(self, store: str, name: str, owner: str | None) -> None:
        task = self._tasks.get(f"store:{store}")
        with self._lock:
            if (store, name) in self._finished:  # a retried call counts once
                return
            self._finished.add((store, name))
        if task is not None:
            service = (owner or "").split("/")[1:2]
            self._bars.update(task, advance=1, current=service[0] if service else "")


class _CountedStore:
    """A store that reports each finished write or delete; everything else passes through."""

    def __init__(self, store: Any, done: Callable[[str, str | None], None]) -> None:
        self._store = store
        self._done = done

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def put(self, entry: Any, current: Any = None) -> Any:
        try:
            return self._store.put(entry, current)
        finally:
            self._done(entry.name, entry.owner)

    def delete(self, current: Any, **kwargs: Any) -> Any:
        try:
            return self._store.delete(current, **kwargs)
        finally:
            self._done(current.name, current.owner)
