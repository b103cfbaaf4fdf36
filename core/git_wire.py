"""Git protocol v2 fetches over ``git://`` and smart HTTP(S), and packfile parsing, with the
standard library only.

Why not dulwich's client here: a cold function pays for every module it imports. Importing
``dulwich.client`` costs ~90 ms and pulls in ``hashlib`` (OpenSSL: 3.5 MiB of resident
memory in a 9 MiB interpreter), and dulwich's pack reader builds a Python object per
object received. A partial fetch needs little of that: two commands (``ls-refs``, then
``fetch`` with ``want``/``deepen``/``filter``/``done``), a sideband-framed pack, zlib, SHA-1
and Git's delta format. Everything else (ssh, a server without protocol v2, proxies, the
on-disk cache's pack files) stays with dulwich, in `core.git_fetch`.

Protocol references: gitprotocol-v2 (capability advertisement, ``ls-refs``, ``fetch`` and
its ``shallow-info``/``packfile`` sections), gitprotocol-pack (pkt-line, sideband),
gitprotocol-http (``Git-Protocol: version=2``, ``info/refs`` then ``POST git-upload-pack``),
gitformat-pack (object headers, OFS/REF deltas, the delta instruction set).
"""

from __future__ import annotations

import os
import socket
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

try:  # CPython's own SHA-1: the same digest as hashlib's without loading OpenSSL
    from _sha1 import sha1
except ImportError:  # pragma: no cover - other interpreters
    from hashlib import sha1

TYPE_NAMES = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}
_BLOB, _OFS_DELTA, _REF_DELTA = 3, 6, 7
#: The largest object other than a blob a pack may carry (a tree of about a million
#: entries), and the largest delta: a larger one, or a delta whose result would be larger,
#: fails the fetch. Blobs have their own, smaller limit (`PackReader`'s `max_blob_bytes`).
MAX_OBJECT_BYTES = 64 * 1024 * 1024
#: The most bytes of trees, commits and tags one pack may leave in memory: about three
#: million files' worth of trees, far past any real commit, and under the 512 MB the deploy
#: files give a function, so a hostile tree pack fails with this error instead of the
#: function being killed for memory. Blobs are not counted: each is at most the blob limit,
#: and a server that refuses filters sends every blob of the commit, as it did before.
MAX_PACK_BYTES = 128 * 1024 * 1024
#: Bytes inflated per call, so a zlib stream crafted to inflate without end is stopped at
#: its header's size plus at most this much.
_INFLATE_STEP = 1 << 20
_AGENT = b"agent=secret-manager-functions\n"


class WireError(Exception):
    """The server reported an error (an ``ERR`` line or sideband 3) or broke the protocol."""


class WireHangup(WireError):
    """The server closed the connection before answering."""


class WireUnauthorized(WireError):
    """HTTP 401: credentials missing or refused."""


class NotV2(Exception):
    """The server did not answer in protocol v2: the caller falls back to dulwich."""


def proxied() -> bool:
    """Whether a proxy is configured (dulwich honours these variables; this module does not)."""
    return any(os.environ.get(v) for v in ("http_proxy", "https_proxy", "all_proxy",
                                           "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"))  # fmt: skip


# --- pkt-line --------------------------------------------------------------------------
def pkt(data: bytes) -> bytes:
    return b"%04x" % (len(data) + 4) + data


FLUSH, DELIM = b"0000", b"0001"


class _Mark:
    """A pkt-line without data: flush (None is used for it), delim, response-end."""


DELIM_PKT, END_PKT = _Mark(), _Mark()


