"""Git pack bytes built by hand, for the pack reader's tests and its fuzz target: what a
server sends when no `git pack-objects` would (headers that lie, deltas that copy without
end). Format: gitformat-pack (object header, OFS_DELTA offset, delta size varints)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from hashlib import sha1


def object_header(type_num: int, size: int) -> bytes:
    """A pack object's header: type and size, 4 bits then 7 bits a byte."""
    head = bytearray([(type_num << 4) | (size & 15)])
    size >>= 4
    while size:
        head[-1] |= 0x80
        head.append(size & 0x7F)
        size >>= 7
    return bytes(head)


def entry(type_num: int, size: int, data: bytes) -> bytes:
    """One object of a pack: its header, then `data` (a base id, compressed bytes...)."""
    return object_header(type_num, size) + data


def ofs_delta_offset(back: int) -> bytes:
    """How far back an OFS_DELTA's base starts (Git's offset encoding, biased per byte)."""
    out = bytearray([back & 0x7F])
    back >>= 7
    while back:
        back -= 1
        out.insert(0, 0x80 | (back & 0x7F))
        back >>= 7
    return bytes(out)


def size_varint(n: int) -> bytes:
    """A delta header's size: 7 bits a byte, least significant first."""
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n >> 7 else 0))
        n >>= 7
        if not n:
            return bytes(out)


def with_trailer(body: bytes) -> bytes:
    return body + sha1(body).digest()


def pack(*entries: bytes) -> bytes:
    """A whole pack: header, `entries`, checksum."""
    return with_trailer(
        b"PACK" + (2).to_bytes(4, "big") + len(entries).to_bytes(4, "big") + b"".join(entries)
    )


@contextmanager
def traced_peak() -> Iterator[list[int]]:
    """The peak of Python allocations inside the block, in `[0]` once it has ended."""
    peak = [0]
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak[0] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
