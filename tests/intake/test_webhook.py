"""Webhook verification and parsing: every host's documented format, and every way to fail."""

from __future__ import annotations

import json
import urllib.parse
from types import SimpleNamespace

import pytest

from core.webhook import (
    Ignored,
    PushEvent,
    Rejected,
    configs_for_push,
    detect_provider,
    normalize_repo_url,
    verify_and_parse,
)
from tests.intake.payloads import (
    ZERO,
    bitbucket_push,
    generic_push,
    gitea_push,
    github_push,
    gitlab_push,
    sign,
)

SECRET = "It's a Secret to Everybody"
A = "a" * 40
B = "b" * 40
URL = "https://github.com/acme/config-repo.git"


def test_github_documented_test_vector():
    # GitHub's "Validating webhook deliveries" test values: this secret and body must
    # produce exactly this signature.
    body = b"Hello, World!"
    expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign(SECRET, body) == expected
    out = verify_and_parse(
        {"X-GitHub-Event": "ping", "X-Hub-Signature-256": f"sha256={expected}"}, body, secret=SECRET
    )
    # Authentic, but not JSON: rejected as malformed only after the signature passed.
    assert isinstance(out, Rejected) and out.status == 400 and "malformed" in out.reason


def test_github_push_is_reduced_to_one_event():
    headers, body = github_push(URL, before=A, after=B, modified=["svc/a.env"], added=["x"],
                                secret=SECRET, delivery="d-1")  # fmt: skip
    ev = verify_and_parse(headers, body, secret=SECRET)
    assert isinstance(ev, PushEvent)
    assert (ev.provider, ev.ref, ev.branch, ev.before, ev.after) == (
        "github",
        "refs/heads/main",
        "main",
        A,
        B,
    )
    assert ev.changed_paths == {"svc/a.env", "x"}
    assert ev.delivery_id == "d-1" and ev.forced is False and not ev.truncated
    assert URL in ev.repo_urls and "git@github.com:acme/config-repo.git" in ev.repo_urls
    assert ev.paths_reliable


def test_header_lookup_is_case_insensitive():
    headers, body = github_push(URL, before=A, after=B, secret=SECRET)
    lower = {k.lower(): v for k, v in headers.items()}
    upper = {k.upper(): v for k, v in headers.items()}
    assert isinstance(verify_and_parse(lower, body, secret=SECRET), PushEvent)
    assert isinstance(verify_and_parse(upper, body, secret=SECRET), PushEvent)