class _Reader:
    """pkt-lines from a byte stream; a flush comes back as None, a delim as `DELIM_PKT`, a
    response-end as `END_PKT` (objects, so that no data line can be mistaken for them)."""

    def __init__(self, read: Callable[[int], bytes]):
        self._read = read

    def _exact(self, n: int) -> bytes:
        data = self._read(n)
        while len(data) < n:
            more = self._read(n - len(data))
            if not more:
                raise WireHangup("the server closed the connection")
            data += more
        return data

    def next(self) -> Any:
        size = int(self._exact(4), 16)
        if size < 4:
            if size == 3:
                raise WireError("the server sent an invalid pkt-line")
            return (None, DELIM_PKT, END_PKT)[size]
        data = self._exact(size - 4)
        if data.startswith(b"ERR "):
            raise WireError(data[4:].rstrip(b"\n").decode("utf-8", "replace"))
        return data

    def lines(self) -> Iterator[bytes]:
        """Data lines up to the next flush or delim (newline stripped)."""
        while True:
            line = self.next()
            if not isinstance(line, bytes):
                return
            yield line.rstrip(b"\n")


# --- transports ------------------------------------------------------------------------
class _Daemon:
    """``git://``: one TCP connection; protocol v2 is stateful there, so the ref listing and
    every later fetch of the same source go over the same connection (no new handshake)."""

    def __init__(self, host: str, port: int | None, path: str, timeout: float):
        self.addr, self.path, self.timeout = (host, port or 9418), path, timeout
        self.host_arg = host if port is None else f"{host}:{port}"
        self._sock: socket.socket | None = None
        self._file: Any = None
        self.caps: dict[bytes, bytes] | None = None

    def _connect(self) -> None:
        host, port = self.addr
        # An ASCII host as bytes: a str would be IDNA-encoded, importing unicodedata for it.
        sock = socket.create_connection(
            (host.encode() if host.isascii() else host, port), timeout=self.timeout
        )
        sock.sendall(
            pkt(b"git-upload-pack %s\0host=%s\0\0version=2\0" % (self.path.encode(), self.host_arg.encode()))
        )
        self._sock, self._file = sock, sock.makefile("rb")
        self.caps = _read_caps(_Reader(self._file.read))

    def command(self, body: bytes) -> _Reader:
        fresh = self._sock is None
        if fresh:
            self._connect()
        assert self._sock is not None
        try:
            self._sock.sendall(body)
        except OSError:
            if fresh:
                raise
            self.close()  # the server dropped an idle connection: one new one
            self._connect()
            assert self._sock is not None
            self._sock.sendall(body)
        return _Reader(self._file.read)

    def capabilities(self) -> dict[bytes, bytes]:
        if self.caps is None:
            self._connect()
        assert self.caps is not None
        return self.caps

    def close(self) -> None:
        for part in (self._file, self._sock):
            if part is not None:
                try:
                    part.close()
                except OSError:
                    pass
        self._sock = self._file = None


