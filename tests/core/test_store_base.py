"""The template-method store base: one error mapper per cloud, sentinel categories instead of
matching exception text, and one retry layer (the SDK's, or apply's where the SDK has none)."""

from __future__ import annotations

from typing import Any

import pytest

import core.apply
from core.errors import StoreError
from core.model import DesiredEntry, ListQuery, StoredEntry
from core.plan import StorePlan
from core.report import Change, Report
from core.stores import _aws, _azure, _gcp
from core.stores.base import AuthError, ConflictError, NotFoundError, Store


class ScriptedStore(Store):
    """A store whose SDK "raises" what the test says; counts the attempts."""

    kind = "local-secrets"

    def __init__(self, error: Exception | None = None, *, sdk_retries: bool = False) -> None:
        self.error = error
        self.sdk_retries = sdk_retries  # type: ignore[misc]
        self.attempts = 0

    @classmethod
    def from_config(cls, config: Any) -> ScriptedStore:
        return cls()

    def _sdk(self) -> None:
        self.attempts += 1
        if self.error is not None:
            raise self.error

    def _list(self, query: ListQuery) -> list[StoredEntry]:
        self._call("List", None, self._sdk)
        return []

    def _put(self, entry: DesiredEntry, current: StoredEntry | None) -> None:
        self._call("Put", entry.name, self._sdk)

    def _delete(self, current: StoredEntry, commit: str | None) -> None:
        self._call("Delete", current.name, self._sdk)


def desired(name: str = "a/b") -> DesiredEntry:
    return DesiredEntry(store="local-secrets", name=name, value="v-secret-1", kind="secret",
                        source="f.env:K", owner="c/s/e")  # fmt: skip


def test_sdk_exceptions_are_mapped_and_counted() -> None:
    st = ScriptedStore(RuntimeError("boom with-secret-text"))
    with pytest.raises(StoreError) as err:
        st.put(desired(), None)
    assert "RuntimeError" in str(err.value) and "with-secret-text" not in str(err.value)
    assert st.calls == {"Put": 1}


def test_deleting_what_is_not_there_is_success_and_unmanaged_is_refused() -> None:
    st = ScriptedStore(NotFoundError("gone"))
    st.delete(StoredEntry("a/b", managed=True, owner="c/s/e"))
    assert st.attempts == 1
    with pytest.raises(StoreError, match="not ours"):
        st.delete(StoredEntry("a/b", managed=False))
    assert st.attempts == 1  # refused before any call


@pytest.mark.parametrize(("sdk_retries", "attempts"), [(True, 1), (False, core.apply.MAX_ATTEMPTS)])
def test_apply_retries_only_where_the_sdk_does_not(
    monkeypatch: pytest.MonkeyPatch, sdk_retries: bool, attempts: int
) -> None:
    monkeypatch.setattr(core.apply, "BACKOFF_BASE", 0.0)
    st = ScriptedStore(StoreError("throttled", transient=True), sdk_retries=sdk_retries)
    entry = desired()
    plan = StorePlan("local-secrets", changes=[Change("create", "local-secrets", entry.name, entry.source,
                                                      entry.owner)], desired={entry.name: entry})  # fmt: skip
    report = Report(commit=None, applied=True)
    core.apply.apply_store_plan(st, plan, report)
    assert st.attempts == attempts
    assert len(report.errors) == 1


def test_aws_mapper_categories() -> None:
    from botocore.exceptions import ClientError, NoCredentialsError

    def client_error(code: str, status: int) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "echo value-x"},
                            "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")  # fmt: skip

    m = _aws.store_error
    assert isinstance(m(client_error("ResourceNotFoundException", 400), store="s", op="o"), NotFoundError)
    assert isinstance(m(client_error("ParameterNotFound", 400), store="s", op="o"), NotFoundError)
    assert isinstance(m(client_error("ResourceExistsException", 400), store="s", op="o"), ConflictError)
    assert isinstance(m(client_error("UnrecognizedClientException", 400), store="s", op="o"), AuthError)
    throttled = m(client_error("ThrottlingException", 400), store="s", op="o")
    assert throttled.transient and type(throttled) is StoreError and throttled.code == "ThrottlingException"
    auth = m(NoCredentialsError(), store="aws-secrets-manager", op="ListSecrets")
    assert isinstance(auth, AuthError) and "no AWS credentials" in str(auth) and not auth.transient


def test_gcp_mapper_categories_and_retry_policy() -> None:
    from google.api_core import exceptions as gexc
    from google.auth.exceptions import DefaultCredentialsError

    assert isinstance(_gcp.store_error(gexc.NotFound("x"), "get_secret", "a"), NotFoundError)
    assert isinstance(_gcp.store_error(gexc.AlreadyExists("x"), "create_secret", "a"), ConflictError)
    assert isinstance(_gcp.store_error(gexc.PermissionDenied("x"), "create_secret", "a"), AuthError)
    assert _gcp.store_error(gexc.TooManyRequests("x"), "add_secret_version", "a").transient
    adc = _gcp.store_error(DefaultCredentialsError("long text"), "list_secrets", "p")
    assert isinstance(adc, AuthError) and "Application Default Credentials" in str(adc)
    retry = _gcp.retry_policy({_gcp.RETRY_TIMEOUT_ENV: "5"})
    assert retry._predicate(gexc.TooManyRequests("x")) and retry._predicate(gexc.ServiceUnavailable("x"))
    assert not retry._predicate(gexc.NotFound("x")) and not retry._predicate(gexc.PermissionDenied("x"))
    assert retry._timeout == 5.0


def test_azure_mapper_categories() -> None:
    from azure.core.exceptions import ClientAuthenticationError, ResourceExistsError, ResourceNotFoundError

    assert isinstance(_azure.store_error(ResourceNotFoundError("x"), op="o"), NotFoundError)
    assert isinstance(_azure.store_error(ResourceExistsError("x"), op="o"), ConflictError)
    no_token = _azure.store_error(ClientAuthenticationError("DefaultAzureCredential failed"), op="o")
    assert isinstance(no_token, AuthError) and "no Azure credentials" in str(no_token)
