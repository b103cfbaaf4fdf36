"""The one intake (core.intake.decide / handle_delivery / handle_message), the queue message
format (core.messages) and the environment settings (core.settings)."""

from __future__ import annotations

import base64
import json
import logging
import zlib

import pytest

import core.webhook
from core import messages
from core.config import parse_config_text
from core.errors import ConfigError
from core.intake import (
    AFTER_SYNC,
    DeliveryCache,
    Ignore,
    Queue,
    QueuePolicy,
    Reject,
    RunContext,
    SyncNow,
    decide,
    handle_delivery,
    handle_message,
    log_summary,
    on_after_sync,
    webhook_secret,
)
from core.messages import Job
from core.settings import check_env_secrets, config_text, load_configs, load_secret_bundle
from core.webhook import PushEvent
from tests.intake.payloads import ZERO, bitbucket_push, generic_push, github_push
from tests.intake.test_intake import SECRET, CountingStores, config_yaml, svc_file
from tests.intake.test_intake import env as env  # noqa: F401 - the fixture
from tests.support.leakcheck import LeakCheck

AUTO = QueuePolicy(max_bytes=256 * 1024)


def _configs(url: str, tags: bool = False, db: str = "/nonexistent/store.db"):
    text = config_yaml(url, db)
    if tags:
        text = text.replace("branch: main}", "branch: main, tags: true}")
    return parse_config_text(text, "c.yaml")


class Counter:
    """Counts calls of a module function while delegating to it."""

    def __init__(self, monkeypatch, module, name):
        self.n = 0
        real = getattr(module, name)

        def wrapper(*a, **kw):
            self.n += 1
            return real(*a, **kw)

        monkeypatch.setattr(module, name, wrapper)


# --- decide ------------------------------------------------------------------------------
def test_decide_covers_every_decision():
    url = "https://github.com/acme/configs.git"
    configs = _configs(url)
    h, b = github_push(url, before=ZERO, after="a" * 40, secret="wrong")
    assert isinstance(decide(h, b, configs, secret=SECRET), Reject)
    h, b = github_push(url, before=ZERO, after="a" * 40, secret=SECRET, event="ping")
    assert isinstance(d := decide(h, b, configs, secret=SECRET), Ignore) and d.status == 200
    h, b = github_push("https://github.com/acme/other.git", before=ZERO, after="a" * 40, secret=SECRET)
    d = decide(h, b, configs, secret=SECRET, queue=AUTO)
    assert isinstance(d, Ignore) and d.status == 202 and "no config follows" in d.reason
    h, b = github_push(url, before="b" * 40, after="a" * 40, modified=["x"], secret=SECRET)
    assert isinstance(decide(h, b, configs, secret=SECRET, queue=AUTO), SyncNow)  # few reliable paths
    assert isinstance(decide(h, b, configs, secret=SECRET), SyncNow)  # no queue on this platform
    d = decide(h, b, configs, secret=SECRET, queue=QueuePolicy(1 << 20, mode="queue"))
    assert isinstance(d, Queue) and d.job.kind == "push" and d.body()["status"] == "queued"
    h, b = github_push(url, before=ZERO, after="a" * 40, secret=SECRET)  # new branch: no reliable list
    assert isinstance(decide(h, b, configs, secret=SECRET, queue=AUTO), Queue)
    h, b = github_push(
        url, before="b" * 40, after="a" * 40, modified=[f"f{i}" for i in range(51)], secret=SECRET
    )
    assert isinstance(decide(h, b, configs, secret=SECRET, queue=AUTO), Queue)  # more than 50 paths


def test_tag_push_follows_the_configs_tags_setting():
    url = "https://github.com/acme/configs.git"
    h, b = github_push(url, ref="refs/tags/v1.2", before=ZERO, after="a" * 40, secret=SECRET)
    ignored = decide(h, b, _configs(url), secret=SECRET, queue=AUTO)
    assert isinstance(ignored, Ignore) and "tag" in ignored.reason
    queued = decide(h, b, _configs(url, tags=True), secret=SECRET, queue=AUTO)
    assert isinstance(queued, Queue) and queued.event.tag == "v1.2"