class _Http:
    """Smart HTTP(S): ``GET info/refs`` once for the capabilities, then one ``POST
    git-upload-pack`` per command on a kept-alive connection."""

    def __init__(self, scheme: str, host: str, port: int | None, path: str, timeout: float,
                 auth: str | None):  # fmt: skip
        self.scheme, self.host, self.port, self.timeout = scheme, host, port, timeout
        self.base = path.rstrip("/")
        self.auth = auth
        self._conn: Any = None
        self._resp: Any = None
        self.caps: dict[bytes, bytes] | None = None

    def _connection(self) -> Any:
        if self._conn is None:
            import http.client

            if self.scheme == "https":
                import ssl

                self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                         context=ssl.create_default_context())  # fmt: skip
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def _request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Any:
        if self._resp is not None:
            self._resp.read()  # drain the previous answer so the connection can be reused
            self._resp = None
        headers = {"Git-Protocol": "version=2", "User-Agent": "git/secret-manager-functions", **headers}
        if self.auth:
            headers["Authorization"] = self.auth
        conn = self._connection()
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
        except (ConnectionError, OSError) as exc:
            if isinstance(exc, TimeoutError):
                raise
            self.close()  # a kept-alive connection the server closed: once more on a new one
            conn = self._connection()
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
        self._resp = resp
        return resp

    def capabilities(self) -> dict[bytes, bytes]:
        if self.caps is not None:
            return self.caps
        for _ in range(5):  # redirects (a renamed repository, http -> https on the same host)
            resp = self._request("GET", f"{self.base}/info/refs?service=git-upload-pack", None, {})
            if resp.status in (301, 302, 303, 307, 308):
                self._follow(resp.getheader("Location") or "")
                continue
            break
        _check_status(resp.status)
        reader = _Reader(resp.read)
        first = reader.next()
        if isinstance(first, bytes) and first.startswith(b"# service="):
            for _ in reader.lines():
                pass
            first = reader.next()
        self.caps = _read_caps(reader, first)
        return self.caps

    def _follow(self, location: str) -> None:
        from urllib.parse import urlsplit

        target = urlsplit(location)
        if target.netloc and (target.hostname != self.host or target.scheme not in ("http", "https")):
            raise WireError("the server redirected to another host")  # credentials stay here
        if target.scheme:
            if target.scheme != self.scheme:
                self.close()
            self.scheme, self.port = target.scheme, target.port
        suffix = "/info/refs"
        path = target.path
        self.base = path[: -len(suffix)] if path.endswith(suffix) else path.rstrip("/")

    def command(self, body: bytes) -> _Reader:
        self.capabilities()
        resp = self._request("POST", f"{self.base}/git-upload-pack", body, {
            "Content-Type": "application/x-git-upload-pack-request",
            "Accept": "application/x-git-upload-pack-result",
        })  # fmt: skip
        _check_status(resp.status)
        return _Reader(resp.read)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = self._resp = None


def _check_status(status: int) -> None:
    if status == 401:
        raise WireUnauthorized("authentication refused (HTTP 401)")
    if status == 404:
        raise WireError("repository not found (HTTP 404)")
    if status != 200:
        raise WireError(f"HTTP {status}")


def _read_caps(reader: _Reader, first: bytes | None = None) -> dict[bytes, bytes]:
    if first is None:
        first = reader.next()
    if not isinstance(first, bytes) or first.rstrip(b"\n") != b"version 2":
        raise NotV2("the server does not speak protocol v2")
    caps: dict[bytes, bytes] = {}
    for line in reader.lines():
        name, _, value = line.partition(b"=")
        caps[name] = value
    return caps


