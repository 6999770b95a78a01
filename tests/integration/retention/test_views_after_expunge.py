"""After an expunge the views show the run as expunged with its sensitive values erased, and
a rebuild from event 0 gives the same rows (both backends)."""

from __future__ import annotations

import re
from typing import Any

from ledger.service import Ledger
from ledger.settings import Settings
from projections import ReadModels
from projections.db import connect
from projections.runner import ProjectionRunner
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
