"""Fixtures for core tests: a writable copy of the example repo and a local-store config."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SVC = "microservices/{service}/deployment-configuration/profiles/dev"

#: Plaintext repo used by the core tests (the example repo is SOPS-encrypted).
FILES = {
    f"{SVC.format(service='orders')}/application.secrets.env": (
        '# orders\nDB_PASSWORD="orders db pa55word"\nexport API_TOKEN=tok-orders-123456\n'
    ),
    f"{SVC.format(service='orders')}/application.properties": (
        "server.port=8080\norders.greeting = Bonjour \\u00e0 tous\ndb.url : jdbc:postgresql://db/orders\n"
    ),
    f"{SVC.format(service='payments')}/application.secrets.yaml": (
        "gateway:\n  api_key: payments-gateway-key-1\n  webhook_secret: payments-hook-secret-1\n"
    ),
    f"{SVC.format(service='payments')}/application.config.yaml": (
        "payments:\n  currency: EUR\n  retries: 3\n"
    ),
    "README.md": "not read\n",
    "microservices/orders/src/Main.java": "class Main {}\n",
}
SECRETS = ["orders db pa55word", "tok-orders-123456", "payments-gateway-key-1", "payments-hook-secret-1"]


def make_repo(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", FILES)


@pytest.fixture(autouse=True)
def _local_store_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMF_LOCAL_STORE_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.delenv("SMF_FINGERPRINT_KEY", raising=False)


def write_config(tmp_path: Path, body: str = "", *, name: str = "example-dev", extra_spec: str = "") -> Path:
    db = tmp_path / "store.db"
    text = f"""
apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata:
  name: {name}
spec:
  provider:
    type: local
    local:
      path: {db}
  secrets:
    environment: dev
    basePath: microservices
  configs:
    enabled: true
{extra_spec}
"""
    path = tmp_path / "config.yaml"
    path.write_text(body or text)
    return path
