"""The standard-library protocol v2 client and pack reader (core/git_wire.py), checked
against git itself: packs written by `git pack-objects` (with OFS and REF deltas, thin
packs), a real `git daemon`, and the fallback to dulwich when the server is not v2."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from core.errors import SourceError
from core.git_fetch import fetch_commit
from core.git_wire import NotV2, WireError, WireRemote, apply_delta, object_id, unpack

PARTIAL_CONFIG = """
apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata: {name: partial}
spec:
  sourceRef: {kind: Git, url: "URL", branch: main}
  provider: {type: local}
  secrets: {environment: prod, basePath: services}
  configs: {enabled: true}
"""


def _git(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True, check=True).stdout


def _delta_repo(tmp_path: Path) -> tuple[Path, list[str]]:
    """A repository whose history deltas well: one large file edited a little per commit."""
    repo = tmp_path / "r"
    _git(tmp_path, "init", "-q", "-b", "main", str(repo))
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "T")
    lines = [f"line {i}: {'x' * (i % 40)}\n" for i in range(2000)]
    shas = []
    for rev in range(6):
        lines[rev * 300] = f"edited in revision {rev}\n"
        (repo / "big.txt").write_text("".join(lines))
        (repo / "d").mkdir(exist_ok=True)
        (repo / "d" / f"f{rev}.txt").write_text(f"{rev}\n")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", f"r{rev}")
        shas.append(_git(repo, "rev-parse", "HEAD").decode().strip())
    _git(repo, "repack", "-q", "-a", "-d", "-f", "--window=10", "--depth=10")
    return repo, shas


def _git_objects(repo: Path, ids: set[bytes]) -> dict[bytes, tuple[int, bytes]]:
    types = {b"commit": 1, b"tree": 2, b"blob": 3, b"tag": 4}
    out = _git(repo, "cat-file", "--batch", input=b"".join(i + b"\n" for i in sorted(ids)))
    objects, pos = {}, 0
    while pos < len(out):
        end = out.index(b"\n", pos)
        sha, kind, size = out[pos:end].split()
        start = end + 1
        objects[sha] = (types[kind], out[start : start + int(size)])
        pos = start + int(size) + 1
    return objects


def _has_deltas(repo: Path, pack: bytes, tmp_path: Path) -> bool:
    path = tmp_path / "check.pack"
    path.write_bytes(pack)
    _git(repo, "index-pack", str(path))
    return b"chain length" in _git(repo, "verify-pack", "-v", str(path.with_suffix(".idx")))


@pytest.mark.parametrize("ofs", [True, False], ids=["ofs-delta", "ref-delta"])
def test_unpack_matches_git_objects_with_deltas(tmp_path, ofs):
    repo, shas = _delta_repo(tmp_path)
    args = ["pack-objects", "--stdout", "--revs", *(["--delta-base-offset"] if ofs else [])]
    pack = _git(repo, *args, input=f"{shas[-1]}\n".encode())
    assert _has_deltas(repo, pack, tmp_path)  # the case under test is really there
    objects = unpack(pack, lambda sha: None)
    listed = _git(repo, "rev-list", "--objects", shas[-1]).split(b"\n")
    expected = _git_objects(repo, {line.split()[0] for line in listed if line})
    assert objects == expected
    assert all(object_id(*obj) == sha for sha, obj in objects.items())


def test_thin_pack_resolves_bases_outside_the_pack(tmp_path):
    repo, shas = _delta_repo(tmp_path)
    pack = _git(
        repo, "pack-objects", "--stdout", "--revs", "--thin", input=f"{shas[-1]}\n^{shas[-2]}\n".encode()
    )
    old_ids = {line.split()[0] for line in _git(repo, "rev-list", "--objects", shas[-2]).split(b"\n") if line}
    held = _git_objects(repo, old_ids)
    with pytest.raises(LookupError, match="no base"):
        unpack(pack, lambda sha: None)  # really thin: it needs what we hold
    objects = unpack(pack, held.get)
    assert objects[shas[-1].encode()][0] == 1
    big = _git(repo, "rev-parse", f"{shas[-1]}:big.txt").strip()
    assert objects[big] == _git_objects(repo, {big})[big]


def test_damaged_pack_is_refused(tmp_path):
    repo, shas = _delta_repo(tmp_path)
    pack = bytearray(_git(repo, "pack-objects", "--stdout", "--revs", input=f"{shas[0]}\n".encode()))
    pack[40] ^= 0xFF
    with pytest.raises(WireError, match="damaged"):
        unpack(pack, lambda sha: None)
    with pytest.raises(WireError, match="no valid pack"):
        unpack(b"NOPE" + bytes(40), lambda sha: None)


def test_apply_delta_copy_of_size_zero_means_64_kib():
    base = bytes(range(256)) * 512  # 128 KiB
    # source size, target size (varints), then copy offset 0 with no size bytes = 0x10000
    delta = bytes([0x80, 0x80, 0x08, 0x80, 0x80, 0x04, 0x80])
    assert apply_delta(base, delta) == base[:0x10000]
    with pytest.raises(WireError):
        apply_delta(base[:10], delta)  # base of the wrong size


def test_ls_refs_and_fetch_over_one_daemon_connection(make_repo, commit_files):
    repo = make_repo({"a/b.txt": "1\n"})
    commit_files(repo, {"a/c.txt": "2\n"})
    from core.git_wire import RawRepo

    remote = WireRemote("git", "127.0.0.1", int(repo.url.split(":")[2].split("/")[0]), "/" + repo.name,
                        timeout=10)  # fmt: skip
    refs = remote.ls_refs([b"refs/heads/"])
    target = RawRepo()
    tip = refs[b"refs/heads/main"]
    _, received, honoured = remote.fetch(target, lambda refs, depth=None: [tip], depth=1, filter_spec=b"blob:none",
                                         ref_prefix=[b"refs/heads/main"], haves=True)  # fmt: skip
    assert honoured and received == 1 + 2  # the commit, the root tree and a/: no blob
    assert target.get_shallow() == {tip}
    sock = remote.conn._sock
    blob = _git(repo.path, "rev-parse", "main:a/c.txt").strip()
    remote.fetch(target, lambda refs, depth=None: [blob], depth=None, filter_spec=None, ref_prefix=None,
                 haves=False, need_refs=False)  # fmt: skip
    assert remote.conn._sock is sock  # the same connection: no second handshake
    assert target.object_store.get_raw(blob) == (3, b"2\n")
    remote.close()


def test_idle_connection_dropped_by_the_server_is_reopened(make_repo):
    repo = make_repo({"svc/x.env": "K=1\n"})
    src = fetch_commit(repo.url, "main")
    conn = src._f.remote.conn
    conn._sock.close()  # the server went away between the tree fetch and the blob fetch
    assert src.read("svc/x.env") == b"K=1\n"


def test_server_without_protocol_v2_falls_back_to_dulwich(make_repo, monkeypatch, caplog):
    repo = make_repo({"svc/x.env": "K=1\n", "svc/y.env": "K=2\n"})

    def not_v2(self, *args, **kwargs):
        raise NotV2("the server does not speak protocol v2")

    monkeypatch.setattr(WireRemote, "fetch", not_v2)
    with caplog.at_level("INFO", logger="smf.git"):
        src = fetch_commit(repo.url, "main")
    assert src.commit == repo.sha and src.read("svc/y.env") == b"K=2\n"
    assert any("does not speak git protocol v2" in r.getMessage() for r in caplog.records)
    assert type(src._f.remote).__name__ == "_NetworkRemote"


def test_errors_name_the_url_not_the_credentials(git_server, make_repo):
    repo = make_repo({"a": "1"})
    url = git_server.http_url(repo).replace("http://", "http://u:sekrit-token-value@")
    with pytest.raises(SourceError) as err:
        fetch_commit(url, "main")
    assert "401" in str(err.value) and "sekrit-token-value" not in str(err.value)
    missing = repo.url.replace(repo.name, "missing.git")
    with pytest.raises(SourceError, match="the server said: no such repository") as err:
        fetch_commit(missing, "main")
    assert missing in str(err.value)


def test_cold_fetch_and_read_imports_neither_dulwich_nor_openssl(make_repo):
    """What a cold process pays for: the partial fetch, discovery and reads of a git://
    source load no dulwich, no hashlib (OpenSSL), no logging package and no pathlib."""
    import sys

    repo = make_repo({"services/a/deployment-configuration/profiles/prod/application.properties": "k=v\n"})
    script = f"""
