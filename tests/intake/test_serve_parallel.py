"""`python -m core serve` under a burst of parallel deliveries (issue #10, item 6).

With the standard library's listen backlog of 5, a burst of 50 simultaneous deliveries got
7–15 connection resets. Git hosts send bursts (a push to several branches, redeliveries after
an outage), so every delivery must get an answer: the server listens with a backlog sized for
bursts and serialises only the syncs, not the accepting.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

from tests.intake.payloads import ZERO, github_push
from tests.intake.test_intake import N_SERVICES, SECRET, env, value  # noqa: F401 - fixture

PARALLEL = 50


def test_listen_backlog_is_sized_for_bursts(env):  # noqa: F811
    from core.serve import make_server

    _, configs, _ = env
    server = make_server(configs, port=0, secret=SECRET)
    try:
        assert server.request_queue_size >= 128
    finally:
        server.server_close()


def test_fifty_parallel_deliveries_all_get_an_answer(env):  # noqa: F811
    from core.serve import make_server

    repo, configs, _ = env
    server = make_server(configs, port=0, secret=SECRET)
    # Every client connects before the server accepts anything: the burst lands on the listen
    # queue at once, which is what a backlog of 5 cannot hold.
    start = threading.Barrier(PARALLEL + 1)
    results: list[int | str] = [""] * PARALLEL

    def deliver(i: int) -> None:
        event = "push" if i % 10 == 0 else "ping"
        h, b = github_push(repo.url, before=ZERO, after=repo.sha, secret=SECRET, event=event)
        req = urllib.request.Request(server.url, data=b, headers=h, method="POST")
        start.wait()
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310 - loopback
                json.loads(resp.read())
                results[i] = resp.status
        except urllib.error.HTTPError as exc:
            results[i] = exc.code
        except OSError as exc:  # connection reset / refused: what the small backlog produced
            results[i] = type(exc).__name__

    clients = [threading.Thread(target=deliver, args=(i,)) for i in range(PARALLEL)]
    for c in clients:
        c.start()
    start.wait()
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        for c in clients:
            c.join()
    finally:
        server.shutdown()
        server.server_close()
    failed = [r for r in results if r not in (200, 202)]
    assert not failed, (
        f"{len(failed)} of {PARALLEL} deliveries got no answer: {sorted(set(map(str, failed)))}"
    )
    # Five of the fifty were pushes of the same commit: the store holds it once, exactly.
    assert value(configs, "local-configs", "svc00/dev/replicas") == "1"
