"""The Azure Key Vault fake (tests/fakes/azure_key_vault.py) plus the *keys* data plane that
sops' azure_kv master keys use: an RSA key per name/version, ``GET /keys/{name}/{version}``
(JWK with n/e only) and ``POST /keys/{name}/{version}/decrypt`` / ``encrypt`` with
``{"alg": "RSA-OAEP-256", "value": <base64url, no padding>}`` answering
``{"kid", "value"}``. Other algorithms are ``400 BadParameter``; a value that does not
decrypt is ``400 BadParameter`` as well. Bearer challenge, TLS and fault injection come
from the secrets fake. The real `azure-keyvault-keys` CryptographyClient talks to it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.azure_key_vault import FakeKeyVault, _Error


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64url(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


OAEP256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class FakeKeyVaultWithKeys(FakeKeyVault):
    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.rsa_keys: dict[tuple[str, str], rsa.RSAPrivateKey] = {}

    def create_rsa_key(self, name: str, version: str = "0123456789abcdef0123456789abcdef") -> tuple[str, str]:
        self.rsa_keys[(name, version)] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return name, version

    def public_key(self, name: str, version: str) -> rsa.RSAPublicKey:
        return self.rsa_keys[(name, version)].public_key()

    def handle(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        parts = [p for p in path.strip("/").split("/") if p]
        if not parts or parts[0] != "keys":
            return super().handle(method, path, query, body)
        if not query.get("api-version"):
            raise _Error(400, "BadParameter", "The 'api-version' query parameter is missing.")
        if len(parts) < 3:
            raise _Error(404, "KeyNotFound", "A key with (name/id) was not found in this key vault.")
        name, version, rest = parts[1], parts[2], parts[3:]
        key = self.rsa_keys.get((name, version))
        if key is None:
            raise _Error(
                404, "KeyNotFound", f"A key with (name/id) {name}/{version} was not found in this key vault."
            )
        kid = f"{self.url}/keys/{name}/{version}"
        pub = key.public_key().public_numbers()
        if method == "GET" and not rest:
            self.calls[("GET", "/keys/{name}/{version}")] += 1
            n = pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")
            e = pub.e.to_bytes((pub.e.bit_length() + 7) // 8, "big")
            return 200, {
                "key": {
                    "kid": kid,
                    "kty": "RSA",
                    "key_ops": ["encrypt", "decrypt"],
                    "n": b64url(n),
                    "e": b64url(e),
                },
                "attributes": {"enabled": True, "recoveryLevel": "Recoverable+Purgeable"},
            }
        if method == "POST" and rest in (["decrypt"], ["encrypt"]):
            op = rest[0]
            self.calls[("POST", f"/keys/{{name}}/{{version}}/{op}")] += 1
            doc = json.loads(body or b"{}")
            if doc.get("alg") != "RSA-OAEP-256":
                raise _Error(400, "BadParameter", "Unsupported algorithm for this operation.")
            value = unb64url(str(doc.get("value", "")))
            if op == "encrypt":
                return 200, {"kid": kid, "value": b64url(key.public_key().encrypt(value, OAEP256))}
            try:
                plain = key.decrypt(value, OAEP256)
            except ValueError:
                raise _Error(400, "BadParameter", "Decryption failed.") from None
            return 200, {"kid": kid, "value": b64url(plain)}
        raise _Error(405, "MethodNotAllowed", "Method not allowed.")