# --- the remote ------------------------------------------------------------------------
class WireRemote:
    """`fetch(target, wants, ...)` in protocol v2, with the interface of core.git_fetch's
    remotes. `target` is a `RawRepo` (objects kept raw) or a dulwich repository (the
    objects are added to its object store). Every pack is read by `PackReader`: blobs over
    `max_blob_bytes` are dropped as they arrive and their ids and sizes put in
    `too_large`, so no pack is ever held whole."""

    def __init__(self, scheme: str, host: str, port: int | None, path: str, *, timeout: float,
                 username: str | None = None, password: str | None = None,
                 max_blob_bytes: int | None = None, too_large: dict[bytes, int] | None = None):  # fmt: skip
        self.max_blob_bytes = max_blob_bytes
        self.too_large = too_large if too_large is not None else {}
        #: Deltas dropped with their too-large blob, whose ids are unknown (`PackReader`).
        self.dropped = 0
        if scheme == "git":
            self.conn: _Daemon | _Http = _Daemon(host, port, path, timeout)
        else:
            auth = None
            if password:
                import base64

                auth = "Basic " + base64.b64encode(f"{username or 'git'}:{password}".encode()).decode()
            self.conn = _Http(scheme, host, port, path, timeout, auth)

    def ls_refs(self, prefixes: list[bytes] | None) -> dict[bytes, bytes]:
        body = [pkt(b"command=ls-refs\n"), pkt(_AGENT), DELIM, pkt(b"peel\n"), pkt(b"symrefs\n")]
        body += [pkt(b"ref-prefix %s\n" % p) for p in prefixes or ()]
        reader = self.conn.command(b"".join([*body, FLUSH]))
        refs: dict[bytes, bytes] = {}
        for line in reader.lines():
            sha, name, *attrs = line.split(b" ")
            refs[name] = sha
            for attr in attrs:
                if attr.startswith(b"peeled:"):
                    refs[name + b"^{}"] = attr[7:]
        return refs

    def fetch(self, target: Any, wants: Callable[..., list[bytes]], *, depth: int | None,
              filter_spec: bytes | None, ref_prefix: list[bytes] | None, haves: bool,
              need_refs: bool = True) -> tuple[dict[bytes, bytes], int, bool]:  # fmt: skip
        """Returns (server refs, objects received, filter honoured)."""
        caps = self.conn.capabilities()
        features = caps.get(b"fetch", b"").split()
        refs = self.ls_refs(ref_prefix) if need_refs else {}
        want = list(dict.fromkeys(wants(refs, depth=depth)))
        honoured = filter_spec is None or b"filter" in features
        if not want:
            return refs, 0, honoured
        body = [pkt(b"command=fetch\n"), pkt(_AGENT), DELIM,
                pkt(b"thin-pack\n"), pkt(b"no-progress\n"), pkt(b"ofs-delta\n")]  # fmt: skip
        if filter_spec is not None and honoured:
            body.append(pkt(b"filter %s\n" % filter_spec))
        body += [pkt(b"want %s\n" % sha) for sha in want]
        shallow = _shallow_of(target)
        if depth is not None:
            body.append(pkt(b"deepen %d\n" % depth))
        if haves:
            body += [pkt(b"shallow %s\n" % sha) for sha in sorted(shallow)]
            body += [pkt(b"have %s\n" % sha) for sha in _haves_of(target)]
        body += [pkt(b"done\n"), FLUSH]
        reader = self.conn.command(b"".join(body))
        new_shallow: set[bytes] = set()
        unshallow: set[bytes] = set()
        received = 0
        while True:
            header = reader.next()
            if not isinstance(header, bytes):
                break
            header = header.rstrip(b"\n")
            if header == b"packfile":
                received = receive_pack(target.object_store, _sideband(reader), self.max_blob_bytes, self)
                break
            for line in reader.lines():  # acknowledgments, shallow-info, wanted-refs
                if header == b"shallow-info":
                    kind, _, sha = line.partition(b" ")
                    (new_shallow if kind == b"shallow" else unshallow).add(sha)
        if new_shallow or unshallow:
            target.update_shallow(new_shallow, unshallow)
        return refs, received, honoured

    def close(self) -> None:
        self.conn.close()


def _sideband(reader: _Reader) -> Iterator[memoryview]:
    """The ``packfile`` section's pack data as it arrives: band 1 is pack data, band 2
    progress (not asked for), band 3 a fatal error."""
    while True:
        line = reader.next()
        if not isinstance(line, bytes):
            return
        band = line[0]
        if band == 1:
            yield memoryview(line)[1:]
        elif band == 3:
            raise WireError(line[1:].rstrip(b"\n").decode("utf-8", "replace"))


def receive_pack(store: Any, chunks: Iterable[bytes | memoryview], max_blob_bytes: int | None,
                 remote: Any) -> int:  # fmt: skip
    """Read one pack from `chunks` into `store` (ours or dulwich's) with `PackReader`, so
    no transport holds a pack, or a blob over `max_blob_bytes`, whole. What it dropped is
    added to `remote`'s `too_large` (blob id -> size) and `dropped` (deltas without an id).
    Returns the number of objects received."""
    reader = PackReader(_lookup_in(store), max_blob_bytes=max_blob_bytes)
    for chunk in chunks:
        reader.feed(chunk)
    _add_to(store, reader.finish())
    remote.too_large.update(reader.too_large)
    remote.dropped += reader.dropped
    return reader.count or 0


