"""dulwich fetch of one commit from real servers: git daemon (git://), git http-backend with
token auth (http://) and plain file URLs."""

from __future__ import annotations

import os
import subprocess

import pytest

from core.errors import SourceError
from core.git_fetch import fetch_commit, https_url_for, redact_url, token_username

FILES = {
    "README.md": "# config repo\n",
    "svc/a/deployment-configuration/profiles/dev/application.properties": "a=1\n",
    "svc/b/deployment-configuration/profiles/dev/application.properties": "b=1\n",
    "svc/b/deployment-configuration/profiles/prod/application.properties": "b=2\n",
}


@pytest.fixture
def repo(make_repo):
    return make_repo(FILES)


def _urls(git_server, repo):
    return {
        "git": (repo.url, None),
        "http": (git_server.http_url(repo), git_server.token),
        "file": (repo.file_url, None),
    }


@pytest.mark.parametrize("scheme", ["git", "http", "file"])
def test_fetch_branch_and_read_tree(git_server, repo, scheme):
    url, token = _urls(git_server, repo)[scheme]
    with fetch_commit(url, "main", token=token) as src:
        assert src.commit == repo.sha and src.ref == "refs/heads/main"
        assert src.walk_dirs("svc/b") == [
            "svc/b",
            "svc/b/deployment-configuration",
            "svc/b/deployment-configuration/profiles",
            "svc/b/deployment-configuration/profiles/dev",
            "svc/b/deployment-configuration/profiles/prod",
        ]
        assert src.list_files("") == ["README.md"]
        assert src.read("svc/a/deployment-configuration/profiles/dev/application.properties") == b"a=1\n"
        assert src.is_dir("svc/a") and not src.is_dir("svc/zzz") and not src.is_dir("README.md")
        with pytest.raises(SourceError) as err:
            src.read("svc/a/missing.env")
        assert err.value.path == "svc/a/missing.env"
        assert src.walk_dirs("nope") == [] and src.list_files("nope") == []


@pytest.mark.parametrize("scheme", ["git", "http"])
def test_fetch_old_commit_by_full_and_short_sha(git_server, repo, commit_files, scheme):
    second = commit_files(repo, {"README.md": "v2\n"})
    commit_files(repo, {"README.md": "v3\n"})
    url, token = _urls(git_server, repo)[scheme]
    for ref in (repo.sha, repo.sha[:10], "refs/heads/main"):
        src = fetch_commit(url, ref, token=token)
        expected = git_server.rev_parse(repo, "main") if ref.startswith("refs/") else repo.sha
        assert src.commit == expected
    assert fetch_commit(url, second, token=token).read("README.md") == b"v2\n"


def test_fetch_tag(git_server, repo, commit_files):
    commit_files(repo, {"README.md": "later\n"})
    git_server.tag(repo, "v1", repo.sha)
    src = fetch_commit(repo.url, "v1")
    assert src.commit == repo.sha and src.ref == "refs/tags/v1"


def test_http_token_accepted_and_refused(git_server, repo):
    url = git_server.http_url(repo)
    assert fetch_commit(url, "main", token=git_server.token).commit == repo.sha
    for token in (None, "wrong-token-123456"):
        with pytest.raises(SourceError) as err:
            fetch_commit(url, "main", token=token)
        assert "401" in str(err.value) and url in str(err.value)
        if token:
            assert token not in str(err.value)
    assert git_server.requests[-1][2] is False


def test_token_in_url_is_used_and_never_shown(git_server, repo):
    url = git_server.http_url(repo)
    with_creds = url.replace("http://", f"http://x-access-token:{git_server.token}@")
    src = fetch_commit(with_creds, "main")
    assert src.commit == repo.sha and git_server.token not in src.origin
    bad = url.replace("http://", "http://x-access-token:bad-secret-value@")
    with pytest.raises(SourceError) as err:
        fetch_commit(bad, "main")
    assert "bad-secret-value" not in str(err.value)


