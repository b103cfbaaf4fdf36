"""Azurite, Microsoft's Azure Storage emulator (npm, pinned in package.json), serving Table
Storage on a free loopback port: the real service's wire behaviour (ETags, If-Match, 409 and
412) for the Azure run state, instead of a fake that shares our assumptions.

`./dev test` installs it once with osls and sets ``SMF_AZURITE``. A bare `pytest` without it
skips these tests and says how to get it; under CI (``CI`` set) a missing emulator fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

#: The emulator's documented, public development account key (not a credential).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
ROOT = Path(__file__).resolve().parents[2]


def _missing(why: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{why}: ./dev test installs it from package-lock.json")
    pytest.skip(f"{why}: run ./dev test (it installs it once into a cache)")


def executable() -> str:
    for path in (os.environ.get("SMF_AZURITE") or "", str(ROOT / "node_modules" / ".bin" / "azurite-table")):
        if path and os.access(path, os.X_OK):
            return path
    _missing("azurite-table (the Table Storage emulator) is not installed")


@pytest.fixture(scope="session")
def azurite_tables(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A connection string to a running azurite-table (in memory, one per session)."""
    if shutil.which("node") is None:
        _missing("node is not installed (Azurite needs it)")
    exe = executable()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [exe, "--tableHost", "127.0.0.1", "--tablePort", str(port), "--inMemoryPersistence",
            "--disableTelemetry", "--skipApiVersionCheck", "--loose"]  # fmt: skip
    proc = subprocess.Popen(args, cwd=tmp_path_factory.mktemp("azurite"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    seen: list[str] = []
    assert proc.stdout is not None
    # Its ready line ("... successfully started on 127.0.0.1:<port>"; older releases said
    # "successfully listening at"); no timed wait: the loop ends at that line or at exit.
    for line in proc.stdout:
        seen.append(line)
        if "successfully" in line and str(port) in line:
            break
    else:
        proc.wait()
        pytest.fail("azurite-table did not start: " + "".join(seen[-5:]))
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep draining its log
    try:
        yield (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};"
               f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def run_table(azurite_tables: str) -> tuple[str, str]:
    """A fresh table in Azurite: (table name, connection string)."""
    from azure.data.tables import TableServiceClient

    name = "runs" + uuid.uuid4().hex[:12]
    TableServiceClient.from_connection_string(azurite_tables).create_table(name)
    return name, azurite_tables
