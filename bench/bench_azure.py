"""Azure stores: first sync and no-op resync of a 100 services × 20 keys repo against the Key
Vault (HTTPS, bearer challenge) and App Configuration (HMAC) fakes, counting API calls.

    .venv/bin/python bench/bench_azure.py [--services 100] [--keys 20]

Each service has 10 secrets (application.secrets.env → Key Vault) and 10 properties
(application.properties → App Configuration, label = environment). Two configurations:

* ``kv+appconfig``: configs.enabled, secrets in Key Vault, configs in App Configuration;
* ``kv+appconfig+refs``: the same plus a Key Vault reference in App Configuration for every
  secret (appConfig.keyVaultReferences).

For each: the first sync (everything created), a no-op full resync (fingerprints in tags
match: listing only, no value read, no write), and a drift check (the resync reading every
value back: what a tool that compares values instead of fingerprints pays on every run).
The fakes run in this process (threads), so times include their work too. Figures go to
docs/benchmarks.md ("## Azure ...").
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import parse_config_text  # noqa: E402
from core.source import LocalDirSource  # noqa: E402
from core.stores import _azure  # noqa: E402
from core.sync import run  # noqa: E402
from tests.fakes.azure_app_configuration import FakeAppConfiguration  # noqa: E402
from tests.fakes.azure_key_vault import FakeKeyVault  # noqa: E402

_VAULT: FakeKeyVault | None = None


def bench_credential():  # type: ignore[no-untyped-def]
    assert _VAULT is not None
    return _VAULT.credential()


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


def config_text(kv: FakeKeyVault, ac: FakeAppConfiguration, refs: bool) -> str:
    return f"""
apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata: {{name: bench-dev}}
spec:
  provider:
    type: azure
    azure:
      vaultUrl: {kv.url}
      appConfig: {{keyVaultReferences: {str(refs).lower()}}}
  secrets: {{environment: dev, basePath: services}}
  configs: {{enabled: true, appConfigEndpoint: {ac.url}}}
  sync: {{prune: true}}
"""


def calls(kv: FakeKeyVault, ac: FakeAppConfiguration) -> Counter[str]:
    out: Counter[str] = Counter()
    for (method, route), n in kv.calls.items():
        out[f"kv {method} {route}"] += n
    for (method, route), n in ac.calls.items():
        out[f"appconfig {method} {route}"] += n
    return out


def phase(name: str, kv: FakeKeyVault, ac: FakeAppConfiguration, fn) -> dict:  # type: ignore[no-untyped-def]
    kv.calls.clear()
    ac.calls.clear()
    t0 = time.perf_counter()
    report = fn()
    elapsed = time.perf_counter() - t0
    assert not report.errors, report.errors[:3]
    c = calls(kv, ac)
    return {"phase": name, "seconds": elapsed, "summary": dict(report.summary), "calls": c,
            "total": sum(c.values())}  # fmt: skip


COLD = {
    "function_app import (azure.functions only)": "import function_app",
    "+ everything a first webhook loads (core, Key Vault, App Configuration, azure-identity)": (
        "import function_app, core.intake, core.sync, core.git_fetch, core.sops, "
        "core.stores.azure_key_vault, core.stores.azure_app_configuration, "
        "azure.keyvault.secrets, azure.appconfiguration, azure.identity"
    ),
    "alternative: the same plus every cloud's SDK (boto3, google-cloud)": (
        "import function_app, core.intake, core.sync, core.git_fetch, core.sops, "
        "core.stores.azure_key_vault, core.stores.azure_app_configuration, "
        "azure.keyvault.secrets, azure.appconfiguration, azure.identity, "
        "boto3, google.cloud.secretmanager, google.cloud.parametermanager"
    ),
}


def cold_starts(runs: int = 5) -> list[tuple[str, float, float]]:
    """Median and min wall time of a fresh interpreter importing `code` from the built package."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "pkg"
        subprocess.run(["bash", str(ROOT / "handlers/azure_functions/build.sh"), str(pkg)], check=True,
                       capture_output=True)  # fmt: skip
        for label, code in COLD.items():
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-c", code], cwd=pkg, check=True, capture_output=True)
                times.append(time.perf_counter() - t0)
            times.sort()
            out.append((label, times[len(times) // 2], times[0]))
    return out


def main() -> None:
    global _VAULT
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--keys", type=int, default=20)
    args = parser.parse_args()

    kv = FakeKeyVault().start()
    ac = FakeAppConfiguration().start()
    _VAULT = kv
    os.environ.update({
        _azure.ENV_TEST_CREDENTIAL: "__main__:bench_credential",
        _azure.ENV_TEST_CA_BUNDLE: str(kv.cert_path),
        _azure.ENV_TEST_SKIP_CHALLENGE_CHECK: "1",
        _azure.ENV_APPCONFIG_CONNECTION_STRING: ac.connection_string,
        "SMF_FINGERPRINT_KEY": "bench-fingerprint-key",
    })  # fmt: skip
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            repo = Path(tmp) / "repo"
            make_repo(repo, args.services, args.keys)
            source = LocalDirSource(repo, commit="b" * 40)
            for refs in (False, True):
                kv.reset()
                ac.reset()
                _azure.clear_caches()
                configs = parse_config_text(config_text(kv, ac, refs))
                label = "kv+appconfig+refs" if refs else "kv+appconfig"
                for name, kw in (("first sync", {}), ("no-op resync", {}), ("drift check", {"drift": True})):
                    r = phase(name, kv, ac, lambda kw=kw: run(configs, source, apply=True, **kw))  # noqa: B023
                    r["config"] = label
                    results.append(r)
    finally:
        kv.stop()
        ac.stop()

    cold = cold_starts()
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())  # fmt: skip
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"command: .venv/bin/python bench/bench_azure.py --services {args.services} --keys {args.keys}")
    print(f"machine: nproc {nproc}, {cpu}, Python {platform.python_version()}")
    print(f"repo: {args.services} services x {args.keys} keys ({args.keys // 2} secrets + "
          f"{args.keys - args.keys // 2} properties each)\n")  # fmt: skip
    print("| configuration | phase | time | API calls | by method | plan summary |")
    print("|---|---|---|---|---|---|")
    for r in results:
        by = ", ".join(f"{k} {v}" for k, v in sorted(r["calls"].items()))
        summ = ", ".join(f"{k} {v}" for k, v in r["summary"].items() if v)
        print(f"| {r['config']} | {r['phase']} | {r['seconds']:.2f} s | {r['total']} | {by} | {summ} |")
    print("\n| cold start: new interpreter in the built package | median of 5 | min |")
    print("|---|---|---|")
    for label, median, best in cold:
        print(f"| {label} | {median * 1000:.0f} ms | {best * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
