"""PGP master keys through a `gpg` binary (SOPS_GPG_EXEC or `gpg` on PATH).

The armored message goes to gpg's stdin and the key comes back on its stdout: nothing is
written to disk. GNUPGHOME from the ring's environment selects the keyring.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

from core.sops.errors import KeySourceError

if TYPE_CHECKING:
    from core.sops.keyring import KeyRing
    from core.sops.metadata import MasterKeyRef


def decrypt(ref: MasterKeyRef, ring: KeyRing) -> bytes:
    fp = ref.get("fp") or "pgp"
    exe = ring.env.get("SOPS_GPG_EXEC") or "gpg"
    path = shutil.which(exe, path=ring.env.get("PATH"))
    if path is None:
        raise KeySourceError(
            f"PGP key {fp}: no gpg binary found (install GnuPG or set SOPS_GPG_EXEC); "
            "this runtime cannot decrypt PGP-encrypted data keys"
        )
    try:
        res = subprocess.run(  # noqa: S603
            [path, "--batch", "--quiet", "--no-tty", "--decrypt"],
            input=ref.enc.encode(),
            capture_output=True,
            env=dict(ring.env),
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        raise KeySourceError(f"PGP key {fp}: failed to run gpg") from None
    if res.returncode != 0 or not res.stdout:
        raise KeySourceError(f"PGP key {fp}: gpg could not decrypt the data key")
    return res.stdout
