"""Commit statuses and check runs after a push, against the wire-level fake of the hosts'
APIs (tests/fakes/git_hosts.py): exactly the expected calls and payloads, annotations at
the file and line of a broken file, App authentication with a verified JWT and a cached
installation token, and a host that fails or hangs never failing the sync."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from core import intake
from core.config import parse_config_text
from core.errors import ConfigError
from core.results.statuses import github as gh
from core.stores import open_store
from tests.fakes.git_hosts import GitHostsFake
from tests.intake.payloads import ZERO, github_push
from tests.support.leakcheck import LeakCheck

SECRET = "status-hook-secret-1"
SVC = "services/{}/deployment-configuration/profiles/dev/{}"
VALUES = {"db-password-orders-1", "jdbc:pg://orders-db", "retries-value-3x"}
FILES = {
    SVC.format("orders", "application.properties"): "db.url=jdbc:pg://orders-db\nfeature.flag=on\n",
    SVC.format("orders", "application.secrets.env"): "DB_PASSWORD=db-password-orders-1\n",
    SVC.format("payments", "application.properties"): "retries=retries-value-3x\n",
}
TOKENS = {"github": "ghp-status-token-0001", "gitlab": "glpat-status-token-02",
          "bitbucket": "bb-status-token-0003", "gitea": "gitea-status-token-04"}  # fmt: skip


def config_yaml(url: str, db: Path, statuses: str, *, name: str = "shop-dev") -> str:
    return f"""apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata: {{name: {name}}}
