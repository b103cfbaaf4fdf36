"""The fakes themselves: the wire behaviour the stores rely on, checked with raw HTTP requests
built from the services' documentation (not with our store code)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import ssl
import urllib.error
import urllib.request
from email.utils import format_datetime
from urllib.parse import quote

import pytest
from azure.appconfiguration import AzureAppConfigurationClient, ConfigurationSetting

from tests.fakes.azure_app_configuration import FakeAppConfiguration
from tests.fakes.azure_key_vault import FakeKeyVault

API = "2023-11-01"


def signed(store: FakeAppConfiguration, method: str, path_and_query: str, body: bytes = b"", *,
           date: dt.datetime | None = None, sign_body: bytes | None = None, host: str | None = None,
           signed_headers: str = "x-ms-date;host;x-ms-content-sha256",
           sign_path: str | None = None) -> tuple[int, dict, bytes]:  # fmt: skip
    """One request signed as the App Configuration HMAC documentation describes."""
    host_value = store.url.split("//", 1)[1]
    when = format_datetime(date or dt.datetime.now(dt.UTC), usegmt=True)
    digest = base64.b64encode(hashlib.sha256(body if sign_body is None else sign_body).digest()).decode()
    to_sign = f"{method}\n{sign_path or path_and_query}\n{when};{host or host_value};{digest}"
    sig = base64.b64encode(
        hmac.new(base64.b64decode(store.secret), to_sign.encode(), hashlib.sha256).digest()
    )
    req = urllib.request.Request(store.url + path_and_query, data=body or None, method=method, headers={
        "x-ms-date": when, "x-ms-content-sha256": digest, "Content-Type": "application/json",
        "Authorization": f"HMAC-SHA256 Credential={store.credential_id}&SignedHeaders={signed_headers}"
                         f"&Signature={sig.decode()}",
    })  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_hmac_signature_is_verified(app_config: FakeAppConfiguration) -> None:
    body = json.dumps({"value": "v1"}).encode()
    path = f"/kv/app%3Aa?label=dev&api-version={API}"
    assert signed(app_config, "PUT", path, body)[0] == 200
    # Body changed after signing, stale date, wrong host, other signed headers: all refused.
    assert signed(app_config, "PUT", path, body, sign_body=b"{}")[0] == 401
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    assert signed(app_config, "PUT", path, body, date=old)[0] == 401
    assert signed(app_config, "PUT", path, body, host="evil.example")[0] == 401
    status, headers, _ = signed(app_config, "PUT", path, body, signed_headers="x-ms-date;host")
    assert status == 401 and headers["WWW-Authenticate"].startswith("HMAC-SHA256")
    assert app_config.rejected == [
        "x-ms-content-sha256 does not match the body",
        "x-ms-date is more than 15 minutes off",
        "Invalid Signature",
        "SignedHeaders must be x-ms-date;host;x-ms-content-sha256",
    ]
    # The path and query are signed: a signature made for one key does not work on another.
    other = f"/kv/app%3Ab?label=dev&api-version={API}"
    assert signed(app_config, "PUT", other, body, sign_path=path)[0] == 401
    assert signed(app_config, "PUT", other, body)[0] == 200


def test_etags_and_preconditions(app_config: FakeAppConfiguration) -> None:
    path = f"/kv/app%3Ae?label=dev&api-version={API}"
    status, headers, doc = signed(app_config, "PUT", path, json.dumps({"value": "1"}).encode())
    etag = json.loads(doc)["etag"]
    assert status == 200 and headers["ETag"] == f'"{etag}"'
    req = urllib.request.Request(app_config.url + path)  # unsigned requests never pass
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 401
    client = AzureAppConfigurationClient.from_connection_string(app_config.connection_string)
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

    with pytest.raises(ResourceExistsError):  # If-None-Match: * on an existing key → 412
        client.add_configuration_setting(ConfigurationSetting(key="app:e", label="dev", value="x"))
    with pytest.raises(ResourceModifiedError):  # If-Match with a stale etag → 412
        client.set_configuration_setting(ConfigurationSetting(key="app:e", label="dev", value="x"),
                                         match_condition=MatchConditions.IfNotModified, etag="stale")  # fmt: skip
    got = client.get_configuration_setting(
        "app:e", "dev", etag=etag, match_condition=MatchConditions.IfModified
    )
    assert got is None  # If-None-Match on GET: 304 Not Modified


def test_filters_labels_and_paging(app_config: FakeAppConfiguration) -> None:
    for key, label in [("a:1", "dev"), ("a:2", "prod"), ("a:3", None), ("b:1", "dev"), ("a,b", "dev"),
                       ("ab", "dev")]:  # fmt: skip
        app_config.seed(key, "v", label)
    client = AzureAppConfigurationClient.from_connection_string(app_config.connection_string)

    def keys(**kw) -> list[tuple[str, str | None]]:  # type: ignore[no-untyped-def]
        return [(s.key, s.label) for s in client.list_configuration_settings(**kw)]

    assert keys(key_filter="a:*", label_filter="dev") == [("a:1", "dev")]
    assert keys(key_filter="a:*", label_filter="\0") == [("a:3", None)]
    assert keys(key_filter="a:*") == [("a:1", "dev"), ("a:2", "prod"), ("a:3", None)]
    assert keys(key_filter="a:1,b:1") == [("a:1", "dev"), ("b:1", "dev")]
    assert keys(key_filter="a\\,b") == [("a,b", "dev")]  # an escaped reserved character
    for i in range(205):
        app_config.seed(f"p:{i:03d}", "v", "dev")
    app_config.calls.clear()
    pages = list(client.list_configuration_settings(key_filter="p:*", label_filter="dev").by_page())
    assert [len(list(p)) for p in pages] == [100, 100, 5]
    # Both forms of the next link are given, as the service does.
    status, headers, doc = signed(
        app_config, "GET", f"/kv?key={quote('p:*', safe='')}&label=dev&api-version={API}"
    )
    assert status == 200 and headers["Link"].endswith('>; rel="next"')
    assert json.loads(doc)["@nextLink"] == headers["Link"][1 : headers["Link"].index(">")]


def test_size_limit_and_invalid_keys(app_config: FakeAppConfiguration) -> None:
    ok = json.dumps({"value": "x" * (10_000 - len("app:s") - len("dev"))}).encode()
    assert signed(app_config, "PUT", f"/kv/app%3As?label=dev&api-version={API}", ok)[0] == 200
    big = json.dumps({"value": "x" * 10_000}).encode()
    assert signed(app_config, "PUT", f"/kv/app%3As?label=dev&api-version={API}", big)[0] == 413
    assert signed(app_config, "PUT", f"/kv/..?api-version={API}", b'{"value":"x"}')[0] == 400


def _kv_request(vault: FakeKeyVault, method: str, path: str, body: dict | None = None,
                token: str | None = None) -> tuple[int, dict, dict]:  # fmt: skip
    ctx = ssl.create_default_context(cafile=str(vault.cert_path))
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(vault.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
            raw = resp.read()
            return resp.status, dict(resp.headers), json.loads(raw) if raw else {}
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, dict(err.headers), json.loads(raw) if raw else {}


def test_key_vault_challenge_names_and_limits(key_vault: FakeKeyVault) -> None:
    v = "?api-version=7.4"
    status, headers, _ = _kv_request(key_vault, "PUT", f"/secrets/a{v}")  # the empty-body probe
    assert status == 401
    assert headers["WWW-Authenticate"] == (
        'Bearer authorization="https://login.microsoftonline.com/tenant", resource="https://vault.azure.net"'
    )
    t = key_vault.token
    assert _kv_request(key_vault, "PUT", f"/secrets/a{v}", {"value": "x"}, token="other")[0] == 401
    assert _kv_request(key_vault, "PUT", f"/secrets/bad_name{v}", {"value": "x"}, token=t)[0] == 400
    assert _kv_request(key_vault, "PUT", f"/secrets/{'a' * 128}{v}", {"value": "x"}, token=t)[0] == 400
    assert _kv_request(key_vault, "PUT", f"/secrets/Big{v}", {"value": "x" * 25601}, token=t)[0] == 400
    too_many = {f"t{i}": "v" for i in range(16)}
    assert (
        _kv_request(key_vault, "PUT", f"/secrets/Tags{v}", {"value": "x", "tags": too_many}, token=t)[0]
        == 400
    )
    status, _, doc = _kv_request(key_vault, "PUT", f"/secrets/Mixed-Case{v}", {"value": "1", "contentType": "c"},
                                 token=t)  # fmt: skip
    assert status == 200 and doc["id"].startswith(f"{key_vault.url}/secrets/Mixed-Case/")
    status, _, doc = _kv_request(key_vault, "GET", f"/secrets/MIXED-case{v}", token=t)
    assert status == 200 and doc["value"] == "1" and doc["contentType"] == "c"
    assert _kv_request(key_vault, "GET", "/secrets?api-version=7.4&maxresults=26", token=t)[0] == 400
    # Soft delete: the name is blocked until recovered or purged.
    assert _kv_request(key_vault, "DELETE", f"/secrets/mixed-case{v}", token=t)[2]["recoveryId"].endswith(
        "/deletedsecrets/Mixed-Case"
    )
    status, _, doc = _kv_request(key_vault, "PUT", f"/secrets/mixed-case{v}", {"value": "2"}, token=t)
    assert status == 409 and doc["error"]["innererror"]["code"] == "ObjectIsDeletedButRecoverable"
    assert _kv_request(key_vault, "POST", f"/deletedsecrets/mixed-case/recover{v}", token=t)[0] == 200
    assert _kv_request(key_vault, "GET", f"/secrets/mixed-case/versions{v}", token=t)[2]["value"][0]["id"]
    assert _kv_request(key_vault, "DELETE", f"/secrets/mixed-case{v}", token=t)[0] == 200
    assert _kv_request(key_vault, "DELETE", f"/deletedsecrets/mixed-case{v}", token=t)[0] == 204
    assert _kv_request(key_vault, "PUT", f"/secrets/mixed-case{v}", {"value": "3"}, token=t)[0] == 200
