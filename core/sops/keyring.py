"""KeyRing: where master keys come from, plus the per-sync caches.

One KeyRing lives for one sync. It caches (a) each unwrapped data key / Shamir share by the
encrypted key material, so a data key shared by many files is unwrapped once, (b) parsed
age identities and (c) SDK clients. Nothing is written to disk.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from core.sops import shamir
from core.sops.errors import DataKeyError, KeySourceError
from core.sops.keys import source_for
from core.sops.metadata import MasterKeyRef, Metadata

DEFAULT_DECRYPTION_ORDER = ("age", "pgp")


class KeyRing:
    """Key-source configuration and per-sync data-key cache.

    age_identities: age identity texts (``AGE-SECRET-KEY-1...`` lines) handed in by the
        caller, e.g. read from the cloud secret store named in the sync config.
    env: environment to read SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, SOPS_DECRYPTION_ORDER,
        VAULT_ADDR, VAULT_TOKEN, AWS_ENDPOINT_URL... from (default: os.environ).
    gcp_kms_client_factory: builds the KeyManagementServiceClient (default: the SDK's own).
    azure_credential / azure_client_kwargs: credential (default DefaultAzureCredential) and
        extra CryptographyClient options (e.g. connection_verify) for Azure Key Vault.
    """

    def __init__(
        self,
        age_identities: list[str] | None = None,
        env: Mapping[str, str] | None = None,
        *,
        gcp_kms_client_factory: Callable[[], Any] | None = None,
        azure_credential: Any | None = None,
        azure_client_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.age_identities = list(age_identities or [])
        self.env: dict[str, str] = dict(os.environ if env is None else env)
        self.gcp_kms_client_factory = gcp_kms_client_factory
        self.azure_credential = azure_credential
        self.azure_client_kwargs = dict(azure_client_kwargs or {})
        order = self.env.get("SOPS_DECRYPTION_ORDER", "")
        parsed = [p.strip() for p in order.split(",") if p.strip()]
        self.decryption_order: tuple[str, ...] = tuple(parsed) or DEFAULT_DECRYPTION_ORDER
        self._parts: dict[tuple[str, str], bytes] = {}
        self._failed: dict[tuple[str, str], str] = {}
        self._data_keys: dict[tuple, bytes] = {}
        self._identities: dict[str, Any] = {}
        self._clients: dict[tuple, Any] = {}
        self._lock = threading.RLock()
        self.unwrap_calls = 0  # how many times a master key was actually asked (for tests/bench)

    # --- caches used by key sources ---------------------------------------------------
    def cached_identities(self, kind: str, load: Callable[[], Any]) -> Any:
        with self._lock:
            if kind not in self._identities:
                self._identities[kind] = load()
            return self._identities[kind]

    def cached_client(self, key: tuple, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key not in self._clients:
                self._clients[key] = make()
            return self._clients[key]

    def clear(self) -> None:
        """Forget every cached key and identity (end of a sync)."""
        with self._lock:
            self._parts.clear()
            self._failed.clear()
            self._data_keys.clear()
            self._identities.clear()
            self._clients.clear()

    # --- data key ---------------------------------------------------------------------
    def _sorted(self, group: list[MasterKeyRef]) -> list[MasterKeyRef]:
        prio = {t: i for i, t in enumerate(self.decryption_order)}
        return sorted(group, key=lambda r: prio.get(r.type, len(prio)))

    def _unwrap(self, ref: MasterKeyRef) -> bytes:
        ck = (ref.type, ref.enc)
        with self._lock:
            if ck in self._parts:
                return self._parts[ck]
            if ck in self._failed:
                raise KeySourceError(self._failed[ck])
        try:
            self.unwrap_calls += 1
            part = source_for(ref.type)(ref, self)
        except KeySourceError as exc:
            with self._lock:
                self._failed[ck] = str(exc)
            raise
        with self._lock:
            self._parts[ck] = part
        return part

    def _group_part(self, group: list[MasterKeyRef]) -> bytes:
        errors = []
        for ref in self._sorted(group):
            try:
                return self._unwrap(ref)
            except KeySourceError as exc:
                errors.append(str(exc))
        raise KeySourceError("; ".join(errors) or "empty key group")

    def data_key(self, md: Metadata, *, path: str | None = None) -> bytes:
        """The file's data key: first working key per group, Shamir-combined if needed."""
        cache_key = tuple(tuple((r.type, r.enc) for r in g) for g in md.key_groups)
        with self._lock:
            if cache_key in self._data_keys:
                return self._data_keys[cache_key]
        parts: list[bytes] = []
        results: list[str] = []
        for i, group in enumerate(md.key_groups):
            try:
                parts.append(self._group_part(group))
                results.append(f"group {i}: ok")
            except KeySourceError as exc:
                results.append(f"group {i}: {exc}")
        if len(md.key_groups) > 1:
            if len(parts) < md.shamir_threshold:
                raise DataKeyError(
                    f"Error getting data key: {md.shamir_threshold} successful key groups "
                    f"required, got {len(parts)} ({'; '.join(results)})",
                    path=path,
                )
            try:
                key = shamir.combine(parts)
            except ValueError as exc:
                raise DataKeyError(f"could not get data key from shamir parts: {exc}", path=path) from None
        else:
            if len(parts) != 1:
                raise DataKeyError(f"Error getting data key: {'; '.join(results)}", path=path)
            key = parts[0]
        with self._lock:
            self._data_keys[cache_key] = key
        return key
