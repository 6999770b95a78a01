"""A ``file`` parameter is an input of the tasks that read it (declare ``params/<name>`` in
``inputs`` or name ``{{ params.<name> }}``), and of no other: in the evidence, in
``/files`` and in the lineage graph."""

from __future__ import annotations

from ledger.service import Ledger
from ledger.settings import Settings
from ledger.store.filestore import FileStore
from projections import ReadModels
from projections.runner import ProjectionRunner
from projections.views.rundetail import files_of
from tests.integration.executor.conftest import StartExecutor, finished, register_and_trigger, wait_until_done

READ_LATER = {
    "name": "read-later",
    "params": {
        "seed": {"type": "file", "required": True},
        "other": {"type": "file", "required": True},
        "unused": {"type": "file"},
    },
    "tasks": [
        {"name": "first", "command": ["true"]},
        {
            "name": "declares",
            "depends_on": ["first"],
            "inputs": ["params/seed"],
            "command": ["wc", "-c", "params/seed"],
        },
        {"name": "names", "depends_on": ["first"], "command": ["cat", "{{ params.other }}"]},
    ],
}


def test_only_the_tasks_that_read_a_file_parameter_consume_it(
    ledger: Ledger, files: FileStore, settings: Settings, start_executor: StartExecutor
) -> None:
    seed, size = files.put_bytes(b"seed\n")
    other, other_size = files.put_bytes(b"other\n")
    unused, unused_size = files.put_bytes(b"nobody reads me\n")
    run_id = register_and_trigger(ledger, READ_LATER, {"seed": seed, "other": other, "unused": unused})
    start_executor()
    assert wait_until_done(ledger, run_id).status == "success"

    evidence = {task: attempts[0]["inputs"] for task, attempts in finished(ledger, run_id).items()}
    seed_ref = {"path": "params/seed", "sha256": seed, "size": size}
    other_ref = {"path": "params/other", "sha256": other, "size": other_size}
    assert evidence == {"first": [], "declares": [seed_ref], "names": [other_ref]}

    listed = files_of(ledger.stream_events(run_id), size_of=files.size)
    assert sorted((f["path"], f["size"], f["task"]) for f in listed if f["role"] == "input") == [
        ("params/other", other_size, "names"),
        ("params/seed", size, "declares"),
        ("params/unused", unused_size, None),
    ]

    runner = ProjectionRunner(settings)
    views = ReadModels(settings)
    try:
        runner.catch_up()
        graph = views.lineage(run_id)
    finally:
        views.close()
        runner.stop()
    assert graph is not None
    consumed = sorted((e["source"], e["target"]) for e in graph["edges"] if e["kind"] == "consumed")
    assert consumed == sorted(
        [(f"file:{seed}", f"task:{run_id}/declares"), (f"file:{other}", f"task:{run_id}/names")]
    )
