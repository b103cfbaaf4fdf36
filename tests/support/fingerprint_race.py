"""Two first runs racing for the fingerprint key, interleaved deterministically (no threads,
no sleeps): run B's whole bootstrap inside run A's first read, and let A's first
`stale_reads` reads answer what they would have seen before B wrote (nothing)."""

from __future__ import annotations

from typing import Any

from core.fingerprint import bootstrap_key


def race(a: Any, b: Any, *, stale_reads: int, env: dict[str, str] | None = None) -> tuple[bytes, bytes]:
    env = env if env is not None else {}
    real = a.read_fingerprint_secret
    seen = {"reads": 0}
    other: dict[str, bytes] = {}

    def read(name: str) -> str | None:
        seen["reads"] += 1
        if seen["reads"] == 1:
            other["key"] = bootstrap_key(b, env)  # B runs start to finish right here
        if seen["reads"] <= stale_reads:
            return None  # A's read happened before B's write landed
        return real(name)

    a.read_fingerprint_secret = read
    try:
        key_a = bootstrap_key(a, env)
    finally:
        del a.read_fingerprint_secret
    return key_a, other["key"]
