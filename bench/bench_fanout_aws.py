"""Fan-out benchmark: the queued AWS path (core/fanout.py) against moto, as the platform runs
it: a resync job on an SQS queue fans a repository of N services x K keys out as work items;
W workers (threads, like Lambda's event source mapping with maximumConcurrency W) sync them,
with the run table in DynamoDB. Optionally a killed worker and injected throttling.

    .venv/bin/python bench/bench_fanout_aws.py [--services 1000] [--keys 20] [--workers 2 4]
        [--item-services 10] [--runs 1] [--faults]

Records per run: wall time, process CPU, store calls per key (by operation), SQS messages,
items and handoffs, and peak Python allocations (tracemalloc) per work item — the memory a
worker needs (moto's own memory is in the same process, so peak RSS is printed but is not a
worker's). moto runs in this process, so its CPU is in the figures; moto's DescribeParameters
re-scans every parameter for each 10-item page (and its stores take one lock here, see
tests/fanout/sqs_platform.py), so listing cost grows with the store's size, not with the slice.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _measure import cpu_model  # noqa: E402
from bench_aws import Calls  # noqa: E402 - the same per-operation call counter


def write_repo(root: Path, services: int, keys: int) -> None:
    from tests.fanout.conftest import repo_files

    for rel, text in repo_files(services, keys).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def one_run(
    endpoint: str, services: int, keys: int, workers: int, item_services: int, faults: bool
) -> dict[str, Any]:
    import urllib.request

    from core import intake, messages
    from core.config import parse_config_text
    from core.fanout import FanoutPolicy
    from core.source import LocalDirSource
    from core.stores import _aws
    from tests.aws.conftest import config_yaml
    from tests.fanout.conftest import Faults, Ticks, wrapped_factory
    from tests.fanout.sqs_platform import SqsPlatform

    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).read()  # noqa: S310
    _aws.reset_clients()
    tmp = Path(tempfile.mkdtemp(prefix="smf-fanout-bench-"))
    write_repo(tmp, services, keys)
    source_commit = "0" * 40
    configs = parse_config_text(config_yaml(endpoint, name="shop", sync={"prune": True}))
    platform = SqsPlatform(endpoint)
    calls = Calls()
    fault = Faults(kill_at={keys * 3 + 1}, throttle_at={keys * 40, keys * 200}) if faults else None
    policy = FanoutPolicy(max_services=1, item_services=item_services, item_seconds=600)
    peaks: list[int] = []
    lock = threading.Lock()
    dispatch_ctx: dict[str, Any] = {}

    def resolver(cfg: Any, commit: str) -> Any:
        return LocalDirSource(tmp, commit=source_commit)

    def handle(body: str) -> Any:
        ticks = Ticks()  # a real clock would also do; ticks keep the budget check deterministic
        ctx = intake.RunContext(store_factory=wrapped_factory(ticks, fault, (calls,)), enqueue=platform.send,
                                runstate=platform.state, fanout=policy, source_resolver=resolver,
                                clock=time.monotonic)  # fmt: skip
        out = intake.handle_message(body, configs, secret="bench-secret", context=ctx)
        return out

    # the dispatcher: a resync job over the local tree (the fetch is bench_git_fetch's subject)
    from core import fanout

    ctx0 = intake.RunContext(store_factory=wrapped_factory(Ticks(), None, (calls,)), enqueue=platform.send,
                             runstate=platform.state, fanout=policy, mac_key=messages.mac_key("bench-secret"))  # fmt: skip
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    dispatch_ctx["result"] = fanout.dispatch(configs, resolver(None, ""), None, ctx0, kind="resync")

    def traced(body: str) -> Any:
        out = handle(body)
        with lock:
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.reset_peak()
        return out

    stats = platform.drain(traced, workers=workers)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    tracemalloc.stop()
    # converged exactly: every secret and parameter holds Git's value, nothing else is there
    from tests.aws.conftest import all_parameters, all_secrets
    from tests.fanout.conftest import expected

    want_secrets, want_params = expected(services, keys)
    sm, ssm = _aws.client("secretsmanager", {}), _aws.client("ssm", {})
    converged = all_secrets(sm) == want_secrets and all_parameters(ssm) == want_params
    bodies = [o.body for o in stats.outcomes]
    last = [b for b in bodies if b.get("last")]
    total = services * keys
    by_op = dict(calls.calls)
    return {
        "services": services, "keys": keys, "workers": workers, "item_services": item_services, "faults": faults,
        "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "store_calls": sum(by_op.values()), "calls_per_key": round(sum(by_op.values()) / total, 3),
        "calls_by_op": by_op, "messages_received": stats.received, "returned": stats.returned,
        "killed": stats.killed, "items": (dispatch_ctx["result"] or {}).get("items"),
        "handoffs": sum(1 for b in bodies if b.get("handoff")),
        "run_outcomes": len(last), "run": (last[0]["run_outcome"]["results"][0]["report"]["summary"] if last else None),
        "converged": converged, "budget_s": policy.item_seconds,
        "max_item_s": round(max((b.get("elapsed") or 0) for b in bodies), 2),
        "peak_alloc_per_item_mib": {"max": round(max(peaks) / 2**20, 1), "median": round(statistics.median(peaks) / 2**20, 1)},
        "dead_letters": platform.dead_letters(),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--keys", type=int, default=20)
    ap.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--item-services", type=int, default=10)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--faults", action="store_true", help="kill one worker, throttle two writes past the SDK")
    args = ap.parse_args()
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      SMF_FINGERPRINT_KEY="bench-fingerprint-key")  # fmt: skip
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    print(
        json.dumps(
            {"machine": {"cpus": os.cpu_count(), "cpu": cpu_model(), "python": sys.version.split()[0]}}
        )
    )
    try:
        for workers in args.workers:
            results = [one_run(endpoint, args.services, args.keys, workers, args.item_services, args.faults)
                       for _ in range(args.runs)]  # fmt: skip
            for r in results:  # every run's counts: a fault that fails one run in three shows
                print(json.dumps(r))
            walls = [r["wall_s"] for r in results]
            print(json.dumps({
                "runs": len(results), "converged_runs": sum(r["converged"] for r in results),
                "one_outcome_runs": sum(r["run_outcomes"] == 1 for r in results),
                "wall_min_s": min(walls), "wall_median_s": statistics.median(walls),
                "max_item_s": max(r["max_item_s"] for r in results),
            }))  # fmt: skip
    finally:
        server.stop()
    print(
        json.dumps(
            {"peak_rss_mib_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
        )
    )


if __name__ == "__main__":
    main()
