"""Many workers finishing the items of one run at the same instant (a barrier, no sleeps):
what every run-state backend must survive with exactly one final record."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def racing_finishes(state_for_worker: Callable[[], Any], run_id: str, items: list[str],
                    result: dict[str, Any]) -> list[dict[str, Any]]:  # fmt: skip
    """Start `run_id` with `items`, then finish each from its own thread, all released at once;
    returns the final records the finishers got back (exactly one is right)."""
    state_for_worker().start(run_id, items, {})
    barrier = threading.Barrier(len(items))
    finals: list[dict[str, Any]] = []

    def worker(item: str) -> None:
        state = state_for_worker()
        barrier.wait()
        got = state.finish(run_id, item, result)
        if got is not None:
            finals.append(got)

    threads = [threading.Thread(target=worker, args=(i,)) for i in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return finals
