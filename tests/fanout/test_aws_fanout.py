"""The queued AWS path: a resync or push job fans out as signed work items on an SQS queue
(moto), workers sync their slices within their time budget, and the run's one outcome is
built by the worker that finishes the last item, from the DynamoDB run table (moto)."""

from __future__ import annotations

from typing import Any

import pytest

from core import intake, messages
from core.config import parse_config_text
from core.fanout import FanoutPolicy
from tests.aws.conftest import Throttle, all_parameters, all_secrets, config_yaml
from tests.fanout.conftest import Faults, Ticks, expected, repo_files, wrapped_factory
from tests.fanout.sqs_platform import SqsPlatform

SECRET = "fanout-hook-secret-5e2a"
SERVICES, KEYS = 60, 20
#: 8 services an item, 20 writes (20 simulated seconds) a service: an item of 8 needs 160 s,
#: so every first sync item must hand its remainder off to fit its 100 s.
POLICY = FanoutPolicy(max_services=5, item_services=8, item_seconds=100)


def configs_for(moto_url: str, url: str, *, prune: bool = True) -> list[Any]:
    return parse_config_text(config_yaml(moto_url, name="shop", source_url=url, sync={"prune": prune}))


class Worker:
    """What the Lambda worker does for one SQS record (handlers/aws_lambda.run_message),
    with the test's store wrapper, clock and policy."""

    def __init__(self, platform: SqsPlatform, configs: list[Any], tmp: Any, faults: Faults | None = None,
                 hooks: tuple[Any, ...] = ()) -> None:  # fmt: skip
        self.platform, self.configs, self.tmp, self.faults, self.hooks = platform, configs, tmp, faults, hooks

    def __call__(self, body: str) -> intake.Outcome:
        ticks = Ticks()
        ctx = intake.RunContext(store_factory=wrapped_factory(ticks, self.faults, self.hooks),
                                cache_dir=str(self.tmp), enqueue=self.platform.send,
                                runstate=self.platform.state, fanout=POLICY, clock=ticks)  # fmt: skip
        return intake.handle_message(body, self.configs, secret=SECRET, context=ctx)


@pytest.fixture
def reported() -> Any:
    seen: list[intake.Outcome] = []

    def hook(outcome: intake.Outcome, configs: Any) -> None:
        seen.append(outcome)

    intake.on_after_sync(hook)
    yield seen
    intake.AFTER_SYNC.remove(hook)


def work_outcomes(stats: Any) -> list[dict[str, Any]]:
    return [o.body for o in stats.outcomes if o.kind == "work" or o.body.get("item")]


def test_first_sync_fans_out_converges_after_throttling_and_a_killed_worker(
    aws_env: str, make_repo: Any, tmp_path: Any, sm: Any, ssm: Any, reported: list[Any]
) -> None:
    repo = make_repo(repo_files(SERVICES, KEYS))
    configs = configs_for(aws_env, repo.url)
    platform = SqsPlatform(aws_env)
    # write 37 kills its worker mid-item; writes 250 and 700 fail as throttling the SDK gave
    # up on; three PutParameter attempts are throttled and retried by botocore itself.
    faults = Faults(kill_at={37}, throttle_at={250, 700})
    sdk_throttle = Throttle("PutParameter", 3, after=100, every=50)
    platform.send(messages.encode(messages.Job("resync", {"drift": False}), key=None))

    stats = platform.drain(Worker(platform, configs, tmp_path, faults, (sdk_throttle,)), workers=4)

    want_secrets, want_params = expected(SERVICES, KEYS)
    assert all_secrets(sm) == want_secrets
    assert all_parameters(ssm) == want_params
    assert faults.killed == 1 and faults.throttled == 2 and sdk_throttle.injected == 3
    assert stats.killed == 1 and stats.returned == 3  # the killed item and the two throttled ones
    assert platform.dead_letters() == 0 and platform.counts() == (0, 0)
    bodies = work_outcomes(stats)
    done = [b for b in bodies if b.get("status") == "done"]
    assert done and all(b["elapsed"] <= b["budget"] for b in done)  # no item over its budget
    assert any(b.get("handoff") for b in done)  # remainders were handed off
    # one outcome for the run: one worker saw the last item, and the hooks ran once with it
    last = [b for b in bodies if b.get("last")]
    assert len(last) == 1
    run = last[0]["run_outcome"]
    assert run["status"] == "ok" and run["mode"] == "fanned-out" and run["services"] == SERVICES
    summary = run["results"][0]["report"]["summary"]
    # the killed and throttled attempts never finished, so their writes count in their repeats
    assert summary["create"] + summary["unchanged"] == SERVICES * KEYS
    assert summary["create"] >= SERVICES * KEYS - 3 * 8 * KEYS and summary.get("delete", 0) == 0
    assert [o.kind for o in reported] == ["resync"]
    assert reported[0].body["run"] == run["run"]
    record = platform.state.get(run["run"])
    assert record["finished"] and record["pending"] == [] and record["done"] == record["items"]