import sys
from core.config import parse_config_text
from core.discover import discover
from core.git_fetch import fetch_commit
cfg = parse_config_text('''{PARTIAL_CONFIG.replace("URL", repo.url)}''', "c.yaml")[0]
src = fetch_commit({repo.url!r}, "main")
paths = [p for svc in discover(cfg, src) for p in svc.files]
src.prefetch(paths)
assert [src.read(p) for p in paths] == [b"k=v\\n"], paths
print(sorted(m for m in sys.modules if m.split(".")[0] in ("dulwich", "hashlib", "_hashlib", "logging", "pathlib")))
"""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tree_entries_with_directory_like_names(make_repo):
    """Directories are told by their mode, not by bytes that look like one in a name."""
    files = {"top/40000 x.env": "a\n", "top/sub/y 40000 .env": "b\n", "top/sub/deeper/z.env": "c\n", "r": "d"}
    repo = make_repo(files)
    src = fetch_commit(repo.url, "main")
    assert src.walk_dirs() == ["", "top", "top/sub", "top/sub/deeper"]
    assert src.list_files("top") == ["40000 x.env"] and src.list_files("top/sub") == ["y 40000 .env"]
    assert src.read("top/sub/y 40000 .env") == b"b\n"


def test_malformed_tree_is_reported():
    from core.git_fetch import _Listing

    with pytest.raises(SourceError, match="malformed"):
        _Listing(b"ab" * 20, b"40000 dir\0short")
    leaf = _Listing(b"cd" * 20, b"100644 f\0tooshort")  # no directory entry: not scanned yet
    assert leaf.dirs == {}
    with pytest.raises(SourceError, match="malformed"):
        leaf.files  # noqa: B018 - the property parses


def test_pack_fed_in_pieces_as_it_arrives_gives_the_same_objects(tmp_path):
    """The pack is parsed while it arrives: any split of the bytes gives the same objects,
    including splits inside headers, deltas' base references and zlib streams."""
    import random

    from core.git_wire import PackReader

    repo, shas = _delta_repo(tmp_path)
    for ofs in (True, False):
        args = ["pack-objects", "--stdout", "--revs", *(["--delta-base-offset"] if ofs else [])]
        pack = _git(repo, *args, input=f"{shas[-1]}\n".encode())
        whole = unpack(pack, lambda sha: None)
        rng = random.Random(len(pack))
        for top in (1, 7, 100, 5000):
            reader, pos = PackReader(lambda sha: None), 0
            while pos < len(pack):
                step = rng.randint(1, top)
                reader.feed(pack[pos : pos + step])
                pos += step
            assert reader.finish() == whole and reader.count == len(whole)
    with pytest.raises(WireError, match="truncated|trailing"):
        reader = PackReader(lambda sha: None)
        reader.feed(pack[:-30])
        reader.finish()
