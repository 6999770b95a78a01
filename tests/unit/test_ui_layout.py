"""The UI's pure layouts: lineage layers and the timeline of attempts."""

from __future__ import annotations

from api.ui.graph import draw, layers
from api.ui.timeline import timeline


def test_each_node_sits_one_layer_right_of_the_furthest_node_feeding_it_and_a_cycle_ends() -> None:
    edges = [("a", "b"), ("b", "c"), ("a", "c"), ("c", "a")]  # c -> a closes a cycle
    assert layers(["a", "b", "c", "d"], edges) == {"a": 0, "b": 1, "c": 2, "d": 0}


def test_a_drawing_places_every_node_and_draws_only_edges_between_known_nodes() -> None:
    nodes = [{"id": "run:1", "kind": "run", "run_id": "1", "workflow": "w"}, {"id": "file:x", "kind": "file"}]
    edges = [
        {"source": "file:x", "target": "run:1", "kind": "consumed"},
        {"source": "file:y", "target": "run:1"},
    ]
    drawing = draw(nodes, edges, focus="run:1")
    placed = {n.id: n for n in drawing.nodes}
    assert placed["file:x"].x < placed["run:1"].x and placed["run:1"].focus
    assert placed["run:1"].href == "/runs/1" and len(drawing.lines) == 1


def test_a_retry_is_a_second_bar_on_its_tasks_row_after_the_first() -> None:
    run = {"started_at": "2026-01-01T00:00:00Z", "completed_at": "2026-01-01T00:00:10Z"}
    attempts = [
        {
            "attempt": 1,
            "status": "failed",
            "started_at": "2026-01-01T00:00:00Z",
            "ended_at": "2026-01-01T00:00:04Z",
        },
        {
            "attempt": 2,
            "status": "success",
            "started_at": "2026-01-01T00:00:05Z",
            "ended_at": "2026-01-01T00:00:10Z",
        },
    ]
    rows, span = timeline([{"name": "t", "status": "success", "attempts": attempts}], run, now=0.0)
    first, second = rows[0].bars
    assert span == 10.0 and (first.left, first.width, first.retry) == (0.0, 40.0, False)
    assert (second.left, second.width, second.retry, second.status) == (50.0, 50.0, True, "success")
