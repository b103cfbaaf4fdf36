"""Throttling: AWS answers ThrottlingException under load (SSM PutParameter at a few calls/s
by default); moto never does, so the first N attempts are answered with real throttling
responses at botocore's before-send hook. The sync must converge with nothing lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.source import LocalDirSource
from core.stores.aws_parameter_store import ParameterStore
from core.stores.aws_secrets_manager import SecretsManagerStore
from core.sync import run
from tests.aws.conftest import (
    CallLog,
    Factory,
    Throttle,
    all_parameters,
    all_secrets,
    make_config,
    service_files,
    write_tree,
)

SERVICES, CONFIGS, SECRETS = 50, 16, 4  # 1,000 keys


def _repo(root: Path, version: str = "1") -> Path:
    files: dict[str, str] = {}
    for i in range(SERVICES):
        files |= service_files(
            f"svc{i:02d}",
            {f"SECRET_{j}": f"s3cret-{i}-{j}-{version}" for j in range(SECRETS)},
            {f"key.{j}": f"value-{i}-{j}-{version}" for j in range(CONFIGS)},
        )
    return write_tree(root, files)


def test_sync_of_a_thousand_keys_converges_under_throttling(
    aws_env: str, sm: Any, ssm: Any, tmp_path: Path
) -> None:
    root = _repo(tmp_path)
    cfg = make_config(aws_env, sync={"prune": True})
    # Few injections: each one makes the adaptive limiter slow the client down for seconds
    # (bench/bench_aws.py measures a large throttled sync).
    put_throttle = Throttle("PutParameter", 3, after=200, every=50)
    create_throttle = Throttle("CreateSecret", 2, code="TooManyRequestsException", after=10, every=5)
    log = CallLog()
    report = run(
        [cfg], LocalDirSource(root), apply=True, store_factory=Factory(put_throttle, create_throttle, log)
    )
    assert report.errors == []
    assert report.summary["create"] == SERVICES * (CONFIGS + SECRETS)
    assert put_throttle.injected == 3 and create_throttle.injected == 2
    # every throttled attempt was retried by botocore: one call each, more HTTP attempts
    assert log.calls["PutParameter"] == SERVICES * CONFIGS
    # (plus any attempt moto's threaded server itself failed with a 5xx: retried the same way)
    assert log.attempts["PutParameter"] == SERVICES * CONFIGS + 3 + log.server_errors["PutParameter"]
    assert log.attempts["CreateSecret"] == SERVICES * SECRETS + 2 + log.server_errors["CreateSecret"]
    params = all_parameters(ssm)
    assert len(params) == SERVICES * CONFIGS and params["/svc07/dev/key.13"] == "value-7-13-1"
    secrets = all_secrets(sm)
    assert len(secrets) == SERVICES * SECRETS and secrets["svc14/dev/SECRET_3"] == "s3cret-14-3-1"

    # An update of everything under throttling converges too.
    _repo(root, "2")
    again = Throttle("PutParameter", 2, after=300, every=100)
    report = run([cfg], LocalDirSource(root), apply=True, store_factory=Factory(again))
    assert report.errors == [] and report.summary["update"] == SERVICES * (CONFIGS + SECRETS)
    assert again.injected == 2
    assert all_parameters(ssm)["/svc07/dev/key.13"] == "value-7-13-2"


def test_concurrency_is_bounded_and_retries_are_adaptive(aws_env: str) -> None:
    from core.stores import _aws

    cfg = make_config(aws_env)
    assert ParameterStore.max_concurrency <= 5 and SecretsManagerStore.max_concurrency <= 10
    for kind, service in (("aws-parameter-store", "ssm"), ("aws-secrets-manager", "secretsmanager")):
        from core.stores import open_store

        client = open_store(kind, cfg).client
        assert client.meta.config.retries["mode"] == "adaptive"
        # botocore stores max_attempts=10 (retries) as total_max_attempts=11 (attempts)
        assert client.meta.config.retries.get("total_max_attempts") == 11
        assert client.meta.config.max_pool_connections >= open_store(kind, cfg).max_concurrency
        assert client.meta.service_model.service_name == service
    assert _aws.RETRIES["mode"] == "adaptive"
