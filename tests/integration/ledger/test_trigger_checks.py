"""What a trigger and a registration refuse before writing (SPEC 2 and 5): a ``file``
parameter naming no stored file, an idempotency key reused with other parameters, a template
left open. On a real SQLite file and a real PostgreSQL schema."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from ledger.errors import IdempotencyKeyReused, InvalidDefinition, InvalidParameters
from ledger.service import Ledger
from tests.builders import DEFINITION

FILE_DEFINITION: dict[str, Any] = {
    "name": "seeded",
    "params": {"seed": {"type": "file", "required": True}},
    "tasks": [{"name": "read", "command": ["cat", "{{ params.seed }}"]}],
}


def test_a_file_parameter_naming_no_stored_file_is_refused_and_nothing_is_written(ledger: Ledger) -> None:
    ledger.register_workflow(FILE_DEFINITION, principal="alice")
    before = ledger.reader.max_position()
    missing = hashlib.sha256(b"never uploaded").hexdigest()
    with pytest.raises(InvalidParameters) as refused:
        ledger.trigger(workflow="seeded", parameters={"seed": missing}, principal="carol")
    assert f"no stored file with sha256 {missing}" in refused.value.detail
    assert refused.value.errors[0]["loc"] == "parameters.seed"
    with pytest.raises(InvalidParameters):
        ledger.trigger_batch(
            workflow="seeded", items=[missing], input_param="seed", parallelism=1, principal="carol"
        )
    assert ledger.reader.max_position() == before


def test_a_file_parameter_naming_a_stored_file_triggers(ledger: Ledger) -> None:
    ledger.register_workflow(FILE_DEFINITION, principal="alice")
    stored, _ = ledger.files.put_bytes(b"seed bytes")
    triggered = ledger.trigger(workflow="seeded", parameters={"seed": stored}, principal="carol")
    assert ledger.get_run(triggered.run_id).parameters == {"seed": stored}


def test_an_idempotency_key_reused_with_other_parameters_names_the_first_run(ledger: Ledger) -> None:
    ledger.register_workflow(DEFINITION, principal="alice")
    first = ledger.trigger(workflow="etl", parameters={"query": "q"}, principal="c", idempotency_key="k")
    before = ledger.reader.max_position()
    with pytest.raises(IdempotencyKeyReused) as reused:
        ledger.trigger(workflow="etl", parameters={"query": "other"}, principal="c", idempotency_key="k")
    assert reused.value.run_id == first.run_id
    assert reused.value.extensions == {"run_id": first.run_id}
    assert ledger.reader.max_position() == before
    # The same parameters, with a default spelled out, are the same request: the first run.
    again = ledger.trigger(
        workflow="etl", parameters={"query": "q", "limit": 5}, principal="c", idempotency_key="k"
    )
    assert (again.run_id, again.created) == (first.run_id, False)


def test_a_template_left_open_is_refused_at_registration_with_its_position(ledger: Ledger) -> None:
    broken = {
        "name": "broken",
        "params": {"q": {"type": "string"}},
        "tasks": [
            {"name": "fine", "command": ["echo", "{{ params.q }}"]},
            {"name": "search", "command": ["grep", "-n", "x{{ params.q "]},
        ],
    }
    before = ledger.reader.max_position()
    with pytest.raises(InvalidDefinition) as refused:
        ledger.register_workflow(broken, principal="alice")
    assert "task 'search': command[2] character 1: '{{' is never closed" in refused.value.detail
    assert ledger.reader.max_position() == before
