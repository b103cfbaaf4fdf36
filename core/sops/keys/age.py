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


def _sources(ring: KeyRing) -> list[tuple[str, Any]]:
    """(where, loader) pairs in sops' order; each loader returns identities or raises."""
    env = ring.env
    out: list[tuple[str, Any]] = []
    for i, text in enumerate(ring.age_identities or []):
        where = f"caller identity {i + 1}"
        out.append((where, lambda t=text, w=where: parse_identities(t, w)))
    if "SOPS_AGE_KEY" in env:
        out.append(("SOPS_AGE_KEY", lambda: parse_identities(env["SOPS_AGE_KEY"], "SOPS_AGE_KEY")))
    if "SOPS_AGE_KEY_FILE" in env:

        def from_file() -> list[Any]:
            try:
                with open(env["SOPS_AGE_KEY_FILE"], encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                raise KeySourceError("age: failed to open SOPS_AGE_KEY_FILE file") from None
            return parse_identities(text, "SOPS_AGE_KEY_FILE")

        out.append(("SOPS_AGE_KEY_FILE", from_file))
    if "SOPS_AGE_KEY_CMD" in env:

        def from_cmd() -> list[Any]:
            try:
                args = shlex.split(env["SOPS_AGE_KEY_CMD"])
                res = subprocess.run(args, capture_output=True, check=True, env=dict(env))  # noqa: S603
            except (OSError, ValueError, subprocess.CalledProcessError):
                raise KeySourceError("age: failed to execute SOPS_AGE_KEY_CMD") from None
            return parse_identities(res.stdout.decode("utf-8", "replace"), "SOPS_AGE_KEY_CMD")

        out.append(("SOPS_AGE_KEY_CMD", from_cmd))
    ssh_file = env.get("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
    if ssh_file:

        def from_ssh() -> list[Any]:
            import pyrage

            try:
                with open(ssh_file, "rb") as fh:
                    return [pyrage.ssh.Identity.from_buffer(fh.read())]
            except Exception:  # noqa: BLE001
                raise KeySourceError("age: cannot read SOPS_AGE_SSH_PRIVATE_KEY_FILE") from None

        out.append(("SOPS_AGE_SSH_PRIVATE_KEY_FILE", from_ssh))
    cfg = _config_dir(env)
    if cfg:
        path = os.path.join(cfg, "sops", "age", "keys.txt")
        if os.path.isfile(path):

            def from_cfg() -> list[Any]:
                with open(path, encoding="utf-8") as fh:
                    return parse_identities(fh.read(), path)

            out.append((path, from_cfg))
    return out


def load_identities(ring: KeyRing) -> tuple[list[Any], list[str]]:
    """All identities that load; like sops, a broken source does not hide the others.

    Returns (identities, errors) where errors name the failing sources."""
    ids: list[Any] = []
    errors: list[str] = []
    for _where, load in _sources(ring):
        try:
            ids.extend(load())
        except KeySourceError as exc:
            errors.append(str(exc))
        except OSError:
            errors.append(f"age: cannot read {_where}")
    return ids, errors


def decrypt(ref: MasterKeyRef, ring: KeyRing) -> bytes:
    import pyrage

    ids, errors = ring.cached_identities("age", lambda: load_identities(ring))
    who = ref.get("recipient") or "age"
    if not ids:
        detail = "; ".join(errors) if errors else "no age identity configured"
        raise KeySourceError(f"age key {who}: failed to load age identities ({detail})")
    try:
        return pyrage.decrypt(ref.enc.encode("utf-8"), ids)
    except Exception:  # noqa: BLE001 - pyrage.DecryptError and friends
        raise KeySourceError(f"age key {who}: no configured identity could decrypt the data key") from None
