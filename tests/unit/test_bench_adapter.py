"""The benchmark adapter speaks the worker API's language: its workflow is a valid definition
and every report body it sends is a valid ``ReportBatch``."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

RUNBENCH = Path(__file__).resolve().parents[3] / "shared" / "bench"
if not (RUNBENCH / "runbench.py").exists():  # pragma: no cover - the harness lives outside
    pytest.skip("the shared runbench harness is not next to the project", allow_module_level=True)
sys.path.insert(0, str(RUNBENCH))

import runbench  # noqa: E402

from bench.runledger_adapter import RunledgerAdapter, workflow_definition  # noqa: E402
from ledger.domain.definition import parse_definition, resolve_parameters  # noqa: E402
from ledger.domain.reports import ReportBatch  # noqa: E402


def test_the_benchmark_workflow_is_a_valid_definition_taking_the_harness_parameters() -> None:
    definition = parse_definition(workflow_definition("wf-3"))
    spec = runbench.make_run_spec(3, "salt", random.Random(1))
    assert [t.name for t in definition.tasks] == [f"t{i}" for i in range(runbench.N_TASKS)]
    assert resolve_parameters(definition, spec["params"]) == spec["params"]


def test_task_reports_and_completion_are_valid_worker_report_batches() -> None:
    start, finish = runbench.make_task_records("label", "t0", random.Random(2))
    batch = ReportBatch.model_validate(
        {
            "events": [
                RunledgerAdapter._started(start),
                RunledgerAdapter._finished(finish),
                {"type": "run_succeeded"},
            ]
        }
    )
    finished = batch.events[1]
    assert finished.type == "task_finished"
    assert finished.exit_code == 0
    assert [f.sha256 for f in finished.inputs] == finish.input_sha256
    assert [f.sha256 for f in finished.outputs] == finish.output_sha256
    assert finished.duration_seconds == finish.duration_s
    assert finished.host == finish.host