def _lookup_in(store: Any) -> Callable[[bytes], tuple[int, bytes] | None]:
    """A thin pack's delta bases from what `store` holds (raw, or dulwich's on disk)."""
    if hasattr(store, "raw_or_none"):
        return store.raw_or_none

    def lookup(sha: bytes) -> tuple[int, bytes] | None:
        try:
            return store.get_raw(sha)
        except KeyError:
            return None

    return lookup


def _add_to(store: Any, objects: dict[bytes, tuple[int, bytes]]) -> None:
    """Keep received objects: raw in a store that keeps them raw, as one new pack in a
    dulwich store (the warm cache on disk; written from the raw bytes, nothing parsed)."""
    if hasattr(store, "add_raw"):
        store.add_raw(objects)
    elif objects:
        from dulwich.pack import UnpackedObject

        store.add_pack_data(len(objects), (
            UnpackedObject(t, sha=bytes.fromhex(sha.decode()), decomp_len=len(raw), decomp_chunks=[raw])
            for sha, (t, raw) in objects.items()
        ))  # fmt: skip


def _shallow_of(target: Any) -> set[bytes]:
    if isinstance(target, RawRepo):
        return set(target.object_store.shallow)
    return set(target.get_shallow())


def _haves_of(target: Any) -> Iterable[bytes]:
    if isinstance(target, RawRepo):
        return target.object_store.commits()
    walker = target.get_graph_walker()
    out = []
    while (sha := next(walker)) is not None:
        out.append(sha)
    return out


# --- packs -----------------------------------------------------------------------------
def object_id(type_num: int, raw: bytes) -> bytes:
    h = sha1(b"%s %d\0" % (TYPE_NAMES[type_num], len(raw)))  # noqa: S324 - Git object ids are SHA-1
    h.update(raw)
    return h.hexdigest().encode()


def unpack(pack: bytes | bytearray, external: Callable[[bytes], tuple[int, bytes] | None]) -> dict[bytes, tuple[int, bytes]]:  # fmt: skip
    """Every object of a pack as ``{hex id: (type number, raw bytes)}``, deltas applied.
    `external` looks up a delta base that is not in the pack (a thin pack). The trailing
    checksum is verified."""
    reader = PackReader(external)
    reader.feed(pack)
    return reader.finish()