def test_unknown_ref_and_commit(git_server, repo):
    with pytest.raises(SourceError, match="no branch, tag or commit named nope"):
        fetch_commit(repo.url, "nope")
    with pytest.raises(SourceError) as err:
        fetch_commit(repo.url, "f" * 40)
    assert repo.url in str(err.value)
    with pytest.raises(SourceError):
        fetch_commit("git://127.0.0.1:1/none.git", "main")  # nothing listens on port 1


@pytest.mark.parametrize("scheme", ["git", "http"])
def test_force_push_and_deleted_branch(git_server, repo, commit_files, scheme):
    url, token = _urls(git_server, repo)[scheme]
    c2 = commit_files(repo, {"README.md": "2\n"})
    c3 = commit_files(repo, {"README.md": "3\n"})
    # Force-push: main moves to a new commit on top of the first one; c2, c3 are orphaned.
    c3b = commit_files(repo, {"README.md": "3b\n"}, parent=repo.sha)
    src = fetch_commit(url, "main", token=token)
    assert src.commit == c3b and src.read("README.md") == b"3b\n"
    # The orphaned commit is still served by id (allowAnySHA1InWant) until gc.
    assert fetch_commit(url, c3, token=token).read("README.md") == b"3\n"
    assert src.is_ancestor(repo.sha, c3b) is True
    assert src.is_ancestor(c2, c3b) is False and src.is_ancestor(c3, c3b) is False
    assert src.is_ancestor(c3b, c3) is False
    assert src.changed_paths(c3, c3b) == {"README.md"}
    # Deleted branch: the name is gone, the commit id still resolves.
    commit_files(repo, {"f": "x"}, branch="feature")
    feature = git_server.rev_parse(repo, "feature")
    git_server.delete_branch(repo, "feature")
    with pytest.raises(SourceError, match="no branch"):
        fetch_commit(url, "feature", token=token)
    assert fetch_commit(url, feature, token=token).commit == feature


def test_changed_paths_tree_diff(repo, commit_files):
    c2 = commit_files(repo, {"svc/a/deployment-configuration/profiles/dev/application.properties": "a=2\n"},
                      delete=["README.md"])  # fmt: skip
    c3 = commit_files(repo, {"svc/c/new.env": "x"})
    src = fetch_commit(repo.url, c3)
    assert src.changed_paths(c2, c3) == {"svc/c/new.env"}
    assert src.changed_paths(repo.sha, c3) == {
        "README.md",
        "svc/a/deployment-configuration/profiles/dev/application.properties",
        "svc/c/new.env",
    }
    assert src.changed_paths(c3, c3) == set()
    assert src.changed_paths("0" * 40, c3) is None  # new branch: everything
    assert src.changed_paths("e" * 40, c3) is None  # before unknown to the server


def test_is_ancestor_deepens_only_as_needed(repo, commit_files):
    shas = [repo.sha] + [commit_files(repo, {"README.md": f"{i}\n"}) for i in range(60)]
    commit_files(repo, {"b": "1"}, branch="side", parent=shas[10])
    src = fetch_commit(repo.url, "main")
    fetches = src.stats["fetches"]
    # Parent of the fetched commit: answered from what a push fetch already has + 1 round.
    assert src.is_ancestor(shas[-2], shas[-1]) is True
    assert src.is_ancestor(shas[-1], shas[-2]) is False
    assert src.is_ancestor(shas[0], shas[-1]) is True  # 60 commits deep: needs deepening
    assert src.is_ancestor(shas[-1], shas[0]) is False
    assert src.is_ancestor(shas[5], shas[5]) is True
    assert src.is_ancestor("short", shas[0]) is None
    assert src.stats["fetches"] > fetches  # history was fetched on demand


