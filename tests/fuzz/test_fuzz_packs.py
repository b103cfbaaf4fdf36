"""Fuzz target for the pack reader (core/git_wire.py `PackReader`): what a hostile or broken
Git server can send after the handshake.

Packs are built from parts, each valid at the layer below the one under attack, so the
reader's own checks are what is exercised: objects of every type with headers that lie
about their size, deltas (by offset and by id) holding random instructions, bases missing
or dropped, streams that inflate past their header, and a correct trailer checksum over it
all, fed in random pieces. A real pack written by `git pack-objects` is in the mix, flipped
at one byte with its checksum recomputed.

The property: `finish()` returns objects whose ids match their bytes, with every blob over
the limit listed in `too_large` and none held; or it raises `WireError` (or `LookupError`
for a delta whose base is nowhere); never anything else, and in bounded time.

The same packs, as files of a repository on this machine, feed `stored_blob_size`
(core/git_fetch.py), which reads object headers without inflating: a size or None, never an
exception, in bounded time; and loose objects of random bytes.
"""

from __future__ import annotations

import subprocess
import tempfile
import zlib
from functools import cache
from hashlib import sha1
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from core.git_wire import PackReader, WireError, object_id
from tests.fuzz.harness import bounded, examples
from tests.support.packs import object_header, ofs_delta_offset, size_varint, with_trailer

LIMIT = 256  # blobs over this are dropped (the reader's `max_blob_bytes`)


@cache
def _git_pack() -> bytes:
    """A real pack with deltas: one file edited over a few commits."""
    repo = Path(tempfile.mkdtemp(prefix="fuzz-pack-"))

    def git(*args: str, input: bytes | None = None) -> bytes:
        return subprocess.run(
            ["git", "-C", str(repo), *args], input=input, capture_output=True, check=True
        ).stdout

    git("init", "-q", "-b", "main")
    git("config", "user.email", "f@example.com")
    git("config", "user.name", "F")
    lines = [f"line {i} {'y' * (i % 30)}\n" for i in range(400)]
    for rev in range(4):
        lines[rev * 90] = f"edit {rev}\n"
        (repo / "f.txt").write_text("".join(lines))
        git("add", "-A")
        git("commit", "-q", "-m", f"r{rev}")
    return git("pack-objects", "--stdout", "--revs", "--delta-base-offset", input=b"HEAD\n")


def _valid_delta(base: bytes, copy: int, literal: bytes) -> bytes:
    """Copy the first `copy` bytes of `base` (at most 0xFFFF), then insert `literal`."""
    copy = min(copy, len(base), 0xFFFF)
    ops = bytes([0x80 | 0x10 | 0x20, copy & 0xFF, copy >> 8]) if copy else b""
    for i in range(0, len(literal), 127):
        chunk = literal[i : i + 127]
        ops += bytes([len(chunk)]) + chunk
    return size_varint(len(base)) + size_varint(copy + len(literal)) + ops


@st.composite
def built_packs(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(min_value=0, max_value=6))
    body = bytearray(b"PACK" + (2).to_bytes(4, "big") + n.to_bytes(4, "big"))
    held: list[tuple[int, bytes, bytes]] = []  # (pack offset, payload, id) of whole objects
    for _ in range(n):
        kind = draw(st.sampled_from(["blob", "blob", "tree", "commit", "ofs", "ref"]))
        payload = draw(st.one_of(st.binary(max_size=200), st.binary(min_size=LIMIT + 1, max_size=LIMIT * 3)))
        base = (
            draw(st.sampled_from(held)) if held and kind in ("ofs", "ref") and draw(st.booleans()) else None
        )
        if base is not None and draw(st.booleans()):  # a delta that applies
            payload = _valid_delta(base[1], draw(st.integers(0, 600)), draw(st.binary(max_size=400)))
        lie = draw(st.integers(0, 39))
        size = len(payload) + {0: -1, 1: 1, 2: 5000}.get(lie, 0)
        if lie == 3:  # a stream that inflates far past its header
            payload += bytes(draw(st.integers(1, 200_000)))
        start = len(body)
        body += object_header({"blob": 3, "tree": 2, "commit": 1, "ofs": 6, "ref": 7}[kind], max(size, 0))
        if kind == "ofs":
            body += ofs_delta_offset(
                start - base[0] if base is not None else draw(st.integers(1, start + 50))
            )
        elif kind == "ref":
            body += base[2] if base is not None else draw(st.binary(min_size=20, max_size=20))
        body += zlib.compress(payload)
        if kind not in ("ofs", "ref"):
            held.append((start, payload, sha1(b"%s %d\0" % (kind.encode(), len(payload)) + payload).digest()))
    return with_trailer(bytes(body))


