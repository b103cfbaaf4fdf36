"""Cold start of the Lambda function's push path against a bare ``import boto3`` function,
as whole processes, side by side in one run (issue #11: at most 1.5x, median of 7).

    .venv/bin/python bench/bench_coldstart.py [--runs 7] [--python PATH ...] [--profile]
                                              [--write-doc docs/benchmarks.md]

Each round starts one fresh interpreter per method, in a rotating order so that load from
other processes falls on all of them alike; every process runs under GNU time (wall time,
CPU, peak RSS; bench/_measure.py). The methods:

* the interpreter alone (``pass``): the floor both functions share;
* a bare boto3 function: ``import boto3``;
* ours, the push path: ``import handlers.aws_lambda`` (the module Lambda loads for
  ``handler: handlers/aws_lambda.handler``) plus what a push invocation imports from the core
  (intake, sync, both AWS stores, SOPS with its dotenv format, Git fetch; the config loader
  and PyYAML come with sync) and ``boto3``, which the push's store clients import;
* ours plus what the push then loads while it runs (the protocol v2 client, dulwich's
  repository for the /tmp fetch cache, pyrage, cryptography's AES-GCM, the YAML SOPS format), shown next to it so that nothing
  the lazy imports defer is hidden.

The environment is the deployed function's (serverless.yml: tracing off, Lambda's
``AWS_LAMBDA_FUNCTION_NAME`` set). Two bytecode settings, both applied to every method: with
compiled bytecode (a warm-up process writes the ``__pycache__`` files first), and without it
for everything outside the standard library (``PYTHONPYCACHEPREFIX`` pointing at a directory
that holds only the standard library's bytecode, writing off): boto3, powertools and the core
are compiled from source in every process, as from a package without ``.pyc`` files, which is
what infra/aws/package.py builds (the Lambda runtime's own standard library is compiled).

``--python`` names the interpreters to run (each with its own site-packages: the dev venv,
or one holding handlers/aws_lambda.requirements.lock for the runtime serverless.yml deploys);
default: this one. ``--profile`` also prints the push path's slowest imports beyond boto3 (``-X importtime``,
self time, median of 3) to say where the rest of the time goes. Benchmarks are not tests:
nothing here runs in the suite.
"""

# ruff: noqa: E402
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _measure import TABLE_HEAD, Series, machine, run_process, write_section

#: What a push invocation imports from the core, besides the handler (issue #11's list; SOPS
#: with the dotenv format, which decrypts `application.secrets.env`).
PUSH_MODULES = ("core.intake", "core.sync", "core.stores.aws_secrets_manager",
                "core.stores.aws_parameter_store", "core.sops", "core.sops.formats.dotenv",
                "core.git_fetch")  # fmt: skip
#: What the push loads lazily while it runs: the protocol v2 client, dulwich's repository for
#: the fetch cache in /tmp (Lambda has one), pyrage and AES-GCM to decrypt, the YAML SOPS
#: format for `application.secrets.yaml`.
RUN_MODULES = ("core.git_wire", "dulwich.repo", "pyrage", "cryptography.hazmat.primitives.ciphers.aead",
               "core.sops.formats.yaml_format", "core.sops.formats.yaml_emit")  # fmt: skip
PUSH = "import handlers.aws_lambda; import " + ", ".join(PUSH_MODULES) + "; import boto3"
METHODS = {
    "interpreter alone: `python -c pass`": "pass",
    "bare boto3 function: `import boto3`": "import boto3",
    "ours, push path: handler + intake, sync, both AWS stores, SOPS, Git fetch + boto3": PUSH,
    "ours, push path + what a push then loads (v2 client, dulwich repo, pyrage, AES-GCM, YAML SOPS)":
        PUSH + "; import " + ", ".join(RUN_MODULES),
}  # fmt: skip
BASE, OURS, FULL = list(METHODS)[1:]
#: Run after importing everything with PYTHONPYCACHEPREFIX set: compiles the loaded standard
#: library modules (only those) into the prefix, where later processes find them.
STDLIB_ONLY = """
import py_compile, sys, sysconfig
std = sysconfig.get_paths()["stdlib"]
for mod in list(sys.modules.values()):
    f = getattr(mod, "__file__", None) or ""
    if f.startswith(std + "/") and "site-packages" not in f and f.endswith(".py"):
        py_compile.compile(f, doraise=True)
"""
HEAD = "Lambda cold start: push path against a bare `import boto3` function"