@pytest.mark.parametrize("scheme", ["git", "http"])
def test_thousands_of_files(git_server, make_repo, tmp_path, scheme):
    files = {f"services/s{i // 10:03d}/deployment-configuration/profiles/dev/f{i % 10}.env": f"K={i}\n"
             for i in range(3000)}  # fmt: skip
    repo = make_repo(files)
    before = set(os.listdir(tmp_path))
    url, token = _urls(git_server, repo)[scheme]
    src = fetch_commit(url, "main", token=token)
    dirs = src.walk_dirs()
    assert len([d for d in dirs if d.endswith("/dev")]) == 300
    assert src.read("services/s123/deployment-configuration/profiles/dev/f7.env") == b"K=1237\n"
    assert set(os.listdir(tmp_path)) == before  # nothing written: no checkout


def test_warm_cache_fetches_only_new_objects(repo, commit_files, tmp_path):
    cache = str(tmp_path / "cache")
    first = fetch_commit(repo.url, "main", cache_dir=cache)
    n_first = first.stats["objects"]
    first.close()
    again = fetch_commit(repo.url, "main", cache_dir=cache)
    assert again.stats["objects"] == 0 and again.commit == repo.sha
    again.close()
    c2 = commit_files(repo, {"svc/a/deployment-configuration/profiles/dev/application.properties": "a=9\n"})
    warm = fetch_commit(repo.url, "main", cache_dir=cache)
    # commit + 6 trees on the path (root .. dev): only what changed, and no blob yet
    assert warm.commit == c2 and warm.stats["objects"] == 7 < n_first
    assert warm.read("svc/a/deployment-configuration/profiles/dev/application.properties") == b"a=9\n"
    assert warm.stats["objects"] == 8 and warm.stats["blobs"] == 1  # the blob read, by id
    warm.close()
    by_sha = fetch_commit(repo.url, c2, cache_dir=cache)
    assert by_sha.stats["fetches"] == 0  # a known commit id needs no network at all
    by_sha.close()
    cached = os.listdir(cache)
    assert len(cached) == 1 and cached[0].startswith("git-")
    assert not os.path.exists(os.path.join(cache, cached[0], "svc"))  # bare: no work tree


def test_helpers():
    assert redact_url("https://u:p@host/x.git") == "https://host/x.git"
    assert token_username("https://github.com/a/b") == "x-access-token"
    assert token_username("https://gitlab.example.com/a/b") == "oauth2"
    assert token_username("https://bitbucket.org/a/b") == "x-token-auth"
    assert token_username("https://gitea.example.com/a/b") == "git"


def test_ssh_urls_become_https_with_a_token():
    assert https_url_for("git@github.com:acme/repo.git") == "https://github.com/acme/repo.git"
    assert https_url_for("ssh://git@gitlab.example.com:22/g/p.git") == "https://gitlab.example.com/g/p.git"
    assert https_url_for("https://github.com/a/b") == "https://github.com/a/b"
    assert https_url_for("/srv/git/repo.git") == "/srv/git/repo.git"
    assert https_url_for("C:/repos/x") == "C:/repos/x"  # no dot in "C": not a host


