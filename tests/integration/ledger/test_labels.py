"""``Run.Labelled`` through the Ledger service on both backends: labels at trigger and later,
the reason rule of ``RUNLEDGER_REQUIRE_REASON``, and refusals that write nothing."""

from __future__ import annotations

import pytest

from ledger.errors import InvalidRequest
from ledger.service import Ledger
from ledger.settings import Settings
from tests.builders import DEFINITION


def test_labels_at_trigger_and_later_are_events_of_the_run(ledger: Ledger) -> None:
    ledger.register_workflow(DEFINITION, principal="alice")
    run_id = ledger.trigger(
        workflow=DEFINITION["name"], parameters={"query": "x"}, principal="carol", labels={"team": "ml"}
    ).run_id
    run = ledger.label(run_id, set_={"env": "prod"}, remove=["team"], principal="olga", reason=" review ")
    assert run.labels == {"env": "prod"}
    events = ledger.stream_events(run_id)
    labelled = [e.data for e in events if e.type == "Run.Labelled"]
    assert [(d["set"], d["remove"], d["by"], d["reason"]) for d in labelled] == [
        ({"team": "ml"}, [], "carol", None),
        ({"env": "prod"}, ["team"], "olga", "review"),
    ]
    assert ledger.get_run(run_id).labels == {"env": "prod"}  # as loaded from the store


def test_a_required_reason_and_bad_labels_are_refused_before_anything_is_written(settings: Settings) -> None:
    ledger = Ledger(settings.model_copy(update={"require_reason": True}))
    try:
        ledger.register_workflow(DEFINITION, principal="alice")
        name = DEFINITION["name"]
        run_id = ledger.trigger(workflow=name, parameters={"query": "x"}, principal="carol").run_id
        before = ledger.reader.max_position()
        for change, words in (
            ({"set_": {"a": "b"}, "remove": [], "reason": None}, "needs a reason"),
            ({"set_": {"a": "b"}, "remove": [], "reason": "   "}, "needs a reason"),
            ({"set_": {"A": "b"}, "remove": [], "reason": "r"}, "label key 'A'"),
            ({"set_": {}, "remove": ["no/such"], "reason": "r"}, None),
        ):
            if words is None:  # removing a label the run lacks is a recorded no-op, not an error
                ledger.label(run_id, principal="olga", **change)
                before += 1
                continue
            with pytest.raises(InvalidRequest, match=words):
                ledger.label(run_id, principal="olga", **change)
        assert ledger.reader.max_position() == before
        with pytest.raises(InvalidRequest, match="64 labels"):
            ledger.trigger(
                workflow=DEFINITION["name"],
                parameters={"query": "x"},
                principal="carol",
                labels={f"k{i}": "v" for i in range(65)},
            )
        assert ledger.reader.max_position() == before
    finally:
        ledger.close()
