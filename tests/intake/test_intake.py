"""End to end: a signed push → fetch from git daemon → incremental sync into the embedded
store. Store calls are counted on the real store objects."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from core.config import parse_config_text
from core.intake import DeliveryCache, handle_webhook, resync, webhook_secret
from core.model import DesiredEntry
from core.stores import open_store
from tests.intake.payloads import ZERO, bitbucket_push, generic_push, github_push, gitlab_push
from tests.support.leakcheck import LeakCheck

SECRET = "hook-secret-7f3a9c"
N_SERVICES = 12
ROOT = Path(__file__).resolve().parents[2]


def svc_file(i: int, name: str = "application.properties") -> str:
    return f"services/svc{i:02d}/deployment-configuration/profiles/dev/{name}"


def repo_files() -> dict[str, str]:
    files = {"README.md": "# configs\n"}
    for i in range(N_SERVICES):
        files[svc_file(i)] = f"db.url=jdbc:pg://db{i}\nfeature.x=on\n"
        files[svc_file(i, "application.config.yaml")] = f"replicas: {i + 1}\n"
    return files


def config_yaml(url: str, db: Path, *, branch: str = "main", drift: str = "report") -> str:
    return f"""
apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata: {{name: svc-dev}}
spec:
  sourceRef: {{kind: Git, url: "{url}", branch: {branch}}}
  provider: {{type: local, local: {{path: "{db}"}}}}
  secrets: {{environment: dev, basePath: services}}
  configs: {{enabled: true}}
  sync: {{drift: {drift}}}
  webhook: {{provider: github, secret: {SECRET}}}
