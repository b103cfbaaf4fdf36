"""Issue #14 item 4: log records that find the problem, on every cloud.

The three handlers are driven in-process as in tests/conformance (a Function URL event, a
functions_framework test client, a `func.HttpRequest`), syncing a push with one broken file
into the embedded store. Each must write one ERROR record per error naming the config, the
file and the line, and a run record at ERROR, rendered the way that cloud reads severity:
Powertools' ``level`` (AWS), Cloud Logging's ``severity`` in the stdout JSON (GCP), the Python
level the Functions worker maps to Application Insights' severityLevel (Azure).
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import uuid
from typing import Any

import pytest

from core import intake
from core.intake import Outcome
from core.results import logs
from tests.conformance.test_handlers_agree import Aws, Azure, Gcp, config_yaml
from tests.intake.payloads import ZERO, github_push
from tests.support.leakcheck import LeakCheck

SECRET = "conformance-hook-secret-1"  # the conformance drivers' webhook secret
SVC = "services/{}/deployment-configuration/profiles/dev/{}"
VALUE = "logs-secret-value-3k9"
BROKEN = SVC.format("payments", "application.config.yaml")
FILES = {
    SVC.format("orders", "application.secrets.env"): f"DB_PASSWORD={VALUE}\n",
    BROKEN: "currency: EUR\nretries: 3\ncurrency: USD\n",  # line 3: a key defined twice
}


def _rendered(driver: Any, record: logging.LogRecord) -> dict[str, Any]:
    """A record as the cloud's log pipeline receives it."""
    if driver.name == "aws":
        return json.loads(driver.mod.logger.registered_handler.formatter.format(record))
    if driver.name == "gcp":
        return json.loads(sys.modules["main"].CloudLoggingFormatter().format(record))
    doc = json.loads(record.getMessage())  # Azure: the message is the JSON line
    return {**doc, "level": record.levelname}


SEVERITY_KEY = {"aws": "level", "gcp": "severity", "azure": "level"}