def test_redelivered_items_count_once_and_a_second_resync_writes_nothing(
    aws_env: str, make_repo: Any, tmp_path: Any, reported: list[Any]
) -> None:
    repo = make_repo(repo_files(12, 4))
    configs = configs_for(aws_env, repo.url)
    platform = SqsPlatform(aws_env)
    sent: list[str] = []
    original = platform.send

    def keep(message: str) -> dict[str, str]:
        sent.append(message)
        return original(message)

    worker = Worker(platform, configs, tmp_path)
    platform.send(messages.encode(messages.Job("resync", {"drift": False}), key=None))
    platform.send = keep  # type: ignore[method-assign]
    platform.drain(worker, workers=2)
    platform.send = original  # type: ignore[method-assign]
    items = [m for m in sent if '"kind":"work"' in m]
    assert len(items) == 2  # 12 services at 8 an item (4 writes a service: no handoff)
    again = [worker(m) for m in items]  # the queue delivering each item a second time
    assert [o.body["status"] for o in again] == ["duplicate", "duplicate"]
    assert len(reported) == 1  # still one outcome for the run

    # the next scheduled resync (another hour, another run) finds nothing to write
    platform.send(messages.encode(messages.Job("resync", {"drift": False, "hour": 2}), key=None))
    reported.clear()
    stats = platform.drain(worker, workers=2)
    assert len(reported) == 1
    summary = reported[0].body["results"][0]["report"]["summary"]
    assert summary["unchanged"] == 48 and summary["create"] == 0
    assert stats.returned == 0


def test_removed_services_are_pruned_once_per_run_then_fanned_out(
    aws_env: str, make_repo: Any, commit_files: Any, tmp_path: Any, sm: Any, ssm: Any, reported: list[Any]
) -> None:
    repo = make_repo(repo_files(12, 4))
    configs = configs_for(aws_env, repo.url)
    platform = SqsPlatform(aws_env)
    worker = Worker(platform, configs, tmp_path)
    platform.send(messages.encode(messages.Job("resync", {"drift": False}), key=None))
    platform.drain(worker, workers=2)
    gone = {3, 7}
    commit_files(repo, repo_files(12, 4, skip=gone), replace=True)
    reported.clear()
    platform.send(messages.encode(messages.Job("resync", {"drift": False, "n": 2}), key=None))
    stats = platform.drain(worker, workers=2)
    want_secrets, want_params = expected(12, 4, skip=gone)
    # (deletes leave tombstones recording the deleting commit: core/stores, deletion ordering)
    params = {k: v for k, v in all_parameters(ssm).items() if not k.startswith("/smf-tombstones/")}
    assert all_secrets(sm) == want_secrets and params == want_params
    prune_items = [b for b in work_outcomes(stats) if b.get("op") == "prune"]
    assert len(prune_items) == 1 and prune_items[0]["status"] == "done"
    assert len(reported) == 1
    summary = reported[0].body["results"][0]["report"]["summary"]
    assert summary["delete"] == 8 and summary["unchanged"] == 40


def test_the_mass_delete_guard_holds_for_the_whole_run(
    aws_env: str, make_repo: Any, commit_files: Any, tmp_path: Any, sm: Any, reported: list[Any]
) -> None:
    repo = make_repo(repo_files(12, 4))
    configs = configs_for(aws_env, repo.url)
    platform = SqsPlatform(aws_env)
    worker = Worker(platform, configs, tmp_path)
    platform.send(messages.encode(messages.Job("resync", {"drift": False}), key=None))
    platform.drain(worker, workers=2)
    commit_files(repo, repo_files(12, 4, skip=set(range(4, 12))), replace=True)  # two thirds gone
    reported.clear()
    platform.send(messages.encode(messages.Job("resync", {"drift": False, "n": 2}), key=None))
    stats = platform.drain(worker, workers=2)
    assert not [b for b in work_outcomes(stats) if b.get("op") == "prune"]
    assert len(all_secrets(sm)) == 24  # nothing deleted
    report = reported[0].body["results"][0]["report"]
    assert reported[0].body["status"] == "partial" and report["outcome"] == "partial"
    assert report["errors"][0]["field"] == "spec.sync.maxDeleteFraction"


def test_a_forged_or_newer_work_item_is_refused(aws_env: str, tmp_path: Any) -> None:
    platform = SqsPlatform(aws_env)
    configs = parse_config_text(config_yaml(aws_env, name="shop"))
    worker = Worker(platform, configs, tmp_path)
    data = {"item": 1, "run": "r", "id": "0", "op": "prune", "config": "shop", "repo": "x", "commit": "c",
            "owners": ["shop/svc/dev"], "kinds": ["aws-secrets-manager"]}  # fmt: skip
    unsigned = messages.encode(messages.Job("work", data), key=None)
    assert worker(unsigned).status == 400
    forged = messages.encode(messages.Job("work", data), key=messages.mac_key("not-the-secret"))
    assert worker(forged).status == 400
    newer = messages.encode(messages.Job("work", {**data, "item": 2}), key=messages.mac_key(SECRET))
    out = worker(newer)
    assert out.status == 400 and "schema 2" in out.body["reason"]
