"""The fast paths a 5,000-service sync takes (bench/bench_scale.py) give exactly what the
general code gives: the dotenv reader for simple files against python-dotenv, the memoised
name sanitising and the name check against their plain definitions, the one-call
fingerprint against an incremental HMAC. Inputs are generated (seeded), so a difference in
any character class or line-numbering rule shows up."""

from __future__ import annotations

import hashlib
import hmac
import random
import re

from core import registry
from core.fingerprint import fingerprint
from core.parsers.dotenv import _python_dotenv, _simple, parse_dotenv

KEYS = ["A", "DB_PASSWORD", "a.b-c", "export", "exportX", "_x1", "k" * 40, "1BAD", "a b", "ké"]
VALUES = ["", "v", "tok-123", "a=b==", "x/y:z@h+1,2%~^", "two words", "#hash", "a #c", "'q'", '"dq"',
          "b\\\\s", "$HOME", "é", "trail ", "x\r"]  # fmt: skip


def line(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.15:
        return ""
    if roll < 0.25:
        return rng.choice(["# comment", "#", "#x=y", "  # indented", "   "])
    export = rng.choice(["", "", "export ", "export\t"])
    return f"{export}{rng.choice(KEYS)}={rng.choice(VALUES)}"


def test_simple_dotenv_files_read_as_python_dotenv_reads_them() -> None:
    rng = random.Random(15)
    fast = 0
    for _ in range(3000):
        text = "\n".join(line(rng) for _ in range(rng.randint(0, 6))) + rng.choice(["", "\n", "\n\n"])
        simple = _simple(text)
        try:
            expected = [(i.key, i.value, i.line) for i in _python_dotenv(text, "f.env")]
        except Exception as exc:  # noqa: BLE001 - a refused file must not take the fast path
            assert simple is None, (text, exc)
            continue
        if simple is not None:
            fast += 1
            assert [(i.key, i.value, i.line) for i in simple] == expected, repr(text)
        assert [(i.key, i.value, i.line) for i in parse_dotenv(text, "f.env")] == expected
    assert fast > 300  # the generator does reach the fast path


def old_sanitize(rules, value: str) -> str:  # type: ignore[no-untyped-def]
    out = "".join(rules.translate.get(ch, ch) for ch in value)
    out = re.sub(f"[^{rules.allowed}]", rules.replacement, out)
    if rules.forbidden:
        out = re.sub(f"[{re.escape(rules.forbidden)}]", rules.replacement, out)
    if rules.squeeze and rules.replacement:
        rep = re.escape(rules.replacement)
        out = re.sub(f"{rep}{{2,}}", rules.replacement, out)
    return out


def old_bad_chars(rules, name: str) -> list[str]:  # type: ignore[no-untyped-def]
    bad = set(re.sub(f"[{rules.allowed}]", "", name))
    bad |= {c for c in rules.forbidden if c in name}
    return sorted(bad)


def test_sanitize_and_check_name_match_their_plain_definitions() -> None:
    rng = random.Random(3)
    alphabet = "aZ09_-./:*,\\ é$@~+%#&?=\t"
    for kind in registry.KINDS:
        rules = kind.rules()
        for _ in range(400):
            value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
            assert rules.sanitize(value) == old_sanitize(rules, value), (kind.id, value)
            assert rules.sanitize(value) == old_sanitize(rules, value)  # memoised: same again
            problem = rules.check_name(value)
            bad = old_bad_chars(rules, value)
            if value and len(value) <= rules.max_length and bad:
                assert problem is not None and "name contains" in problem, (kind.id, value)
            elif value and len(value) <= rules.max_length:
                assert problem is None or "name contains" not in problem, (kind.id, value)


def test_fingerprint_is_the_incremental_hmac() -> None:
    rng = random.Random(7)
    for _ in range(200):
        key = rng.randbytes(32)
        store, name = rng.choice(["local-secrets", "aws-parameter-store"]), f"svc/{rng.random()}"
        value = "".join(chr(rng.randint(32, 0x2FF)) for _ in range(rng.randint(0, 30)))
        mac = hmac.new(key, digestmod=hashlib.sha256)
        for part in (store, name):
            data = part.encode()
            mac.update(len(data).to_bytes(4, "big") + data)
        mac.update(value.encode("utf-8"))
        assert fingerprint(key, store, name, value) == mac.hexdigest()[:32]
