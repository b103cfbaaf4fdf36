"""TableRunState (Azure Table Storage) against Azurite, the real emulator: the run-state
rules over ETag-conditional writes, exactly one finisher under racing threads, a lost race on
a stale ETag, a record split across properties, and errors that name the field, never the
record. Where Microsoft's reference leaves an answer open (a lost race as a bare 412 or a 404
on update), a stub client gives each plausible answer."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError

from core import runstate
from core.runstate import RunStateError, TableRunState
from tests.support.runstate_race import racing_finishes


@pytest.fixture
def state(run_table: tuple[str, str]) -> TableRunState:
    name, conn = run_table
    return TableRunState(name, connection=conn)


def test_start_pending_handoff_finish(state: TableRunState) -> None:
    assert state.start("r1", ["0", "1"], {"kind": "resync"}) == ["0", "1"]
    assert state.start("r1", ["0", "1"], {"kind": "resync"}) == ["0", "1"]  # redelivered dispatcher
    assert state.pending("r1", "0") and not state.pending("r1", "9") and not state.pending("nope", "0")
    assert state.handoff("r1", "0", "0.1")
    assert state.finish("r1", "0", {"summary": {"create": 2}, "services": 1}) is None
    assert state.start("r1", ["0", "1"], {}) == ["1"]  # what is still pending is re-sent
    assert state.finish("r1", "0", {"summary": {"create": 2}}) is None  # a repeat counts nothing
    assert state.finish("r1", "1", {"summary": {"create": 3}, "services": 1}) is None
    final = state.finish("r1", "0.1", {"summary": {"update": 1}, "outcome": "partial", "services": 1})
    assert final is not None and final["finished"] and final["kind"] == "resync"
    assert final["summary"] == {"create": 5, "update": 1} and final["outcome"] == "partial"
    assert final["done"] == 3 and final["services"] == 3 and final["items"] == 3
    assert state.finish("r1", "0.1", {}) is None and state.get("r1")["finished"]
    entity = state.client.get_entity("r1", "run")
    assert entity["expires"].year >= 2026 and entity["parts"] == 1  # a DateTime, for cleanup queries


def test_exactly_one_finisher_under_racing_threads(state: TableRunState) -> None:
    items = [str(i) for i in range(16)]
    finals = racing_finishes(lambda: state, "race", items, {"summary": {"create": 1}})
    assert len(finals) == 1
    assert finals[0]["summary"] == {"create": 16} and finals[0]["done"] == 16 and not finals[0]["pending"]


def test_a_stale_etag_loses_the_race(state: TableRunState) -> None:
    state.start("r2", ["0"], {})
    doc, etag = state._read("r2")
    assert state._write("r2", {**doc, "note": "first"}, etag)
    assert not state._write("r2", {**doc, "note": "second"}, etag)  # the ETag changed: 412
    assert not state._write("r2", doc, None)  # create-only when it exists: 409
    assert state.get("r2")["note"] == "first"


def test_a_large_record_is_split_and_an_oversized_one_refused(state: TableRunState) -> None:
    items = [f"item-{i:06d}" for i in range(12_000)]  # ~170,000 characters of JSON: 6 properties
    assert len(state.start("big", items, {})) == len(items)
    entity = state.client.get_entity("big", "run")
    assert entity["parts"] > 1
    assert all(len(entity[f"doc{i}"]) <= state.PART_CHARS for i in range(1, entity["parts"]))
    assert state.pending("big", "item-011999")
    assert state.finish("big", "item-000000", {}) is None and not state.pending("big", "item-000000")
    secret = "do-not-echo-" + "x" * 20
    with pytest.raises(RunStateError) as err:
        state.start("huge", [secret + str(i) for i in range(20_000)], {})
    assert err.value.field == "SMF_RUNSTATE_TABLE" and "exceeds" in str(err.value)
    assert secret not in str(err.value) and state.get("huge") is None


def test_errors_name_the_field_never_the_record(run_table: tuple[str, str]) -> None:
    _, conn = run_table
    missing = TableRunState("nosuchtable", connection=conn)
    with pytest.raises(RunStateError) as err:  # TableNotFound is not "no record yet"
        missing.start("r3", ["password-hunter2"], {"event": {"token": "hunter2"}})
    assert err.value.field == "SMF_RUNSTATE_TABLE" and "hunter2" not in str(err.value)
    assert "TableNotFound" in str(err.value)
    with pytest.raises(RunStateError) as err:
        TableRunState("http://acct.table.core.windows.net/runs").get("r")  # not https
    assert err.value.field == "SMF_RUNSTATE_TABLE"
    with pytest.raises(RunStateError) as err:
        TableRunState("runs", connection="AccountKey=hunter2;Nonsense").get("r")
    assert err.value.field == "SMF_RUNSTATE_TABLE" and "hunter2" not in str(err.value)
    for bad in ("a/b", "a#b", "", "x" * 513, "tab\tbed"):
        with pytest.raises(RunStateError) as err:
            TableRunState("runs", connection=conn).get(bad)
        assert err.value.field == "run"


class _Stub:
    """A TableClient answering every call with `answer` (an exception to raise)."""

    def __init__(self, answer: BaseException) -> None:
        self.answer = answer
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, op: str) -> Any:
        def call(*args: Any, **kw: Any) -> Any:
            self.calls.append((op, kw))
            raise self.answer

        return call


def _http(
    status: int, code: str | None, cls: type[HttpResponseError] = HttpResponseError
) -> HttpResponseError:
    exc = cls(message=f"status {status} with the entity hunter2")
    exc.status_code = status
    exc.error_code = code
    return exc


@pytest.mark.parametrize(
    "answer",
    [
        _http(412, "UpdateConditionNotSatisfied", ResourceModifiedError),
        _http(412, "UpdateConditionNotSatisfied"),  # a bare HttpResponseError
        _http(412, None),
        _http(409, "EntityAlreadyExists"),
        _http(404, "ResourceNotFound", ResourceNotFoundError),  # removed between read and write
    ],
    ids=["modified", "bare-412", "412-no-code", "bare-409", "404-on-update"],
)
def test_every_plausible_lost_race_answer_is_a_lost_race(answer: HttpResponseError) -> None:
    stub = _Stub(answer)
    state = TableRunState("runs", client=stub)
    assert state._write("r", {"pending": []}, 'W/"etag"') is False
    op, kw = stub.calls[-1]
    assert op == "update_entity" and kw["retry_total"] == 0 and kw["etag"] == 'W/"etag"'


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        (_http(404, "TableNotFound", ResourceNotFoundError), "TableNotFound"),
        (_http(403, "AuthorizationPermissionMismatch"), "AuthorizationPermissionMismatch"),
        (_http(503, None), "HTTP 503"),
        (ConnectionError("to 10.0.0.1 with hunter2"), "ConnectionError"),
    ],
)
def test_other_answers_are_errors_naming_the_code_only(answer: BaseException, shown: str) -> None:
    state = TableRunState("runs", client=_Stub(answer))
    for call in (lambda: state.get("r"), lambda: state._write("r", {"pending": []}, 'W/"e"')):
        with pytest.raises(RunStateError) as err:
            call()
        assert err.value.field == "SMF_RUNSTATE_TABLE" and shown in str(err.value)
        assert "hunter2" not in str(err.value)


def test_from_env_picks_the_table_on_azure_functions() -> None:
    url = "https://acct.table.core.windows.net/smfruns"
    got = runstate.from_env({"FUNCTIONS_WORKER_RUNTIME": "python", "SMF_RUNSTATE_TABLE": url})
    assert isinstance(got, TableRunState) and got.table == url and got._client is None  # opened lazily
    assert isinstance(runstate.from_env({"SMF_RUNSTATE_TABLE": url}), TableRunState)
    got = runstate.from_env(
        {"SMF_RUNSTATE": "table", "SMF_RUNSTATE_TABLE": "runs", "SMF_RUNSTATE_CONNECTION": "c"}
    )
    assert isinstance(got, TableRunState) and got._connection == "c"
    with pytest.raises(RunStateError) as err:
        runstate.from_env({"SMF_RUNSTATE": "table"})
    assert err.value.field == "SMF_RUNSTATE_TABLE"
    assert runstate.from_env({"FUNCTIONS_WORKER_RUNTIME": "python"}) is None
