"""A signed push through each cloud's handler (in-process, as tests/conformance drives them),
inline and queued, leaves exactly one check run whose table matches the run's report, with
an annotation at the file and line of a broken file; no request body carries a value."""

from __future__ import annotations

import base64
import uuid

import pytest

from core import intake
from core.config import parse_config_text
from core.results.statuses import github as gh
from tests.conformance.test_handlers_agree import DRIVERS
from tests.fakes.git_hosts import GitHostsFake
from tests.intake.payloads import github_push
from tests.results.test_statuses import FILES, SVC, TOKENS, VALUES, config_yaml, seed
from tests.support.leakcheck import LeakCheck

SECRET = "conformance-hook-secret-1"  # what the conformance drivers sign with
BROKEN = SVC.format("payments", "application.config.yaml")


@pytest.fixture
def hosts():  # type: ignore[no-untyped-def]
    fake = GitHostsFake(tokens=TOKENS).start()
    gh.clear_cache()
    yield fake
    fake.stop()


@pytest.mark.parametrize("mode", ["inline", "queue"])
@pytest.mark.parametrize("driver_class", DRIVERS, ids=lambda d: d.name)
def test_a_push_through_each_handler_leaves_one_annotated_check_run(
    driver_class, mode, make_repo, commit_files, hosts, monkeypatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("SMF_LOCAL_STORE_KEY", base64.b64encode(b"h" * 32).decode())
    monkeypatch.setenv("SMF_FINGERPRINT_KEY", "status-handlers-fp")
    monkeypatch.setenv("GIT_CACHE_DIR", "")
    monkeypatch.setenv("SMF_STATUS_TIMEOUT", "5")
    for var in ("SMF_CONFIG_YAML", "SMF_CONFIG_PATH", "SMF_HANDOFF_TOPIC", "SMF_ENV_SECRET", "SMF_QUEUE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SMF_WEBHOOK_MODE", mode)
    if driver_class.name == "gcp" and mode == "queue":
        monkeypatch.setenv("SMF_HANDOFF_TOPIC", "projects/p/topics/t")
    monkeypatch.setattr(intake, "_DELIVERIES", intake.DeliveryCache())
    repo = make_repo(FILES)
    orders = SVC.format("orders", "application.properties")
    sha = commit_files(repo, {BROKEN: "replicas: 2\nlimits: [1, 2\nother: 3\n",
                              orders: "db.url=jdbc:pg://orders-db\nfeature.flag=off\n"})  # fmt: skip
    statuses = f"    - {{provider: github, apiUrl: '{hosts.url('github')}', repository: acme/configs, tokenSecret: gh-token}}\n"
    text = config_yaml(repo.url, tmp_path / f"{uuid.uuid4().hex}.db", statuses)
    seed(parse_config_text(text, "c.yaml"), **{"gh-token": TOKENS["github"]})
    monkeypatch.setenv("SMF_CONFIG", text)
    driver = driver_class(monkeypatch)
    headers, body = github_push(repo.url, before=repo.sha, after=sha, added=[BROKEN], modified=[orders],
                                secret=SECRET)  # fmt: skip
    answer = driver.post(headers, body)
    if mode == "queue":
        assert answer.status == 202 and hosts.requests == []  # nothing posted until the worker runs
        [message] = answer.queued
        driver.work(message)
    else:
        assert answer.status == 200 and answer.body["status"] == "partial", answer.body
    assert hosts.calls() == [("POST", "/github/repos/acme/configs/check-runs")]
    [req] = hosts.requests
    run = req.body
    assert run["head_sha"] == sha and run["conclusion"] == "failure"
    assert run["name"] == "secret-manager-functions / shop-dev"
    [note] = run["output"]["annotations"]
    assert note["path"] == BROKEN and note["start_line"] >= 2 and note["annotation_level"] == "failure"
    # The summary table lists what the run did: the orders service (its first sync) went
    # through, the broken payments service was left alone.
    rows = [line for line in run["output"]["summary"].splitlines() if line.startswith("| local-")]
    assert len(rows) == 3 and all("| create |" in r and "orders/dev/" in r for r in rows), rows
    LeakCheck([*VALUES, *TOKENS.values()]).scan(req.raw, where="check run")


@pytest.mark.parametrize("driver_class", DRIVERS, ids=lambda d: d.name)
def test_a_signed_pull_request_through_each_handler_gets_a_preview_and_writes_nothing(
    driver_class, make_repo, commit_files, hosts, monkeypatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from core.stores import open_store
    from tests.results.test_status_previews import github_pr

    monkeypatch.setenv("WEBHOOK_SECRET", "status-hook-secret-1")  # what github_pr signs with
    monkeypatch.setenv("SMF_LOCAL_STORE_KEY", base64.b64encode(b"h" * 32).decode())
    monkeypatch.setenv("SMF_FINGERPRINT_KEY", "status-handlers-fp")
    monkeypatch.setenv("GIT_CACHE_DIR", "")
    for var in ("SMF_CONFIG_YAML", "SMF_CONFIG_PATH", "SMF_HANDOFF_TOPIC", "SMF_ENV_SECRET", "SMF_QUEUE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SMF_WEBHOOK_MODE", "inline")
    monkeypatch.setattr(intake, "_DELIVERIES", intake.DeliveryCache())
    repo = make_repo(FILES)
    orders = SVC.format("orders", "application.properties")
    head = commit_files(repo, {orders: "db.url=jdbc:pg://orders-db\nfeature.flag=off\n"}, branch="feature",
                        parent=repo.sha)  # fmt: skip
    statuses = f"    - {{provider: github, apiUrl: '{hosts.url('github')}', repository: acme/configs, tokenSecret: gh-token}}\n"
    text = config_yaml(repo.url, tmp_path / f"{uuid.uuid4().hex}.db", statuses)
    configs = parse_config_text(text, "c.yaml")
    seed(configs, **{"gh-token": TOKENS["github"]})
    monkeypatch.setenv("SMF_CONFIG", text)
    answer = driver_class(monkeypatch).post(*github_pr(repo.url, head, repo.sha))
    assert answer.status == 200 and answer.body["status"] == "ok", answer.body
    assert hosts.calls() == [("POST", "/github/repos/acme/configs/check-runs")]
    run = hosts.requests[0].body
    assert run["name"] == "secret-manager-functions / shop-dev (plan)" and run["head_sha"] == head
    assert run["output"]["title"] == "Plan: 3 to create"  # the orders service, never synced yet
    store = open_store("local-configs", configs[0])
    assert store.get_value("orders/dev/feature.flag") is None  # planned, not written
    store.close()
    LeakCheck([*VALUES, *TOKENS.values()]).scan(hosts.requests[0].raw, where="check run")
