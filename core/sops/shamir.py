"""Shamir secret sharing over GF(2^8) as sops vendors it from HashiCorp Vault (shamir.go).

A share is 32 y-bytes followed by its x-byte (group index + 1). Combine() interpolates each
byte at x = 0.
"""

from __future__ import annotations


def _mul(a: int, b: int) -> int:
    r = 0
    while b:
        if b & 1:
            r ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11B
        b >>= 1
    return r


_EXP = [0] * 512
_LOG = [0] * 256
_x = 1
for _i in range(255):
    _EXP[_i] = _x
    _LOG[_x] = _i
    _x = _mul(_x, 3)
for _i in range(255, 512):
    _EXP[_i] = _EXP[_i - 255]


def _fmul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _fdiv(a: int, b: int) -> int:
    if b == 0:
        raise ValueError("divide by zero")
    if a == 0:
        return 0
    return _EXP[(_LOG[a] - _LOG[b]) % 255]


def combine(parts: list[bytes]) -> bytes:
    if len(parts) < 2:
        raise ValueError("less than two parts cannot be used to reconstruct the secret")
    n = len(parts[0])
    if n < 2:
        raise ValueError("parts must be at least two bytes")
    if any(len(p) != n for p in parts):
        raise ValueError("all parts must be the same length")
    xs = [p[-1] for p in parts]
    if len(set(xs)) != len(xs):
        raise ValueError("duplicate part detected")
    basis = []
    for i, xi in enumerate(xs):
        b = 1
        for j, xj in enumerate(xs):
            if i != j:
                b = _fmul(b, _fdiv(xj, xi ^ xj))
        basis.append(b)
    out = bytearray(n - 1)
    for idx in range(n - 1):
        acc = 0
        for i, p in enumerate(parts):
            acc ^= _fmul(p[idx], basis[i])
        out[idx] = acc
    return bytes(out)
