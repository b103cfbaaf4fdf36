"""GCP Parameter Manager store against the REST fake (real client library)."""

from __future__ import annotations

import json

import pytest
import yaml

from core.config import SecretManagerConfig, parse_config_text
from core.errors import NamingError, StoreError
from core.model import DesiredEntry, ListQuery
from core.naming.assign import render_name
from core.stores.base import ConflictError
from core.stores.gcp_parameter_manager import ParameterManagerStore, new_version_id
from core.stores.gcp_secret_manager import SecretManagerStore
from tests.gcp.conftest import PROJECT

OWNER = "cfg/orders/dev"
PROPS = "orders/deployment-configuration/profiles/dev/application.properties"
SECRETS = "orders/deployment-configuration/profiles/dev/application.secrets.env"


def cfg(
    name: str,
    key: str,
    value: str,
    fp: str = "fp",
    store: str = "gcp-parameter-manager",
    kind: str = "config",
    path: str = PROPS,
) -> DesiredEntry:
    return DesiredEntry(
        store=store,
        name=name,
        value=value,
        kind=kind,
        source=f"{path}:{key}",  # type: ignore[arg-type]
        owner=OWNER,
        fingerprint=fp,
        repo="git://h/r.git",
        commit="d" * 40,
        options={"service": "orders", "environment": "dev", "key": key, "prefix": "orders"},
    )


def gcp_config(parameter_manager: str) -> SecretManagerConfig:
    return parse_config_text(
        "apiVersion: secret-manager.microscaler.io/v1alpha1\nkind: SecretManagerConfig\nmetadata: {name: shop}\n"
        f"spec:\n  provider: {{type: gcp, gcp: {{projectId: {PROJECT}, parameterManager: {parameter_manager}}}}}\n"
        "  secrets: {environment: dev}\n  configs: {enabled: true, store: ParameterManager}\n"
    )[0]


def pm_name(config: SecretManagerConfig, key: str) -> str:
    """The name naming gives an `orders` (dev) config key in Parameter Manager."""
    return render_name(config, "gcp-parameter-manager", "config", "orders", "orders", "dev", key)


DOCUMENT = gcp_config("{mode: document}")


def test_document_mode_names_every_entry_after_the_document() -> None:
    """The document's id is a naming rule (the name planned is the name written)."""
    assert {pm_name(DOCUMENT, k) for k in ("db.url", "mode")} == {"orders-dev"}
    assert pm_name(gcp_config("{mode: perKey}"), "db.url") == "orders-dev-db_url"
    named = gcp_config("{mode: document, documentName: 'cfg-{prefix}-{environment}'}")
    named.configs.name_template = "{prefix}/{key}"  # document mode wins over a name template
    assert pm_name(named, "db.url") == "cfg-orders-dev"
    suffixed = gcp_config("{mode: document}")
    suffixed.secrets.suffix = "-v2"
    assert pm_name(suffixed, "db.url") == "orders-dev-v2"


def listing(st, names=()):  # type: ignore[no-untyped-def]
    return {e.name: e for e in st.list_entries(ListQuery(owners={OWNER}, names=set(names)))}


@pytest.fixture
def per_key(gcp_env):  # type: ignore[no-untyped-def]
    st = ParameterManagerStore(PROJECT)
    yield st
    st.close()


def test_per_key_create_update_delete(per_key: ParameterManagerStore) -> None:
    [e] = per_key.prepare([cfg("orders-dev-db_url", "db.url", "jdbc:pg://x")], {})
    per_key.put(e, None)
    got = listing(per_key)["orders-dev-db_url"]
    assert got.managed and got.owner == OWNER and got.fingerprint == "fp" and got.commit == "d" * 40
    assert got.handle["format"] == "UNFORMATTED"
    assert per_key.read_values([got]) == {"orders-dev-db_url": "jdbc:pg://x"}
    [e2] = per_key.prepare([cfg("orders-dev-db_url", "db.url", "jdbc:pg://y", fp="fp2")], {})
    per_key.put(e2, got)
    got2 = listing(per_key)["orders-dev-db_url"]
    assert got2.fingerprint == "fp2"
    assert per_key.read_values([got2]) == {"orders-dev-db_url": "jdbc:pg://y"}
    versions = per_key.client.list_parameter_versions(parent=per_key.parameter_path("orders-dev-db_url"))
    assert len(list(versions)) == 2
    per_key.delete(got2)
    assert listing(per_key) == {}


