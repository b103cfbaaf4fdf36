"""What a function reads from its environment: the config documents and the secrets.

One set of variable names for every cloud, so a deploy file or a test sets the same thing on
AWS, GCP and Azure:

``SMF_CONFIG``       the SecretManagerConfig documents as YAML text, or the path of a file
``SMF_CONFIG_PATH``  the path of the config file (when ``SMF_CONFIG`` is unset)
(neither)            the handler's default file next to its code (``smf-config.yaml``)

``SMF_CONFIG_YAML`` (the YAML text; AWS and GCP before) still works and logs a deprecation
warning once per process.

Secrets handed in through the environment / app settings (``WEBHOOK_SECRET``,
``SMF_FINGERPRINT_KEY``, ``SOPS_AGE_KEY``, ``GIT_TOKEN``) are refused when they still hold an
unresolved Azure Key Vault reference: App Service leaves the literal ``@Microsoft.KeyVault(...)``
text in the setting when it cannot resolve it, and that text must never become an HMAC key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from core.errors import ConfigError

log = logging.getLogger("smf.settings")

CONFIG_ENV = "SMF_CONFIG"
CONFIG_PATH_ENV = "SMF_CONFIG_PATH"
#: Old names → the name that replaces them.
DEPRECATED_CONFIG_ENV = {"SMF_CONFIG_YAML": CONFIG_ENV}
#: Secrets a function may receive through its environment (or a secret bundle on AWS).
SECRET_ENV_KEYS = ("WEBHOOK_SECRET", "SMF_FINGERPRINT_KEY", "SOPS_AGE_KEY", "GIT_TOKEN")
_KEY_VAULT_REFERENCE = "@microsoft.keyvault("

_CONFIG_CACHE: dict[str, list[Any]] = {}
_WARNED: set[str] = set()


def _looks_like_yaml(value: str) -> bool:
    head = value.lstrip()
    return "\n" in value or head.startswith(("{", "apiVersion", "---", "kind:"))


def config_text(
    env: Mapping[str, str] | None = None, *, default_path: Path | str | None = None
) -> tuple[str, str]:
    """(YAML text, where it came from) by the rules in the module docstring."""
    env = os.environ if env is None else env
    value = env.get(CONFIG_ENV) or ""
    if value and _looks_like_yaml(value):
        return value, CONFIG_ENV
    for old, new in DEPRECATED_CONFIG_ENV.items():
        if env.get(old) and not value and not env.get(CONFIG_PATH_ENV):
            if old not in _WARNED:
                _WARNED.add(old)
                log.warning(f"{old} is deprecated: set {new} (YAML text or a path) instead")
            return env[old], old
    path = value or env.get(CONFIG_PATH_ENV) or default_path
    if not path:
        raise ConfigError(f"no configuration: set {CONFIG_ENV} (YAML text or a path) or {CONFIG_PATH_ENV}",
                          field=CONFIG_ENV)  # fmt: skip
    try:
        return Path(path).read_text(encoding="utf-8"), str(path)
    except OSError as exc:
        raise ConfigError(f"cannot read the config file ({exc.strerror or type(exc).__name__})",
                          path=str(path)) from None  # fmt: skip


def load_configs(
    env: Mapping[str, str] | None = None, *, default_path: Path | str | None = None
) -> list[Any]:
    """The SecretManagerConfig documents, parsed once per distinct text (warm starts reuse)."""
    from core.config import parse_config_text

    text, origin = config_text(env, default_path=default_path)
    digest = hashlib.sha256(text.encode()).hexdigest()
    cached = _CONFIG_CACHE.get(digest)
    if cached is None:
        cached = parse_config_text(text, origin)
        _CONFIG_CACHE.clear()
        _CONFIG_CACHE[digest] = cached
    return cached


def is_unresolved_reference(value: str | None) -> bool:
    """True for an app setting App Service could not resolve (still ``@Microsoft.KeyVault(...)``)."""
    return bool(value) and value.strip().lower().startswith(_KEY_VAULT_REFERENCE)  # type: ignore[union-attr]


def _refuse(name: str) -> ConfigError:
    return ConfigError(
        f"{name} is an unresolved Key Vault reference (@Microsoft.KeyVault(...)): the app could not "
        "read the secret; check the reference and the managed identity's 'get' permission on the vault",
        field=name,
    )


def env_secret(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """A secret from the environment, or None when unset; an unresolved reference is an error."""
    env = os.environ if env is None else env
    value = env.get(name)
    if not value:
        return None
    if is_unresolved_reference(value):
        raise _refuse(name)
    return value


def check_env_secrets(env: Mapping[str, str] | None = None) -> None:
    """Refuse to start work while any secret variable holds an unresolved Key Vault reference."""
    env = os.environ if env is None else env
    for name in SECRET_ENV_KEYS:
        env_secret(name, env)


def load_secret_bundle(text: str, *, origin: str, env: MutableMapping[str, str] | None = None) -> list[str]:
    """Copy the known secret variables from a JSON object (AWS: the ``SMF_ENV_SECRET`` secret)
    into the environment, without overriding what is already set. Returns the names copied."""
    env = os.environ if env is None else env
    try:
        data = json.loads(text or "{}")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ConfigError(f"{origin} is not a JSON object", field=origin)
    copied = []
    for key in SECRET_ENV_KEYS:
        value = data.get(key)
        if value and not env.get(key):
            if is_unresolved_reference(str(value)):
                raise _refuse(f"{origin}.{key}")
            env[key] = str(value)
            copied.append(key)
    return copied


_BUNDLES_LOADED: set[str] = set()


def load_secret_bundle_once(secret_id: str | None, read: Callable[[str], str], *, origin: str) -> None:
    """`load_secret_bundle` of ``read(secret_id)``, once per process and secret id."""
    if not secret_id or secret_id in _BUNDLES_LOADED:
        return
    load_secret_bundle(read(secret_id), origin=origin)
    _BUNDLES_LOADED.add(secret_id)
