"""Go value semantics sops relies on: number formatting, strconv parsing and time.Time text.

The MAC is a SHA-512 over `ToBytes(value)` for every leaf, so an unencrypted float or
timestamp must be rendered exactly as Go renders it. Output formats (YAML, JSON, dotenv)
also print values the Go way; the helpers here are shared by all of them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


class GoUint(int):
    """An integer go-yaml resolves to uint64 (above int64 range): sops cannot walk it."""


@dataclass(frozen=True)
class GoTime:
    """A Go time.Time reduced to what sops prints: wall clock, nanoseconds, UTC offset."""

    year: int
    month: int
    day: int
    hour: int = 0
    minute: int = 0
    second: int = 0
    nanos: int = 0
    offset: int = 0  # seconds east of UTC

    def _zone(self) -> str:
        if self.offset == 0:
            return "Z"
        sign = "+" if self.offset > 0 else "-"
        off = abs(self.offset)
        return f"{sign}{off // 3600:02d}:{(off // 60) % 60:02d}"

    def _date_time(self) -> str:
        return (
            f"{self.year:04d}-{self.month:02d}-{self.day:02d}"
            f"T{self.hour:02d}:{self.minute:02d}:{self.second:02d}"
        )

    def rfc3339nano(self) -> str:
        """time.RFC3339Nano (MarshalText, go-yaml and encoding/json output)."""
        frac = ""
        if self.nanos:
            frac = "." + f"{self.nanos:09d}".rstrip("0")
        return self._date_time() + frac + self._zone()

    def rfc3339(self) -> str:
        """time.RFC3339: no fractional seconds (dotenv/ini ValToString, lastmodified AAD)."""
        return self._date_time() + self._zone()

    def marshal_text(self) -> bytes:
        if not 0 <= self.year <= 9999:
            raise ValueError("Time.MarshalText: year outside of range [0,9999]")
        return self.rfc3339nano().encode()


_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _valid_date(y: int, m: int, d: int) -> bool:
    if not 1 <= m <= 12 or d < 1:
        return False
    if m == 2 and d == 29:
        return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    return d <= _DAYS[m - 1]


def _mk_time(y, mo, d, h, mi, s, frac, zone) -> GoTime | None:
    y, mo, d, h, mi, s = int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0)
    if not _valid_date(y, mo, d) or h > 23 or mi > 59 or s > 59:
        return None
    nanos = 0
    if frac:
        digits = frac[1:]
        if len(digits) > 9:
            digits = digits[:9]
        nanos = int(digits.ljust(9, "0"))
    offset = 0
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        zh, zm = int(zone[1:3]), int(zone[4:6])
        if zh > 23 or zm > 59:
            return None
        offset = sign * (zh * 3600 + zm * 60)
    return GoTime(y, mo, d, h, mi, s, nanos, offset)


_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")


def parse_rfc3339(text: str) -> GoTime | None:
    """time.Parse(time.RFC3339, s) / Time.UnmarshalText; None when Go would fail."""
    m = _RFC3339.match(text)
    if not m:
        return None
    return _mk_time(*m.groups())


# go-yaml v3 resolve.go allowedTimestampFormats (all start with YYYY-).
_YAML_TS = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:"
    r"[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
    r"|[ ](\d{1,2}):(\d{1,2}):(\d{1,2})(\.\d+)?"
    r")?\Z"
)


def parse_yaml_timestamp(text: str) -> GoTime | None:
    m = _YAML_TS.match(text)
    if not m:
        return None
    g = m.groups()
    y, mo, d = g[0], g[1], g[2]
    if g[3] is not None:
        return _mk_time(y, mo, d, g[3], g[4], g[5], g[6], g[7])
    if g[8] is not None:
        return _mk_time(y, mo, d, g[8], g[9], g[10], g[11], None)
    return _mk_time(y, mo, d, 0, 0, 0, None, None)


# --- floats -----------------------------------------------------------------------------


def _shortest(x: float) -> tuple[bool, str, int]:
    """Shortest round-trip digits of |x| and decimal point position (value = 0.DIGITS e DP)."""
    neg = math.copysign(1.0, x) < 0
    r = repr(abs(x))
    mant, _, exp = r.partition("e")
    e = int(exp) if exp else 0
    ip, _, fp = mant.partition(".")
    if fp == "0":
        fp = ""
    digits = (ip + fp).lstrip("0")
    lead = len(ip + fp) - len((ip + fp).lstrip("0"))
    dp = len(ip) + e - lead
    digits = digits.rstrip("0")
    if not digits:
        return neg, "0", 1
    return neg, digits, dp


def _fmt_f(neg: bool, digits: str, dp: int) -> str:
    if digits == "0":
        s = "0"
    elif dp <= 0:
        s = "0." + "0" * (-dp) + digits
    elif dp >= len(digits):
        s = digits + "0" * (dp - len(digits))
    else:
        s = digits[:dp] + "." + digits[dp:]
    return ("-" if neg else "") + s


def _fmt_e(neg: bool, digits: str, dp: int, echar: str = "e") -> str:
    exp = dp - 1 if digits != "0" else 0
    m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    sign = "+" if exp >= 0 else "-"
    return ("-" if neg else "") + m + echar + sign + f"{abs(exp):02d}"


def _special(x: float) -> str | None:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return None


def format_f(x: float) -> str:
    """strconv.FormatFloat(x, 'f', -1, 64): what ToBytes hashes for a float."""
    sp = _special(x)
    if sp:
        return sp
    return _fmt_f(*_shortest(x))


def format_g(x: float, upper: bool = False) -> str:
    """strconv.FormatFloat(x, 'g'|'G', -1, 64)."""
    sp = _special(x)
    if sp:
        return sp
    neg, digits, dp = _shortest(x)
    exp = dp - 1
    # Go: with the shortest precision, %e is used when exp < -4 || exp >= 6.
    if exp < -4 or exp >= 6:
        return _fmt_e(neg, digits, dp, "E" if upper else "e")
    return _fmt_f(neg, digits, dp)


def format_yaml_float(x: float) -> str:
    """go-yaml v3 encoder: FormatFloat 'g' with .inf/.nan spellings."""
    sp = _special(x)
    if sp == "NaN":
        return ".nan"
    if sp == "+Inf":
        return ".inf"
    if sp == "-Inf":
        return "-.inf"
    return format_g(x)


def format_json_float(x: float) -> str:
    """encoding/json float64 encoding ('f' unless tiny or huge, then cleaned-up 'e')."""
    if _special(x):
        raise ValueError("json: unsupported value")
    a = abs(x)
    neg, digits, dp = _shortest(x)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        s = _fmt_e(neg, digits, dp)
        if len(s) >= 4 and s[-4] == "e" and s[-3] == "-" and s[-2] == "0":
            s = s[:-2] + s[-1]
        return s
    return _fmt_f(neg, digits, dp)


def val_to_string(v: object) -> str:
    """stores.ValToString: how dotenv and INI print non-string values."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        s = format_g(v, upper=True)
        if "." not in s and "E" not in s and _special(v) is None:
            s += ".0"
        return s
    if isinstance(v, GoTime):
        return v.rfc3339()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if v is None:
        return "<nil>"
    return str(v)


# --- strconv parsing ----------------------------------------------------------------------

_ATOI = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT_DEC = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_FLOAT_HEX = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+\Z")
_FLOAT_SPECIAL = re.compile(r"[+-]?(?:inf|infinity|nan)\Z", re.IGNORECASE)


def go_atoi(s: str) -> int:
    if not _ATOI.match(s):
        raise ValueError("strconv.Atoi: invalid syntax")
    v = int(s)
    if not -(2**63) <= v < 2**63:
        raise ValueError("strconv.Atoi: value out of range")
    return v


def go_parse_float(s: str) -> float:
    if _FLOAT_SPECIAL.match(s):
        return float(s)
    if _FLOAT_HEX.match(s):
        v = float.fromhex(s)
    elif _FLOAT_DEC.match(s):
        v = float(s)
    else:
        raise ValueError("strconv.ParseFloat: invalid syntax")
    if math.isinf(v):
        raise ValueError("strconv.ParseFloat: value out of range")
    return v


_BOOLS = {
    "1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
    "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False,
}  # fmt: skip


def go_parse_bool(s: str) -> bool:
    try:
        return _BOOLS[s]
    except KeyError:
        raise ValueError("strconv.ParseBool: invalid syntax") from None
