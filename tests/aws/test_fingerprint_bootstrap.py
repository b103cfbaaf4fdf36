"""First-run fingerprint key on AWS (moto): no SMF_FINGERPRINT_KEY anywhere, the Lambda
syncs on its first push, creates exactly one `smf-fingerprint-key` secret and reuses it."""

from __future__ import annotations

import json

import pytest

from core.config import parse_config_text
from core.fingerprint import DEFAULT_KEY_NAME, bootstrap_key, derive
from core.stores import _aws, open_store
from tests.aws import test_lambda_e2e as e2e
from tests.aws.conftest import config_yaml
from tests.aws.test_lambda_e2e import EXPECTED_PARAMS, EXPECTED_SECRETS, HOOK_SECRET, ZERO, World
from tests.support.fingerprint_race import race

world = e2e.world  # the end-to-end test's fixture, shared


def test_first_push_creates_one_fingerprint_key_and_reuses_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The function's env secret holds only the webhook secret and the SOPS key material.
    world.sm.put_secret_value(SecretId="smf/lambda-env", SecretString=json.dumps(
        {"WEBHOOK_SECRET": HOOK_SECRET, "SOPS_AGE_KEY": world.key.secret}))  # fmt: skip
    monkeypatch.delenv("SMF_FINGERPRINT_KEY", raising=False)
    first = world.setup()
    status, doc = world.push(ZERO, first)
    assert status == 200 and doc["status"] == "ok", doc
    secrets, params = world.state()
    key_text = secrets.pop(DEFAULT_KEY_NAME)
    assert (secrets, params) == (EXPECTED_SECRETS, EXPECTED_PARAMS)
    names = [s["Name"] for s in world.sm.list_secrets()["SecretList"]]
    assert names.count(DEFAULT_KEY_NAME) == 1
    assert len(key_text) == 44  # 32 random bytes, base64
    # The second run reads the same key: every fingerprint matches, nothing is written.
    status, doc = world.push(ZERO, first)
    summary = doc["results"][0]["report"]["summary"]
    assert summary["unchanged"] == 7 and summary["create"] == summary["update"] == 0
    assert world.sm.get_secret_value(SecretId=DEFAULT_KEY_NAME)["SecretString"] == key_text


def _store(moto_url: str):  # type: ignore[no-untyped-def]
    cfg = parse_config_text(config_yaml(moto_url))[0]
    return open_store("aws-secrets-manager", cfg)


def test_racing_first_runs_converge_on_one_key(aws_env: str) -> None:
    a, b = _store(aws_env), _store(aws_env)
    key_a, key_b = race(a, b, stale_reads=1)  # A's create loses with ResourceExists, reads B's
    assert key_a == key_b
    names = [s["Name"] for s in a.client.list_secrets()["SecretList"]]
    assert names == [DEFAULT_KEY_NAME]
    assert derive(a.client.get_secret_value(SecretId=DEFAULT_KEY_NAME)["SecretString"]) == key_a
    assert bootstrap_key(a, {}) == key_a  # and every later run reads it


def test_the_name_is_overridable_by_one_env_var(aws_env: str) -> None:
    store = _store(aws_env)
    key = bootstrap_key(store, {"SMF_FINGERPRINT_KEY_NAME": "team-a/fp-key"})
    assert derive(store.client.get_secret_value(SecretId="team-a/fp-key")["SecretString"]) == key
    _aws.reset_clients()