@pytest.mark.parametrize(
    "mutate, status",
    [
        (lambda h, b: ({k: v for k, v in h.items() if k != "X-Hub-Signature-256"}, b), 401),
        (lambda h, b: ({**h, "X-Hub-Signature-256": "sha256=" + "0" * 64}, b), 403),
        (lambda h, b: ({**h, "X-Hub-Signature-256": "sha1=" + sign(SECRET, b)}, b), 403),
        (lambda h, b: ({**h, "X-Hub-Signature-256": sign(SECRET, b)}, b), 403),  # no prefix
        (lambda h, b: ({**h, "X-Hub-Signature-256": "sha256=" + sign("other", b)}, b), 403),
        (lambda h, b: (h, b[:-10]), 403),  # truncated body, signature of the full one
        (lambda h, b: ({**h, "Content-Length": str(len(b))}, b[: len(b) // 2]), 400),
        (lambda h, b: (h, b.replace(b"main", b"prod")), 403),  # tampered
    ],
    ids=[
        "missing",
        "zero",
        "sha1-in-256",
        "no-prefix",
        "other-secret",
        "truncated",
        "content-length",
        "tampered",
    ],  # fmt: skip
)
def test_github_bad_requests_are_rejected(mutate, status):
    headers, body = github_push(URL, before=A, after=B, secret=SECRET)
    h2, b2 = mutate(headers, body)
    out = verify_and_parse(h2, b2, secret=SECRET)
    assert isinstance(out, Rejected) and out.status == status, out
    assert SECRET not in out.reason


def test_oversized_body_rejected_before_anything_else():
    headers, body = github_push(URL, before=A, after=B, secret=SECRET)
    out = verify_and_parse(headers, body, secret=SECRET, max_body=100)
    assert isinstance(out, Rejected) and out.status == 413


def test_malformed_json_with_valid_signature():
    body = b'{"ref": "refs/heads/main", "before": '
    h = {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(SECRET, body)}
    out = verify_and_parse(h, body, secret=SECRET)
    assert isinstance(out, Rejected) and out.status == 400


@pytest.mark.parametrize("field, value", [("after", "xyz"), ("ref", "main"), ("repository", None)])
def test_malformed_push_fields(field, value):
    headers, body = github_push(URL, before=A, after=B, secret=SECRET)
    payload = json.loads(body)
    payload[field] = value
    body = json.dumps(payload).encode()
    headers["X-Hub-Signature-256"] = "sha256=" + sign(SECRET, body)
    out = verify_and_parse(headers, body, secret=SECRET)
    assert isinstance(out, Rejected) and out.status == 400


def test_missing_secret_is_a_server_error():
    headers, body = github_push(URL, before=A, after=B, secret=SECRET)
    out = verify_and_parse(headers, body, secret="")
    assert isinstance(out, Rejected) and out.status == 500


def test_ping_and_other_events_are_acknowledged():
    body = json.dumps({"zen": "Design for failure.", "hook_id": 1}).encode()
    h = {"X-GitHub-Event": "ping", "X-Hub-Signature-256": "sha256=" + sign(SECRET, body)}
    out = verify_and_parse(h, body, secret=SECRET)
    assert isinstance(out, Ignored) and out.status == 200
    h["X-GitHub-Event"] = "issues"
    out = verify_and_parse(h, body, secret=SECRET)
    assert isinstance(out, Ignored) and out.status == 202
    # An unsigned ping is still rejected: nothing is acknowledged without the secret.
    out = verify_and_parse({"X-GitHub-Event": "ping"}, body, secret=SECRET)
    assert isinstance(out, Rejected) and out.status == 401


def test_tag_push_and_branch_delete_are_ignored():
    h, b = github_push(URL, ref="refs/tags/v1.0", before=ZERO, after=B, secret=SECRET)
    out = verify_and_parse(h, b, secret=SECRET)
    assert isinstance(out, Ignored) and "tag" in out.reason
    ev = verify_and_parse(h, b, secret=SECRET, tags=True)
    assert isinstance(ev, PushEvent) and ev.tag == "v1.0" and ev.branch is None
    h, b = github_push(URL, before=A, after=ZERO, secret=SECRET)
    out = verify_and_parse(h, b, secret=SECRET)
    assert isinstance(out, Ignored) and "deleted" in out.reason


def test_github_truncation_forced_and_created():
    commits = [{"id": f"{i:040x}", "added": [], "removed": [], "modified": [f"f{i}"]} for i in range(20)]
    h, b = github_push(URL, before=A, after=B, commits=commits, secret=SECRET)
    ev = verify_and_parse(h, b, secret=SECRET)
    assert ev.truncated and not ev.paths_reliable
    h, b = github_push(URL, before=A, after=B, modified=["x"], forced=True, secret=SECRET)
    ev = verify_and_parse(h, b, secret=SECRET)
    assert ev.forced and not ev.paths_reliable
    h, b = github_push(URL, before=ZERO, after=B, modified=["x"], secret=SECRET)
    ev = verify_and_parse(h, b, secret=SECRET)
    assert ev.created and not ev.paths_reliable
    h, b = github_push(URL, before=A, after=B, commits=[], secret=SECRET)  # reset to older
    ev = verify_and_parse(h, b, secret=SECRET)
    assert ev.changed_paths is None


def test_github_form_encoded_content_type():
    _, body = github_push(URL, before=A, after=B, modified=["x"], secret=SECRET)
    form = urllib.parse.urlencode({"payload": body.decode()}).encode()
    h = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": "sha256=" + sign(SECRET, form),
    }
    ev = verify_and_parse(h, form, secret=SECRET)
    assert isinstance(ev, PushEvent) and ev.changed_paths == {"x"}


def test_gitlab_token_and_payload():
    url = "http://example.com/mike/diaspora.git"
    h, b = gitlab_push(url, before=A, after=B, modified=["a/b.env"], secret=SECRET)
    ev = verify_and_parse(h, b, secret=SECRET)
    assert isinstance(ev, PushEvent) and ev.provider == "gitlab"
    assert ev.branch == "main" and ev.changed_paths == {"a/b.env"}
    assert ev.forced is None and not ev.paths_reliable  # GitLab does not say "forced"
    assert ev.delivery_id == h["X-Gitlab-Event-UUID"]
    assert isinstance(verify_and_parse({**h, "X-Gitlab-Token": "wrong"}, b, secret=SECRET), Rejected)
    h2 = {k: v for k, v in h.items() if k != "X-Gitlab-Token"}
    out = verify_and_parse(h2, b, secret=SECRET)
    assert isinstance(out, Rejected) and out.status == 401
    h, b = gitlab_push(url, before=A, after=B, secret=SECRET, total=25)
    assert verify_and_parse(h, b, secret=SECRET).truncated
    h, b = gitlab_push(url, ref="refs/tags/v1", before=ZERO, after=B, secret=SECRET, tag=True)
    assert isinstance(verify_and_parse(h, b, secret=SECRET), Ignored)
    h = {**h, "X-Gitlab-Event": "Merge Request Hook"}
    assert verify_and_parse(h, b, secret=SECRET).status == 202


def test_bitbucket_cloud_signature_and_changes():
    h, b = bitbucket_push("acme/config", before=A, after=B, secret=SECRET)
    ev = verify_and_parse(h, b, secret=SECRET)
    assert isinstance(ev, PushEvent) and ev.provider == "bitbucket"
    assert ev.changed_paths is None  # Bitbucket sends no file lists: tree diff
    assert "https://bitbucket.org/acme/config.git" in ev.repo_urls
    assert ev.delivery_id == h["X-Request-UUID"]
    bad = {**h, "X-Hub-Signature": "sha256=" + "1" * 64}
    assert verify_and_parse(bad, b, secret=SECRET).status == 403
    # branch deletion (new is null)
    h, b = bitbucket_push("acme/config", before=A, after=None, secret=SECRET)
    assert isinstance(verify_and_parse(h, b, secret=SECRET), Ignored)
    # two branches in one push
    other = {"new": {"type": "branch", "name": "prod", "target": {"hash": A}},
             "old": {"type": "branch", "name": "prod", "target": {"hash": B}},
             "forced": True, "created": False, "closed": False}  # fmt: skip
    h, b = bitbucket_push("acme/config", before=A, after=B, secret=SECRET, extra_changes=[other])
    ev = verify_and_parse(h, b, secret=SECRET)
    assert [e.branch for e in [ev, *ev.more]] == ["main", "prod"] and ev.more[0].forced


@pytest.mark.parametrize("forgejo", [False, True])
def test_gitea_and_forgejo(forgejo):
    url = "http://localhost:3000/gitea/webhooks.git"
    h, b = gitea_push(url, before=A, after=B, modified=["m"], secret=SECRET, forgejo=forgejo)
    assert detect_provider(h) == "gitea"
    ev = verify_and_parse(h, b, secret=SECRET)
    assert isinstance(ev, PushEvent) and ev.provider == "gitea" and ev.changed_paths == {"m"}
    # Every signature header present must match: a stale one cannot ride along.
    bad = {**h, "X-Gitea-Signature": "0" * 64}
    assert verify_and_parse(bad, b, secret=SECRET).status == 403
    only_hub = {k: v for k, v in h.items() if "Signature" not in k or k == "X-Hub-Signature-256"}
    assert isinstance(verify_and_parse(only_hub, b, secret=SECRET), PushEvent)
    h, b = gitea_push(url, before=A, after=B, secret=SECRET, total=30)
    assert verify_and_parse(h, b, secret=SECRET).truncated


def test_generic_hmac():
    h, b = generic_push("git://127.0.0.1/x.git", before=A, after=B, changed=["p"], secret=SECRET)
    ev = verify_and_parse(h, b, secret=SECRET, provider="generic")
    assert isinstance(ev, PushEvent) and ev.changed_paths == {"p"} and ev.paths_reliable
    h.pop("X-Signature-256")
    assert verify_and_parse(h, b, secret=SECRET, provider="generic").status == 401


def test_explicit_provider_is_enforced():
    # A GitLab-style token header does not satisfy a hook configured as GitHub.
    h, b = gitlab_push("http://x/y.git", before=A, after=B, secret=SECRET)
    out = verify_and_parse(h, b, secret=SECRET, provider="github")
    assert isinstance(out, Rejected) and out.status == 401
    with pytest.raises(ValueError):
        verify_and_parse(h, b, secret=SECRET, provider="svn")


def test_replayed_delivery_parses_identically():
    # Verification is stateless; replays are caught by the intake's delivery cache and are
    # harmless anyway (idempotent apply, ancestry check). Same id both times:
    h, b = github_push(URL, before=A, after=B, secret=SECRET, delivery="same")
    one, two = verify_and_parse(h, b, secret=SECRET), verify_and_parse(h, b, secret=SECRET)
    assert one.delivery_id == two.delivery_id == "same"


@pytest.mark.parametrize(
    "a, b",
    [
        ("https://github.com/Acme/Repo.git", "git@github.com:acme/repo.git"),
        ("https://github.com/acme/repo", "ssh://git@github.com/acme/repo.git"),
        ("https://user:tok@github.com/acme/repo/", "https://github.com:443/acme/repo"),
        ("file:///tmp/x/repo.git", "/tmp/x/repo"),
    ],
)
def test_url_normalisation(a, b):
    assert normalize_repo_url(a) == normalize_repo_url(b)


def test_url_normalisation_keeps_differences():
    assert normalize_repo_url("https://github.com/acme/a") != normalize_repo_url("https://github.com/acme/b")
    assert normalize_repo_url("git://h:1/x") != normalize_repo_url("git://h:2/x")
    assert normalize_repo_url("/tmp/A/x") != normalize_repo_url("/tmp/a/x")


def _cfg(name, url, branch="main", tags=False):
    return SimpleNamespace(name=name, source=SimpleNamespace(url=url, branch=branch, tags=tags))


def test_configs_for_push_matches_repo_branch_and_tags():
    cfgs = [
        _cfg("main", "git@github.com:acme/config-repo.git"),
        _cfg("prod", "https://github.com/acme/config-repo", branch="prod"),
        _cfg("other", "https://github.com/acme/other"),
        _cfg("default", "https://github.com/ACME/config-repo.git", branch=None),
        _cfg("tags", URL, branch="main", tags=True),
    ]
    h, b = github_push(URL, before=A, after=B, secret=SECRET)
    ev = verify_and_parse(h, b, secret=SECRET)
    assert [c.name for c in configs_for_push(cfgs, ev)] == ["main", "default", "tags"]
    h, b = github_push(URL, ref="refs/heads/prod", before=A, after=B, secret=SECRET)
    ev = verify_and_parse(h, b, secret=SECRET)
    assert [c.name for c in configs_for_push(cfgs, ev)] == ["prod"]
    h, b = github_push(URL, ref="refs/tags/v2", before=ZERO, after=B, secret=SECRET)
    ev = verify_and_parse(h, b, secret=SECRET, tags=True)
    assert [c.name for c in configs_for_push(cfgs, ev)] == ["tags"]