class PackReader:
    """A pack parsed while it arrives: `feed` the bytes as they come (objects are inflated
    as soon as they are complete, so the work overlaps the server's sending and the whole
    pack is never held), `finish` for ``{hex id: (type number, raw bytes)}``.

    Memory is bounded whatever the server sends. A blob whose header says it is larger than
    `max_blob_bytes` is inflated only to learn its id, then dropped: `too_large` maps its id
    to its size, so reading it fails that one file (and its service) instead of the run. A
    delta whose result is such a blob, whose base was dropped, or which is itself larger
    than `max_blob_bytes` on a blob base, is dropped as well and counted in `dropped` (its id
    is unknown without applying it; asked for alone, the blob comes whole). Any other object,
    or delta, larger than `MAX_OBJECT_BYTES`, a pack keeping more than `MAX_PACK_BYTES` of
    trees and commits, and any object that inflates past its header's size, fail the fetch."""

    def __init__(self, external: Callable[[bytes], tuple[int, bytes] | None], *,
                 max_blob_bytes: int | None = None):  # fmt: skip
        self._external = external
        self._max_blob = max_blob_bytes
        self.too_large: dict[bytes, int] = {}
        self.dropped = 0
        self._dropped_at: set[int] = set()  # pack offsets of dropped objects (delta bases)
        self._held = 0  # bytes kept so far, checked against MAX_PACK_BYTES
        self._buf = bytearray()
        self._offset = 0  # pack offset of _buf[0]
        self._sha = sha1()  # noqa: S324 - the pack trailer is SHA-1
        self.count: int | None = None
        self._left = 0
        # the object being inflated: [pack offset, type, size, delta base, decompressor,
        # chunks, bytes fed, bytes inflated, hash of a blob being dropped (else None)]
        self._cur: list[Any] | None = None
        self._by_offset: dict[int, tuple[int, bytes]] = {}
        self._by_id: dict[bytes, tuple[int, bytes]] = {}
        self._pending: list[tuple[int, int | bytes, bytes]] = []

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data
        self._advance(final=False)

    def finish(self) -> dict[bytes, tuple[int, bytes]]:
        self._advance(final=True)
        if self.count is None:
            raise WireError("the server sent no valid pack")
        if self._left or self._cur is not None:
            raise WireError("the received pack is truncated")
        if len(self._buf) != 20:
            raise WireError("the received pack has trailing data")
        if self._sha.digest() != bytes(self._buf):
            raise WireError("the received pack is damaged (checksum mismatch)")
        self._resolve()
        return self._by_id

    def _advance(self, *, final: bool) -> None:
        buf = self._buf
        if self.count is None:
            if len(buf) < 12:
                return
            if buf[:4] != b"PACK":
                raise WireError("the server sent no valid pack")
            self.count = self._left = int.from_bytes(buf[8:12], "big")
            self._sha.update(buf[:12])
            del buf[:12]
            self._offset = 12
        view = memoryview(buf)
        pos = 0
        try:
            while self._left:
                if self._cur is None:
                    # A header is at most 10 + 20 bytes; wait for them unless the pack is all here.
                    if len(buf) - pos < 32 and not final:
                        break
                    parsed = self._header(view, pos)
                    if parsed is None:
                        raise WireError("the received pack is truncated")
                    self._cur, pos = parsed
                cur = self._cur
                d = cur[4]
                with view[
                    pos : min(len(buf), pos + max(cur[2] + 64 - cur[6], 4096 if cur[6] else 0))
                ] as piece:
                    fed = len(piece)
                    if not fed:
                        break
                    try:
                        self._inflate(cur, d, piece)
                    except zlib.error:
                        raise WireError("the received pack is damaged (an object does not inflate)") from None
                if d.eof:
                    pos += fed - len(d.unused_data)
                    self._done(cur)
                    self._cur = None
                    self._left -= 1
                else:
                    pos += fed
                    cur[6] += fed
        finally:
            if pos:
                with view[:pos] as done:
                    self._sha.update(done)
            view.release()
        if pos:
            del buf[:pos]
            self._offset += pos

    @staticmethod
    def _inflate(cur: list[Any], d: Any, piece: memoryview) -> None:
        """Inflate `piece` into the current object, a step at a time, stopping as soon as
        the output passes the header's size (kept, or only hashed for a dropped blob)."""
        out = d.decompress(piece, _INFLATE_STEP)
        while True:
            cur[7] += len(out)
            if cur[7] > cur[2]:
                raise WireError("the received pack is damaged (an object larger than its header says)")
            if cur[8] is None:
                cur[5].append(out)
            else:
                cur[8].update(out)
            if d.eof or (not d.unconsumed_tail and len(out) < _INFLATE_STEP):
                return
            out = d.decompress(d.unconsumed_tail, _INFLATE_STEP)

    def _header(self, view: memoryview, pos: int) -> tuple[list[Any], int] | None:
        start = pos
        found = entry_header(view, pos)
        if found is None:
            return None
        type_num, size, base, pos = found
        if type_num == _OFS_DELTA:
            base = self._offset + start - base
        elif type_num != _REF_DELTA and type_num not in TYPE_NAMES:
            raise WireError(f"the received pack is damaged (an object of unknown type {type_num})")
        dropping: Any = None
        if self._max_blob is not None and size > self._max_blob:
            if base is None and type_num == _BLOB:
                dropping = sha1(b"blob %d\0" % size)  # noqa: S324 - Git object ids are SHA-1
            elif base is not None and self._blob_base(base):
                dropping = _DISCARD  # a delta to a blob at least about this large
        if dropping is None and size > MAX_OBJECT_BYTES:
            raise WireError(
                f"the received pack has an object of {size} bytes (the limit is {MAX_OBJECT_BYTES})"
            )
        if base is None and type_num != _BLOB:
            self._hold(size)
        return [self._offset + start, type_num, size, base, zlib.decompressobj(), [], 0, 0, dropping], pos

    def _done(self, cur: list[Any]) -> None:
        start, type_num, size, base, _, chunks, _, inflated, dropping = cur
        if inflated != size:
            raise WireError("the received pack is damaged (an object of the wrong size)")
        if dropping is _DISCARD:
            self._drop(start)
            return
        if dropping is not None:
            self.too_large[dropping.hexdigest().encode()] = size
            self._dropped_at.add(start)
            return
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if base is None:
            self._by_offset[start] = self._by_id[object_id(type_num, data)] = (type_num, data)
        else:
            self._pending.append((start, base, data))

    def _resolve(self) -> None:
        pending, by_offset, by_id = self._pending, self._by_offset, self._by_id
        while pending:  # bases usually come first; a chain in another order takes more rounds
            waiting = []
            for start, ref, delta in pending:
                if (ref in self._dropped_at) if isinstance(ref, int) else (ref in self.too_large):
                    self._drop(start)  # based on a dropped blob: a blob itself
                    continue
                found = (
                    by_offset.get(ref) if isinstance(ref, int) else (by_id.get(ref) or self._external(ref))
                )
                if found is None:
                    waiting.append((start, ref, delta))
                    continue
                size = delta_size(delta)
                if found[0] == _BLOB and self._max_blob is not None and size > self._max_blob:
                    self._drop(start)
                    continue
                if size > MAX_OBJECT_BYTES:
                    raise WireError(
                        f"the received pack has a delta to {size} bytes (the limit is {MAX_OBJECT_BYTES})"
                    )
                if found[0] != _BLOB:
                    self._hold(size)
                entry = (found[0], apply_delta(found[1], delta))
                by_offset[start] = by_id[object_id(*entry)] = entry
            if len(waiting) == len(pending):
                raise LookupError(f"{len(waiting)} delta(s) in the received pack have no base: not found")
            pending = waiting
        self._pending = []

    def _blob_base(self, base: int | bytes) -> bool:
        """Whether a delta's base is known to be a blob (held or dropped)."""
        if isinstance(base, int):
            held = self._by_offset.get(base)
            return base in self._dropped_at or (held is not None and held[0] == _BLOB)
        held = self._by_id.get(base) or self._external(base)
        return base in self.too_large or (held is not None and held[0] == _BLOB)

    def _hold(self, size: int) -> None:
        self._held += size
        if self._held > MAX_PACK_BYTES:
            raise WireError(
                f"the received pack holds more than {MAX_PACK_BYTES} bytes of trees and commits (the limit)"
            )

    def _drop(self, start: int) -> None:
        self._dropped_at.add(start)
        self.dropped += 1


