"""Fan-out fixtures: moto (the AWS tests' server and environment), Azurite (Table Storage), a store wrapper that
drives each worker's clock by the writes it makes and injects failures, and repo helpers."""

from __future__ import annotations

import threading
from typing import Any

from core.errors import StoreError
from core.stores import open_store
from tests.aws.conftest import aws_env, moto_url, sm, ssm  # noqa: F401 - fixtures reused here
from tests.fanout.sqs_platform import Killed
from tests.support.azurite import azurite_tables, run_table  # noqa: F401 - fixtures reused here

#: Simulated seconds one store write takes (the worker's clock advances by this per write).
WRITE_SECONDS = 1.0


class Faults:
    """Failures injected into writes, counted over all workers: `kill_at` (the n-th write
    kills its worker, once), `throttle_at` (the n-th write fails as the SDK does when its
    retries gave up on throttling, once each)."""

    def __init__(self, kill_at: set[int] = frozenset(), throttle_at: set[int] = frozenset()) -> None:
        self.kill_at, self.throttle_at = set(kill_at), set(throttle_at)
        self.writes = 0
        self.killed = self.throttled = 0
        self._lock = threading.Lock()

    def on_write(self) -> None:
        with self._lock:
            self.writes += 1
            n = self.writes
            kill = n in self.kill_at
            throttle = n in self.throttle_at
            self.killed += kill
            self.throttled += throttle
        if kill:
            raise Killed(f"worker killed at write {n}")
        if throttle:
            raise StoreError(
                "ThrottlingException (retries exhausted)", transient=True, code="ThrottlingException"
            )


class Ticks:
    """One worker invocation's clock: WRITE_SECONDS per write it made."""

    def __init__(self) -> None:
        self.n = 0
        self._lock = threading.Lock()

    def tick(self) -> None:
        with self._lock:
            self.n += 1

    def __call__(self) -> float:
        return self.n * WRITE_SECONDS


class Wrapped:
    """A real store whose writes tick the invocation's clock and pass through `faults`."""

    def __init__(self, store: Any, ticks: Ticks, faults: Faults | None) -> None:
        self._store, self._ticks, self._faults = store, ticks, faults

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def put(self, *a: Any, **kw: Any) -> Any:
        self._ticks.tick()
        if self._faults:
            self._faults.on_write()
        return self._store.put(*a, **kw)

    def delete(self, *a: Any, **kw: Any) -> Any:
        self._ticks.tick()
        if self._faults:
            self._faults.on_write()
        return self._store.delete(*a, **kw)


def wrapped_factory(ticks: Ticks, faults: Faults | None, hooks: tuple[Any, ...] = ()) -> Any:
    def factory(kind: str, config: Any) -> Any:
        store = open_store(kind, config)
        for hook in hooks:
            hook.attach(store.client)
        return Wrapped(store, ticks, faults)

    return factory


def repo_files(services: int, keys: int, *, skip: set[int] = frozenset(), tag: str = "") -> dict[str, str]:
    """`services` services × `keys` keys: half secrets (Secrets Manager), half properties
    (Parameter Store)."""
    half = keys // 2
    out: dict[str, str] = {}
    for i in range(services):
        if i in skip:
            continue
        base = f"services/svc{i:04d}/deployment-configuration/profiles/dev"
        out[f"{base}/application.secrets.env"] = "".join(
            f"SECRET_{j}=s3cret-{i}-{j}{tag}\n" for j in range(half)
        )
        out[f"{base}/application.properties"] = "".join(
            f"key.{j}=value-{i}-{j}{tag}\n" for j in range(keys - half)
        )
    return out


def expected(
    services: int, keys: int, *, skip: set[int] = frozenset(), tag: str = ""
) -> tuple[dict[str, str], dict[str, str]]:
    half = keys // 2
    secrets = {f"svc{i:04d}/dev/SECRET_{j}": f"s3cret-{i}-{j}{tag}" for i in range(services) if i not in skip
               for j in range(half)}  # fmt: skip
    params = {f"/svc{i:04d}/dev/key.{j}": f"value-{i}-{j}{tag}" for i in range(services) if i not in skip
              for j in range(keys - half)}  # fmt: skip
    return secrets, params
