"""Issue #10 item 9: a run that could not apply what Git says is "partial", not a success.

Conflicts (an entry exists and is not ours) and a guard's refusal (the mass-delete limit)
make `apply` exit 1 and the webhook report say "partial"; `plan --exit-code` still answers 2
for "has changes" and 0 for "nothing to do".
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from core.cli import main
from core.config import parse_config_text
from core.intake import DeliveryCache, handle_webhook
from core.stores.local import LocalConfigStore, LocalSecretStore
from tests.core.conftest import FILES, SVC, make_repo, write_config
from tests.intake.payloads import ZERO, github_push

ORDERS = SVC.format(service="orders")
HOOK_SECRET = "hook-secret-outcome-1"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", FILES)


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    rc = main([*args, "--json"])
    return rc, json.loads(capsys.readouterr().out)


def test_apply_with_conflicts_exits_1_and_says_partial(repo: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = str(write_config(tmp_path))
    secrets = LocalSecretStore(str(tmp_path / "store.db"))
    secrets.set_unmanaged("orders/dev/DB_PASSWORD", "hand-made value")
    secrets.set_unmanaged("orders/dev/API_TOKEN", "hand-made value")
    rc, out = cli_json(capsys, "apply", "--config", cfg, "--source", str(repo))
    assert sorted(c["name"] for c in out["changes"] if c["action"] == "conflict") == [
        "orders/dev/API_TOKEN",
        "orders/dev/DB_PASSWORD",
    ]
    assert out["errors"] == [] and out["outcome"] == "partial"
    assert rc == 1  # was 0: a CI job passed although two values were never synced
    # The other entries were applied all the same.
    assert out["summary"]["create"] == 7


def test_plan_exit_code_keeps_2_for_changes_and_0_for_none(repo: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = str(write_config(tmp_path))
    rc, out = cli_json(capsys, "plan", "--config", cfg, "--source", str(repo), "--exit-code")
    assert (rc, out["outcome"]) == (2, "ok")
    assert cli_json(capsys, "apply", "--config", cfg, "--source", str(repo))[0] == 0
    rc, out = cli_json(capsys, "plan", "--config", cfg, "--source", str(repo), "--exit-code")
    assert (rc, out["outcome"]) == (0, "ok")


def test_plan_showing_a_conflict_fails_like_apply_would(repo: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = str(write_config(tmp_path))
    LocalSecretStore(str(tmp_path / "store.db")).set_unmanaged("orders/dev/DB_PASSWORD", "hand-made value")
    rc, out = cli_json(capsys, "plan", "--config", cfg, "--source", str(repo), "--exit-code")
    assert (rc, out["outcome"]) == (1, "partial")


def test_mass_delete_refused_by_the_guard_is_partial(repo: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = str(write_config(tmp_path))
    assert cli_json(capsys, "apply", "--config", cfg, "--source", str(repo))[0] == 0
    (repo / ORDERS / "application.properties").write_text("")
    rc, out = cli_json(capsys, "apply", "--config", cfg, "--source", str(repo), "--prune")
    assert out["outcome"] == "partial" and rc == 1
    assert [e["kind"] for e in out["errors"]] == ["guard"]
    assert LocalConfigStore(str(tmp_path / "store.db")).get_value("orders/dev/server.port") == "8080"


def test_broken_file_is_failed_not_partial(repo: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = str(write_config(tmp_path))
    (repo / ORDERS / "application.config.yaml").write_text("a: [1,\n")
    rc, out = cli_json(capsys, "apply", "--config", cfg, "--source", str(repo))
    assert rc == 1 and out["outcome"] == "failed"
    assert out["errors"][0]["kind"] == "parse" and out["errors"][0]["path"].endswith(
        "application.config.yaml"
    )


def test_webhook_report_of_a_run_with_a_conflict_is_partial(make_repo, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SMF_LOCAL_STORE_KEY", base64.b64encode(b"k" * 32).decode())
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("GIT_CACHE_DIR", raising=False)
    git = make_repo({"services/a/deployment-configuration/profiles/dev/application.properties": "x.y=1\n"})
    db = tmp_path / "store.db"
    configs = parse_config_text(
        f"""
apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata: {{name: svc-dev}}
spec:
  sourceRef: {{kind: Git, url: "{git.url}", branch: main}}
  provider: {{type: local, local: {{path: "{db}"}}}}
  secrets: {{environment: dev, basePath: services}}
  configs: {{enabled: true}}
  webhook: {{provider: github, secret: {HOOK_SECRET}}}
""",
        "cfg.yaml",
    )
    LocalConfigStore(str(db)).set_unmanaged("a/dev/x.y", "hand-made")
    headers, body = github_push(git.url, before=ZERO, after=git.sha, secret=HOOK_SECRET)
    status, doc = handle_webhook(headers, body, configs, secret=HOOK_SECRET, deliveries=DeliveryCache())
    assert status == 200
    assert doc["status"] == "partial"  # was "ok"
    assert doc["results"][0]["report"]["outcome"] == "partial"
