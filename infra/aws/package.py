"""Preflight and dependency layer of the AWS package, run by `osls package` / `osls deploy`.

Called by the local plugin infra/aws/serverless-plugin.js before osls zips anything, so a
package can only be built from a config the function will accept and with wheels the
function's CPU can load:

1. **Preflight**: the config named by `SMF_CONFIG_PATH` (default `smf-config.yaml`) must exist
   and pass our own validator (core.config), and every document must target AWS. Without it
   the function would answer every webhook with 500; here the build stops, naming the file
   and line.
2. **Dependencies**: the locked requirements (handlers/aws_lambda.requirements.lock, with hashes)
   installed by pip for the function's architecture and Python, without Docker:
   `--platform manylinux2014_<arch> --implementation cp --python-version X.Y
   --only-binary=:all:`. pip picks the target's wheels whatever the build machine is, so an
   x86-64 laptop builds an arm64 package. They are reinstalled only when the lock, the
   architecture or the Python version changes (a stamp records them).
3. **Inject** (after osls zipped the code): the installed dependencies are added at the root
   of the function zip, where Lambda's /var/task puts them on sys.path. (A layer would be
   neater, but osls asks CloudFormation about the last layer while packaging: not offline.)

    python infra/aws/package.py --arch arm64 --runtime python3.13 --out .build/aws-deps-arm64
    python infra/aws/package.py --inject .serverless/secret-manager-functions.zip --out ...
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "handlers" / "aws_lambda.requirements.lock"
#: Lambda's architecture names → the manylinux wheel machines pip asks for.
MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}
#: Lambda's Python runtimes run on Amazon Linux 2023 (glibc 2.34): these tags all load there.
MANYLINUX = ("manylinux2014", "manylinux_2_28", "manylinux_2_34")


class PreflightError(Exception):
    """The package would not work: the message says what to fix (file, line), never a value."""


def preflight(config_path: Path) -> int:
    """Validate the config the package ships; return how many documents it holds."""
    sys.path.insert(0, str(ROOT))
    from core.config import load_config_file
    from core.errors import SyncError

    if not config_path.is_file():
        raise PreflightError(
            f"{config_path}: missing. Copy your SecretManagerConfig documents there "
            "(cp my-configs.yaml smf-config.yaml) before packaging; see docs/aws.md 'Deploy'."
        )
    try:
        configs = load_config_file(config_path)
    except SyncError as exc:
        raise PreflightError(f"invalid config: {exc}") from None
    for cfg in configs:
        kind = str(getattr(cfg.provider, "type", cfg.provider))
        if kind != "aws":
            raise PreflightError(
                f"{config_path}: config {cfg.name!r} has provider {kind!r}; "
                "the Lambda function syncs only spec.provider.type: aws"
            )
    return len(configs)


def pip_command(arch: str, python_version: str, target: Path) -> list[str]:
    machine = MACHINES[arch]
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--no-deps", "--require-hashes", "--only-binary=:all:", "--implementation", "cp",
           "--python-version", python_version, "--target", str(target)]  # fmt: skip
    for tag in MANYLINUX:
        cmd += ["--platform", f"{tag}_{machine}"]
    return [*cmd, "-r", str(LOCK)]


def build_layer(arch: str, runtime: str, out: Path) -> bool:
    """Install the locked wheels into `out`/python; False when the cached layer is current."""
    if arch not in MACHINES:
        raise PreflightError(f"serverless.yml: provider.architecture {arch!r} is not arm64 or x86_64")
    if not runtime.startswith("python3."):
        raise PreflightError(f"serverless.yml: provider.runtime {runtime!r} is not a Python runtime")
    python_version = runtime.removeprefix("python")
    stamp_text = f"{hashlib.sha256(LOCK.read_bytes()).hexdigest()} {arch} {python_version}\n"
    stamp = out / ".stamp"
    if stamp.is_file() and stamp.read_text() == stamp_text and (out / "python").is_dir():
        return False
    shutil.rmtree(out, ignore_errors=True)
    cached = _cache_dir(stamp_text)
    if cached and (cached / ".stamp").is_file():
        shutil.copytree(cached, out, symlinks=True)
        return False
    target = out / "python"
    target.mkdir(parents=True)
    done = subprocess.run(pip_command(arch, python_version, target), check=False)
    if done.returncode != 0:
        raise PreflightError(
            f"pip could not install {LOCK.relative_to(ROOT)} for {arch} / Python {python_version} "
            "(see pip's message above)"
        )
    for cache in target.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    stamp.write_text(stamp_text)
    if cached:
        shutil.rmtree(cached, ignore_errors=True)
        shutil.copytree(out, cached, symlinks=True)
    return True


def _cache_dir(stamp_text: str) -> Path | None:
    """A built layer kept outside the work tree (SMF_TOOLS_CACHE, set by ./dev), so fresh clones
    and the tests' temporary service directories reuse it instead of downloading again."""
    base = os.environ.get("SMF_TOOLS_CACHE")
    if not base:
        return None
    return Path(base) / "aws-layers" / hashlib.sha256(stamp_text.encode()).hexdigest()[:16]


def inject(zip_path: Path, deps: Path) -> int:
    """Add every installed file under `deps`/python to the zip's root; return the count."""
    source = deps / "python"
    if not (deps / ".stamp").is_file():
        raise PreflightError(f"{deps}: dependencies not built (run the preflight first)")
    with zipfile.ZipFile(zip_path) as zf:
        present = set(zf.namelist())
    count = 0
    with zipfile.ZipFile(zip_path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source).as_posix()
            if path.is_file() and rel not in present:
                info = zipfile.ZipInfo.from_file(path, rel)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
                zf.writestr(info, path.read_bytes())
                count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch")
    ap.add_argument("--runtime")
    ap.add_argument("--config", default="smf-config.yaml")
    ap.add_argument("--out", required=True)
    ap.add_argument("--inject", help="the function zip to add the built dependencies to")
    args = ap.parse_args(argv)
    if args.inject:
        try:
            count = inject(Path(args.inject), Path(args.out))
        except PreflightError as exc:
            print(f"smf package: {exc}", file=sys.stderr)
            return 1
        print(f"smf package: {count} dependency files added to {args.inject}", file=sys.stderr)
        return 0
    if not (args.arch and args.runtime):
        ap.error("--arch and --runtime are required (or --inject)")
    try:
        count = preflight(Path(args.config))
        built = build_layer(args.arch, args.runtime, Path(args.out))
    except PreflightError as exc:
        print(f"smf preflight: {exc}", file=sys.stderr)
        return 1
    state = "built" if built else "up to date"
    print(
        f"smf preflight: {args.config}: {count} config(s) valid; {args.arch} dependencies {state}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