spec:
  sourceRef: {{kind: Git, url: "{url}", branch: main}}
  provider: {{type: local, local: {{path: "{db}"}}}}
  secrets: {{environment: dev, basePath: services}}
  configs: {{enabled: true}}
  webhook: {{provider: github}}
  statuses:
{statuses}"""


@pytest.fixture
def hosts():  # type: ignore[no-untyped-def]
    fake = GitHostsFake(tokens=TOKENS).start()
    gh.clear_cache()
    yield fake
    fake.stop()
    gh.clear_cache()


@pytest.fixture(autouse=True)
def _env(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SMF_LOCAL_STORE_KEY", base64.b64encode(b"s" * 32).decode())
    monkeypatch.setenv("SMF_FINGERPRINT_KEY", "status-fp-key")
    monkeypatch.setenv("SMF_STATUS_TIMEOUT", "2")


def seed(configs: list[Any], **secrets: str) -> None:
    store = open_store("local-secrets", configs[0])
    for name, value in secrets.items():
        store.set_unmanaged(name, value)
    store.close()


def deliver(configs: list[Any], url: str, before: str, after: str, **kw: Any) -> intake.Outcome:
    headers, body = github_push(url, before=before, after=after, secret=SECRET, **kw)
    return intake.handle_delivery(headers, body, configs, secret=SECRET, deliveries=intake.DeliveryCache(),
                                  context=intake.RunContext(cache_dir=""))  # fmt: skip


def leak_scan(fake: GitHostsFake, *extra: str) -> None:
    leaks = LeakCheck([*VALUES, *TOKENS.values(), *extra])
    for r in fake.requests:
        leaks.scan(r.raw, r.path, where=f"{r.method} {r.path}")


# --- GitHub check runs with a token ---------------------------------------------------------
def test_push_posts_a_check_run_whose_table_matches_the_report(make_repo, tmp_path, hosts) -> None:  # type: ignore[no-untyped-def]
    repo = make_repo(FILES)
    statuses = f"    - {{provider: github, apiUrl: '{hosts.url('github')}', repository: acme/configs, tokenSecret: gh-token}}\n"
    configs = parse_config_text(config_yaml(repo.url, tmp_path / "s.db", statuses), "c.yaml")
    seed(configs, **{"gh-token": TOKENS["github"]})
    out = deliver(configs, repo.url, ZERO, repo.sha)
    assert out.status == 200 and out.body["status"] == "ok", out.body
    assert hosts.calls() == [("POST", "/github/repos/acme/configs/check-runs")]
    [req] = hosts.requests
    assert req.headers["authorization"] == f"Bearer {TOKENS['github']}"
    assert req.headers["x-github-api-version"] == "2022-11-28"
    body = req.body
    assert body["name"] == "secret-manager-functions / shop-dev" and body["head_sha"] == repo.sha
    assert (body["status"], body["conclusion"]) == ("completed", "success")
    assert body["output"]["title"] == "Applied: 4 created"
    report = out.body["results"][0]["report"]
    rows = [line for line in body["output"]["summary"].splitlines() if line.startswith("| local-")]
    assert len(rows) == report["summary"]["create"] == 4
    for change in report["changes"]:
        assert any(f"`{change['name']}`" in r and f"`{change['source']}`" in r for r in rows), change
    assert body["output"]["annotations"] == []
    leak_scan(hosts)

    # The same commit again: nothing to do → neutral.
    hosts.requests.clear()
    again = deliver(configs, repo.url, ZERO, repo.sha)
    assert again.status == 200
    [req] = hosts.requests
    assert req.body["conclusion"] == "neutral" and req.body["output"]["title"] == "Applied: no changes"


def test_a_broken_file_is_annotated_at_its_file_and_line(make_repo, commit_files, tmp_path, hosts) -> None:  # type: ignore[no-untyped-def]
    repo = make_repo(FILES)
    statuses = f"    - {{provider: github, apiUrl: '{hosts.url('github')}', repository: acme/configs, tokenSecret: gh-token}}\n"
    configs = parse_config_text(config_yaml(repo.url, tmp_path / "s.db", statuses), "c.yaml")
    seed(configs, **{"gh-token": TOKENS["github"]})
    broken = SVC.format("payments", "application.config.yaml")
    sha = commit_files(repo, {broken: "replicas: 2\nlimits: [1, 2\nother: 3\n"})
    out = deliver(configs, repo.url, repo.sha, sha, added=[broken])
    assert out.status == 200 and out.body["status"] == "partial", out.body
    [req] = hosts.requests
    assert req.body["conclusion"] == "failure"
    [error] = out.body["results"][0]["report"]["errors"]
    [note] = req.body["output"]["annotations"]
    assert (note["path"], note["start_line"], note["end_line"]) == (broken, error["line"], error["line"])
    assert error["line"] >= 2 and note["annotation_level"] == "failure" and note["title"] == "parse error"
    assert f"| `{broken}` | {error['line']} | parse |" in req.body["output"]["summary"]
    leak_scan(hosts)


def test_more_than_fifty_annotations_are_patched_on_in_batches(hosts, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from core.report import Report
    from core.results.statuses import post, status_for
    from core.results.statuses.targets import Target

    report = Report(commit="a" * 40, applied=True)
    for i in range(120):
        report.errors.append({"message": "not valid YAML", "path": f"svc{i}/application.config.yaml",
                              "line": i + 1, "kind": "parse", "config": "c"})  # fmt: skip
    status = status_for(report, "c", "a" * 40, "refs/heads/main")
    target = Target("github", "acme/configs", hosts.url("github"), token_secret="t")
    cfg = type(
        "Cfg", (), {"name": "c", "source": type("S", (), {"url": "https://github.com/acme/configs"})()}
    )()
    assert post(target, cfg, status, lambda c, n: TOKENS["github"])
    assert [m for m, _ in hosts.calls()] == ["POST", "PATCH", "PATCH"]
    [run] = hosts.check_runs.values()
    assert [len((r.body["output"]).get("annotations") or []) for r in hosts.requests] == [50, 50, 20]
    assert [a["start_line"] for a in run.annotations] == list(range(1, 121))


# --- GitHub App authentication --------------------------------------------------------------
def _app_key() -> tuple[str, Any]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()  # fmt: skip
    return pem, key.public_key()


def test_app_auth_verified_jwt_then_a_cached_installation_token(
    make_repo, commit_files, tmp_path, hosts
) -> None:  # type: ignore[no-untyped-def]
    pem, public = _app_key()
    hosts.install_app("123456", public, "acme/configs", installation=777)
    repo = make_repo(FILES)
    statuses = (f"    - provider: github\n      apiUrl: '{hosts.url('github')}'\n      repository: acme/configs\n"
                "      app: {id: 123456, privateKeySecret: gh-app-key}\n")  # fmt: skip
    configs = parse_config_text(config_yaml(repo.url, tmp_path / "s.db", statuses), "c.yaml")
    seed(configs, **{"gh-app-key": pem})
    assert deliver(configs, repo.url, ZERO, repo.sha).status == 200
    assert hosts.calls() == [
        ("GET", "/github/repos/acme/configs/installation"),
        ("POST", "/github/app/installations/777/access_tokens"),
        ("POST", "/github/repos/acme/configs/check-runs"),
    ]
    [issued] = hosts.issued
    assert hosts.requests[2].headers["authorization"] == f"Bearer {issued}"
    # A second push in the same instance reuses the token until it nears expiry.
    hosts.requests.clear()
    sha = commit_files(repo, {SVC.format("orders", "application.properties"): "db.url=jdbc:pg://orders-db\n"})
    assert deliver(configs, repo.url, repo.sha, sha).status == 200
    assert hosts.calls() == [("POST", "/github/repos/acme/configs/check-runs")]
    leak_scan(hosts, pem.splitlines()[1], issued)


def test_a_jwt_signed_with_another_key_is_refused_and_the_sync_still_succeeds(
    make_repo, tmp_path, hosts, caplog
) -> None:  # type: ignore[no-untyped-def]
    pem, _ = _app_key()
    _, other_public = _app_key()
    hosts.install_app("123456", other_public, "acme/configs")
    repo = make_repo(FILES)
    statuses = (f"    - provider: github\n      apiUrl: '{hosts.url('github')}'\n      repository: acme/configs\n"
                "      app: {id: 123456, privateKeySecret: gh-app-key}\n")  # fmt: skip
    configs = parse_config_text(config_yaml(repo.url, tmp_path / "s.db", statuses), "c.yaml")
    seed(configs, **{"gh-app-key": pem})
    with caplog.at_level(logging.WARNING, logger="smf.statuses"):
        out = deliver(configs, repo.url, ZERO, repo.sha)
    assert out.status == 200 and out.body["status"] == "ok"
    assert hosts.calls() == [("GET", "/github/repos/acme/configs/installation")]  # 401: not retried
    assert hosts.check_runs == {}
    [record] = [r for r in caplog.records if r.getMessage() == "status post failed"]
    assert record.error.endswith("answered 401")  # type: ignore[attr-defined]
    LeakCheck([pem.splitlines()[1]]).scan(json.dumps(record.__dict__, default=str), where="log")


# --- GitLab, Bitbucket, Gitea ---------------------------------------------------------------
def test_gitlab_bitbucket_gitea_statuses_go_pending_then_final(make_repo, tmp_path, hosts) -> None:  # type: ignore[no-untyped-def]
    repo = make_repo(FILES)
    statuses = (
        f"    - {{provider: gitlab, apiUrl: '{hosts.url('gitlab')}', repository: acme/platform/configs, tokenSecret: gl}}\n"
        f"    - {{provider: bitbucket, apiUrl: '{hosts.url('bitbucket')}', repository: acme/configs, tokenSecret: bb}}\n"
        f"    - {{provider: gitea, apiUrl: '{hosts.url('gitea')}', repository: acme/configs, tokenSecret: gt,"
        " targetUrl: 'https://logs.example.com/smf'}\n"
    )
    configs = parse_config_text(config_yaml(repo.url, tmp_path / "s.db", statuses), "c.yaml")
    seed(configs, gl=TOKENS["gitlab"], bb=TOKENS["bitbucket"], gt=TOKENS["gitea"])
    out = deliver(configs, repo.url, ZERO, repo.sha)
    assert out.status == 200 and out.body["status"] == "ok"
    gl = f"/gitlab/api/v4/projects/acme%2Fplatform%2Fconfigs/statuses/{repo.sha}"
    bb = f"/bitbucket/2.0/repositories/acme/configs/commit/{repo.sha}/statuses/build"
    gt = f"/gitea/api/v1/repos/acme/configs/statuses/{repo.sha}"
    assert hosts.calls() == [("POST", gl), ("POST", bb), ("POST", gt)] * 2
    name = "secret-manager-functions / shop-dev"
    bodies = [r.body for r in hosts.requests]
    assert bodies[0] == {"state": "pending", "name": name, "description": "Syncing…", "ref": "main"}
    assert bodies[3] == {"state": "success", "name": name, "description": "Applied: 4 created", "ref": "main"}
    key = bodies[1]["key"]
    assert bodies[1] == {"key": key, "state": "INPROGRESS", "name": name, "description": "Syncing…",
                         "url": f"https://bitbucket.org/acme/configs/commits/{repo.sha}", "refname": "main"}  # fmt: skip
    assert bodies[4] == {**bodies[1], "state": "SUCCESSFUL", "description": "Applied: 4 created"}
    assert bodies[2] == {"state": "pending", "context": name, "description": "Syncing…",
                         "target_url": "https://logs.example.com/smf"}  # fmt: skip
    assert bodies[5] == {**bodies[2], "state": "success", "description": "Applied: 4 created"}
    assert hosts.requests[0].headers["private-token"] == TOKENS["gitlab"]
    assert hosts.requests[1].headers["authorization"] == f"Bearer {TOKENS['bitbucket']}"
    assert hosts.requests[2].headers["authorization"] == f"token {TOKENS['gitea']}"
    leak_scan(hosts)


# --- failures never fail the sync -----------------------------------------------------------
def test_a_host_answering_500_is_retried_once_then_logged(make_repo, tmp_path, hosts, caplog) -> None:  # type: ignore[no-untyped-def]
    repo = make_repo(FILES)
    statuses = f"    - {{provider: gitea, apiUrl: '{hosts.url('gitea')}', repository: acme/configs, tokenSecret: gt, pending: false}}\n"
    configs = parse_config_text(config_yaml(repo.url, tmp_path / "s.db", statuses), "c.yaml")
    seed(configs, gt=TOKENS["gitea"])
    hosts.fail(1, 500)
    out = deliver(configs, repo.url, ZERO, repo.sha)
    assert out.status == 200 and out.body["status"] == "ok"
    assert len(hosts.requests) == 2 and hosts.statuses[-1][2]["state"] == "success"  # the retry went through
    hosts.requests.clear()
    hosts.fail(2, 503)
    with caplog.at_level(logging.WARNING, logger="smf.statuses"):
        again = deliver(configs, repo.url, ZERO, repo.sha)
    assert again.status == 200 and again.body["status"] == "ok"
    [record] = [r for r in caplog.records if r.getMessage() == "status post failed"]
    assert len(hosts.requests) == 2 and record.error.endswith("answered 503")  # type: ignore[attr-defined]
    assert (record.provider, record.config) == ("gitea", "shop-dev")  # type: ignore[attr-defined]
    LeakCheck([TOKENS["gitea"]]).scan(json.dumps(record.__dict__, default=str), where="log")


def test_a_host_that_hangs_times_out_and_the_sync_succeeds(make_repo, tmp_path, hosts, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SMF_STATUS_TIMEOUT", "0.2")
    repo = make_repo(FILES)
    statuses = f"    - {{provider: gitlab, apiUrl: '{hosts.url('gitlab')}', repository: acme/configs, tokenSecret: gl}}\n"
    configs = parse_config_text(config_yaml(repo.url, tmp_path / "s.db", statuses), "c.yaml")
    seed(configs, gl=TOKENS["gitlab"])
    hosts.hang()
    out = deliver(configs, repo.url, ZERO, repo.sha)
    hosts.release()
    assert out.status == 200 and out.body["status"] == "ok"
    assert out.body["results"][0]["report"]["summary"]["create"] == 4
    assert len(hosts.requests) == 4  # pending and final, each tried twice
    assert hosts.statuses == []


def test_only_configs_the_push_matched_get_a_status(make_repo, tmp_path, hosts) -> None:  # type: ignore[no-untyped-def]
    repo = make_repo(FILES)
    other = make_repo({"README.md": "x\n"})
    statuses = f"    - {{provider: gitea, apiUrl: '{hosts.url('gitea')}', repository: acme/configs, tokenSecret: gt, pending: false}}\n"
    text = (
        config_yaml(repo.url, tmp_path / "s.db", statuses)
        + "---\n"
        + config_yaml(
            other.url, tmp_path / "s.db", statuses.replace("acme/configs", "acme/other"), name="other-dev"
        )
    )
    configs = parse_config_text(text, "c.yaml")
    seed(configs, gt=TOKENS["gitea"])
    assert deliver(configs, repo.url, ZERO, repo.sha).status == 200
    assert [b["context"] for _, _, b in hosts.statuses] == ["secret-manager-functions / shop-dev"]


# --- config validation ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("entry", "field", "line"),
    [
        ("{provider: gitlab}", "spec.statuses.0.tokenSecret", 11),
        ("{provider: gitlab, tokenSecret: t, app: {id: 1, privateKeySecret: k}}", "spec.statuses.0.app", 11),
        ("{provider: github, app: {id: 1}}", "spec.statuses.0.app.privateKeySecret", 11),
        ("{provider: gitea, tokenSecret: t, checks: false}", "spec.statuses.0.checks", 11),
        ("{provider: gitea, tokenSecret: t, apiUrl: 'ftp://x'}", "spec.statuses.0.apiUrl", 11),
        ("{provider: gitea, tokenSecret: t, repository: 'no-slash'}", "spec.statuses.0.repository", 11),
        ("{provider: sourcehut, tokenSecret: t}", "spec.statuses.0.provider", 11),
    ],
)
def test_bad_statuses_are_config_errors_naming_file_line_and_field(entry, field, line, tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = config_yaml("https://github.com/acme/configs.git", tmp_path / "s.db", f"    - {entry}\n")
    with pytest.raises(ConfigError) as err:
        parse_config_text(text, "c.yaml")
    assert (err.value.path, err.value.field) == ("c.yaml", field)
    assert err.value.line == line


def test_defaults_come_from_the_source_url() -> None:
    from core.results.statuses.targets import Target

    t = Target("github", None, None, token_secret="t")
    assert t.api("https://github.com/acme/configs.git") == "https://api.github.com"
    assert t.repo("git@github.com:acme/configs.git") == "acme/configs"
    assert Target("gitea", None, None).api("https://git.example.com/a/b") == "https://git.example.com/api/v1"
    assert Target("gitlab", None, None).api("https://gitlab.com/a/b/c.git") == "https://gitlab.com/api/v4"
    assert json.dumps(t.__dict__)  # plain data
