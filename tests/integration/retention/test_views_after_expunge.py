"""After an expunge the views (lineage and Marquez's too), the tasks, the comparison and
exports show the run as expunged with its sensitive values erased, and a rebuild from event 0
gives the same rows (both backends)."""

from __future__ import annotations

import json
import re
import tarfile
import uuid
from pathlib import Path
from typing import Any

from ledger.integrity.bundle import write_bundle
from ledger.service import Ledger
from ledger.settings import Settings
from projections import ReadModels
from projections.db import connect
from projections.runner import ProjectionRunner
from projections.views import marquez_queries
from projections.views.compare import compare
from projections.views.rundetail import is_expunged, run_events, tasks_of
from projections.views.summaries_fold import summary_from_events
from tests.builders import reports
from tests.integration.projections.test_marquez import emit
from tests.integration.retention.conftest import SECRET_DEFINITION, finish


def view_rows(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every live view table, by table name without its generation."""
    conn = connect(settings)
    try:
        if conn.is_postgres:
            query = "SELECT tablename AS n FROM pg_tables WHERE schemaname = current_schema()"
        else:
            query = "SELECT name AS n FROM sqlite_master WHERE type = 'table'"
        names = sorted(n for n in (r["n"] for r in conn.all(query)) if n.startswith("rl_") and "_g" in n)
        return {
            re.sub(r"_g[0-9]+", "", name): sorted(
                tuple(str(v) for k, v in row.items() if k != "position")
                for row in conn.all(f"SELECT * FROM {name}")
            )
            for name in names
        }
    finally:
        conn.close()


def test_views_show_the_expunge_and_a_rebuild_gives_the_same_rows(ledger: Ledger, settings: Settings) -> None:
    ledger.register_workflow(SECRET_DEFINITION, principal="alice")
    source, _ = ledger.files.put_bytes(b"input")
    gone = finish(ledger, token="s3cret-value", source=source, output=b"a")
    kept = finish(ledger, token="other-value", source=source, output=b"b")
    held = finish(ledger, token="held-value", source=source, output=b"c")
    ledger.place_hold(held, principal="legal", reason="case 7")
    ledger.expunge(gone, principal="admin", reason="erasure request")
    runner = ProjectionRunner(settings)
    views = ReadModels(settings)
    try:
        runner.catch_up()
        summary = views.run_summary(gone)
        assert summary is not None and summary["expunged"] and summary["parameters"]["token"] == "[erased]"
        other = views.run_summary(kept)
        assert other is not None and not other["expunged"] and other["parameters"]["token"] == "[sensitive]"
        assert (views.run_summary(held) or {}).get("held") is True
        audit = views.audit(gone)
        assert [e["action"] for e in audit][-1] == "expunged"
        assert audit[0]["detail"]["parameters"]["token"] == "[erased]"
        before = view_rows(settings)
        assert not any("s3cret-value" in str(rows) for rows in before.values())
        runner.rebuild()
        assert view_rows(settings) == before
    finally:
        views.close()
        runner.stop()


def finish_with_command(ledger: Ledger, *, token: str, source: str) -> str:
    """A ``vault`` run whose recorded command shows its sensitive value as the executor
    records it (``[sensitive]``)."""
    run_id = ledger.trigger(
        workflow="vault", parameters={"source": source, "token": token}, principal="carol"
    ).run_id
    assert ledger.claim(run_id, worker_id="w1") is not None
    command = ["login", "--token=[sensitive]", "[sensitive]"]
    ledger.report(
        run_id,
        worker_id="w1",
        reports=reports(
            {"type": "task_started", "task": "use", "command": command},
            {
                "type": "task_finished",
                "task": "use",
                "exit_code": 0,
                "status": "success",
                "command": command,
                "inputs": [{"path": "params/source", "sha256": source, "size": 12}],
            },
            {"type": "run_succeeded"},
        ),
    )
    return run_id


def test_tasks_lineage_and_exports_show_an_expunged_run_and_a_rebuild_keeps_it(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    ledger.register_workflow(SECRET_DEFINITION, principal="alice")
    source, _ = ledger.files.put_bytes(b"shared input")
    gone = finish_with_command(ledger, token="s3cret-value", source=source)
    kept = finish_with_command(ledger, token="other-value", source=source)
    ledger.expunge(gone, principal="admin", reason="erasure request")

    erased = run_events(ledger, gone)
    assert is_expunged(erased) and not is_expunged(run_events(ledger, kept))
    [task] = tasks_of(erased)
    assert [a["command"] for a in task["attempts"]] == [["login", "--token=[erased]", "[erased]"]]
    [other] = tasks_of(run_events(ledger, kept))
    assert other["attempts"][0]["command"] == ["login", "--token=[sensitive]", "[sensitive]"]
    compared = compare(erased, run_events(ledger, kept))
    assert compared["parameters"]["token"] == {"a": "[erased]", "b": "[sensitive]"}

    runner = ProjectionRunner(settings)
    views = ReadModels(settings)
    try:
        runner.catch_up()

        def run_nodes() -> dict[str, bool]:
            graph = views.lineage(gone, depth=1, workspace="default")
            assert graph is not None
            return {n["run_id"]: n["expunged"] for n in graph["nodes"] if n["kind"] == "run"}

        assert run_nodes() == {gone: True, kept: False}  # linked through the shared input
        before = view_rows(settings)
        runner.rebuild()
        assert view_rows(settings) == before
        assert run_nodes() == {gone: True, kept: False}
    finally:
        views.close()
        runner.stop()

    write_bundle(settings, tmp_path / "export.tar", summarise=summary_from_events)
    with tarfile.open(tmp_path / "export.tar") as bundle:
        member = bundle.extractfile("runs.jsonl")
        assert member is not None
        summaries = {s["run_id"]: s for s in map(json.loads, member.read().splitlines())}
    assert summaries[gone]["expunged"] and summaries[gone]["parameters"]["token"] == "[erased]"
    assert not summaries[kept]["expunged"] and summaries[kept]["parameters"]["token"] == "[sensitive]"
    assert b"s3cret-value" not in (tmp_path / "export.tar").read_bytes()


def test_an_expunged_openlineage_run_reads_expunged_in_marquez_s_api_after_a_rebuild_too(
    ledger: Ledger, settings: Settings
) -> None:
    gone, kept = str(uuid.uuid4()), str(uuid.uuid4())
    for run_id in (gone, kept):
        for event_type, at in (("START", "2026-01-01T00:00:00Z"), ("COMPLETE", "2026-01-01T00:01:00Z")):
            emit(ledger, run_id, event_type, at, ("etl", "daily"))
    ledger.expunge(gone, principal="admin", reason="erasure request")
    runner = ProjectionRunner(settings)
    views = ReadModels(settings)
    try:
        runner.catch_up()

        def expunged(run_id: str) -> bool:
            run = views.marquez(lambda c, t: marquez_queries.run(c, t, "default", run_id))
            assert run is not None
            return bool(run["expunged"])

        def shown() -> dict[str, bool]:
            return {run_id: expunged(run_id) for run_id in (gone, kept)}

        assert shown() == {gone: True, kept: False}
        runner.rebuild()
        assert shown() == {gone: True, kept: False}
    finally:
        views.close()
        runner.stop()
