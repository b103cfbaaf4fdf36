"""GCP backends for tests, started once per session on free loopback ports.

* ``drongo`` — Secret Manager (REST, global secrets) as a subprocess; state is reset before
  every test with ``POST /drongo/reset``.
* ``pm_fake`` — the Parameter Manager fake (tests/fakes/gcp_parameter_manager.py), which
  renders ``__REF__`` references by reading the secrets from drongo.

``gcp_env`` points the stores at both through GCP_SECRET_MANAGER_ENDPOINT and
GCP_PARAMETER_MANAGER_ENDPOINT, exactly as a user would for emulators.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.gcp_parameter_manager import ParameterManagerFake

PROJECT = "test-project"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _drongo_bin() -> str:
    local = Path(sys.executable).with_name("drongo")
    return str(local) if local.exists() else (shutil.which("drongo") or "drongo")


class Drongo:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = ""

    def start(self) -> Drongo:
        for _ in range(5):
            port = _free_port()
            proc = subprocess.Popen(
                [_drongo_bin(), "server", "--host", "127.0.0.1", "--port", str(port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            if self._ready(port, proc):
                self.proc, self.endpoint = proc, f"http://127.0.0.1:{port}"
                return self
            proc.kill()
            proc.wait()
        raise RuntimeError("drongo did not start")

    @staticmethod
    def _ready(port: int, proc: subprocess.Popen[bytes]) -> bool:
        for _ in range(500):
            if proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/drongo/health", timeout=0.2):
                    return True
            except OSError:
                threading.Event().wait(0.01)
        return False

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.endpoint}/drongo/reset", method="POST", data=b"")
        urllib.request.urlopen(req, timeout=5).read()

    def stop(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self.proc.wait()


@pytest.fixture(scope="session")
def drongo_server() -> Iterator[Drongo]:
    server = Drongo().start()
    try:
        yield server
    finally:
        server.stop()


def drongo_resolver(endpoint: str):  # type: ignore[no-untyped-def]
    """Resolve ``projects/P/secrets/S/versions/V`` against drongo (for ``__REF__`` rendering)."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import secretmanager_v1

    client = secretmanager_v1.SecretManagerServiceClient(
        transport="rest", credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=endpoint),
    )  # fmt: skip

    def resolve(name: str) -> bytes | None:
        try:
            return bytes(client.access_secret_version(name=name).payload.data)
        except Exception:  # noqa: BLE001 - unresolvable reference
            return None

    return resolve


@pytest.fixture(scope="session")
def pm_server(drongo_server: Drongo) -> Iterator[ParameterManagerFake]:
    with ParameterManagerFake(secret_resolver=drongo_resolver(drongo_server.endpoint)) as fake:
        yield fake


@pytest.fixture
def gcp_env(drongo_server: Drongo, pm_server: ParameterManagerFake, monkeypatch: pytest.MonkeyPatch):
    """Fresh backends and the endpoint variables set; yields (drongo, pm_fake)."""
    drongo_server.reset()
    pm_server.reset()
    monkeypatch.setenv("GCP_SECRET_MANAGER_ENDPOINT", drongo_server.endpoint)
    monkeypatch.setenv("GCP_PARAMETER_MANAGER_ENDPOINT", pm_server.endpoint)
    monkeypatch.setenv("SMF_FINGERPRINT_KEY", "test-fingerprint-key")
    # google-api-core retries transient errors for at most this long (a dead endpoint in a
    # test gives up after a second instead of a minute)
    monkeypatch.setenv("SMF_GCP_RETRY_TIMEOUT", "1")
    return drongo_server, pm_server
