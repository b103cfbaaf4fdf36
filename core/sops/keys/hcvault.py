"""HashiCorp Vault transit keys over plain HTTPS (urllib): POST <engine>/decrypt/<key>.

Address: the key's `vault_address` (VAULT_ADDR when the file has none). Token: VAULT_TOKEN,
else ~/.vault-token, as the Vault client sops uses. VAULT_NAMESPACE is sent when set.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from core.sops.errors import KeySourceError

if TYPE_CHECKING:
    from core.sops.keyring import KeyRing
    from core.sops.metadata import MasterKeyRef


def _token(ring: KeyRing) -> str:
    tok = ring.env.get("VAULT_TOKEN", "")
    if tok:
        return tok
    home = ring.env.get("HOME")
    if home:
        path = os.path.join(home, ".vault-token")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                return fh.read().strip()
    return ""


def decrypt(ref: MasterKeyRef, ring: KeyRing) -> bytes:
    addr = str(ref.get("vault_address") or ring.env.get("VAULT_ADDR", "")).rstrip("/")
    engine = str(ref.get("engine_path")).strip("/")
    key = str(ref.get("key_name"))
    where = f"{addr}/v1/{engine}/decrypt/{key}"
    if not addr:
        raise KeySourceError("Vault key: no Vault address")
    body = json.dumps({"ciphertext": ref.enc}).encode()
    req = urllib.request.Request(where, data=body, method="POST")  # noqa: S310
    req.add_header("Content-Type", "application/json")
    tok = _token(ring)
    if tok:
        req.add_header("X-Vault-Token", tok)
    ns = ring.env.get("VAULT_NAMESPACE")
    if ns:
        req.add_header("X-Vault-Namespace", ns)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            payload = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise KeySourceError(f"Vault key {where}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise KeySourceError(f"Vault key {where}: request failed ({type(exc).__name__})") from None
    try:
        return base64.b64decode(payload["data"]["plaintext"], validate=True)
    except (KeyError, TypeError, binascii.Error, ValueError):
        raise KeySourceError(f"Vault key {where}: no plaintext in response") from None
