"""Shared pieces of the fuzz targets: the property every target checks, and the bounds.

The property (issue #10): every input ends in a result or a clear error for its own service,
never a traceback (an exception that is not a SyncError), never a hang beyond a bound, never
a write for the failing service. A new target (for example the webhook targets in
tests/fuzz/test_fuzz_webhooks.py) needs only:

    from hypothesis import given, settings
    from tests.fuzz.harness import bounded, examples, expect_result_or_error

    @settings(max_examples=examples(40))
    @given(body=st.binary())
    def test_my_target(body):
        with bounded():
            expect_result_or_error(lambda: handle(body), MyError)

and runs under both profiles defined in tests/fuzz/conftest.py.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from core.errors import SyncError

T = TypeVar("T")

#: Wall-clock bound for one example. A parser that takes longer is a failure, not a slow test.
EXAMPLE_SECONDS = 10.0


def examples(ci: int) -> int:
    """Examples per target: `ci` under the ci profile, twenty times more under `fuzz`."""
    return ci * 20 if os.environ.get("SMF_FUZZ_PROFILE") == "fuzz" else ci


class Hang(AssertionError):
    pass


@contextmanager
def bounded(seconds: float = EXAMPLE_SECONDS) -> Iterator[None]:
    """Fail the example if it runs longer than `seconds` (SIGALRM; pytest's main thread)."""

    def _alarm(signum: int, frame: Any) -> None:
        raise Hang(f"example ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def expect_result_or_error(
    call: Callable[[], T], error: type[Exception] = SyncError, path: str | None = None
) -> T | None:
    """Run `call`; a result or an `error` is fine, anything else fails the example.

    An `error` must be clear: it names `path` when given, and has a message."""
    try:
        return call()
    except error as exc:
        message = getattr(exc, "message", str(exc))
        assert message, "an error without a message"
        if path is not None:
            assert getattr(exc, "path", None) == path, f"error does not name the file: {exc!r}"
        return None