def lambda_env() -> dict[str, str]:
    """The deployed function's environment (serverless.yml), tracing off."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_LAMBDA_FUNCTION_NAME": "secret-manager-functions-prod-webhook",
            "POWERTOOLS_SERVICE_NAME": "secret-manager-functions",
            "POWERTOOLS_METRICS_NAMESPACE": "SecretManagerFunctions", "POWERTOOLS_LOG_LEVEL": "INFO",
            "POWERTOOLS_TRACE_DISABLED": "true", "SMF_TRACING": "false", "LANG": "C.UTF-8"}  # fmt: skip


def argv(code: str, python: str = sys.executable) -> list[str]:
    # sys.path[0] is the package root, as /var/task is on Lambda; the count of loaded modules
    # is printed so that the report can say how much each method loads.
    return [python, "-c", f"{code}\nimport sys; print(len(sys.modules))"]


def measure(runs: int, env: dict[str, str], python: str) -> tuple[dict[str, Series], dict[str, int]]:
    series = {name: Series(name) for name in METHODS}
    modules: dict[str, int] = {}
    names = list(METHODS)
    for name in names:  # warm-up: writes the bytecode caches where writing is on; not counted
        run_process(argv(METHODS[name], python), env=env, cwd=str(ROOT))
    for i in range(runs):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            sample = series[name].add(run_process(argv(METHODS[name], python), env=env, cwd=str(ROOT)))
            modules[name] = int(sample.stdout.decode().split()[-1])
    return series, modules


def profile(env: dict[str, str], python: str, top: int = 12) -> list[tuple[str, float]]:
    """The push path's modules that `import boto3` does not load, by median self time."""
    base = subprocess.run(argv("import sys, boto3; print(*sys.modules)", python), env=env, cwd=str(ROOT),
                          capture_output=True, text=True, check=True)  # fmt: skip
    known = set(base.stdout.split())
    selfs: dict[str, list[int]] = defaultdict(list)
    for _ in range(3):
        done = subprocess.run([python, "-X", "importtime", "-c", f"import boto3\n{PUSH}"], env=env,
                              cwd=str(ROOT), capture_output=True, text=True, check=True)  # fmt: skip
        for line in done.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+\d+ \| \s*(\S+)", line)
            if m and m.group(2) not in known:
                selfs[m.group(2)].append(int(m.group(1)))
    by_group: dict[str, float] = defaultdict(float)
    for name, values in selfs.items():
        parts = name.split(".")
        by_group[".".join(parts[:2]) if parts[0] in ("core", "aws_lambda_powertools") else parts[0]] += (
            statistics.median(values) / 1000
        )
    return sorted(by_group.items(), key=lambda kv: -kv[1])[:top]


def ratio(ours: Series, base: Series) -> tuple[float, float]:
    return ours.median_ms / base.median_ms, ours.min_ms / base.min_ms


def report(results: dict[str, tuple[dict[str, Series], dict[str, int]]], runs: int, where: str,
           pythons: str = "") -> str:  # fmt: skip
    lines = [f"## {HEAD}", "",
             "Whole processes started side by side in one run, in a rotating order, each under GNU",
             f"time: {runs} rounds, median, min, CPU and peak RSS per method (bench/bench_coldstart.py;",
             "its docstring says exactly what each method imports). Environment as deployed",
             "(serverless.yml, tracing off). **Compared: a fresh interpreter importing",
             "`handlers.aws_lambda` and the core modules a push invocation imports (`core.intake`,",
             "`core.sync`, `core.stores.aws_secrets_manager`, `core.stores.aws_parameter_store`,",
             "`core.sops` with its dotenv format, `core.git_fetch`) and boto3, against a fresh",
             "interpreter that runs `import boto3`.** Both run to exit, interpreter teardown included.", "",
             f"- Command: `.venv/bin/python bench/bench_coldstart.py --runs {runs} {pythons}--profile "
             "--write-doc docs/benchmarks.md`",
             f"- Machine: {where}",
             "- Interpreters: the dev venv, and the Lambda runtime's Python (serverless.yml: python3.13)",
             "  with the function's locked dependencies: `python3.13 -m venv V && V/bin/pip install",
             "  --require-hashes -r handlers/aws_lambda.requirements.lock`, passed as `--python V/bin/python`.",
             ""]  # fmt: skip
    for label, (series, modules) in results.items():
        lines += [f"**{label}**", "", TABLE_HEAD + " modules loaded |", "|---|---|---|---|---|---|"]
        lines += [s.row(f"{modules[n]:,}") for n, s in series.items()]
        med, low = ratio(series[OURS], series[BASE])
        fmed, flow = ratio(series[FULL], series[BASE])
        verdict = "met" if med <= 1.5 else "NOT met"
        lines += ["", f"- push path / bare boto3: median **{med:.2f}×** (min {low:.2f}×), target ≤ 1.5×: "
                      f"**{verdict}**; peak RSS {series[OURS].rss_mib:.0f} vs {series[BASE].rss_mib:.0f} MiB.",
                  f"- with what the push then loads: median {fmed:.2f}× (min {flow:.2f}×).", ""]  # fmt: skip
    return "\n".join(lines)


def version(python: str) -> str:
    done = subprocess.run([python, "-c", "import platform, boto3; print(platform.python_version(), boto3.__version__)"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    py, boto = done.stdout.split()
    return f"Python {py}, boto3 {boto}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--python", action="append", help="interpreter to run (repeatable; default: this one)")
    ap.add_argument("--profile", action="store_true", help="also say where the extra time goes")
    ap.add_argument("--write-doc", help="replace this benchmark's section of that file (docs/benchmarks.md)")
    args = ap.parse_args()
    where = machine()
    env = lambda_env()
    results: dict[str, tuple[dict[str, Series], dict[str, int]]] = {}
    for python in args.python or [sys.executable]:
        label = version(python)
        results[f"{label}, with compiled bytecode (`__pycache__` present)"] = measure(args.runs, env, python)
        with tempfile.TemporaryDirectory() as prefix:
            cold = dict(env, PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=prefix)
            subprocess.run(argv(f"{METHODS[FULL]}\n{STDLIB_ONLY}", python), env=cold, cwd=str(ROOT), check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            results[f"{label}, without bytecode outside the standard library (compiled from source)"] = (
                measure(args.runs, cold, python)
            )
    pythons = "".join(f"--python {p} " for p in args.python or [])
    text = report(results, args.runs, where, pythons)
    if args.profile:
        python = (args.python or [sys.executable])[0]
        slow = ", ".join(f"{name} {value:.0f} ms" for name, value in profile(env, python))
        text += (
            f"\nWhere the push path's extra time goes ({version(python)}, `--profile`: `-X importtime` self "
            f"time of the modules `import boto3` does not load, median of 3, bytecode present): {slow}.\n"
        )
    print(text)
    if args.write_doc:
        write_section(Path(args.write_doc), HEAD, text)


if __name__ == "__main__":
    main()
