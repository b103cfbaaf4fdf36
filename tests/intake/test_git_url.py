"""Git URL rules (core/git_url.py): one module decides what "the same repository" means for
webhook matching, the CLI and the fetch cache."""

from __future__ import annotations

from core.git_url import cache_key, is_remote_url, is_zero_sha, normalize_repo_url, parse_scp


def test_scp_form_and_what_is_not():
    assert parse_scp("git@github.com:acme/repo.git") == ("git", "github.com", "acme/repo.git")
    assert parse_scp("host.example:x") == (None, "host.example", "x")
    for not_scp in ("C:/repos/x", "/srv/git/x", "./x", "https://h/x", "ssh://git@h/x", "h:\\x"):
        assert parse_scp(not_scp) is None, not_scp


def test_remote_or_local():
    assert is_remote_url("git@github.com:acme/repo.git") and is_remote_url("file:///srv/x.git")
    assert not is_remote_url("examples/repo") and not is_remote_url("C:/repos/x")


def test_cache_key_is_per_repository_not_per_spelling():
    same = ["https://github.com/Acme/Repo.git", "git@github.com:acme/repo",
            "https://x-access-token:secret@github.com/acme/repo/"]  # fmt: skip
    assert len({cache_key(u) for u in same}) == 1
    assert cache_key("file:///srv/A.git") != cache_key("file:///srv/a.git")  # paths keep case
    assert cache_key("git://h:1/x") != cache_key("git://h:2/x")
    assert normalize_repo_url("file:///srv/x.git") == "file:/srv/x"


def test_zero_sha():
    assert is_zero_sha("0" * 40) and is_zero_sha(None) and is_zero_sha("")
    assert not is_zero_sha("0" * 39 + "1")