def entry_header(view: bytes | memoryview, pos: int) -> tuple[int, int, Any, int] | None:
    """A pack entry's header at `pos`: (type number, size, base, position after it). The
    base is the distance back to an OFS_DELTA's base, the hex id of a REF_DELTA's, else
    None; a delta's size is the delta's own. None when `view` ends inside the header."""
    n = len(view)
    if pos >= n:
        return None
    byte = view[pos]
    pos += 1
    type_num, size, shift = (byte >> 4) & 7, byte & 15, 4
    while byte & 0x80:
        if pos >= n:
            return None
        byte = view[pos]
        pos += 1
        size |= (byte & 0x7F) << shift
        shift += 7
    base: int | bytes | None = None
    if type_num == _OFS_DELTA:
        if pos >= n:
            return None
        byte = view[pos]
        pos += 1
        base = byte & 0x7F
        while byte & 0x80:
            if pos >= n:
                return None
            byte = view[pos]
            pos += 1
            base = ((base + 1) << 7) | (byte & 0x7F)
    elif type_num == _REF_DELTA:
        if pos + 20 > n:
            return None
        base = bytes(view[pos : pos + 20]).hex().encode()
        pos += 20
    return type_num, size, base, pos


class _Discard:
    """Where a dropped delta's inflated bytes go (its id is not needed: it is re-asked for)."""

    @staticmethod
    def update(data: bytes) -> None:
        return None


