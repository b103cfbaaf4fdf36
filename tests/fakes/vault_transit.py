"""A wire-level fake of HashiCorp Vault's transit secrets engine (HTTP API v1), enough for sops.

Reproduces, from the Vault API docs (secrets/transit): ``POST|PUT /v1/<mount>/encrypt/<key>``
with ``{"plaintext": <base64>}`` answering ``{"data": {"ciphertext": "vault:v1:<base64>"}}``,
and ``POST|PUT /v1/<mount>/decrypt/<key>`` with ``{"ciphertext": ...}`` answering
``{"data": {"plaintext": <base64>}}``; ``X-Vault-Token`` is required (403 ``permission denied``
otherwise); unknown keys are created on encrypt (upsert, as the default policy allows) and
are ``400 encryption key not found`` on decrypt; a ciphertext that does not authenticate
under the key is ``400 invalid ciphertext``. Errors are ``{"errors": [...]}``. The
ciphertext is AES-256-GCM (nonce || ct) like transit's default aes256-gcm96 key type, bound
to the key: a ciphertext from one key does not decrypt under another.

Both the real sops binary (Go Vault client) and our urllib key source talk to it.
Requests are counted in `calls` as ``(METHOD, op, key)``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.fakes._loopback import base_url, read_body, send_json, start_server, stop_server


class FakeVaultTransit:
    def __init__(self, mount: str = "transit") -> None:
        self.mount = mount.strip("/")
        self.token = "hvs." + secrets.token_urlsafe(24)
        self.keys: dict[str, bytes] = {}
        self.calls: Counter[tuple[str, str, str]] = Counter()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ---
    def start(self) -> FakeVaultTransit:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = start_server(Handler)
        return self

    def stop(self) -> None:
        stop_server(self._server)
        self._server = None

    @property
    def url(self) -> str:
        return base_url(self._server)

    def create_key(self, name: str) -> None:
        self.keys.setdefault(name, os.urandom(32))

    # --- API ---
    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        prefix = f"/v1/{self.mount}/"
        if method not in ("POST", "PUT") or not path.startswith(prefix):
            return 404, {"errors": []}
        op, _, key = path[len(prefix) :].partition("/")
        self.calls[(method, op, key)] += 1
        if headers.get("X-Vault-Token") != self.token:
            return 403, {"errors": ["permission denied"]}
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            return 400, {"errors": ["failed to parse JSON input"]}
        if op == "encrypt":
            try:
                plain = base64.b64decode(doc["plaintext"], validate=True)
            except (KeyError, ValueError, TypeError):
                return 400, {"errors": ["failed to base64-decode plaintext"]}
            self.create_key(key)
            nonce = os.urandom(12)
            ct = AESGCM(self.keys[key]).encrypt(nonce, plain, key.encode())
            return 200, {
                "data": {"ciphertext": "vault:v1:" + base64.b64encode(nonce + ct).decode(), "key_version": 1}
            }
        if op == "decrypt":
            if key not in self.keys:
                return 400, {"errors": ["encryption key not found"]}
            ctext = str(doc.get("ciphertext", ""))
            if not ctext.startswith("vault:v1:"):
                return 400, {"errors": ["invalid ciphertext: no prefix"]}
            try:
                raw = base64.b64decode(ctext[len("vault:v1:") :], validate=True)
                plain = AESGCM(self.keys[key]).decrypt(raw[:12], raw[12:], key.encode())
            except (ValueError, InvalidTag):
                return 400, {"errors": ["invalid ciphertext"]}
            return 200, {"data": {"plaintext": base64.b64encode(plain).decode()}}
        return 404, {"errors": [f"no handler for route '{self.mount}/{op}'"]}


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeVaultTransit

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return None

    def _do(self) -> None:
        body = read_body(self)
        status, doc = self.server_fake.handle(self.command, self.path.split("?")[0], self.headers, body)
        send_json(self, status, doc)

    do_POST = _do
    do_PUT = _do
    do_GET = _do
