"""AWS benchmark: a repo of 100 services x 20 keys synced into moto (Secrets Manager + Parameter
Store), then a no-op resync and a one-key change; API calls counted with botocore event hooks
and compared with the lower bound (list pages only). Optionally a first sync under injected
throttling. Then the Lambda handler's cold import time next to a bare ``import boto3``.

    .venv/bin/python bench/bench_aws.py [--services 100] [--keys 20] [--runs 7] [--throttle 20]

moto runs in this process (ThreadedMotoServer on 127.0.0.1), so its CPU time is included in
the wall times: they compare runs on one machine, not AWS latency.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _measure import cpu_model  # noqa: E402


class Calls:
    """API calls (one per operation) and HTTP attempts, by operation name."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-call", self.on_call, unique_id=f"bench-call-{id(self)}")

    def on_call(self, model: Any = None, **_: Any) -> None:
        with self.lock:
            self.calls[model.name] += 1

    def take(self) -> dict[str, int]:
        with self.lock:
            out = dict(self.calls)
            self.calls.clear()
        return out


class Throttle:
    """Every `every`-th PutParameter attempt after the first 50 answered with a
    ThrottlingException (at botocore's before-send, inside its retry loop), `n` in all."""

    def __init__(self, n: int, every: int = 50) -> None:
        self.n, self.every, self.seen, self.injected = n, every, 0, 0
        self.lock = threading.Lock()

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-send.ssm.PutParameter", self.on_send, unique_id=f"thr-{id(self)}")

    def on_send(self, request: Any = None, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        with self.lock:
            self.seen += 1
            if self.injected >= self.n or self.seen <= 50 or self.seen % self.every:
                return None
            self.injected += 1
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()

        class Raw:
            def stream(self, **_: Any) -> Any:
                yield body

        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, Raw())


def write_repo(
    root: Path, services: int, keys: int, version: dict[tuple[int, int], str] | None = None
) -> None:
    half = keys // 2
    for i in range(services):
        base = root / f"services/svc{i:03d}/deployment-configuration/profiles/dev"
        base.mkdir(parents=True, exist_ok=True)
        secrets = "".join(
            f"SECRET_{j}={(version or {}).get((i, j), f's3cret-{i}-{j}')}\n" for j in range(half)
        )
        props = "".join(
            f"key.{j}={(version or {}).get((i, half + j), f'value-{i}-{j}')}\n" for j in range(keys - half)
        )
        (base / "application.secrets.env").write_text(secrets)
        (base / "application.properties").write_text(props)


def config(endpoint: str) -> Any:
    from core.config import parse_config_text

    doc = {
        "apiVersion": "secret-manager.microscaler.io/v1alpha1",
        "kind": "SecretManagerConfig",
        "metadata": {"name": "bench"},
        "spec": {
            "provider": {"type": "aws", "aws": {"region": "us-east-1", "endpointUrl": endpoint}},
            "secrets": {"environment": "dev", "basePath": "services"},
            "configs": {"enabled": True},
            "sync": {"prune": True},
        },
    }
    return parse_config_text(json.dumps(doc))[0]


def sync(cfg: Any, root: Path, hooks: list[Any]) -> tuple[float, Any]:
    from core.source import LocalDirSource
    from core.stores import open_store
    from core.sync import run

    def factory(kind: str, c: Any) -> Any:
        store = open_store(kind, c)
        for hook in hooks:
            hook.attach(store.client)
        return store

    t0 = time.perf_counter()
    report = run([cfg], LocalDirSource(root), apply=True, store_factory=factory)
    return time.perf_counter() - t0, report


