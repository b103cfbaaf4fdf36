"""Issue #14 item 3: notifications to Slack, Teams and a signed generic webhook.

Real runs (a signed push through core.intake, a queued resync) against a git daemon and the
embedded store; the destinations are the loopback fake in tests/fakes/chat_webhooks.py,
which refuses what the services refuse. Every request body is scanned for the secret values
of the repository, the hand-edited value and the webhook URLs themselves.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from core.config import parse_config_text
from core.errors import ConfigError
from core.intake import DeliveryCache, handle_message, handle_webhook
from core.model import DesiredEntry, ListQuery
from core.results import notify
from core.stores import open_store
from tests.fakes.chat_webhooks import ChatWebhooks, verify_signature
from tests.intake.payloads import ZERO, github_push
from tests.support.leakcheck import LeakCheck

HOOK = "notify-hook-secret-5b1"
SIGNING = "notify-signing-key-a9d2e7"
SVC = "services/{}/deployment-configuration/profiles/dev/{}"
SECRET_VALUES = ["orders-db-pa55word-77", "orders-api-token-q8z", "edited-by-hand-4242"]
FILES = {
    SVC.format(
        "orders", "application.secrets.env"
    ): f"DB_PASSWORD={SECRET_VALUES[0]}\nAPI_TOKEN={SECRET_VALUES[1]}\n",
    SVC.format("orders", "application.properties"): "server.port=8080\n",
    # Line 3 defines a key twice: the payments service fails, orders still syncs.
    SVC.format("payments", "application.config.yaml"): "currency: EUR\nretries: 3\ncurrency: USD\n",
}
#: The secret part of each fake webhook URL (Slack's and Teams' URLs are credentials).
URL_TOKENS = {"slack": "T0001/B0001/slackurlsecret9", "teams": "wf/teamsurlsecret8"}


@pytest.fixture
def fake() -> Any:
    f = ChatWebhooks(signing_key=SIGNING).start()
    yield f
    f.stop()


def config_text(url: str, db: Path, destinations: str) -> str:
    return f"""apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata: {{name: shop-dev}}