"""


class CountingStores:
    """store_factory that opens real stores and keeps them so tests can count calls."""

    def __init__(self) -> None:
        self.opened: list = []

    def __call__(self, kind, config):
        store = open_store(kind, config)
        self.opened.append(store)
        return store

    def calls(self, op: str | None = None) -> int:
        return sum(n for s in self.opened for o, n in s.calls.items() if op is None or o == op)


@pytest.fixture
def env(make_repo, tmp_path, monkeypatch):
    monkeypatch.setenv("SMF_LOCAL_STORE_KEY", base64.b64encode(b"k" * 32).decode())
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("GIT_CACHE_DIR", raising=False)
    repo = make_repo(repo_files())
    db = tmp_path / "store.db"
    configs = parse_config_text(config_yaml(repo.url, db), "cfg.yaml")
    return repo, configs, db


def deliver(configs, headers, body, stores=None, deliveries=None, provider=None):
    stores = stores if stores is not None else CountingStores()
    deliveries = deliveries if deliveries is not None else DeliveryCache()
    status, report = handle_webhook(headers, body, configs, secret=SECRET, store_factory=stores,
                                    deliveries=deliveries, provider=provider)  # fmt: skip
    json.dumps(report)  # JSON-able
    return status, report, stores


def value(configs, kind: str, name: str) -> str | None:
    store = open_store(kind, configs[0])
    try:
        return store.get_value(name)
    finally:
        store.close()


def test_push_of_one_service_reconciles_only_that_service(env, commit_files):
    repo, configs, _ = env
    # First push creates the branch: everything is synced.
    h, b = github_push(repo.url, before=ZERO, after=repo.sha, secret=SECRET)
    status, report, stores = deliver(configs, h, b)
    assert status == 200 and report["status"] == "ok", report
    full = report["results"][0]["report"]["summary"]
    assert full["create"] == N_SERVICES * 3  # two properties + one yaml key per service
    # Now change one key of svc07.
    c2 = commit_files(repo, {svc_file(7): "db.url=jdbc:pg://db7-new\nfeature.x=on\n"})
    h, b = github_push(repo.url, before=repo.sha, after=c2, modified=[svc_file(7)], secret=SECRET)
    status, report, stores = deliver(configs, h, b)
    result = report["results"][0]
    assert status == 200 and result["changed_paths"] == 1
    summary = result["report"]["summary"]
    assert summary["update"] == 1 and summary["create"] == 0
    assert summary["unchanged"] == 2  # only svc07's other entries were looked at
    assert stores.calls("put") == 1 and stores.calls("list") == 1  # one store, one listing
    assert {c["name"] for c in result["report"]["changes"]} <= {
        "svc07/dev/db.url", "svc07/dev/feature.x", "svc07/dev/replicas"}  # fmt: skip
    assert value(configs, "local-configs", "svc07/dev/db.url") == "jdbc:pg://db7-new"
    # The payload's file list was used (no tree diff): the trees, then the read blobs in one request.
    assert result["fetch"]["fetches"] == 2 and result["fetch"]["blobs"] == 2


def test_push_touching_no_config_file_makes_no_store_call(env, commit_files):
    repo, configs, _ = env
    c2 = commit_files(repo, {"README.md": "docs only\n", "services/svc01/notes.txt": "x"})
    h, b = github_push(repo.url, before=repo.sha, after=c2,
                       modified=["README.md", "services/svc01/notes.txt"], secret=SECRET)  # fmt: skip
    status, report, stores = deliver(configs, h, b)
    assert status == 200 and stores.opened == [] and stores.calls() == 0
    assert report["results"][0]["report"]["changes"] == []


def test_truncated_or_listless_payloads_use_a_tree_diff(env, commit_files):
    repo, configs, _ = env
    h, b = github_push(repo.url, before=ZERO, after=repo.sha, secret=SECRET)
    deliver(configs, h, b)
    c2 = commit_files(repo, {svc_file(3): "db.url=three\nfeature.x=on\n"})
    # Like Bitbucket, a generic sender may give no file lists: before..after tree diff.
    h2, b2 = generic_push(repo.url, before=repo.sha, after=c2, secret=SECRET)  # no changed_paths
    status, report, stores = deliver(configs, h2, b2, provider="generic")
    result = report["results"][0]
    assert status == 200 and result["changed_paths"] == 1, report
    assert result["report"]["summary"]["update"] == 1 and stores.calls("put") == 1
    # GitHub: more than 20 commits means the list is capped → tree diff, same result.
    c3 = commit_files(repo, {svc_file(4): "db.url=four\nfeature.x=on\n"})
    commits = [{"id": f"{i:040x}", "added": [], "removed": [], "modified": ["README.md"]} for i in range(20)]
    h, b = github_push(repo.url, before=c2, after=c3, commits=commits, secret=SECRET)
    status, report, stores = deliver(configs, h, b)
    assert report["results"][0]["report"]["summary"]["update"] == 1
    assert value(configs, "local-configs", "svc04/dev/db.url") == "four"


def test_same_delivery_twice_does_the_work_once(env, commit_files):
    repo, configs, _ = env
    deliveries = DeliveryCache(maxsize=4)
    h, b = github_push(repo.url, before=ZERO, after=repo.sha, secret=SECRET, delivery="d-42")
    s1, r1, st1 = deliver(configs, h, b, deliveries=deliveries)
    s2, r2, st2 = deliver(configs, h, b, deliveries=deliveries)
    assert s1 == 200 and r1["status"] == "ok"
    assert s2 == 200 and r2["status"] == "duplicate" and st2.calls() == 0
    # On another instance (empty cache) the same delivery is idempotent: nothing to write.
    s3, r3, st3 = deliver(configs, h, b)
    assert r3["results"][0]["report"]["summary"]["create"] == 0 and st3.calls("put") == 0
    # The cache is bounded.
    for i in range(10):
        deliveries.begin(f"x{i}")
        deliveries.finish(f"x{i}", True)
    assert len(deliveries) == 4


def test_older_push_arriving_late_never_overwrites_newer(env, commit_files):
    repo, configs, _ = env
    deliver(configs, *github_push(repo.url, before=ZERO, after=repo.sha, secret=SECRET))
    c2 = commit_files(repo, {svc_file(1): "db.url=two\nfeature.x=on\n"})
    c3 = commit_files(repo, {svc_file(1): "db.url=three\nfeature.x=on\n"})
    newer = github_push(repo.url, before=c2, after=c3, modified=[svc_file(1)], secret=SECRET)
    older = github_push(repo.url, before=repo.sha, after=c2, modified=[svc_file(1)], secret=SECRET)
    assert deliver(configs, *newer)[0] == 200
    assert value(configs, "local-configs", "svc01/dev/db.url") == "three"
    status, report, stores = deliver(configs, *older)
    changes = report["results"][0]["report"]["changes"]
    assert status == 200 and stores.calls("put") == 0
    assert any(c["action"] == "skipped" and "newer commit" in c.get("reason", "") for c in changes)
    assert value(configs, "local-configs", "svc01/dev/db.url") == "three"


def test_force_push_rollback_is_applied(env, commit_files):
    """A force-push back to an older tree is a *new* commit: it is applied."""
    repo, configs, _ = env
    deliver(configs, *github_push(repo.url, before=ZERO, after=repo.sha, secret=SECRET))
    c2 = commit_files(repo, {svc_file(2): "db.url=bad\nfeature.x=on\n"})
    deliver(configs, *github_push(repo.url, before=repo.sha, after=c2, modified=[svc_file(2)], secret=SECRET))
    revert = commit_files(repo, {svc_file(2): "db.url=jdbc:pg://db2\nfeature.x=on\n"}, parent=repo.sha)
    h, b = github_push(repo.url, before=c2, after=revert, modified=[svc_file(2)], forced=True, secret=SECRET)
    status, report, _ = deliver(configs, h, b)
    assert report["results"][0]["changed_paths"] == 1  # from the tree diff, not the payload
    assert value(configs, "local-configs", "svc02/dev/db.url") == "jdbc:pg://db2"


def test_branch_reset_to_an_older_commit_is_applied(env, commit_files, git_server):
    """`git reset --hard <old>; git push -f`: the old commit becomes the tip again. The
    entries recorded from the abandoned commit are not "newer": the reset is applied."""
    repo, configs, _ = env
    deliver(configs, *github_push(repo.url, before=ZERO, after=repo.sha, secret=SECRET))
    c2 = commit_files(repo, {svc_file(6): "db.url=oops\nfeature.x=on\n"})
    deliver(configs, *github_push(repo.url, before=repo.sha, after=c2, modified=[svc_file(6)], secret=SECRET))
    assert value(configs, "local-configs", "svc06/dev/db.url") == "oops"
    git_server.set_branch(repo, "main", repo.sha)
    h, b = github_push(repo.url, before=c2, after=repo.sha, commits=[], forced=True, secret=SECRET)
    status, report, stores = deliver(configs, h, b)
    assert report["results"][0]["report"]["summary"]["update"] == 1, report
    assert value(configs, "local-configs", "svc06/dev/db.url") == "jdbc:pg://db6"
    # A late (re)delivery of c2, which is no longer on the branch, changes nothing.
    h, b = github_push(repo.url, before=repo.sha, after=c2, modified=[svc_file(6)], secret=SECRET)
    status, report, stores = deliver(configs, h, b)
    assert status == 200 and report["results"][0]["status"] == "superseded" and stores.calls() == 0
    assert value(configs, "local-configs", "svc06/dev/db.url") == "jdbc:pg://db6"


def test_other_branch_tag_and_delete_change_nothing(env, commit_files):
    repo, configs, _ = env
    commit_files(repo, {svc_file(1): "db.url=feature\n"}, branch="feature")
    feature = commit_files(repo, {"x": "1"}, branch="feature")
    cases = [
        github_push(repo.url, ref="refs/heads/feature", before=repo.sha, after=feature, secret=SECRET),
        github_push(repo.url, ref="refs/tags/v1", before=ZERO, after=repo.sha, secret=SECRET),
        github_push(repo.url, before=repo.sha, after=ZERO, secret=SECRET),
        github_push("https://github.com/acme/unrelated.git", before=ZERO, after=repo.sha, secret=SECRET),
    ]
    for h, b in cases:
        status, report, stores = deliver(configs, h, b)
        assert status in (200, 202) and report["status"] == "ignored", report
        assert stores.calls() == 0


def test_rejected_requests_fetch_nothing(env, git_server, caplog):
    repo, _, db = env
    url = git_server.http_url(repo)
    configs = parse_config_text(config_yaml(url, db), "c.yaml")
    seen = len(git_server.requests)
    h, b = github_push(url, before=ZERO, after=repo.sha, secret="not-the-secret")
    status, report, stores = deliver(configs, h, b)
    assert status == 403 and report["status"] == "rejected" and stores.calls() == 0
    # GitLab-format request to a hook configured for GitHub: refused.
    h, b = gitlab_push(url, before=ZERO, after=repo.sha, secret=SECRET)
    assert deliver(configs, h, b)[0] == 401
    h, b = github_push(url, before=ZERO, after=repo.sha, secret=SECRET)
    assert deliver(configs, {k: v for k, v in h.items() if "Signature" not in k}, b)[0] == 401
    assert deliver(configs, h, b[:-1])[0] == 403  # truncated
    assert deliver(configs, h, b + b" " * 9_000_000)[0] == 413  # oversized
    assert len(git_server.requests) == seen  # the Git server was never contacted
    h, b = gitlab_push(url, before=ZERO, after=repo.sha, secret=SECRET + "-wrong")
    status, report, _ = deliver(configs, h, b, provider="gitlab")
    assert status == 403
    LeakCheck([SECRET, SECRET + "-wrong"]).scan(json.dumps(report), caplog.text)


def test_bitbucket_push_of_two_branches_syncs_both(env, commit_files, tmp_path):
    repo, _, _ = env
    prod = commit_files(repo, {svc_file(0): "db.url=prod\nfeature.x=on\n"}, branch="prod", parent=repo.sha)
    text = config_yaml(repo.url, tmp_path / "main.db") + "---" + config_yaml(
        repo.url, tmp_path / "prod.db", branch="prod").replace("name: svc-dev", "name: svc-prod")  # fmt: skip
    configs = parse_config_text(text.replace("provider: github", "provider: bitbucket"), "c.yaml")
    other = {"new": {"type": "branch", "name": "prod", "target": {"hash": prod}}, "old": None,
             "created": True, "closed": False, "forced": False}  # fmt: skip
    h, b = bitbucket_push("acme/x", before=None, after=repo.sha, secret=SECRET, extra_changes=[other],
                          html=repo.url)  # fmt: skip
    status, report, _ = deliver(configs, h, b)
    assert status == 200 and [r["configs"] for r in report["results"]] == [["svc-dev"], ["svc-prod"]]
    assert value(configs[:1], "local-configs", "svc00/dev/db.url") == "jdbc:pg://db0"
    assert value(configs[1:], "local-configs", "svc00/dev/db.url") == "prod"


def test_fetch_failure_is_502_and_can_be_retried(env, git_server, tmp_path):
    repo, configs, db = env
    url = git_server.http_url(repo)
    cfgs = parse_config_text(config_yaml(url, db), "c.yaml")
    h, b = github_push(url, before=ZERO, after=repo.sha, secret=SECRET, delivery="d-auth")
    deliveries = DeliveryCache()
    os.environ.pop("GIT_TOKEN", None)
    status, report, _ = deliver(cfgs, h, b, deliveries=deliveries)
    assert status == 502 and "401" in json.dumps(report)
    # With the token (here from GIT_TOKEN; in a function from spec.sourceRef.tokenSecret).
    os.environ["GIT_TOKEN"] = git_server.token
    try:
        status, report, _ = deliver(cfgs, h, b, deliveries=deliveries)
    finally:
        del os.environ["GIT_TOKEN"]
    assert status == 200 and report["status"] == "ok", report
    LeakCheck([git_server.token]).scan(json.dumps(report))


def test_token_from_the_store(env, git_server):
    """spec.sourceRef.tokenSecret is read from the config's own secret store."""
    repo, configs, db = env
    url = git_server.http_url(repo)
    text = config_yaml(url, db).replace("branch: main}", "branch: main, tokenSecret: git-token}")
    cfgs = parse_config_text(text, "c.yaml")
    store = open_store("local-secrets", cfgs[0])
    store.set_unmanaged("git-token", git_server.token)
    store.close()
    h, b = github_push(url, before=ZERO, after=repo.sha, secret=SECRET)
    status, report, _ = deliver(cfgs, h, b)
    assert status == 200 and report["status"] == "ok", report