def test_unusable_cache_dir_falls_back_to_memory(repo, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    src = fetch_commit(repo.url, "main", cache_dir=str(blocker / "cache"))
    assert src.commit == repo.sha and src.read("README.md") == b"# config repo\n"


# --- partial fetch: trees first, then only the blobs that are read ---------------------
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


def _many_files(services: int = 30, filler: int = 20) -> dict[str, str]:
    files = {}
    for s in range(services):
        base = f"services/s{s:02d}/deployment-configuration/profiles"
        for env in ("dev", "prod"):
            files[f"{base}/{env}/application.properties"] = f"k=v{s}{env}\n"
        for i in range(filler):
            files[f"services/s{s:02d}/src/m{i % 4}/f{i}.py"] = f"x = {s * 100 + i}\n"
    return files


def _objects_by_type(src) -> dict[bytes, int]:
    store = src._f.repo.object_store
    out: dict[bytes, int] = {}
    for sha in store:
        kind = store[sha].type_name
        out[kind] = out.get(kind, 0) + 1
    return out


def _trees_in(git_server, repo, rev: str) -> int:
    listing = subprocess.run(
        ["git", "ls-tree", "-r", "-t", rev], cwd=repo.path, capture_output=True, check=True
    )
    return 1 + sum(1 for line in listing.stdout.splitlines() if b" tree " in line)


@pytest.mark.parametrize("scheme", ["git", "http", "file"])
def test_push_fetches_commit_trees_and_only_the_blobs_read(git_server, make_repo, scheme):
    from core.config import parse_config_text
    from core.discover import discover

    files = _many_files()
    repo = make_repo(files)
    url, token = _urls(git_server, repo)[scheme]
    cfg = parse_config_text(PARTIAL_CONFIG.replace("URL", url), "c.yaml")[0]
    src = fetch_commit(url, "main", token=token)
    assert _objects_by_type(src) == {b"commit": 1, b"tree": _trees_in(git_server, repo, "main")}
    selected = [p for svc in discover(cfg, src) for p in svc.files]
    assert len(selected) == 30 and src.stats["fetches"] == 1
    src.prefetch(selected)
    assert [src.read(p).decode() for p in selected[:2]] == [files[p] for p in selected[:2]]
    assert all(src.read(p).decode() == files[p] for p in selected)
    counts = _objects_by_type(src)
    assert counts[b"blob"] == len(selected) < len(files)  # no blob that is not read
    assert src.stats == {"fetches": 2, "objects": sum(counts.values()), "blobs": len(selected)}
    src.read("services/s03/src/m1/f5.py")  # a file not prefetched: its blob alone
    assert src.stats["fetches"] == 3 and src.stats["blobs"] == len(selected) + 1


def test_server_refusing_filters_gets_a_full_fetch_with_a_log_line(make_repo, caplog):
    files = _many_files(services=3, filler=4)
    repo = make_repo(files)
    subprocess.run(["git", "config", "uploadpack.allowFilter", "false"], cwd=repo.path, check=True)
    with caplog.at_level("WARNING", logger="smf.git"):
        src = fetch_commit(repo.url, "main")
    assert _objects_by_type(src)[b"blob"] == len(files)  # today's full fetch at depth 1
    assert any("refuses partial-clone filters" in r.getMessage() and repo.url in r.getMessage()
               for r in caplog.records)  # fmt: skip
    src.prefetch(files)
    assert src.read("services/s01/src/m1/f1.py") == files["services/s01/src/m1/f1.py"].encode()
    assert src.stats["fetches"] == 1 and src.stats["blobs"] == 0  # nothing left to ask for


def test_warm_cache_for_file_urls(git_server, make_repo, commit_files, tmp_path):
    files = _many_files(services=4, filler=6)
    repo = make_repo(files)
    cache = str(tmp_path / "cache")
    path = "services/s01/deployment-configuration/profiles/prod/application.properties"
    with fetch_commit(repo.file_url, "main", cache_dir=cache) as first:
        assert first.stats["objects"] == 1 + _trees_in(git_server, repo, "main")  # no blobs
        assert first.read(path) == files[path].encode()
    with fetch_commit(repo.file_url, "main", cache_dir=cache) as again:
        assert again.stats["objects"] == 0 and again.read(path) == files[path].encode()
        assert again.stats["fetches"] == 1  # the ref lookup only: the blob was cached
    c2 = commit_files(repo, {path: "k=changed\n"})
    with fetch_commit(repo.file_url, "main", cache_dir=cache) as warm:
        # The new commit and the 6 trees on the changed path (root .. prod), nothing else.
        assert warm.commit == c2 and warm.stats["objects"] == 7
        assert warm.read(path) == b"k=changed\n" and warm.stats["blobs"] == 1
        assert warm.changed_paths(repo.sha, c2) == {path}
    assert os.listdir(cache) == [next(iter(os.listdir(cache)))]  # one repository, one cache


def test_serve_uses_a_user_cache_by_default(monkeypatch, tmp_path):
    from core.git_fetch import user_cache_dir

    monkeypatch.delenv("GIT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert user_cache_dir() == str(tmp_path / "secret-manager-functions" / "git")
    monkeypatch.setenv("GIT_CACHE_DIR", "")
    assert user_cache_dir() is None  # explicitly in memory
