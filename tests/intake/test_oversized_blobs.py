"""A file over the size limit in a Git source fails its own service and is never held whole.

The limit is `MAX_FILE_BYTES` (core/parsers/limits.py). A pack streams through
`core.git_wire.PackReader`: a blob whose header says it is larger is inflated only to learn
its id, then dropped, so the fetch's memory does not grow with it, on the cold path (raw
objects in memory) and on the warm one (the cache on disk) alike. Crafted packs check the
bounds that no well-behaved server would exercise: an object that inflates past its header,
an oversized tree, a delta that copies without end.
"""

from __future__ import annotations

import subprocess
import zlib
from hashlib import sha1
from pathlib import Path

import pytest

from core.config import parse_config_text
from core.discover import discover
from core.errors import ParseError
from core.git_fetch import fetch_commit, stored_blob_size
from core.git_wire import MAX_OBJECT_BYTES, PackReader, WireError, apply_delta
from core.parsers.limits import MAX_FILE_BYTES
from core.report import Report
from core.stores.local import LocalConfigStore
from core.sync import run
from tests.support.packs import entry, pack, size_varint, traced_peak
from tests.support.two_services import ensure_local_store_key

SVC = "services/{}/deployment-configuration/profiles/prod/application.properties"
CONFIG = """
apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata: {name: big}
spec:
  sourceRef: {kind: Git, url: "URL", branch: main}
  provider: {type: local, local: {path: "DB"}}
  secrets: {environment: prod, basePath: services}
  configs: {enabled: true}
"""
#: Just over the limit; lines a .properties parser would accept if it ever got them.
BIG = b"".join(b"key.%07d=value\n" % i for i in range(MAX_FILE_BYTES // 18 + 1000))
#: Two large files, one a few bytes longer than the other (so Git stores one as a delta of
#: the other once repacked), and a small one read in the same request.
TWINS = {SVC.format("a"): BIG, SVC.format("b"): BIG + b"extra=1\n", SVC.format("ok"): "k=v\n"}


def _repack(repo_path: Path, *options: str) -> None:
    subprocess.run(["git", "-C", str(repo_path), "repack", "-q", "-a", "-d", "-f", *options], check=True)


def _not_v2(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202, ARG001
    from core.git_wire import NotV2

    raise NotV2("the server does not speak protocol v2")


def _assert_twins_refused_and_small_file_read(src) -> None:  # noqa: ANN001
    assert sorted(src._f.too_large.values()) == [len(BIG), len(BIG) + 8]
    for name in ("a", "b"):
        with pytest.raises(ParseError) as err:
            src.read(SVC.format(name))
        assert err.value.path == SVC.format(name) and "the limit is" in err.value.message
    assert src.read(SVC.format("ok")) == b"k=v\n"


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm-cache"])
def test_oversized_blob_fails_its_file_and_is_never_held(make_repo, tmp_path, warm):
    assert len(BIG) > MAX_FILE_BYTES
    repo = make_repo({SVC.format("big"): BIG, SVC.format("ok"): "k=v\n"})
    cfg = parse_config_text(CONFIG.replace("URL", repo.url), "c.yaml")[0]
    src = fetch_commit(repo.url, "main", cache_dir=str(tmp_path / "cache") if warm else None)
    paths = [p for svc in discover(cfg, src) for p in svc.files]
    assert sorted(paths) == [SVC.format("big"), SVC.format("ok")]
    with traced_peak() as peak:
        src.prefetch(paths)
    assert peak[0] < MAX_FILE_BYTES // 2  # held whole it would be more than the limit
    blob = subprocess.run(["git", "-C", str(repo.path), "rev-parse", f"main:{SVC.format('big')}"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert src._f.too_large == {blob.encode(): len(BIG)}  # the id, checked as it streamed by
    with pytest.raises(ParseError) as err:
        src.read(SVC.format("big"))
    assert err.value.path == SVC.format("big")
    assert err.value.message == f"file is {len(BIG)} bytes; the limit is {MAX_FILE_BYTES} bytes"
    assert src.read(SVC.format("ok")) == b"k=v\n"
    fetches = src._f.stats["fetches"]
    with pytest.raises(ParseError):
        src.read(SVC.format("big"))  # known too large: not asked for again
    assert src._f.stats["fetches"] == fetches
    src.close()


@pytest.mark.parametrize("client", ["v2", "dulwich"])
def test_delta_of_a_dropped_blob_is_asked_for_alone(make_repo, monkeypatch, client):
    """Two near-identical large files: the server sends one as a delta of the other, whose
    base was dropped. The one left unknown is asked for alone, arrives whole, and is
    reported too large like the first; a small file in the same request still reads. The
    same on dulwich's path (a server without protocol v2), whose retry is the same loop."""
    from core.git_wire import WireRemote

    if client == "dulwich":
        monkeypatch.setattr(WireRemote, "fetch", _not_v2)
    repo = make_repo(TWINS)
    _repack(repo.path, "--window=10")
    src = fetch_commit(repo.url, "main")
    src.prefetch(list(TWINS))
    if client == "dulwich":
        assert type(src._f.remote).__name__ == "_NetworkRemote"
    assert src._f.remote.dropped >= 1  # the case under test is really there
    _assert_twins_refused_and_small_file_read(src)
    src.close()


def test_sync_over_git_fails_only_the_service_with_the_oversized_file(make_repo, tmp_path):
    ensure_local_store_key()
    repo = make_repo({SVC.format("big"): BIG, SVC.format("ok"): "k=v\n"})
    db = tmp_path / "store.db"
    cfg = parse_config_text(CONFIG.replace("URL", repo.url).replace("DB", str(db)), "c.yaml")
    with fetch_commit(repo.url, "main") as src:
        report: Report = run(cfg, src, apply=True)
    errors = [e for e in report.errors if e.get("service") == "big"]
    assert [e["path"] for e in errors] == [SVC.format("big")] and "limit" in errors[0]["message"]
    assert [e for e in report.errors if e.get("service") != "big"] == []
    assert sorted(LocalConfigStore(str(db)).names()) == ["ok/prod/k"]


# --- a repository on this machine (file:// or a path) ------------------------------------
def _unpack_loose(repo_path: Path) -> None:
    """Turn the repository's packs into loose objects (as a fresh commit leaves them)."""
    packs = sorted((repo_path / "objects" / "pack").glob("*.pack"))
    for p in packs:
        data = p.read_bytes()
        for f in p.parent.glob(p.stem + ".*"):
            f.unlink()
        subprocess.run(["git", "-C", str(repo_path), "unpack-objects", "-q"], input=data, check=True)


def _verify_pack(repo_path: Path) -> str:
    idx = [str(p) for p in (repo_path / "objects" / "pack").glob("*.idx")]
    return subprocess.run(["git", "-C", str(repo_path), "verify-pack", "-v", *idx],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip


@pytest.mark.parametrize("layout", ["packed", "deltas", "loose"])
def test_local_repository_oversized_blob_is_told_by_its_header_and_never_read(make_repo, layout):
    """A local source is copied, not streamed: a blob over the limit is recognised from its
    stored header (a pack entry's, a delta's, or a loose object's first bytes) and not
    read, so the copy stays small and the read fails that file alone."""
    repo = make_repo(TWINS)
    if layout == "deltas":
        _repack(repo.path, "--window=10")
        assert "chain length = 1" in _verify_pack(repo.path)  # one large file is a delta of the other
    elif layout == "loose":
        _unpack_loose(repo.path)
        assert not list((repo.path / "objects" / "pack").glob("*.pack"))
    src = fetch_commit(repo.file_url, "main")
    with traced_peak() as peak:
        src.prefetch(list(TWINS))
    assert peak[0] < MAX_FILE_BYTES // 2  # held whole it would be more than the limit
    _assert_twins_refused_and_small_file_read(src)
    src.close()


@pytest.mark.parametrize("layout", ["deltas", "loose"])
def test_stored_blob_size_agrees_with_git_for_every_object(make_repo, commit_files, layout):
    """Oracle: `git cat-file --batch-check` over every object of a repository with delta
    chains across commits (or loose objects): blobs have git's size, the rest None."""
    from dulwich.repo import Repo

    repo = make_repo({f"d/f{i}.txt": "line\n" * (50 + i) for i in range(6)})
    for n in range(4):
        commit_files(repo, {f"d/f{i}.txt": "line\n" * (50 + i) + f"edit {n}\n" * n for i in range(6)})
    if layout == "deltas":
        _repack(repo.path, "--depth=50")
        assert "chain length = 2" in _verify_pack(repo.path)  # chains, not only single deltas
    else:
        _unpack_loose(repo.path)
    listing = subprocess.run(["git", "-C", str(repo.path), "cat-file", "--batch-all-objects", "--batch-check"],
                             capture_output=True, text=True, check=True).stdout.split("\n")  # fmt: skip
    objects = [line.split() for line in listing if line]
    assert sum(kind == "blob" for _, kind, _ in objects) >= 20
    with Repo(str(repo.path)) as r:
        for sha, kind, size in objects:
            expected = int(size) if kind == "blob" else None
            assert stored_blob_size(r.object_store, sha.encode()) == expected, (sha, kind)


# --- crafted packs ---------------------------------------------------------------------
def test_object_inflating_past_its_header_is_stopped_early():
    """A zlib stream crafted to inflate far past the size its header states: refused after
    at most one inflate step past the header, not after inflating all of it (kept or
    dropped alike)."""
    bomb = zlib.compress(b"\0" * (64 * 1024 * 1024), 9)  # 64 MiB from about 64 KiB
    for type_num, size in ((2, 100), (3, 10), (3, MAX_FILE_BYTES + 1)):
        reader = PackReader(lambda sha: None, max_blob_bytes=MAX_FILE_BYTES)
        with traced_peak() as peak, pytest.raises(WireError, match="larger than its header says"):
            reader.feed(pack(entry(type_num, size, bomb)))
            reader.finish()
        assert peak[0] < 4 * 1024 * 1024, (type_num, size)


def test_oversized_tree_fails_the_fetch_before_its_data():
    reader = PackReader(lambda sha: None, max_blob_bytes=MAX_FILE_BYTES)
    with pytest.raises(WireError, match=f"object of {MAX_OBJECT_BYTES + 1} bytes"):
        reader.feed(pack(entry(2, MAX_OBJECT_BYTES + 1, b"")))
        reader.finish()


def test_dropped_blob_id_and_size_match_git_and_small_blobs_are_kept():
    big, small = b"x" * (MAX_FILE_BYTES + 1), b"small\n"
    reader = PackReader(lambda sha: None, max_blob_bytes=MAX_FILE_BYTES)
    reader.feed(pack(entry(3, len(big), zlib.compress(big)), entry(3, len(small), zlib.compress(small))))
    objects = reader.finish()
    git_id = sha1(b"blob %d\0" % len(big) + big).hexdigest().encode()
    assert reader.too_large == {git_id: len(big)} and git_id not in objects
    assert list(objects.values()) == [(3, small)]


def test_delta_to_an_oversized_blob_is_dropped_not_applied():
    base = b"b" * 1000
    # source 1000, target MAX_FILE_BYTES + 1 (varints), then one copy of the whole base
    target = MAX_FILE_BYTES + 1
    delta = size_varint(1000) + size_varint(target) + bytes([0x90, 0xE8])  # copy 1000 bytes from 0
    base_id = sha1(b"blob 1000\0" + base).digest()
    reader = PackReader(lambda sha: None, max_blob_bytes=MAX_FILE_BYTES)
    reader.feed(
        pack(entry(3, len(base), zlib.compress(base)), entry(7, len(delta), base_id + zlib.compress(delta)))
    )
    objects = reader.finish()
    assert reader.dropped == 1 and list(objects.values()) == [(3, base)]


def test_delta_copying_past_its_stated_size_is_stopped():
    base = bytes(range(256)) * 512  # 128 KiB
    # source 128 KiB, target 100 bytes, then copies of 64 KiB for ever
    delta = bytes([0x80, 0x80, 0x08, 0x64]) + bytes([0x80]) * 1000
    with pytest.raises(WireError, match="wrong size"):
        apply_delta(base, delta)


def test_local_directory_file_over_the_limit_is_refused_unread(tmp_path: Path):
    """Its size is told by `fstat`: none of it is read."""
    from core.source import LocalDirSource

    path = tmp_path / SVC.format("big")
    path.parent.mkdir(parents=True)
    with open(path, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES * 100)  # sparse: 500 MiB that nobody should read
    src = LocalDirSource(tmp_path)
    with traced_peak() as peak, pytest.raises(ParseError) as err:
        src.read(SVC.format("big"))
    assert err.value.message == f"file is {MAX_FILE_BYTES * 100} bytes; the limit is {MAX_FILE_BYTES} bytes"
    assert peak[0] < 1024 * 1024


def test_delta_larger_than_the_limit_on_a_blob_base_is_dropped_as_it_arrives():
    base = b"b" * 100
    base_id = sha1(b"blob 100\0" + base).digest()
    delta = b"\x64" + b"\x80\x7d" + b"\x7f" * 2000  # never parsed: dropped while inflating
    reader = PackReader(lambda sha: None, max_blob_bytes=1000)
    reader.feed(
        pack(entry(3, len(base), zlib.compress(base)), entry(7, len(delta), base_id + zlib.compress(delta)))
    )
    assert list(reader.finish().values()) == [(3, base)] and reader.dropped == 1
    unknown = PackReader(lambda sha: None, max_blob_bytes=1000)  # base not known: the object limit
    with pytest.raises(WireError, match=f"object of {MAX_OBJECT_BYTES + 1} bytes"):
        unknown.feed(pack(entry(7, MAX_OBJECT_BYTES + 1, bytes(20))))
        unknown.finish()


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm-cache"])
def test_dulwich_fallback_drops_the_oversized_blob_too(make_repo, monkeypatch, tmp_path, warm):
    """A server without protocol v2 (dulwich's client, a full fetch): the pack dulwich spools
    is read by the same `PackReader`, so the large blob is dropped there as well, into
    memory or into the cache on disk."""
    from core.git_wire import WireRemote

    monkeypatch.setattr(WireRemote, "fetch", _not_v2)
    repo = make_repo({SVC.format("big"): BIG, SVC.format("ok"): "k=v\n"})
    cache = str(tmp_path / "cache") if warm else None
    import dulwich.client  # noqa: F401 - imported first: its module code is not the fetch's memory
    import dulwich.repo  # noqa: F401

    with traced_peak() as peak:
        src = fetch_commit(repo.url, "main", cache_dir=cache)
    assert type(src._f.remote).__name__ == "_NetworkRemote"
    assert peak[0] < MAX_FILE_BYTES // 2
    with pytest.raises(ParseError, match=f"file is {len(BIG)} bytes"):
        src.read(SVC.format("big"))
    assert src.read(SVC.format("ok")) == b"k=v\n"
    src.close()


def test_any_source_returning_more_than_the_limit_is_refused():
    """The rule is the base class's (`SourceTree.read`), whatever a source's `_read` returns:
    a file that grew between its size check and its read, say."""
    from core.source import SourceTree

    class Growing(SourceTree):
        def walk_dirs(self, under: str = "") -> list[str]:
            return [""]

        def list_files(self, directory: str) -> list[str]:
            return ["f"]

        def _read(self, path: str, limit: int) -> bytes:
            return bytes(limit + 1)

    with pytest.raises(ParseError) as err:
        Growing().read("/f")
    assert err.value.path == "f"
    assert err.value.message == f"file is larger than the limit of {MAX_FILE_BYTES} bytes"


def test_pack_keeping_more_than_the_pack_limit_fails_before_inflating_it(monkeypatch):
    """Headers are counted as they arrive: the tree that would pass `MAX_PACK_BYTES` fails
    the fetch before its bytes are inflated. Blobs do not count (each has its own limit)."""
    import core.git_wire as wire

    monkeypatch.setattr(wire, "MAX_PACK_BYTES", 1000)
    trees = [entry(2, 400, zlib.compress(bytes(400))) for _ in range(3)]
    reader = PackReader(lambda sha: None)
    with pytest.raises(WireError, match="holds more than 1000 bytes"):
        reader.feed(pack(*trees))
        reader.finish()
    assert len(reader._by_offset) == 2  # the third was refused at its header
    blobs = PackReader(lambda sha: None, max_blob_bytes=MAX_FILE_BYTES)
    blobs.feed(pack(*(entry(3, 400, zlib.compress(bytes([i]) * 400)) for i in range(3))))
    assert len(blobs.finish()) == 3