def bench_sync(args: argparse.Namespace) -> dict[str, Any]:
    from moto.server import ThreadedMotoServer

    from core.stores import _aws

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      SMF_FINGERPRINT_KEY="bench-fingerprint-key")  # fmt: skip
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    out: dict[str, Any] = {}
    try:
        root = Path(tempfile.mkdtemp(prefix="smf-bench-aws-"))
        write_repo(root, args.services, args.keys)
        cfg = config(endpoint)
        calls = Calls()
        secrets = args.services * (args.keys // 2)
        params = args.services * (args.keys - args.keys // 2)
        # Lower bound of a no-op resync: the list pages of both stores. AWS pages ListSecrets by
        # 100 and DescribeParameters by 50 (MaxResults); moto ignores MaxResults for
        # DescribeParameters and pages by 10 (and ends a full last page with an empty one).
        lower_aws = math.ceil(secrets / 100) + math.ceil(params / 50)
        lower_moto = math.ceil(secrets / 100) + params // 10 + 1

        seconds, report = sync(cfg, root, [calls])
        out["first_sync"] = {"seconds": round(seconds, 2), "summary": _nonzero(report.summary),
                             "errors": len(report.errors), "calls": calls.take()}  # fmt: skip
        seconds, report = sync(cfg, root, [calls])
        got = calls.take()
        listing = {"ListSecrets", "DescribeParameters"}
        out["noop_resync"] = {"seconds": round(seconds, 2), "summary": _nonzero(report.summary),
                              "calls": got, "total_calls": sum(got.values()),
                              "non_list_calls": sum(n for op, n in got.items() if op not in listing),
                              "lower_bound_moto_pages": lower_moto, "lower_bound_aws_pages": lower_aws}  # fmt: skip
        write_repo(root, args.services, args.keys, {(7, 3): "changed-value"})
        seconds, report = sync(cfg, root, [calls])
        got = calls.take()
        out["one_key_change"] = {"seconds": round(seconds, 2), "summary": _nonzero(report.summary),
                                 "calls": got, "total_calls": sum(got.values())}  # fmt: skip
        if args.throttle:
            import urllib.request

            urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).read()  # noqa: S310
            _aws.reset_clients()
            throttle = Throttle(args.throttle)
            seconds, report = sync(cfg, root, [calls, throttle])
            got = calls.take()
            out["first_sync_throttled"] = {"seconds": round(seconds, 2), "injected_throttles": throttle.injected,
                                           "summary": _nonzero(report.summary), "errors": len(report.errors),
                                           "calls": got}  # fmt: skip
    finally:
        server.stop()
    return out


def _nonzero(summary: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in summary.items() if v}


def bench_import(runs: int) -> dict[str, Any]:
    """Median cold import (fresh interpreter each run) of the handler and of bare boto3."""
    env = {"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_LAMBDA_FUNCTION_NAME": "bench", "POWERTOOLS_SERVICE_NAME": "bench"}  # fmt: skip
    snippets = {
        "handler (handlers/aws_lambda.py)": f"import sys; sys.path.insert(0, {str(ROOT / 'handlers')!r}); import aws_lambda",
        "handler, tracing disabled": f"import sys; sys.path.insert(0, {str(ROOT / 'handlers')!r}); import aws_lambda",
        "import boto3": "import boto3",
        "boto3 + 2 clients": "import boto3; boto3.client('ssm'); boto3.client('secretsmanager')",
    }
    out: dict[str, Any] = {}
    for label, snippet in snippets.items():
        code = f"import time; t = time.perf_counter(); {snippet}; print(time.perf_counter() - t)"
        run_env = dict(env, POWERTOOLS_TRACE_DISABLED="true") if "disabled" in label else env
        times = []
        for _ in range(runs):
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=run_env,
                                 cwd=str(ROOT), check=True)  # fmt: skip
            times.append(float(res.stdout.strip().splitlines()[-1]))
        out[label] = {"median_ms": round(statistics.median(times) * 1000, 1),
                      "min_ms": round(min(times) * 1000, 1), "runs": runs}  # fmt: skip
    return out


def machine() -> dict[str, Any]:
    return {"nproc": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--throttle", type=int, default=0, help="inject N PutParameter throttles")
    parser.add_argument("--skip-sync", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": machine(), "services": args.services, "keys_per_service": args.keys}
    if not args.skip_sync:
        result["sync"] = bench_sync(args)
    result["cold_import"] = bench_import(args.runs)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
