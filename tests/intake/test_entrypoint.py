"""core.entrypoint: the environment every handler reads, and the one answer to a
configuration problem (the conformance suite runs the deliveries themselves through all
three handlers)."""

from __future__ import annotations

import json
import logging

import pytest

from core import entrypoint
from tests.intake.payloads import github_push
from tests.support.leakcheck import LeakCheck

HOOK = "entrypoint-hook-secret-3f9a"
DOC = ("apiVersion: secret-manager.microscaler.io/v1alpha1\nkind: SecretManagerConfig\nmetadata: {name: x}\n"
       "spec:\n  sourceRef: {url: 'https://github.com/acme/x.git', branch: main}\n"
       "  provider: {type: local}\n  secrets: {environment: dev}\n")  # fmt: skip


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path):  # type: ignore[no-untyped-def]
    for name in ("SMF_CONFIG", "SMF_CONFIG_PATH", "SMF_CONFIG_YAML", "SMF_WEBHOOK_MODE", "SMF_ENV_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WEBHOOK_SECRET", HOOK)  # recorded, so the undo removes what a bundle sets
    monkeypatch.setattr("core.settings._BUNDLES_LOADED", set())
    path = tmp_path / "smf-config.yaml"
    path.write_text(DOC)
    return monkeypatch, path


def test_config_that_does_not_load_is_one_named_500(env, caplog) -> None:  # type: ignore[no-untyped-def]
    monkeypatch, path = env
    path.write_text(DOC.replace("secrets:", "secretz:"))
    headers, body = github_push("https://github.com/acme/x.git", before="0" * 40, after="a" * 40, secret=HOOK)
    with caplog.at_level(logging.ERROR, logger="smf.intake"):
        out = entrypoint.deliver(headers, body, default_path=path, max_message_bytes=1000)
    assert (out.status, out.body, out.kind) == (500, entrypoint.CONFIG_ERROR, "rejected")
    [record] = [r for r in caplog.records if r.getMessage() == "configuration error"]
    assert "spec.secretz" in record.error and record.error_type == "ConfigError"  # named: field and file
    LeakCheck([HOOK]).scan(caplog.text, json.dumps(out.body), where="configuration error")


def test_queue_setting_is_checked_only_where_there_is_a_queue(env) -> None:  # type: ignore[no-untyped-def]
    monkeypatch, path = env
    monkeypatch.setenv("SMF_WEBHOOK_MODE", "sometimes")
    headers, body = github_push(
        "https://github.com/acme/x.git", before="0" * 40, after="a" * 40, secret="wrong"
    )
    queued = entrypoint.deliver(headers, body, default_path=path, max_message_bytes=1000, send=lambda m: {})
    assert (queued.status, queued.body) == (500, entrypoint.CONFIG_ERROR)
    inline = entrypoint.deliver(headers, body, default_path=path, max_message_bytes=1000)
    assert inline.status == 403 and inline.kind == "rejected"  # the signature is checked, not the mode


def test_secret_bundle_is_read_once_per_instance(env) -> None:  # type: ignore[no-untyped-def]
    monkeypatch, path = env
    monkeypatch.delenv("WEBHOOK_SECRET")
    monkeypatch.setenv("SMF_ENV_SECRET", "smf/lambda-env")
    reads: list[str] = []

    def read(secret_id: str) -> str:
        reads.append(secret_id)
        return json.dumps({"WEBHOOK_SECRET": HOOK})

    for _ in range(3):
        configs, secret = entrypoint.environment(path, read_secret=read)
        assert secret == HOOK and [c.name for c in configs] == ["x"]
    assert reads == ["smf/lambda-env"]
