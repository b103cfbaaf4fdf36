"""GCP stores: first sync and no-op resync of a 100 services × 20 keys repo, against drongo
(Secret Manager) and the Parameter Manager fake, counting API calls per method.

    .venv/bin/python bench/bench_gcp.py [--services 100] [--keys 20]

Each service has 10 secrets (application.secrets.env) and 10 properties
(application.properties). Two configurations:

* ``secret-manager``: configs.enabled, everything in Secret Manager (one secret per key);
* ``parameter-manager``: secrets in Secret Manager, configs as one YAML document per service in
  Parameter Manager with ``__REF__`` references to the service's secrets.

For each: the first sync (everything created), a no-op full resync (fingerprints match: only
listing), and a drift check (resync reading every value back). Figures go to
docs/benchmarks.md ("## GCP ...").
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import parse_config_text  # noqa: E402
from core.source import LocalDirSource  # noqa: E402
from core.stores import open_store  # noqa: E402
from core.sync import run  # noqa: E402
from tests.fakes.gcp_parameter_manager import ParameterManagerFake  # noqa: E402

PROJECT = "bench-project"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_drongo() -> tuple[subprocess.Popen[bytes], str]:
    exe = Path(sys.executable).with_name("drongo")
    port = free_port()
    proc = subprocess.Popen([str(exe if exe.exists() else "drongo"), "server", "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    for _ in range(500):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/drongo/health", timeout=0.2):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            threading.Event().wait(0.01)
    raise RuntimeError("drongo did not start")


def make_repo(root: Path, services: int, keys: int) -> None:
    half = keys // 2
    for s in range(services):
        d = root / "services" / f"svc{s:03d}" / "deployment-configuration" / "profiles" / "dev"
        d.mkdir(parents=True)
        (d / "application.secrets.env").write_text(
            "".join(f"SECRET_{k:02d}=secret-{s:03d}-{k:02d}-value\n" for k in range(half))
        )
        (d / "application.properties").write_text(
            "".join(f"app.setting{k:02d}=value-{s:03d}-{k:02d}\n" for k in range(keys - half))
        )


def config_text(mode: str) -> str:
    configs = "{enabled: true}"
    gcp = f"projectId: {PROJECT}"
    if mode == "parameter-manager":
        configs = "{enabled: true, store: ParameterManager}"
        gcp += ", parameterManager: {mode: document, format: YAML, secretReferences: true}"
    return f"""
apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata: {{name: bench-dev}}
spec:
  provider: {{type: gcp, gcp: {{{gcp}}}}}
  secrets: {{environment: dev, basePath: services}}
  configs: {configs}
"""


class Counting:
    def __init__(self) -> None:
        self.stores: list = []

    def __call__(self, kind, config):  # type: ignore[no-untyped-def]
        store = open_store(kind, config)
        self.stores.append(store)
        return store

    def calls(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.stores:
            for k, v in s.calls.items():
                out[k] = out.get(k, 0) + v
        return out


def timed(configs, source, **kw):  # type: ignore[no-untyped-def]
    factory = Counting()
    t0 = time.perf_counter()
    report = run(configs, source, apply=True, store_factory=factory, **kw)
    dt = time.perf_counter() - t0
    assert not report.errors, report.errors[:3]
    return dt, report.summary, factory.calls()


def fmt_calls(calls: dict[str, int]) -> str:
    total = sum(calls.values())
    parts = ", ".join(f"{k} {v}" for k, v in sorted(calls.items()))
    return f"{total} ({parts})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=100)
    ap.add_argument("--keys", type=int, default=20)
    args = ap.parse_args()
    proc, endpoint = start_drongo()
    tmp = Path(tempfile.mkdtemp(prefix="bench-gcp-"))
    rows = []
    try:
        with ParameterManagerFake() as pm:
            os.environ["GCP_SECRET_MANAGER_ENDPOINT"] = endpoint
            os.environ["GCP_PARAMETER_MANAGER_ENDPOINT"] = pm.endpoint
            os.environ.setdefault("SMF_FINGERPRINT_KEY", "bench-fingerprint-key")
            make_repo(tmp / "repo", args.services, args.keys)
            source = LocalDirSource(tmp / "repo", commit="b" * 40)
            for mode in ("secret-manager", "parameter-manager"):
                urllib.request.urlopen(urllib.request.Request(f"{endpoint}/drongo/reset", data=b"",
                                                              method="POST")).read()  # fmt: skip
                pm.reset()
                configs = parse_config_text(config_text(mode), "bench.yaml")
                for label, kw in (
                    ("first sync", {}),
                    ("no-op resync", {}),
                    ("resync + drift check", {"drift": True}),
                ):
                    dt, summary, calls = timed(configs, source, **kw)
                    changed = {k: v for k, v in summary.items() if v}
                    rows.append((mode, label, dt, changed, calls))
                    print(
                        f"{mode:18} {label:22} {dt:7.2f} s  {changed}  calls={fmt_calls(calls)}", flush=True
                    )
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())  # fmt: skip
    print(f"\nmachine: nproc {os.cpu_count()}, {cpu}, Python {platform.python_version()}")
    print("\n| store(s) | run | time | result | API calls |\n|---|---|---|---|---|")
    for mode, label, dt, changed, calls in rows:
        print(f"| {mode} | {label} | {dt:.2f} s | {changed} | {fmt_calls(calls)} |")


if __name__ == "__main__":
    main()