def test_a_delivery_is_verified_and_parsed_once_inline_and_through_the_queue(env, monkeypatch):  # noqa: F811
    repo, configs, _ = env
    hmacs = Counter(monkeypatch, core.webhook, "_hmac_hex")
    parses = Counter(monkeypatch, core.webhook, "_decode")
    h, b = github_push(repo.url, before=ZERO, after=repo.sha, secret=SECRET)
    out = handle_delivery(h, b, configs, secret=SECRET, deliveries=DeliveryCache(),
                          context=RunContext(store_factory=CountingStores()))  # fmt: skip
    assert out.status == 200 and out.body["status"] == "ok", out.body
    assert (hmacs.n, parses.n) == (1, 1)

    sent: list[str] = []
    h, b = github_push(repo.url, before=ZERO, after=repo.sha, secret=SECRET)
    out = handle_delivery(h, b, configs, secret=SECRET, queue=AUTO, send=lambda m: sent.append(m) or {"id": "1"},
                          deliveries=DeliveryCache())  # fmt: skip
    assert out.status == 202 and out.body["status"] == "queued" and out.body["id"] == "1"
    done = handle_message(sent[0], configs, secret=SECRET, context=RunContext(store_factory=CountingStores()))
    assert done.status == 200 and done.body["status"] == "ok", done.body
    assert (hmacs.n, parses.n) == (2, 2)  # one per delivery: the worker verified nothing again


def test_queued_push_is_the_verified_event_and_a_forged_message_runs_nothing(env):  # noqa: F811
    repo, configs, _ = env
    h, b = github_push(repo.url, before=ZERO, after=repo.sha, secret=SECRET)
    d = decide(h, b, configs, secret=SECRET, queue=AUTO)
    assert isinstance(d, Queue)
    msg = json.loads(d.message)
    assert msg["v"] == 1 and msg["kind"] == "push" and msg["data"]["event"]["after"] == repo.sha
    assert PushEvent.from_message(msg["data"]["event"]).to_message() == d.event.to_message()
    LeakCheck([SECRET]).scan(d.message, where="queue message")
    stores = CountingStores()
    forged = {**msg, "data": {"event": {**msg["data"]["event"], "after": "f" * 40}}}
    unsigned = {k: v for k, v in msg.items() if k != "mac"}
    for bad in (forged, unsigned, "not json", {"v": 9, "kind": "push"}, {"v": 1, "kind": "nope", "data": {}}):
        out = handle_message(bad if isinstance(bad, str) else json.dumps(bad), configs, secret=SECRET,
                             context=RunContext(store_factory=stores))  # fmt: skip
        assert out.status == 400 and out.body["status"] == "rejected", out.body
    assert handle_message(d.message, configs, secret=None).status == 500  # cannot check: retried
    assert stores.calls() == 0


def test_large_messages_are_compressed_and_too_large_ones_follow_the_policy():
    url = "https://github.com/acme/configs.git"
    configs = _configs(url)
    paths = [
        f"services/s{i}/deployment-configuration/profiles/dev/application.properties" for i in range(3000)
    ]
    h, b = github_push(url, before="b" * 40, after="a" * 40, modified=paths, secret=SECRET)
    d = decide(h, b, configs, secret=SECRET, queue=AUTO)
    assert isinstance(d, Queue) and d.note is None
    msg = json.loads(d.message)
    assert "z" in msg and "data" not in msg and len(d.message) < len(json.dumps(paths)) / 4
    assert json.loads(zlib.decompress(base64.b64decode(msg["z"])))["event"]["changed_paths"] == sorted(paths)
    assert messages.decode(d.message, key=messages.mac_key(SECRET)).signed
    # Over the queue's limit: the event without its file lists (the worker diffs the trees).
    lean = decide(h, b, configs, secret=SECRET, queue=QueuePolicy(max_bytes=2000))
    assert isinstance(lean, Queue) and lean.job.kind == "push" and "diffs" in (lean.note or "")
    assert lean.job.data["event"]["changed_paths"] is None and len(lean.message) <= 2000
    # Still too large: a full resync of the matched configs.
    tiny = decide(h, b, configs, secret=SECRET, queue=QueuePolicy(max_bytes=100))
    assert isinstance(tiny, Queue) and tiny.job.kind == "resync" and "resync" in tiny.body()["note"]
    assert tiny.job.data == {"configs": ["svc-dev"], "drift": False}


