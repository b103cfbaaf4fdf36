"""AWS test fixtures: one moto server per session (ThreadedMotoServer on a free loopback
port), reset before every test; helpers to write repos and configs and to count or throttle
AWS API calls with botocore event hooks on the real clients."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.config import SecretManagerConfig, parse_config_text
from core.stores import _aws, open_store

FP_KEY = "test-fingerprint-key-0123456789"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Fake credentials, the moto endpoint, a fingerprint key and a clean moto state."""
    for var, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # noqa: S105
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "SMF_FINGERPRINT_KEY": FP_KEY,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "SecretManagerFunctionsTest",
        "POWERTOOLS_SERVICE_NAME": "secret-manager-functions",
    }.items():
        monkeypatch.setenv(var, value)
    for var in ("AWS_PROFILE", "SMF_FINGERPRINT_KEY_SECRET", "WEBHOOK_SECRET", "GIT_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    req = urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    urllib.request.urlopen(req).read()  # noqa: S310 - loopback moto server
    _aws.reset_clients()
    return moto_url


def config_yaml(
    moto_url: str,
    *,
    name: str = "shop-dev",
    environment: str = "dev",
    configs_enabled: bool = True,
    aws: dict[str, Any] | None = None,
    sync: dict[str, Any] | None = None,
    extra: str = "",
    source_url: str | None = None,
) -> str:
    aws_section = {"region": "us-east-1", "endpointUrl": moto_url, **(aws or {})}
    spec: dict[str, Any] = {
        "provider": {"type": "aws", "aws": aws_section},
        "secrets": {"environment": environment, "basePath": "services"},
        "configs": {"enabled": configs_enabled},
    }
    if sync:
        spec["sync"] = sync
    if source_url:
        spec["sourceRef"] = {"kind": "Git", "url": source_url, "branch": "main"}
    doc = {
        "apiVersion": "secret-manager.microscaler.io/v1alpha1",
        "kind": "SecretManagerConfig",
        "metadata": {"name": name},
        "spec": spec,
    }
    return json.dumps(doc) + ("\n" + extra if extra else "")


def make_config(moto_url: str, **kw: Any) -> SecretManagerConfig:
    return parse_config_text(config_yaml(moto_url, **kw))[0]


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def service_files(
    service: str, secrets: dict[str, str] | None = None, props: dict[str, str] | None = None, env: str = "dev"
) -> dict[str, str]:
    base = f"services/{service}/deployment-configuration/profiles/{env}"
    out: dict[str, str] = {}
    if secrets is not None:
        out[f"{base}/application.secrets.env"] = "".join(f"{k}={v}\n" for k, v in secrets.items())
    if props is not None:
        out[f"{base}/application.properties"] = "".join(f"{k}={v}\n" for k, v in props.items())
    return out


class CallLog:
    """Counts AWS API calls (one per operation, retries not included) and HTTP attempts."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()
        #: Attempts moto itself answered with a 5xx (its threaded server races on shared dicts
        #: now and then: "dictionary changed size during iteration"); botocore retries them.
        self.server_errors: Counter[str] = Counter()
        self._lock = threading.Lock()

    def attach(self, client: Any) -> None:
        # unique ids: clients are cached and shared, so attaching twice must not count twice
        client.meta.events.register("before-call", self._on_call, unique_id=f"calls-{id(self)}")
        client.meta.events.register("before-send", self._on_send, unique_id=f"sends-{id(self)}")
        client.meta.events.register("needs-retry", self._on_answer, unique_id=f"answers-{id(self)}")

    def _on_call(self, model: Any = None, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def _on_send(self, request: Any = None, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target") or b""
        op = target.decode() if isinstance(target, bytes) else str(target)
        with self._lock:
            self.attempts[op.rsplit(".", 1)[-1]] += 1

    def _on_answer(self, response: Any = None, operation: Any = None, **_: Any) -> None:
        if response is not None and response[0] is not None and response[0].status_code >= 500:
            with self._lock:
                self.server_errors[operation.name] += 1

    @property
    def writes(self) -> int:
        return sum(
            n for op, n in self.calls.items() if not op.startswith(("List", "Describe", "Get", "BatchGet"))
        )

    def reset(self) -> None:
        self.calls.clear()
        self.attempts.clear()


class Throttle:
    """Answers the first `n` HTTP attempts of `operation` with a ThrottlingException, as AWS
    does under load, at botocore's `before-send` (inside its retry loop, so the adaptive
    retry mode sees real throttling responses)."""

    def __init__(
        self, operation: str, n: int, code: str = "ThrottlingException", *, after: int = 0, every: int = 1
    ) -> None:
        self.operation = operation
        self.remaining = n
        #: let `after` attempts through first (AWS throttles a sender that is already busy),
        #: then throttle every `every`-th attempt until `n` were throttled
        self.after = after
        self.every = every
        self.seen = 0
        self.injected = 0
        self.code = code
        self._lock = threading.Lock()

    def attach(self, client: Any) -> None:
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(
            f"before-send.{service}.{self.operation}", self._on_send, unique_id=f"throttle-{id(self)}"
        )

    def _on_send(self, request: Any = None, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        with self._lock:
            self.seen += 1
            if self.remaining <= 0 or self.seen <= self.after or (self.seen - self.after) % self.every:
                return None
            self.remaining -= 1
            self.injected += 1
        body = json.dumps({"__type": self.code, "message": "Rate exceeded"}).encode()

        class _Raw:
            def stream(self, **_: Any) -> Iterator[bytes]:
                yield body

        return AWSResponse(
            request.url,
            400,
            {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "throttled"},
            _Raw(),
        )


class Factory:
    """A store factory for core.sync.run that attaches call logs/throttles to each client."""

    def __init__(self, *hooks: Any) -> None:
        self.hooks = hooks
        self.stores: dict[str, Any] = {}

    def __call__(self, kind: str, config: SecretManagerConfig) -> Any:
        store = open_store(kind, config)
        if kind not in self.stores:
            for hook in self.hooks:
                hook.attach(store.client)
        self.stores[kind] = store
        return store


@pytest.fixture
def sm(aws_env: str) -> Any:
    import boto3

    return boto3.client("secretsmanager", endpoint_url=aws_env, region_name="us-east-1")


@pytest.fixture
def ssm(aws_env: str) -> Any:
    import boto3

    return boto3.client("ssm", endpoint_url=aws_env, region_name="us-east-1")


def all_secrets(sm: Any, include_deleted: bool = False) -> dict[str, str]:
    """name → current value of every secret (scheduled-for-deletion ones only when asked)."""
    out: dict[str, str] = {}
    for page in sm.get_paginator("list_secrets").paginate(IncludePlannedDeletion=include_deleted):
        for item in page["SecretList"]:
            if item.get("DeletedDate") and not include_deleted:
                continue
            if item.get("DeletedDate"):
                out[item["Name"]] = "<deleted>"
                continue
            out[item["Name"]] = sm.get_secret_value(SecretId=item["ARN"])["SecretString"]
    return out


def all_parameters(ssm: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for page in ssm.get_paginator("get_parameters_by_path").paginate(
        Path="/", Recursive=True, WithDecryption=True
    ):
        for p in page["Parameters"]:
            out[p["Name"]] = p["Value"]
    return out