@st.composite
def flipped_git_packs(draw: st.DrawFn) -> bytes:
    pack = bytearray(_git_pack()[:-20])
    pos = draw(st.integers(12, len(pack) - 1))
    pack[pos] ^= draw(st.integers(1, 255))
    return with_trailer(bytes(pack))


@settings(max_examples=examples(200))
@given(pack=st.one_of(built_packs(), flipped_git_packs()), seed=st.integers(1, 4096))
def test_pack_reader_gives_objects_or_a_wire_error(pack: bytes, seed: int) -> None:
    reader = PackReader(lambda sha: None, max_blob_bytes=LIMIT)
    with bounded():
        try:
            for i in range(0, len(pack), seed):
                reader.feed(pack[i : i + seed])
            objects = reader.finish()
        except (WireError, LookupError) as exc:
            assert str(exc), "an error without a message"
            return
    for sha, (type_num, raw) in objects.items():
        assert object_id(type_num, raw) == sha
        assert type_num != 3 or len(raw) <= LIMIT, "a blob over the limit was kept"
    assert all(size > LIMIT for size in reader.too_large.values())
    assert not set(objects) & set(reader.too_large)


class _Index:
    """A pack index over a fuzzed pack: every id maps to one of the drawn offsets (REF bases
    included, so chains can loop or point anywhere)."""

    def __init__(self, offsets: list[int]):
        self.offsets = offsets

    def object_offset(self, sha: bytes) -> int:
        return self.offsets[sha1(sha).digest()[0] % len(self.offsets)]

    def __len__(self) -> int:
        return len(self.offsets)


class _Pack:
    def __init__(self, path: str, offsets: list[int]):
        self._data_path, self.index = path, _Index(offsets)


@settings(max_examples=examples(200))
@given(
    pack=st.one_of(built_packs(), flipped_git_packs()),
    offsets=st.lists(st.one_of(st.just(12), st.integers(0, 1 << 16)), min_size=1, max_size=8),
)
def test_stored_blob_size_gives_a_size_or_none(tmp_path_factory, pack: bytes, offsets: list[int]) -> None:
    """`stored_blob_size` (core/git_fetch.py) reads headers of a repository on this machine:
    whatever the pack file holds at whatever offset its index gives (12 is the first
    object's), a size or None, never an exception, in bounded time (delta chains that loop
    included)."""
    from core.git_fetch import stored_blob_size

    path = tmp_path_factory.mktemp("pack") / "p.pack"
    path.write_bytes(pack)
    store = type("Store", (), {"packs": [_Pack(str(path), [min(o, len(pack) + 5) for o in offsets])]})()
    with bounded():
        size = stored_blob_size(store, b"0" * 40)
    assert size is None or size >= 0


@settings(max_examples=examples(100))
@given(raw=st.one_of(st.binary(max_size=300), st.builds(zlib.compress, st.binary(max_size=300))))
def test_stored_blob_size_of_a_loose_object_gives_a_size_or_none(tmp_path_factory, raw: bytes) -> None:
    from core.git_fetch import stored_blob_size

    path = tmp_path_factory.mktemp("loose") / "obj"
    path.write_bytes(raw)
    store = type("Store", (), {"packs": [], "_get_shafile_path": lambda self, sha: str(path)})()
    with bounded():
        size = stored_blob_size(store, b"0" * 40)
    assert size is None or size >= 0