def test_compressed_bomb_is_refused():
    data = base64.b64encode(zlib.compress(b"[" * (messages.MAX_DATA_BYTES + 10))).decode()
    with pytest.raises(messages.MessageError):
        messages.decode(json.dumps({"v": 1, "kind": "push", "z": data}), key=None)


def test_scheduler_resync_message_needs_no_mac_and_unknown_kinds_can_be_added(env, monkeypatch):  # noqa: F811
    from core import intake

    _, configs, _ = env
    seen = []
    monkeypatch.setitem(intake.JOB_KINDS, "noop", intake.JobKind("noop", lambda d, c, x: intake.Outcome(
        200, {"status": "ok", "n": d["n"]}, "noop")))  # fmt: skip
    assert handle_message(messages.encode(Job("noop", {"n": 3}), key=messages.mac_key(SECRET)), configs,
                          secret=SECRET).body == {"status": "ok", "n": 3}  # fmt: skip
    hook = on_after_sync(lambda outcome, cfgs: seen.append((outcome.kind, outcome.status)))
    try:
        out = handle_message(json.dumps({"kind": "resync"}), configs, secret=None,
                             context=RunContext(store_factory=CountingStores()))  # fmt: skip
    finally:
        AFTER_SYNC.remove(hook)
    assert out.status == 200 and seen == [("resync", 200)]


def test_after_sync_hook_failure_never_fails_the_sync(env, caplog):  # noqa: F811
    repo, configs, _ = env
    seen = []

    def boom(outcome, cfgs):
        raise RuntimeError("reporting is down")

    hooks = [
        on_after_sync(boom),
        on_after_sync(lambda o, c: seen.append((o.events[0].after, [x.name for x in o.configs]))),
    ]
    try:
        h, b = github_push(repo.url, before=ZERO, after=repo.sha, secret=SECRET)
        out = handle_delivery(h, b, configs, secret=SECRET, deliveries=DeliveryCache(),
                              context=RunContext(store_factory=CountingStores()))  # fmt: skip
    finally:
        for hk in hooks:
            AFTER_SYNC.remove(hk)
    assert out.status == 200 and seen == [(repo.sha, ["svc-dev"])]
    assert "after-sync hook failed" in caplog.text and "reporting is down" not in caplog.text


def test_log_summary_names_counts_never_values(env):  # noqa: F811
    repo, configs, _ = env
    h, b = github_push(repo.url, before=ZERO, after=repo.sha, secret=SECRET, delivery="d-1")
    out = handle_delivery(h, b, configs, secret=SECRET, deliveries=DeliveryCache(),
                          context=RunContext(store_factory=CountingStores()))  # fmt: skip
    line = log_summary(out)
    assert line["kind"] == "push" and line["status"] == 200 and line["result"] == "ok"
    assert line["delivery_id"] == "d-1" and line["after"] == repo.sha and line["mode"] == "inline"
    assert line["totals"]["create"] == 36 and line["drift"] == 0 and "errors" not in line


def test_failed_send_is_503_and_the_delivery_may_be_retried(env):  # noqa: F811
    repo, configs, _ = env
    deliveries = DeliveryCache()
    h, b = github_push(repo.url, before=ZERO, after=repo.sha, secret=SECRET, delivery="d-9")

    def down(message):
        raise ConnectionError("queue down")

    assert (
        handle_delivery(h, b, configs, secret=SECRET, queue=AUTO, send=down, deliveries=deliveries).status
        == 503
    )
    ok = handle_delivery(h, b, configs, secret=SECRET, queue=AUTO, send=lambda m: {}, deliveries=deliveries)
    assert ok.status == 202
    again = handle_delivery(
        h, b, configs, secret=SECRET, queue=AUTO, send=lambda m: {}, deliveries=deliveries
    )
    assert again.status == 200 and again.body["status"] == "duplicate"


