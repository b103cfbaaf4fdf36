"""FirestoreRunState against the Firestore REST fake (tests/fakes/gcp_firestore.py): the run
state's rules, exactly one finisher among racing writers, a lost race in both answer styles
(400 FAILED_PRECONDITION, 409 ABORTED), and errors that name the field, never the record."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core import runstate
from core.runstate import FirestoreRunState, RunStateError
from tests.fakes.gcp_firestore import FirestoreFake
from tests.support.runstate_race import racing_finishes

RUN = "0123456789abcdef0123"


@pytest.fixture(params=[400, 409], ids=["400-failed-precondition", "409-aborted"])
def fake(request: pytest.FixtureRequest) -> Iterator[FirestoreFake]:
    with FirestoreFake(stale_code=request.param) as f:
        yield f


def state(fake: FirestoreFake) -> FirestoreRunState:
    return FirestoreRunState("p", "smf-runs", "smf-runs", emulator=fake.host)


def test_start_pending_handoff_finish(fake: FirestoreFake) -> None:
    st = state(fake)
    assert st.start(RUN, ["0", "1"], {"kind": "resync"}) == ["0", "1"]
    assert st.start(RUN, ["0", "1"], {"kind": "resync"}) == ["0", "1"]  # redelivered dispatcher
    assert st.pending(RUN, "0") and not st.pending(RUN, "9") and not st.pending("nope", "0")
    assert st.handoff(RUN, "0", "0.1")
    assert st.finish(RUN, "0", {"summary": {"create": 2}}) is None
    assert st.finish(RUN, "0", {"summary": {"create": 2}}) is None  # no longer counts
    assert st.finish(RUN, "1", {"summary": {"create": 1}}) is None
    final = st.finish(RUN, "0.1", {"summary": {"create": 3}, "outcome": "partial"})
    assert final is not None and final["finished"] and final["summary"] == {"create": 6}
    assert final["outcome"] == "partial" and final["kind"] == "resync"
    assert st.get(RUN) == final
    fields = next(iter(fake.docs.values()))["fields"]
    assert fields["ver"] == {"integerValue": "5"}
    assert fields["expires"]["timestampValue"].endswith("Z")
    assert fake.requests[0][0] == "GET" and {q.get("currentDocument.exists") for m, _, q in fake.requests
                                            if m == "PATCH"} == {"false", None}  # fmt: skip


def test_a_lost_race_is_read_again_and_counts_once(fake: FirestoreFake) -> None:
    st = state(fake)
    st.start(RUN, ["0", "1"], {})
    fake.bump_next_write = True  # another writer updates the record between our read and write
    assert st.finish(RUN, "0", {"summary": {"create": 1}}) is None
    assert fake.lost == 1
    final = st.finish(RUN, "1", {"summary": {"create": 1}})
    assert final is not None and final["done"] == 2 and final["summary"] == {"create": 2}


def test_create_only_once(fake: FirestoreFake) -> None:
    st = state(fake)
    assert st._write(RUN, {"run": RUN}, None)
    assert not st._write(RUN, {"run": RUN}, None)  # 409 ALREADY_EXISTS: a lost race
    doc, version = st._read(RUN)
    assert st._write(RUN, doc, version)
    assert not st._write(RUN, doc, version)  # stale updateTime
    fake.docs.clear()
    assert not st._write(RUN, doc, version)  # the record expired in between: 404


def test_exactly_one_of_many_racing_finishers_gets_the_run(fake: FirestoreFake) -> None:
    items = [str(i) for i in range(12)]
    finals = racing_finishes(lambda: state(fake), RUN, items, {"summary": {"update": 1}})
    assert len(finals) == 1
    assert finals[0]["done"] == len(items) and finals[0]["summary"] == {"update": len(items)}


def test_errors_name_the_field_never_the_record(fake: FirestoreFake) -> None:
    st = state(fake)
    st.start(RUN, ["s3cret-item"], {"configs": ["s3cret-config"]})
    for code in (403, 500, 400):
        fake.fail_next = [code] * 4  # a read is retried on 5xx; these outlast it
        with pytest.raises(RunStateError) as err:
            st.finish(RUN, "s3cret-item", {})
        assert err.value.field == "SMF_RUNSTATE_TABLE" and f"HTTP {code}" in str(err.value)
        assert "s3cret" not in str(err.value)
    fake.fail_next = []
    doc, version = st._read(RUN)
    fake.fail_next = [400]  # INVALID_ARGUMENT on a write: an error, not a lost race
    with pytest.raises(RunStateError, match="INVALID_ARGUMENT"):
        st._write(RUN, doc, version)


def test_run_ids_must_be_document_ids(fake: FirestoreFake) -> None:
    for bad in ("a/b", "__x__", ".", "", "x" * 200):
        with pytest.raises(RunStateError) as err:
            state(fake).pending(bad, "0")
        assert err.value.field == "run"


def test_from_env(fake: FirestoreFake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", fake.host)
    full = runstate.from_env({"SMF_RUNSTATE_TABLE": "projects/p/databases/smf-runs/documents/runs"})
    assert isinstance(full, FirestoreRunState) and full.base.endswith(
        "/v1/projects/p/databases/smf-runs/documents/runs"
    )
    on_gcp = runstate.from_env({"K_SERVICE": "smf-resync", "SMF_RUNSTATE_TABLE": "runs", "GCP_PROJECT": "q"})
    assert isinstance(on_gcp, FirestoreRunState) and on_gcp.base.endswith(
        "/projects/q/databases/(default)/documents/runs"
    )
    assert on_gcp.base.startswith(f"http://{fake.host}/")
    with pytest.raises(RunStateError) as err:
        runstate.from_env({"SMF_RUNSTATE": "firestore", "SMF_RUNSTATE_TABLE": "runs"})
    assert err.value.field == "SMF_RUNSTATE_TABLE"
    with pytest.raises(RunStateError):
        runstate.from_env(
            {"SMF_RUNSTATE": "firestore", "SMF_RUNSTATE_TABLE": "projects/p/databases/D!/documents/r"}
        )
    assert isinstance(runstate.from_env({"SMF_RUNSTATE_TABLE": "runs"}), runstate.DynamoRunState)