spec:
  sourceRef: {{kind: Git, url: "{url}", branch: main}}
  provider: {{type: local, local: {{path: "{db}"}}}}
  secrets: {{environment: dev, basePath: services}}
  configs: {{enabled: true}}
  webhook: {{provider: github, secret: {HOOK}}}
  notifications:
    destinations:
{destinations}
"""


SLACK = "      - {type: slack, urlSecret: smf-slack-url}\n"
ALL = (
    "      - {type: slack, urlSecret: smf-slack-url, events: [errors, drift, changes]}\n"
    "      - {type: teams, urlSecret: smf-teams-url, events: [errors, drift, changes]}\n"
    "      - {type: webhook, urlSecret: smf-hook-url, signingSecret: smf-hook-key, events: [errors, drift, changes]}\n"
)


@pytest.fixture
def world(make_repo, fake, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SMF_LOCAL_STORE_KEY", base64.b64encode(b"n" * 32).decode())
    monkeypatch.setenv("GIT_CACHE_DIR", "")
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    repo = make_repo(FILES)
    db = tmp_path / "store.db"

    def configs(destinations: str = SLACK) -> list[Any]:
        cfgs = parse_config_text(config_text(repo.url, db, destinations), "smf.yaml")
        store = open_store("local-secrets", cfgs[0])
        for name, value in {
            "smf-slack-url": fake.url("/slack/services/" + URL_TOKENS["slack"]),
            "smf-teams-url": fake.url("/teams/" + URL_TOKENS["teams"]),
            "smf-hook-url": fake.url("/hook"),
            "smf-hook-key": SIGNING,
        }.items():
            if store.get_value(name) is None:
                store.set_unmanaged(name, value)
        store.close()
        return cfgs

    return repo, configs


def push(repo: Any, cfgs: list[Any]) -> tuple[int, dict[str, Any]]:
    headers, body = github_push(repo.url, before=ZERO, after=repo.sha, secret=HOOK)
    return handle_webhook(headers, body, cfgs, secret=HOOK, deliveries=DeliveryCache(), cache_dir="")


def edit_by_hand(cfgs: list[Any], name: str, value: str) -> None:
    store = open_store("local-secrets", cfgs[0])
    cur = {
        e.name: e
        for e in store.list_entries(ListQuery(owners=set(), names=set(), owner_prefixes={"shop-dev/"}))
    }[name]
    store.put(DesiredEntry(store="local-secrets", name=cur.name, value=value, kind="secret",
                           source=cur.source or "", owner=cur.owner or "", fingerprint=cur.fingerprint or "",
                           commit=cur.commit), cur)  # fmt: skip
    store.close()


def leaks() -> LeakCheck:
    return LeakCheck([*SECRET_VALUES, SIGNING, *URL_TOKENS.values()])


def test_errors_and_drift_reach_slack_as_one_message_per_run_names_only(world, fake) -> None:  # type: ignore[no-untyped-def]
    repo, configs = world
    cfgs = configs()
    status, body = push(repo, cfgs)
    assert status == 200 and body["status"] == "partial"
    [first] = fake.to("/slack/")  # one message for the run (the payments error)
    assert first.status == 200 and first.body.startswith(b"{")
    text = json.dumps(first.json())
    assert f"{SVC.format('payments', 'application.config.yaml')}:3" in text
    assert "orders/dev/DB_PASSWORD" not in text  # changes are not asked for by default

    edit_by_hand(cfgs, "orders/dev/DB_PASSWORD", SECRET_VALUES[2])
    out = handle_message({"kind": "resync", "drift": True}, cfgs, secret=HOOK)
    assert out.status == 200
    slack = fake.to("/slack/")
    assert len(slack) == 2  # one more: the resync, with its error and its drift together
    msg = slack[1].json()
    text = json.dumps(msg)
    assert "orders/dev/DB_PASSWORD" in text and "changed outside Git" in text
    assert f"{SVC.format('payments', 'application.config.yaml')}:3" in text
    assert msg["text"].startswith("secret-manager-functions resync failed")
    for r in fake.requests:
        leaks().scan(r.body, json.dumps(r.headers), where=f"request to {r.path}")


def test_teams_and_signed_webhook_payloads_are_accepted_and_verified(world, fake) -> None:  # type: ignore[no-untyped-def]
    repo, configs = world
    status, body = push(repo, configs(ALL))
    assert status == 200
    [slack], [teams], [hook] = fake.to("/slack/"), fake.to("/teams/"), fake.to("/hook")
    assert (slack.status, teams.status, hook.status) == (200, 202, 200)  # each service's shape
    card = teams.json()["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard" and any("orders/dev/API_TOKEN" in b["text"] for b in card["body"])
    doc = hook.json()
    assert doc["source"] == "secret-manager-functions" and doc["kind"] == "push"
    assert doc["outcome"] == "failed" and doc["events"] == ["changes", "errors"]
    [result] = doc["results"]
    assert result["configs"] == ["shop-dev"] and result["counts"]["create"] == 3
    assert sorted(c["name"] for c in result["changes"]) == [
        "orders/dev/API_TOKEN", "orders/dev/DB_PASSWORD", "orders/dev/server.port"]  # fmt: skip
    assert [(e["path"], e["line"]) for e in result["errors"]] == [
        (SVC.format("payments", "application.config.yaml"), 3)
    ]
    assert hook.headers["x-smf-delivery"] == doc["id"]
    assert verify_signature(SIGNING, hook.body, hook.headers["x-smf-signature"])
    assert not verify_signature(SIGNING, hook.body.replace(b"failed", b"ok"), hook.headers["x-smf-signature"])
    assert not verify_signature("another-key", hook.body, hook.headers["x-smf-signature"])
    for r in fake.requests:
        leaks().scan(r.body, json.dumps(r.headers), where=f"request to {r.path}")


def test_nothing_is_sent_when_the_outcomes_do_not_match(world, fake, commit_files) -> None:  # type: ignore[no-untyped-def]
    repo, configs = world
    sha = commit_files(repo, {SVC.format("payments", "application.config.yaml"): "payments:\n  retries: 3\n"})
    cfgs = configs("      - {type: slack, urlSecret: smf-slack-url, events: [errors]}\n")
    headers, body = github_push(repo.url, before=repo.sha, after=sha, secret=HOOK)
    status, answer = handle_webhook(
        headers, body, cfgs, secret=HOOK, deliveries=DeliveryCache(), cache_dir=""
    )
    assert status == 200 and answer["status"] == "ok"
    assert fake.requests == []


@pytest.mark.parametrize("mode", ["fail", "hang"])
def test_a_failing_or_hanging_receiver_never_fails_the_sync(world, fake, monkeypatch, caplog, mode) -> None:  # type: ignore[no-untyped-def]
    repo, configs = world
    fake.mode = mode
    monkeypatch.setenv("SMF_NOTIFY_TIMEOUT", "0.3")
    caplog.set_level(logging.INFO, logger="smf.notify")
    status, body = push(repo, configs(ALL))
    assert status == 200 and body["status"] == "partial"  # the sync's own answer, untouched
    failed = [r.notification for r in caplog.records if r.getMessage() == "notification failed"]
    assert sorted(f["destination"] for f in failed) == ["slack", "teams", "webhook"]
    if mode == "fail":
        assert {f["status"] for f in failed} == {500}
        assert len(fake.requests) == 6  # each destination: the request and one retry
    else:
        assert {f["status"] for f in failed} == {None} and all(f["error"] for f in failed)
    leaks().scan(caplog.text, json.dumps(failed), where="logs")
    assert "127.0.0.1" not in json.dumps(failed)  # the URL (a credential) is never logged


def test_a_missing_url_secret_is_logged_by_field_and_the_sync_goes_on(world, fake, caplog) -> None:  # type: ignore[no-untyped-def]
    repo, configs = world
    caplog.set_level(logging.INFO, logger="smf.notify")
    status, _ = push(repo, configs("      - {type: slack, urlSecret: no-such-secret}\n"))
    assert status == 200 and fake.requests == []
    [rec] = [r.notification for r in caplog.records if r.getMessage() == "notification failed"]
    assert "spec.notifications.destinations[0].urlSecret" in rec["error"]


# --- config ---------------------------------------------------------------------------
DOC = """apiVersion: secret-manager.microscaler.io/v1alpha1
kind: SecretManagerConfig
metadata: {name: a}
spec:
  provider: {type: local, local: {path: /tmp/x.db}}
  secrets: {environment: dev}
  notifications:
    destinations:
"""


@pytest.mark.parametrize(
    ("item", "field", "line"),
    [
        ("      - {type: slack}\n", "spec.notifications.destinations.0.urlSecret", 9),
        ("      - {type: email, urlSecret: s}\n", "spec.notifications.destinations.0.type", 9),
        ("      - {type: webhook, urlSecret: s}\n", "spec.notifications.destinations.0.signingSecret", 9),
        (
            "      - {type: slack, urlSecret: s, signingSecret: k}\n",
            "spec.notifications.destinations.0.signingSecret",
            9,
        ),
        (
            "      - {type: slack, urlSecret: s, events: [errors, everything]}\n",
            "spec.notifications.destinations.0.events.1",
            9,
        ),
        (
            "      - {type: teams, urlSecret: s, events: [drift, drift]}\n",
            "spec.notifications.destinations.0.events",
            9,
        ),
        (
            "      - type: teams\n        urlSecret: s\n        url: https://x\n",
            "spec.notifications.destinations.0.url",
            11,
        ),
    ],
)
def test_bad_destinations_are_refused_at_load_by_file_line_and_field(
    item: str, field: str, line: int
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_text(DOC + item, "smf.yaml")
    assert (info.value.path, info.value.field, info.value.line) == ("smf.yaml", field, line)


def test_destinations_load_with_defaults() -> None:
    [cfg] = parse_config_text(DOC + SLACK + ALL.splitlines(keepends=True)[2], "smf.yaml")
    slack, hook = cfg.notifications
    assert (slack.type, slack.url_secret, slack.events) == ("slack", "smf-slack-url", ("errors", "drift"))
    assert (hook.signing_secret, hook.events, hook.field) == (
        "smf-hook-key", ("errors", "drift", "changes"), "spec.notifications.destinations[1]")  # fmt: skip


CONTROLLER_DOC = """apiVersion: secret-management.microscaler.io/v1beta1
kind: SecretManagerConfig
metadata: {name: c}
spec:
  sourceRef: {kind: GitRepository, name: r, namespace: flux-system}
  provider: {gcp: {projectId: p1}}
  secrets: {environment: dev}
  notifications:
    fluxcd: {providerRef: {name: slack}}
    argocd: {subscriptions: [{channel: '#a', service: slack, trigger: drift}]}
    destinations:
      - {type: slack, urlSecret: smf-slack-url, events: [drift]}
"""


def test_controller_blocks_warn_with_what_to_write_and_destinations_work_beside_them() -> None:
    [cfg] = parse_config_text(CONTROLLER_DOC, "c.yaml")
    assert [d.type for d in cfg.notifications] == ["slack"]
    warned = [w for w in cfg.warnings if "spec.notifications has no effect" in w]
    assert len(warned) == 2 and all("spec.notifications.destinations" in w for w in warned)
    with pytest.raises(ConfigError) as info:  # the controller's blocks stay closed
        parse_config_text(CONTROLLER_DOC.replace("{name: slack}", "{name: slack, kind: x}"), "c.yaml")
    assert info.value.field == "spec.notifications.fluxcd.providerRef.kind"


# --- the wire formats -----------------------------------------------------------------
def test_signature_is_hmac_sha256_over_timestamp_dot_body_and_old_ones_are_refused() -> None:
    body = b'{"a":1}'
    header = notify.sign("k3y", body, 1_700_000_000)
    assert header == "t=1700000000,v1=" + __import__("hmac").new(
        b"k3y", b"1700000000." + body, "sha256").hexdigest()  # fmt: skip
    assert notify.verify("k3y", body, header, now=1_700_000_100)
    assert not notify.verify("k3y", body, header, now=1_700_000_000 + 301)


def test_long_runs_are_capped_and_stay_within_slack_limits() -> None:
    changes = [
        {"action": "create", "store": "local-secrets", "name": f"svc/dev/K{i}", "source": "f:K"}
        for i in range(500)
    ]
    errors = [{"message": "broken", "path": f"s{i}/application.secrets.env", "line": 1} for i in range(300)]
    body = {"status": "error", "results": [{"configs": ["c"], "report": {"outcome": "failed", "changes": changes,
                                                                        "summary": {"create": 500}, "errors": errors}}]}  # fmt: skip
    d = notify.digest(body, "push").only({"c"}, ["errors", "changes"])
    assert d is not None
    from tests.fakes.chat_webhooks import slack_check, teams_check

    assert slack_check(notify.slack_payload(d))[0] == 200
    assert teams_check(notify.teams_payload(d))[0] == 202
    text = json.dumps(notify.slack_payload(d))
    assert "and 280 more" in text and "and 480 more" in text