def test_bitbucket_multi_ref_push_survives_the_queue():
    configs = _configs("https://bitbucket.org/acme/configs.git")
    extra = {"new": {"type": "branch", "name": "dev", "target": {"hash": "c" * 40}},
             "old": {"type": "branch", "name": "dev", "target": {"hash": "d" * 40}}}  # fmt: skip
    h, b = bitbucket_push(
        "acme/configs", before="b" * 40, after="a" * 40, secret=SECRET, extra_changes=[extra]
    )
    d = decide(h, b, configs, secret=SECRET, queue=AUTO, provider="bitbucket")
    assert isinstance(d, Queue)
    job = messages.decode(d.message, key=messages.mac_key(SECRET))
    back = PushEvent.from_message(job.data["event"])
    assert [e.branch for e in [back, *back.more]] == ["main", "dev"]


# --- issue #10 item 5: signed but malformed payloads ---------------------------------------
def _signed(provider, payload, secret=SECRET):
    from tests.intake.payloads import sign

    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if provider == "bitbucket":
        return {
            "X-Event-Key": "repo:push",
            "X-Request-UUID": "u",
            "X-Hub-Signature": "sha256=" + sign(secret, body),
        }, body
    if provider == "generic":
        return {"X-Event": "push", "X-Signature-256": "sha256=" + sign(secret, body)}, body
    return {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign(secret, body)}, body


BB_REPO = {"full_name": "acme/x", "links": {"html": {"href": "https://bitbucket.org/acme/x"}}}