_DISCARD = _Discard()


def _varint(delta: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = delta[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def delta_size(delta: bytes) -> int:
    """The size of the object a delta makes (its header's second number)."""
    try:
        _, pos = _varint(delta, 0)
        return _varint(delta, pos)[0]
    except IndexError:
        raise WireError("a delta in the received pack is truncated") from None


def apply_delta(base: bytes, delta: bytes) -> bytes:
    """Git's delta format: a copy-from-base / insert-literal instruction stream. The output
    never grows past the size the delta's header states (copies can repeat a base range
    without end)."""
    src_size, pos = _varint(delta, 0)
    dst_size, pos = _varint(delta, pos)
    if src_size != len(base):
        raise WireError("a delta in the received pack does not fit its base")
    out = bytearray()
    n = len(delta)
    while pos < n:
        op = delta[pos]
        pos += 1
        if op & 0x80:
            offset = length = 0
            for i in range(4):
                if op & (1 << i):
                    offset |= delta[pos] << (8 * i)
                    pos += 1
            for i in range(3):
                if op & (0x10 << i):
                    length |= delta[pos] << (8 * i)
                    pos += 1
            out += base[offset : offset + (length or 0x10000)]
            if len(out) > dst_size:
                raise WireError("a delta in the received pack has the wrong size")
        elif op:
            out += delta[pos : pos + op]
            pos += op
        else:
            raise WireError("a delta in the received pack has an invalid instruction")
    if len(out) != dst_size:
        raise WireError("a delta in the received pack has the wrong size")
    return bytes(out)


# --- a store of raw objects ------------------------------------------------------------
class RawStore:
    """Objects as ``{hex id: (type number, raw bytes)}``: nothing is parsed until read.
    `__getitem__` builds a dulwich object (for the paths that use dulwich: tree diffs,
    history); the cold path never calls it."""

    def __init__(self) -> None:
        self._raw: dict[bytes, tuple[int, bytes]] = {}
        self.shallow: set[bytes] = set()

    def __contains__(self, sha: bytes) -> bool:
        return sha in self._raw

    def __iter__(self) -> Iterator[bytes]:
        return iter(list(self._raw))

    def get_raw(self, sha: bytes) -> tuple[int, bytes]:
        return self._raw[sha]

    def raw_or_none(self, sha: bytes) -> tuple[int, bytes] | None:
        return self._raw.get(sha)

    def add_raw(self, objects: dict[bytes, tuple[int, bytes]]) -> None:
        self._raw.update(objects)

    def commits(self) -> list[bytes]:
        return [sha for sha, (kind, _) in self._raw.items() if kind == 1]

    def __getitem__(self, sha: bytes) -> Any:
        from dulwich.objects import ShaFile

        type_num, raw = self._raw[sha]
        return ShaFile.from_raw_string(type_num, raw, sha=sha)

    def add_objects(self, objects: Iterable[tuple[Any, Any]]) -> None:
        for obj, _ in objects:
            self._raw[obj.id] = (obj.type_num, obj.as_raw_string())

    def close(self) -> None:
        return None


class RawRepo:
    """The little of a repository the fetcher needs in memory: a `RawStore`, shallow
    commits, and lookups by id."""

    def __init__(self) -> None:
        self.object_store = RawStore()

    def __getitem__(self, sha: bytes) -> Any:
        return self.object_store[sha]

    def update_shallow(self, new: Iterable[bytes] | None, unshallow: Iterable[bytes] | None) -> None:
        self.object_store.shallow |= set(new or ())
        self.object_store.shallow -= set(unshallow or ())

    def get_shallow(self) -> set[bytes]:
        return set(self.object_store.shallow)

    def close(self) -> None:
        return None
