"""Pull-request previews: a signed pull_request (GitHub), Merge Request Hook (GitLab),
pullrequest:updated (Bitbucket) and pull_request (Gitea) event is verified, its head planned
(nothing written: every store write is counted) and the plan posted as a check run / status
``secret-manager-functions / <config> (plan)``; a fork's pull request is not planned."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from core import intake
from core.config import parse_config_text
from core.results.statuses import github as gh
from core.stores import open_store
from tests.fakes.git_hosts import GitHostsFake
from tests.intake.payloads import ZERO, github_push, sign
from tests.results.test_statuses import FILES, SVC, TOKENS, VALUES, config_yaml, seed
from tests.support.leakcheck import LeakCheck

SECRET = "status-hook-secret-1"
ORDERS = SVC.format("orders", "application.properties")
NAME = "secret-manager-functions / shop-dev (plan)"


class CountingStores:
    """The default stores, counting every write (a preview must make none)."""

    def __init__(self) -> None:
        self.writes = 0

    def __call__(self, kind: str, config: Any) -> Any:
        store = open_store(kind, config)
        outer = self

        class Counted:
            def __getattr__(self, name: str) -> Any:
                return getattr(store, name)

            def put(self, *a: Any, **kw: Any) -> Any:
                outer.writes += 1
                return store.put(*a, **kw)

            def delete(self, *a: Any, **kw: Any) -> Any:
                outer.writes += 1
                return store.delete(*a, **kw)

        return Counted()


@pytest.fixture
def hosts():  # type: ignore[no-untyped-def]
    fake = GitHostsFake(tokens=TOKENS).start()
    gh.clear_cache()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _env(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SMF_LOCAL_STORE_KEY", base64.b64encode(b"p" * 32).decode())
    monkeypatch.setenv("SMF_FINGERPRINT_KEY", "preview-fp-key")
    monkeypatch.setenv("SMF_STATUS_TIMEOUT", "5")


# --- payloads (each host's documented shape) ------------------------------------------------
def github_pr(url: str, head: str, base: str, *, action: str = "synchronize", fork: bool = False,
              provider: str = "github") -> tuple[dict[str, str], bytes]:  # fmt: skip
    repo = {"full_name": "acme/configs", "clone_url": url, "html_url": url, "fork": False}
    head_repo = {**repo, "full_name": "mallory/configs", "fork": True} if fork else repo
    payload = {"action": action, "number": 7, "repository": repo,
               "pull_request": {"number": 7, "head": {"sha": head, "ref": "feature", "repo": head_repo},
                                "base": {"sha": base, "ref": "main", "repo": repo}}}  # fmt: skip
    body = json.dumps(payload).encode()
    if provider == "gitea":
        return {"Content-Type": "application/json", "X-Gitea-Event": "pull_request",
                "X-Gitea-Delivery": str(uuid.uuid4()), "X-Gitea-Signature": sign(SECRET, body)}, body  # fmt: skip
    return {"Content-Type": "application/json", "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": "sha256=" + sign(SECRET, body)}, body  # fmt: skip


def gitlab_mr(url: str, head: str) -> tuple[dict[str, str], bytes]:
    payload = {"object_kind": "merge_request", "event_type": "merge_request",
               "project": {"id": 1, "git_http_url": url, "web_url": url},
               "object_attributes": {"iid": 7, "action": "update", "oldrev": "1" * 40, "source_branch": "feature",
                                     "target_branch": "main", "source_project_id": 1, "target_project_id": 1,
                                     "last_commit": {"id": head}}}  # fmt: skip
    return {"Content-Type": "application/json", "X-Gitlab-Event": "Merge Request Hook",
            "X-Gitlab-Token": SECRET, "X-Gitlab-Event-UUID": str(uuid.uuid4())}, json.dumps(payload).encode()  # fmt: skip


def bitbucket_pr(url: str, head: str) -> tuple[dict[str, str], bytes]:
    repo = {"full_name": "acme/configs", "links": {"html": {"href": url}}}
    payload = {"repository": repo, "pullrequest": {
        "id": 7, "source": {"branch": {"name": "feature"}, "commit": {"hash": head[:12]}, "repository": repo},
        "destination": {"branch": {"name": "main"}, "commit": {"hash": "2" * 12}, "repository": repo}}}  # fmt: skip
    body = json.dumps(payload).encode()
    return {"Content-Type": "application/json", "X-Event-Key": "pullrequest:updated",
            "X-Request-UUID": str(uuid.uuid4()), "X-Hook-UUID": str(uuid.uuid4()),
            "X-Hub-Signature": "sha256=" + sign(SECRET, body)}, body  # fmt: skip


def target(provider: str, hosts: GitHostsFake) -> str:
    return f"    - {{provider: {provider}, apiUrl: '{hosts.url(provider)}', repository: acme/configs, tokenSecret: tok}}\n"


def world(make_repo, tmp_path: Path, hosts: GitHostsFake, provider: str = "github", extra: str = ""):  # type: ignore[no-untyped-def]
    """A repository already synced at its first commit, a config posting to `provider`."""
    repo = make_repo(FILES)
    text = config_yaml(repo.url, tmp_path / "p.db", target(provider, hosts)).replace(
        "  webhook: {provider: github}\n", f"  webhook: {{provider: {provider}}}\n" + extra
    )
    configs = parse_config_text(text, "c.yaml")
    seed(configs, tok=TOKENS[provider])
    headers, body = github_push(repo.url, before=ZERO, after=repo.sha, secret=SECRET)
    if provider == "github":
        assert deliver(configs, headers, body).status == 200
    else:  # the first sync, without statuses
        plain = parse_config_text(config_yaml(repo.url, tmp_path / "p.db", target("github", hosts)), "c.yaml")
        plain[0].statuses = []
        assert deliver(plain, headers, body).status == 200
    hosts.requests.clear()
    return repo, configs


def deliver(configs: list[Any], headers: dict[str, str], body: bytes, stores: Any = None,
            queue: intake.QueuePolicy | None = None, sent: list[str] | None = None) -> intake.Outcome:  # fmt: skip
    return intake.handle_delivery(headers, body, configs, secret=SECRET, deliveries=intake.DeliveryCache(),
                                  context=intake.RunContext(store_factory=stores, cache_dir=""), queue=queue,
                                  send=(lambda m: sent.append(m) or {"id": "1"}) if sent is not None else None)  # fmt: skip


def leak_scan(hosts: GitHostsFake) -> None:
    leaks = LeakCheck([*VALUES, *TOKENS.values(), "orders-db-rotated-77"])
    for r in hosts.requests:
        leaks.scan(r.raw, r.path, where=f"{r.method} {r.path}")


# --- GitHub ---------------------------------------------------------------------------------
def test_a_pr_changing_one_value_gets_a_passing_preview_with_one_update(
    make_repo, commit_files, tmp_path, hosts
) -> None:  # type: ignore[no-untyped-def]
    repo, configs = world(make_repo, tmp_path, hosts)
    head = commit_files(repo, {ORDERS: "db.url=orders-db-rotated-77\nfeature.flag=on\n"}, branch="feature",
                        parent=repo.sha)  # fmt: skip
    stores = CountingStores()
    out = deliver(configs, *github_pr(repo.url, head, repo.sha), stores=stores)
    assert out.kind == "preview" and out.status == 200 and out.body["status"] == "ok", out.body
    assert stores.writes == 0
    assert hosts.calls() == [("POST", "/github/repos/acme/configs/check-runs")]
    run = hosts.requests[0].body
    assert (run["name"], run["head_sha"], run["conclusion"]) == (NAME, head, "success")
    assert run["output"]["title"] == "Plan: 1 to update"
    rows = [r for r in run["output"]["summary"].splitlines() if r.startswith("| local-")]
    assert rows == [f"| local-configs | update | `orders/dev/db.url` | `{ORDERS}:db.url` | |"]
    # Nothing was written: the store still holds the value of the synced commit.
    store = open_store("local-configs", configs[0])
    assert store.get_value("orders/dev/db.url") == "jdbc:pg://orders-db"
    store.close()
    leak_scan(hosts)


def test_a_pr_breaking_a_file_gets_a_failing_preview_at_the_file_and_line(
    make_repo, commit_files, tmp_path, hosts
) -> None:  # type: ignore[no-untyped-def]
    repo, configs = world(make_repo, tmp_path, hosts)
    secrets_file = SVC.format("orders", "application.secrets.env")
    head = commit_files(repo, {secrets_file: "DB_PASSWORD=db-password-orders-1\nnot a valid line\n"},
                        branch="feature", parent=repo.sha)  # fmt: skip
    stores = CountingStores()
    out = deliver(configs, *github_pr(repo.url, head, repo.sha, action="opened"), stores=stores)
    assert out.body["status"] == "failed" and stores.writes == 0
    [req] = hosts.requests
    assert req.body["conclusion"] == "failure" and req.body["output"]["title"].startswith("Would fail:")
    [note] = req.body["output"]["annotations"]
    assert (note["path"], note["start_line"], note["annotation_level"]) == (secrets_file, 2, "failure")
    leak_scan(hosts)


def test_a_mass_delete_beyond_the_guard_fails_the_preview(make_repo, commit_files, tmp_path, hosts) -> None:  # type: ignore[no-untyped-def]
    extra = "  sync: {prune: true, maxDeleteFraction: 0.5}\n"
    repo, configs = world(make_repo, tmp_path, hosts, extra=extra)
    head = commit_files(repo, delete=[ORDERS, SVC.format("payments", "application.properties")], branch="feature",
                        parent=repo.sha)  # fmt: skip
    out = deliver(configs, *github_pr(repo.url, head, repo.sha))
    [req] = hosts.requests
    assert req.body["conclusion"] == "failure", req.body["output"]
    assert "refusing to delete" in req.body["output"]["summary"] and out.body["status"] == "failed"


def test_a_fork_pr_is_not_planned_unless_the_config_allows_it(
    make_repo, commit_files, tmp_path, hosts
) -> None:  # type: ignore[no-untyped-def]
    repo, configs = world(make_repo, tmp_path, hosts)
    head = commit_files(repo, {ORDERS: "db.url=orders-db-rotated-77\n"}, branch="feature", parent=repo.sha)
    stores = CountingStores()
    out = deliver(configs, *github_pr(repo.url, head, repo.sha, fork=True), stores=stores)
    [result] = out.body["results"]
    assert result["status"] == "skipped" and "report" not in result and stores.writes == 0
    [req] = hosts.requests
    assert (req.body["conclusion"], req.body["output"]["title"]) == (
        "neutral",
        "Not planned: pull request from a fork",
    )
    hosts.requests.clear()
    configs[0].pull_requests = {"preview": True, "forks": True}
    out = deliver(configs, *github_pr(repo.url, head, repo.sha, fork=True), stores=stores)
    assert out.body["results"][0]["status"] == "planned" and stores.writes == 0
    assert hosts.requests[0].body["output"]["title"] == "Plan: 1 to update, 1 to delete" or \
        hosts.requests[0].body["output"]["title"].startswith("Plan:")  # fmt: skip


def test_other_pr_actions_and_configs_without_previews_are_ignored(make_repo, tmp_path, hosts) -> None:  # type: ignore[no-untyped-def]
    repo, configs = world(make_repo, tmp_path, hosts)
    out = deliver(configs, *github_pr(repo.url, repo.sha, repo.sha, action="closed"))
    assert (out.status, out.kind) == (202, "ignored") and "needs no preview" in out.body["reason"]
    configs[0].pull_requests = {"preview": False, "forks": False}
    out = deliver(configs, *github_pr(repo.url, repo.sha, repo.sha))
    assert (out.status, out.kind) == (202, "ignored")
    assert hosts.requests == []


def test_a_queued_preview_has_the_push_message_format_and_the_same_result(
    make_repo, commit_files, tmp_path, hosts
) -> None:  # type: ignore[no-untyped-def]
    from core import messages

    repo, configs = world(make_repo, tmp_path, hosts)
    head = commit_files(repo, {ORDERS: "db.url=orders-db-rotated-77\nfeature.flag=on\n"}, branch="feature",
                        parent=repo.sha)  # fmt: skip
    sent: list[str] = []
    out = deliver(
        configs, *github_pr(repo.url, head, repo.sha), queue=intake.QueuePolicy(256 * 1024), sent=sent
    )
    assert out.status == 202 and out.body["kind"] == "preview" and hosts.requests == []
    [message] = sent
    job = messages.decode(message, key=messages.mac_key(SECRET))
    assert job.signed and job.kind == "preview" and job.data["event"]["head_sha"] == head
    stores = CountingStores()
    worked = intake.handle_message(message, configs, secret=SECRET,
                                   context=intake.RunContext(store_factory=stores, cache_dir=""))  # fmt: skip
    assert worked.kind == "preview" and worked.body["status"] == "ok" and stores.writes == 0
    [req] = hosts.requests
    assert req.body["output"]["title"] == "Plan: 1 to update"
    # An unsigned preview message is refused (it would read the stores).
    forged = json.loads(message)
    forged.pop("mac")
    assert intake.handle_message(json.dumps(forged), configs, secret=SECRET).status == 400


# --- GitLab, Bitbucket, Gitea ---------------------------------------------------------------
@pytest.mark.parametrize("provider", ["gitlab", "bitbucket", "gitea"])
def test_merge_and_pull_request_events_of_the_other_hosts_get_a_preview_status(
    provider, make_repo, commit_files, tmp_path, hosts
) -> None:  # type: ignore[no-untyped-def]
    repo, configs = world(make_repo, tmp_path, hosts, provider)
    head = commit_files(repo, {ORDERS: "db.url=orders-db-rotated-77\nfeature.flag=on\n"}, branch="feature",
                        parent=repo.sha)  # fmt: skip
    event = {"gitlab": lambda: gitlab_mr(repo.url, head), "bitbucket": lambda: bitbucket_pr(repo.url, head),
             "gitea": lambda: github_pr(repo.url, head, repo.sha, provider="gitea")}[provider]()  # fmt: skip
    stores = CountingStores()
    out = deliver(configs, *event, stores=stores)
    assert out.kind == "preview" and out.body["status"] == "ok" and stores.writes == 0, out.body
    states = [b.get("state") for _, _, b in hosts.statuses]
    assert states == {"gitlab": ["pending", "success"], "bitbucket": ["SUCCESSFUL"],  # (no pending: its payload's hash is short)
                      "gitea": ["pending", "success"]}[provider]  # fmt: skip
    assert all(sha == head for _, sha, _ in hosts.statuses)  # Bitbucket's short hash is resolved
    final = hosts.statuses[-1][2]
    assert final.get("name", final.get("context")) == NAME and final["description"] == "Plan: 1 to update"
    leak_scan(hosts)


def test_a_forged_pull_request_is_rejected(make_repo, tmp_path, hosts) -> None:  # type: ignore[no-untyped-def]
    repo, configs = world(make_repo, tmp_path, hosts)
    headers, body = github_pr(repo.url, repo.sha, repo.sha)
    headers["X-Hub-Signature-256"] = "sha256=" + sign("not-the-secret", body)
    out = deliver(configs, headers, body)
    assert (out.status, out.kind) == (403, "rejected") and hosts.requests == []
