"""Stats percentiles picked by rank in SQL equal linear interpolation over the sorted values,
whichever end of the index the pick walks from."""

from __future__ import annotations

import random

import pytest

from ledger.settings import Settings
from projections.db import connect
from projections.views.stats import _percentile


def reference(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def test_rank_picked_percentiles_match_interpolation_for_every_count(settings: Settings) -> None:
    conn = connect(settings)
    try:
        conn.execute("CREATE TABLE pct (workflow TEXT NOT NULL, duration_seconds DOUBLE PRECISION)")
        rng = random.Random(7)
        for count in range(1, 14):
            workflow = f"wf{count}"
            values = [round(rng.uniform(0, 100), 3) for _ in range(count)]
            rows = [(workflow, v) for v in values] + [(workflow, None)]
            conn.executemany("INSERT INTO pct (workflow, duration_seconds) VALUES (?, ?)", rows)
            for q in (0.0, 0.05, 0.5, 0.95, 1.0):
                got = _percentile(conn, "pct", "workflow = ?", [workflow], count, q)
                assert got == pytest.approx(reference(values, q)), (count, q)
        assert _percentile(conn, "pct", "workflow = ?", ["none"], 0, 0.5) is None
    finally:
        conn.close()
