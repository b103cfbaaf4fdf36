"""A wire-level fake of the Cloud KMS REST API (v1) encrypt/decrypt methods.

The real `google-cloud-kms` client (transport="rest", api_endpoint http://127.0.0.1:<port>)
talks to it. Reproduced from the Cloud KMS REST reference:
``POST /v1/{name=projects/*/locations/*/keyRings/*/cryptoKeys/**}:encrypt`` with
``{"plaintext": <base64>, "additionalAuthenticatedData"?: <base64>}`` answering
``{"name": <cryptoKeyVersion>, "ciphertext": <base64>}``, and ``...:decrypt`` with
``{"ciphertext": <base64>}`` answering ``{"plaintext": <base64>}``. Unknown keys are
``404 NOT_FOUND``; a ciphertext that does not authenticate is ``400 INVALID_ARGUMENT``
("Decryption failed: the ciphertext is invalid."). Errors use the Google error envelope
``{"error": {"code", "message", "status"}}``. When `token` is set, requests must carry
``Authorization: Bearer <token>`` (401 UNAUTHENTICATED otherwise); with token None the client
may run with AnonymousCredentials. Requests are counted in `calls` as ``(method, key)``.
"""

from __future__ import annotations

import base64
import json
import os
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.fakes._loopback import base_url, read_body, send_json, start_server, stop_server


class FakeCloudKMS:
    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.keys: dict[str, bytes] = {}
        self.calls: Counter[tuple[str, str]] = Counter()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> FakeCloudKMS:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = start_server(Handler)
        return self

    def stop(self) -> None:
        stop_server(self._server)
        self._server = None

    @property
    def endpoint(self) -> str:
        return base_url(self._server)

    def create_key(self, resource_id: str) -> None:
        self.keys.setdefault(resource_id, os.urandom(32))

    def client(self) -> Any:
        """The real SDK client, pointed at this fake."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import kms

        return kms.KeyManagementServiceClient(
            transport="rest",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.endpoint},
        )

    def client_with_token(self, token: str) -> Any:
        from google.cloud import kms
        from google.oauth2.credentials import Credentials

        return kms.KeyManagementServiceClient(
            transport="rest", credentials=Credentials(token), client_options={"api_endpoint": self.endpoint}
        )

    @staticmethod
    def _err(code: int, status: str, message: str) -> tuple[int, dict[str, Any]]:
        return code, {"error": {"code": code, "message": message, "status": status}}

    def handle(self, method: str, path: str, body: bytes, auth: str = "") -> tuple[int, dict[str, Any]]:
        if self.token is not None and auth != f"Bearer {self.token}":
            return self._err(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if method != "POST" or not path.startswith("/v1/") or ":" not in path:
            return self._err(404, "NOT_FOUND", "Method not found.")
        name, _, op = path[len("/v1/") :].rpartition(":")
        self.calls[(op, name)] += 1
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            return self._err(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        key = self.keys.get(name)
        if key is None:
            return self._err(404, "NOT_FOUND", f"CryptoKey {name} not found.")
        aad = base64.b64decode(doc.get("additionalAuthenticatedData") or "")
        if op == "encrypt":
            plain = base64.b64decode(doc.get("plaintext") or "")
            nonce = os.urandom(12)
            ct = nonce + AESGCM(key).encrypt(nonce, plain, name.encode() + aad)
            return 200, {"name": name + "/cryptoKeyVersions/1", "ciphertext": base64.b64encode(ct).decode()}
        if op == "decrypt":
            raw = base64.b64decode(doc.get("ciphertext") or "")
            try:
                plain = AESGCM(key).decrypt(raw[:12], raw[12:], name.encode() + aad)
            except (ValueError, InvalidTag):
                return self._err(400, "INVALID_ARGUMENT", "Decryption failed: the ciphertext is invalid.")
            return 200, {"plaintext": base64.b64encode(plain).decode(), "usedPrimary": True}
        return self._err(404, "NOT_FOUND", "Method not found.")


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeCloudKMS

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return None

    def do_POST(self) -> None:
        body = read_body(self)
        from urllib.parse import unquote

        auth = self.headers.get("Authorization", "")
        status, doc = self.server_fake.handle("POST", unquote(self.path.split("?")[0]), body, auth)
        send_json(self, status, doc)

    do_GET = do_POST