def test_resync_finds_and_corrects_drift(env, make_repo, tmp_path):
    repo, configs, db = env
    deliver(configs, *github_push(repo.url, before=ZERO, after=repo.sha, secret=SECRET))
    # Someone edits a value by hand in the store (metadata left as it was).
    store = open_store("local-configs", configs[0])
    cur = {e.name: e for e in store.list_entries(_all_query())}["svc05/dev/replicas"]
    store.put(DesiredEntry(store="local-configs", name=cur.name, value="99", kind="config",
                           source=cur.source or "", owner=cur.owner or "", fingerprint=cur.fingerprint or "",
                           commit=cur.commit), cur)  # fmt: skip
    store.close()
    status, report = resync(configs, store_factory=CountingStores(), cache_dir=str(tmp_path / "c"))
    changes = report["results"][0]["report"]["changes"]
    assert status == 200 and [c["name"] for c in changes if c["action"] == "drift"] == ["svc05/dev/replicas"]
    corrected = parse_config_text(config_yaml(repo.url, db, drift="correct"), "c.yaml")
    status, report = resync(corrected, cache_dir=str(tmp_path / "c"))
    assert report["results"][0]["report"]["summary"]["update"] == 1
    assert value(configs, "local-configs", "svc05/dev/replicas") == "6"


