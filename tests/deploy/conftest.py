"""Offline deploy checks: the tools `./dev test` installs once into a cache (see `dev`).

`SMF_OSLS` is the osls binary (npm, pinned in package.json / package-lock.json) and
`SMF_DEPLOY_TOOLS` the bin/ of the virtualenv holding cfn-lint, cfn-lint-serverless and
checkov (requirements-deploy-tools.txt). Run through `./dev test` they are always there; a
bare `pytest` without them skips these checks and says how to get them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOW = "run ./dev test (it installs osls and the linters once into a cache)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/deploy/" in item.nodeid:
            item.add_marker(pytest.mark.deploy)


def tool(name: str) -> str:
    """Path of a deploy-check tool, or skip naming what is missing and how to get it."""
    if name == "osls":
        path = os.environ.get("SMF_OSLS", "")
    else:
        path = str(Path(os.environ.get("SMF_DEPLOY_TOOLS", "/nonexistent")) / name)
    if not (path and os.access(path, os.X_OK)):
        pytest.skip(f"{name} is not installed: {HOW}")
    return path


def terraform() -> str:
    path = shutil.which("terraform")
    if not path:
        pytest.skip(
            "terraform is not on PATH (it is not on PyPI/npm; install it from your OS packages "
            "or hashicorp's releases to run the fmt check)"
        )
    return path


def offline_env(**extra: str) -> dict[str, str]:
    """Environment for osls: fake credentials (package makes no AWS call), no telemetry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SMF_CONFIG"))}
    env.update(
        AWS_ACCESS_KEY_ID="offline-packaging",
        AWS_SECRET_ACCESS_KEY="offline-packaging",  # noqa: S106 - not a credential
        AWS_EC2_METADATA_DISABLED="true",
        SLS_TELEMETRY_DISABLED="1",
        SLS_NOTIFICATIONS_MODE="off",
        NODE_NO_WARNINGS="1",
        SMF_PYTHON=sys.executable,
    )
    env.update(extra)
    return env


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, **kw)  # type: ignore[call-overload]