@pytest.mark.parametrize("provider,payload", [
    ("bitbucket", {"repository": BB_REPO, "push": {"changes": [{"new": {"type": "branch", "name": "main",
                                                                        "target": "oops"}}]}}),
    ("bitbucket", {"repository": BB_REPO, "push": {"changes": [{"new": {"type": "branch", "name": "main",
                                                                        "target": {"hash": "a" * 40}},
                                                                "old": {"type": "branch", "name": "main",
                                                                        "target": [1]}}]}}),
    ("generic", {"repository": {"url": "https://x/y.git", "urls": 7}, "ref": "refs/heads/main",
                 "before": "b" * 40, "after": 5}),
    ("generic", {"repository": {"urls": 7}, "ref": "refs/heads/main", "before": "b" * 40, "after": "a" * 40}),
    ("github", b"[" * 100_000 + b"]" * 100_000),
    ("github", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    ("github", b'{"ref": ' + b"9" * 5000 + b"}"),
])  # fmt: skip
def test_signed_but_malformed_payloads_are_a_400(provider, payload):
    h, b = _signed(provider, payload)
    out = core.webhook.verify_and_parse(h, b, secret=SECRET, provider=provider)
    assert out.status == 400 and not out.accepted, out


def test_deep_form_payload_is_a_400():
    from urllib.parse import urlencode

    from tests.intake.payloads import sign

    body = urlencode({"payload": "[" * 100_000 + "]" * 100_000}).encode()
    h = {"X-GitHub-Event": "push", "Content-Type": "application/x-www-form-urlencoded",
         "X-Hub-Signature-256": "sha256=" + sign(SECRET, body)}  # fmt: skip
    assert core.webhook.verify_and_parse(h, body, secret=SECRET).status == 400
    bad = b"payload=%ff%fe"
    h["X-Hub-Signature-256"] = "sha256=" + sign(SECRET, bad)
    assert core.webhook.verify_and_parse(h, bad, secret=SECRET).status == 400


def test_generic_push_still_reads_a_urls_list():
    url = "https://example.com/acme/configs.git"
    h, b = generic_push(url, before=ZERO, after="a" * 40, secret=SECRET)
    payload = json.loads(b)
    payload["repository"] = {"urls": [url]}
    h2, b2 = _signed("generic", payload)
    ev = core.webhook.verify_and_parse(h2, b2, secret=SECRET, provider="generic")
    assert isinstance(ev, PushEvent) and ev.repo_urls == [url]


# --- settings ------------------------------------------------------------------------------
DOC = "apiVersion: secret-manager.microscaler.io/v1alpha1\nkind: SecretManagerConfig\nmetadata: {name: x}\n" \
      "spec: {provider: {type: local}, secrets: {environment: dev}}\n"  # fmt: skip


def test_config_from_one_set_of_variables(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr("core.settings._WARNED", set())  # warned once per process
    path = tmp_path / "c.yaml"
    path.write_text(DOC)
    assert config_text({"SMF_CONFIG": DOC}) == (DOC, "SMF_CONFIG")
    assert config_text({"SMF_CONFIG": str(path)}) == (DOC, str(path))
    assert config_text({"SMF_CONFIG_PATH": str(path)}) == (DOC, str(path))
    assert config_text({}, default_path=path) == (DOC, str(path))
    with caplog.at_level(logging.WARNING):
        assert config_text({"SMF_CONFIG_YAML": DOC}) == (DOC, "SMF_CONFIG_YAML")
    assert "SMF_CONFIG_YAML is deprecated" in caplog.text
    assert [c.name for c in load_configs({"SMF_CONFIG": DOC})] == ["x"]
    with pytest.raises(ConfigError, match="cannot read the config file"):
        config_text({"SMF_CONFIG_PATH": str(tmp_path / "missing.yaml")})
    with pytest.raises(ConfigError, match="no configuration"):
        config_text({})


REF = "@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/webhook/)"


def test_unresolved_key_vault_reference_is_refused(env):  # noqa: F811
    _, configs, _ = env
    with pytest.raises(ConfigError, match="unresolved Key Vault reference") as err:
        webhook_secret(configs, env={"WEBHOOK_SECRET": REF})
    assert err.value.field == "WEBHOOK_SECRET" and "vault.azure.net" not in str(err.value)
    with pytest.raises(ConfigError, match="SOPS_AGE_KEY"):
        check_env_secrets({"SOPS_AGE_KEY": "  " + REF.lower()})
    check_env_secrets({"WEBHOOK_SECRET": "real-secret"})
    env2: dict[str, str] = {}
    assert load_secret_bundle(json.dumps({"WEBHOOK_SECRET": "s", "OTHER": "x"}), origin="B", env=env2) == [
        "WEBHOOK_SECRET"
    ]
    assert env2 == {"WEBHOOK_SECRET": "s"}
    with pytest.raises(ConfigError, match="not a JSON object"):
        load_secret_bundle("[1]", origin="B", env={})
    with pytest.raises(ConfigError, match="unresolved"):
        load_secret_bundle(json.dumps({"GIT_TOKEN": REF}), origin="B", env={})


def test_queue_policy_from_env():
    assert QueuePolicy.from_env(100, env={}) == QueuePolicy(100, "auto", 50)
    p = QueuePolicy.from_env(100, env={"SMF_WEBHOOK_MODE": "Queue", "SMF_INLINE_MAX_PATHS": "3",
                                       "SMF_HANDOFF_MAX_BYTES": "7"})  # fmt: skip
    assert p == QueuePolicy(7, "queue", 3)
    with pytest.raises(ConfigError):
        QueuePolicy.from_env(100, env={"SMF_WEBHOOK_MODE": "sometimes"})


def test_changed_paths_survive_queueing_for_an_incremental_sync(env, commit_files):  # noqa: F811
    repo, configs, _ = env
    stores = CountingStores()
    handle_delivery(*github_push(repo.url, before=ZERO, after=repo.sha, secret=SECRET), configs, secret=SECRET,
                    deliveries=DeliveryCache(), context=RunContext(store_factory=stores))  # fmt: skip
    c2 = commit_files(repo, {svc_file(3): "db.url=three\nfeature.x=on\n"})
    sent: list[str] = []
    h, b = github_push(repo.url, before=repo.sha, after=c2, modified=[svc_file(3)], secret=SECRET)
    handle_delivery(h, b, configs, secret=SECRET, queue=QueuePolicy(1 << 20, mode="queue"),
                    send=lambda m: sent.append(m) or {}, deliveries=DeliveryCache())  # fmt: skip
    stores = CountingStores()
    out = handle_message(sent[0], configs, secret=SECRET, context=RunContext(store_factory=stores))
    assert out.body["results"][0]["changed_paths"] == 1 and stores.calls("put") == 1