def test_version_ids_are_unique_and_valid() -> None:
    ids = {new_version_id("a" * 40) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) <= 63 and i[0] != "-" for i in ids)


def test_conflict_and_adopt(per_key: ParameterManagerStore) -> None:
    c = per_key.client
    p = c.create_parameter(
        parent=per_key.parent, parameter_id="handmade", parameter={"labels": {"team": "x"}}
    )
    c.create_parameter_version(
        parent=p.name, parameter_version_id="one", parameter_version={"payload": {"data": b"v"}}
    )
    [e] = per_key.prepare([cfg("handmade", "k", "v")], {})
    with pytest.raises(ConflictError):
        per_key.put(e, None)
    current = listing(per_key, names={"handmade"})["handmade"]
    assert not current.managed
    per_key.put(e, current)  # adopt: same value, so no new version
    assert listing(per_key)["handmade"].managed
    assert len(list(c.list_parameter_versions(parent=p.name))) == 1
    assert listing(per_key)["handmade"].handle["labels"]["team"] == "x"


def test_document_mode_yaml_with_secret_references(gcp_env) -> None:  # type: ignore[no-untyped-def]
    pm = ParameterManagerStore(PROJECT, mode="document", document_format="YAML", secret_references=True)
    sm = SecretManagerStore(PROJECT)
    secrets = [
        cfg(
            "orders-dev-DB_PASSWORD",
            "DB_PASSWORD",
            "pw-123",
            store="gcp-secret-manager",
            kind="secret",
            path=SECRETS,
        )
    ]
    configs = [
        cfg(pm_name(DOCUMENT, "db.url"), "db.url", "jdbc:pg://x"),
        cfg(pm_name(DOCUMENT, "mode"), "mode", "fast"),
    ]
    [doc] = pm.prepare(configs, {"gcp-parameter-manager": configs, "gcp-secret-manager": secrets})
    assert doc.name == "orders-dev" and doc.options["document"] is True
    body = yaml.safe_load(doc.value)
    assert body == {
        "db.url": "jdbc:pg://x",
        "mode": "fast",
        "DB_PASSWORD": f"__REF__(//secretmanager.googleapis.com/projects/{PROJECT}/secrets/orders-dev-DB_PASSWORD/versions/latest)",
    }
    assert "pw-123" not in doc.value
    sm.put(secrets[0], None)
    pm.put(doc, None)
    rendered = yaml.safe_load(pm.render("orders-dev"))
    assert rendered == {"db.url": "jdbc:pg://x", "mode": "fast", "DB_PASSWORD": "pw-123"}
    assert listing(pm)["orders-dev"].handle["format"] == "YAML"


def test_document_mode_json_and_format_change_recreates(gcp_env) -> None:  # type: ignore[no-untyped-def]
    configs = [cfg(pm_name(DOCUMENT, "a.b"), "a.b", 'quote"d')]
    pm_yaml = ParameterManagerStore(PROJECT, mode="document", document_format="YAML")
    [doc] = pm_yaml.prepare(configs, {})
    pm_yaml.put(doc, None)
    pm_json = ParameterManagerStore(PROJECT, mode="document", document_format="JSON")
    [doc2] = pm_json.prepare([cfg(pm_name(DOCUMENT, "a.b"), "a.b", 'quote"d')], {})
    doc2.fingerprint = "other"
    pm_json.put(doc2, listing(pm_json)["orders-dev"])
    now = listing(pm_json)["orders-dev"]
    assert now.handle["format"] == "JSON" and now.fingerprint == "other"
    assert json.loads(pm_json.render("orders-dev")) == {"a.b": 'quote"d'}


