"""age master keys (pyrage): identities from the caller, SOPS_AGE_KEY, SOPS_AGE_KEY_FILE,
SOPS_AGE_KEY_CMD, SOPS_AGE_SSH_PRIVATE_KEY_FILE and <config dir>/sops/age/keys.txt."""

from __future__ import annotations

import os
import shlex
import subprocess
from typing import TYPE_CHECKING, Any

from core.sops.errors import KeySourceError

if TYPE_CHECKING:
    from core.sops.keyring import KeyRing
    from core.sops.metadata import MasterKeyRef


def parse_identities(text: str, where: str) -> list[Any]:
    """age identity file syntax: one key per line, '#' comments and blank lines skipped."""
    import pyrage

    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("AGE-PLUGIN-"):
            raise KeySourceError(f"age: plugin identities are not supported ({where}, line {n})")
        try:
            out.append(pyrage.x25519.Identity.from_str(line))
        except Exception:  # noqa: BLE001 - pyrage raises its own types
            raise KeySourceError(f"age: cannot parse identity ({where}, line {n})") from None
    return out


def _config_dir(env: dict[str, str]) -> str | None:
    xdg = env.get("XDG_CONFIG_HOME")
    if xdg:
        return xdg
    home = env.get("HOME")
    return os.path.join(home, ".config") if home else None


def load_identities(ring: KeyRing) -> list[Any]:
    env = ring.env
    ids: list[Any] = []
    for i, text in enumerate(ring.age_identities or []):
        ids.extend(parse_identities(text, f"caller identity {i + 1}"))
    if "SOPS_AGE_KEY" in env:
        ids.extend(parse_identities(env["SOPS_AGE_KEY"], "SOPS_AGE_KEY"))
    if "SOPS_AGE_KEY_FILE" in env:
        try:
            with open(env["SOPS_AGE_KEY_FILE"], encoding="utf-8") as fh:
                ids.extend(parse_identities(fh.read(), "SOPS_AGE_KEY_FILE"))
        except OSError:
            raise KeySourceError("age: failed to open SOPS_AGE_KEY_FILE file") from None
    if "SOPS_AGE_KEY_CMD" in env:
        try:
            args = shlex.split(env["SOPS_AGE_KEY_CMD"])
            res = subprocess.run(args, capture_output=True, check=True, env=dict(env))  # noqa: S603
        except (OSError, ValueError, subprocess.CalledProcessError):
            raise KeySourceError("age: failed to execute SOPS_AGE_KEY_CMD") from None
        ids.extend(parse_identities(res.stdout.decode("utf-8", "replace"), "SOPS_AGE_KEY_CMD"))
    ssh_file = env.get("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
    if ssh_file:
        import pyrage

        try:
            with open(ssh_file, "rb") as fh:
                ids.append(pyrage.ssh.Identity.from_buffer(fh.read()))
        except Exception:  # noqa: BLE001
            raise KeySourceError("age: cannot read SOPS_AGE_SSH_PRIVATE_KEY_FILE") from None
    cfg = _config_dir(env)
    if cfg:
        path = os.path.join(cfg, "sops", "age", "keys.txt")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                ids.extend(parse_identities(fh.read(), path))
    return ids


def decrypt(ref: MasterKeyRef, ring: KeyRing) -> bytes:
    import pyrage

    ids = ring.cached_identities("age", lambda: load_identities(ring))
    who = ref.get("recipient") or "age"
    if not ids:
        raise KeySourceError(f"age key {who}: no age identity configured")
    try:
        return pyrage.decrypt(ref.enc.encode("utf-8"), ids)
    except Exception:  # noqa: BLE001 - pyrage.DecryptError and friends
        raise KeySourceError(f"age key {who}: no configured identity could decrypt the data key") from None