@pytest.mark.parametrize("cloud", [Aws, Gcp, Azure], ids=["aws", "gcp", "azure"])
def test_each_error_is_an_error_record_naming_config_file_and_line(
    cloud, make_repo, monkeypatch, tmp_path, caplog
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("SMF_LOCAL_STORE_KEY", base64.b64encode(b"l" * 32).decode())
    monkeypatch.setenv("GIT_CACHE_DIR", "")
    monkeypatch.setenv("SMF_FINGERPRINT_KEY", "logs-fp-key")
    monkeypatch.setenv("SMF_WEBHOOK_MODE", "inline")
    for var in ("SMF_CONFIG_YAML", "SMF_CONFIG_PATH", "SMF_HANDOFF_TOPIC", "SMF_ENV_SECRET", "SMF_QUEUE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(intake, "_DELIVERIES", intake.DeliveryCache())
    repo = make_repo(FILES)
    monkeypatch.setenv("SMF_CONFIG", config_yaml(repo.url, tmp_path / "store.db"))
    driver = cloud(monkeypatch)
    caplog.set_level(logging.INFO)
    headers, body = github_push(
        repo.url, before=ZERO, after=repo.sha, secret=SECRET, delivery=uuid.uuid4().hex
    )
    answer = driver.post(headers, body)
    assert answer.status == 200 and answer.body["status"] == "partial"
    lines = [
        (_rendered(driver, r), r)
        for r in caplog.records
        if getattr(r, "smf", None) or '"smf"' in r.getMessage()
    ]
    key = SEVERITY_KEY[driver.name]
    [(err, _)] = [(d, r) for d, r in lines if d.get("smf") == "error"]
    assert err[key] == "ERROR"
    assert (err["config"], err["path"], err["line"], err["kind"]) == ("shop-dev", BROKEN, 3, "parse")
    assert f"{BROKEN}:3" in (err.get("text") or err.get("message"))
    [(run, _)] = [(d, r) for d, r in lines if d.get("smf") == "run"]
    assert run[key] == "ERROR" and run["outcome"] == "failed" and run["error_count"] == 1
    assert run["configs"] == ["shop-dev"] and run["totals"]["create"] == 1
    if driver.name != "aws":  # per-store records feed GCP's and Azure's metrics (AWS has EMF)
        stores = {d["store"]: d for d, _ in lines if d.get("smf") == "store"}
        assert stores["local-secrets"]["create"] == 1 and stores["local-secrets"]["outcome"] == "ok"
    LeakCheck([VALUE]).scan(caplog.text, json.dumps([d for d, _ in lines]), where=f"{driver.name} logs")


def _outcome(body: dict[str, Any], kind: str = "resync", status: int = 200) -> Outcome:
    return Outcome(status, body, kind)


def test_each_drifted_entry_is_a_warning_and_a_clean_run_is_info() -> None:
    changes = [{"action": "drift", "store": "local-configs", "name": "orders/dev/replicas", "source": "f.yaml:replicas"},
               {"action": "unchanged", "store": "local-configs", "name": "orders/dev/x", "source": "f.yaml:x"}]  # fmt: skip
    body = {"status": "ok", "results": [{"configs": ["shop-dev"], "status": "applied", "commit": "c1",
                                         "report": {"outcome": "ok", "changes": changes, "errors": [],
                                                    "summary": {"drift": 1, "unchanged": 1}}}]}  # fmt: skip
    recs = logs.records(_outcome(body), "resync finished")
    assert [(r.fields["smf"], r.level) for r in recs] == [("run", logging.INFO), ("drift", logging.WARNING)]
    drift = recs[1].fields
    assert (drift["config"], drift["store"], drift["entry"], drift["source"]) == (
        "shop-dev", "local-configs", "orders/dev/replicas", "f.yaml:replicas")  # fmt: skip
    assert "orders/dev/replicas" in recs[1].message


def test_partial_runs_and_failed_fetches_are_errors_refused_deliveries_warnings() -> None:
    conflict = {"outcome": "partial", "changes": [{"action": "conflict", "store": "s", "name": "n", "source": "f:k"}],
                "errors": [], "summary": {"conflict": 1}}  # fmt: skip
    assert (
        logs.records(_outcome({"results": [{"configs": ["a"], "report": conflict}]}), "m")[0].level
        == logging.ERROR
    )
    fetch = {
        "results": [
            {
                "configs": ["a"],
                "status": "error",
                "errors": [{"message": "cannot fetch", "field": "spec.sourceRef.url"}],
            }
        ]
    }
    recs = logs.records(_outcome(fetch, "push", 502), "m")
    assert [(r.fields["smf"], r.level) for r in recs] == [("run", logging.ERROR), ("error", logging.ERROR)]
    assert recs[1].message == "sync error: spec.sourceRef.url: cannot fetch"
    rejected = logs.records(_outcome({"status": "rejected", "reason": "bad signature"}, "rejected", 403), "m")
    assert [(r.fields["outcome"], r.level) for r in rejected] == [("rejected", logging.WARNING)]


def test_error_records_are_capped_per_run_and_every_field_fits_a_log_record() -> None:
    errors = [
        {"message": "broken", "path": f"s{i}/a.env", "line": 2, "config": "a", "kind": "parse"}
        for i in range(250)
    ]
    body = {
        "results": [
            {
                "configs": ["a"],
                "report": {"outcome": "failed", "changes": [], "errors": errors, "summary": {}},
            }
        ]
    }
    recs = logs.records(_outcome(body), "m", per_store=True)
    assert sum(1 for r in recs if r.fields["smf"] == "error") == logs.MAX_LINES + 1
    assert recs[logs.MAX_LINES + 1].fields == {"smf": "error", "omitted": 150}
    logger = logging.getLogger("smf.test.logs")
    for r in recs:  # a reserved LogRecord attribute in `extra` would raise KeyError here
        logger.makeRecord(logger.name, r.level, __file__, 1, r.message, (), None, extra=r.fields)


# --- the infra counts what the records say ------------------------------------------------
def test_gcp_log_metrics_and_azure_alert_read_fields_the_records_have() -> None:
    """The metric filters, label extractors and the KQL name `smf` kinds and fields the
    records of a failed run really carry (a renamed field would silently count nothing)."""
    import re
    from pathlib import Path

    from tests.support.terraform import load_terraform

    root = Path(__file__).resolve().parents[2] / "infra"
    errors = [
        {"message": "broken", "path": "a.env", "line": 2, "config": "a", "kind": "parse", "store": "s1"}
    ]
    body = {
        "results": [
            {
                "configs": ["a"],
                "report": {"outcome": "failed", "changes": [], "errors": errors, "summary": {}},
            }
        ]
    }
    fields = {r.fields["smf"]: r.fields for r in logs.records(_outcome(body, "push"), "m", per_store=True)}
    gcp = load_terraform(root / "gcp")["resource"]
    metrics = gcp["google_logging_metric"]
    assert set(metrics) == {"runs", "store_results", "errors"}
    for metric in metrics.values():
        [kind] = re.findall(r'jsonPayload\.smf=\\?"(\w+)\\?"', metric["filter"])
        for extractor in metric["label_extractors"].values():
            [name] = re.findall(r"EXTRACT\(jsonPayload\.(\w+)\)", extractor)
            assert name in fields[kind], (kind, name)
    policy = gcp["google_monitoring_alert_policy"]["sync_errors"]
    assert "google_logging_metric.runs.name" in json.dumps(policy) and "failed|partial" in json.dumps(policy)
    assert fields["run"]["outcome"] == "failed"
    azure = load_terraform(root / "azure")["resource"]
    query = azure["azurerm_monitor_scheduled_query_rules_alert_v2"]["sync_errors"]["criteria"]
    query = query[0] if isinstance(query, list) else query
    kql = query["query"]
    assert 'd.smf) == "store"' in kql and 'd.outcome) == "failed"' in kql
    assert {"store", "error", "outcome"} <= set(fields["store"]) and fields["store"]["outcome"] == "failed"
    assert fields["store"]["error"] == 1 and "toint(d.error)" in kql