def test_document_mode_reference_limit_and_key_clash(gcp_env) -> None:  # type: ignore[no-untyped-def]
    pm = ParameterManagerStore(PROJECT, mode="document", secret_references=True)
    secrets = [
        cfg(f"s{i}", f"S{i}", "v", store="gcp-secret-manager", kind="secret", path=SECRETS) for i in range(16)
    ]
    with pytest.raises(NamingError, match="at most 15"):
        pm.prepare([cfg("c", "c", "v")], {"gcp-secret-manager": secrets})
    clash = [cfg("s", "mode", "v", store="gcp-secret-manager", kind="secret", path=SECRETS)]
    with pytest.raises(NamingError, match="both a config"):
        pm.prepare([cfg("c", "mode", "v")], {"gcp-secret-manager": clash})
    with pytest.raises(StoreError):
        ParameterManagerStore(PROJECT, mode="document", document_format="UNFORMATTED", secret_references=True)
    with pytest.raises(NamingError, match="one document per service"):  # naming names them alike
        pm.prepare([cfg("orders-dev", "a", "v"), cfg("orders-dev-b", "b", "v")], {})


def test_fake_enforces_size_format_and_immutability(per_key: ParameterManagerStore, pm_server) -> None:  # type: ignore[no-untyped-def]
    c = per_key.client
    from google.api_core import exceptions as gexc
    from google.cloud.parametermanager_v1 import ParameterFormat

    p = c.create_parameter(
        parent=per_key.parent, parameter_id="j", parameter={"format_": ParameterFormat.JSON}
    )
    with pytest.raises(gexc.BadRequest, match="not valid JSON"):
        c.create_parameter_version(
            parent=p.name, parameter_version_id="a", parameter_version={"payload": {"data": b"{"}}
        )
    with pytest.raises(gexc.BadRequest, match="at most"):
        c.create_parameter_version(
            parent=p.name,
            parameter_version_id="a",
            parameter_version={"payload": {"data": b'"' + b"x" * (1024 * 1024) + b'"'}},
        )
    v = c.create_parameter_version(
        parent=p.name, parameter_version_id="a", parameter_version={"payload": {"data": b"{}"}}
    )
    with pytest.raises(gexc.Conflict):
        c.create_parameter_version(
            parent=p.name, parameter_version_id="a", parameter_version={"payload": {"data": b"{}"}}
        )
    with pytest.raises(gexc.BadRequest, match="immutable"):
        c.update_parameter_version(
            parameter_version={"name": v.name, "payload": {"data": b"[]"}}, update_mask={"paths": ["payload"]}
        )
    with pytest.raises(gexc.BadRequest, match="immutable"):
        c.update_parameter(
            parameter={"name": p.name, "format_": ParameterFormat.YAML}, update_mask={"paths": ["format"]}
        )
    with pytest.raises(gexc.BadRequest):
        c.create_parameter(parent=per_key.parent, parameter_id="-bad", parameter={})
    with pytest.raises(gexc.BadRequest):
        c.create_parameter(parent=per_key.parent, parameter_id="x" * 64, parameter={})
    with pytest.raises(gexc.BadRequest, match="versions"):
        c.delete_parameter(name=p.name)


def test_value_over_limit_is_refused_by_naming_rules() -> None:
    from core.naming import rules_for

    rules = rules_for("gcp-parameter-manager")
    assert rules.check_value("x" * (1024 * 1024 + 1))
    assert rules.check_name("-x") and rules.check_name("x" * 64) and rules.check_name("a.b")
    assert rules.check_name("orders-dev-db_url") is None


def test_listing_follows_pages_and_counts_them(per_key: ParameterManagerStore) -> None:
    for i in range(5):
        [e] = per_key.prepare([cfg(f"orders-dev-k{i}", f"k{i}", "v")], {})
        per_key.put(e, None)
    per_key.list_page_size = 2
    per_key.calls.clear()
    assert len(listing(per_key)) == 5
    assert per_key.calls == {"list_parameters": 3}