def _all_query():
    from core.model import ListQuery

    return ListQuery(owners=set(), names=set(), owner_prefixes={"svc-dev/"})


def test_webhook_secret_sources(env, monkeypatch):
    _, configs, _ = env
    assert webhook_secret(configs) == SECRET
    monkeypatch.setenv("WEBHOOK_SECRET", "from-env")
    assert webhook_secret(configs) == "from-env"


def test_serve_end_to_end(env, commit_files):
    from core.serve import make_server

    repo, configs, _ = env
    server = make_server(configs, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        h, b = github_push(repo.url, before=ZERO, after=repo.sha, secret=SECRET)
        req = urllib.request.Request(server.url, data=b, headers=h, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback
            assert resp.status == 200
            data = json.loads(resp.read())
        assert data["results"][0]["report"]["summary"]["create"] == N_SERVICES * 3
        bad = urllib.request.Request(server.url, data=b, headers={**h, "X-Hub-Signature-256": "sha256=00"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=30)  # noqa: S310
        assert err.value.code == 403
        with urllib.request.urlopen(server.url.replace("/webhook", "/healthz"), timeout=30) as resp:  # noqa: S310
            assert resp.status == 200
    finally:
        server.shutdown()
        server.server_close()


def test_cli_plan_and_apply_from_a_git_url(env, git_server, tmp_path):
    repo, configs, db = env
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(config_yaml(git_server.http_url(repo), db))
    envv = {**os.environ, "GIT_TOKEN": git_server.token, "PYTHONPATH": str(ROOT)}
    for cmd, ref in (("plan", "main"), ("apply", repo.sha[:12])):
        out = subprocess.run(
            [sys.executable, "-m", "core", cmd, "--config", str(cfg), "--source",
             git_server.http_url(repo), "--ref", ref, "--json"],
            capture_output=True, text=True, env=envv, cwd=ROOT, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
        assert data["commit"] == repo.sha and data["summary"]["create"] == N_SERVICES * 3
        LeakCheck([git_server.token]).scan(out.stdout, out.stderr)
    assert value(configs, "local-configs", "svc00/dev/replicas") == "1"
