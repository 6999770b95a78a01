"""``q`` on both backends over real runs: every field and operator, AND/OR/NOT/parentheses,
NULL handling, times, numbers against numeric parameters, labels changed after the trigger,
cursor pages, ``/api/stats``' counts, bad expressions, and SQL-injection attempts that find
nothing and write nothing. Every answer is checked against the in-memory evaluator
(``oracle.holds``) and the important ones by hand as well."""

from __future__ import annotations

from typing import Any

import pytest

from projections.runner import ProjectionRunner
from projections.search import InvalidQuery, parse
from tests.integration.search.conftest import Dataset
from tests.integration.search.oracle import holds

#: At least one expression per field and per operator; the SQL must agree with the evaluator
#: on each, and together they must select something and leave something out.
EXPRESSIONS = [
    'status = "success"',
    'status != "pending"',
    'status IN ("failed", "killed")',
    'status NOT IN ("success")',
    'status LIKE "s%"',
    'status < "p"',
    'workflow = "train"',
    'workflow LIKE "_t_"',
    "version = 1",
    "version >= 1",
    'triggered_by = "carol"',
    'triggered_by LIKE "c%"',
    'triggered_by > "Carol"',
    'trigger_kind = "replay"',
    'trigger_kind IN ("batch", "replay")',
    'created_at >= "2026-03-01T09:30:00Z"',
    'created_at < "2026-03-01T10:00:00+00:00"',
    'created_at > "2026-03-01"',
    "started_at IS NULL",
    'started_at <= "2026-03-01T10:00:00Z"',
    "completed_at IS NOT NULL",
    'completed_at > "2026-03-01T09:40:00Z"',
    "duration_seconds > 0",
    "duration_seconds IS NULL",
    "tasks_failed >= 1",
    "tasks_failed = 0",
    "retry_count > 0",
    "retry_count IN (0, 2)",
    'error = "extract failed"',
    'error != "extract failed"',
    'error LIKE "%\\u0025"',
    'error LIKE "boom%"',
    "error IS NULL",
    'definition_hash LIKE "%a%"',
    "definition_hash IS NOT NULL",
    "batch_id IS NOT NULL",
    'batch_id != "x"',
    'param.query = "alpha"',
    'param.query LIKE "alpha%"',
    'param.query LIKE "a\\u0025b"',
    'param.query LIKE "a%b"',
    'param.query = "x\'y"',
    'param.query = ""',
    'param.query > "B"',
    'param.query IN ("Beta", "gamma_1")',
    'param.query NOT IN ("alpha")',
    "param.query IS NULL",
    'param.query = "10"',
    "param.limit > 2",
    "param.limit <= 2.5",
    "param.limit = -5",
    "param.limit != 10",
    "param.limit IN (3, 50)",
    "param.limit NOT IN (3, 50)",
    'param.limit = "2.5"',
    'param.flag = "true"',
    "param.flag = 1",
    "param.max_urls > 10",
    "param.max_urls >= 10 AND param.max_urls < 100",
    "param.max_urls IS NULL",
    "param.max_urls IS NOT NULL",
    'param.max_urls IN (1, "9")',
    'label.team = "ml"',
    'label.team LIKE "%l"',
    'label.team != "ml"',
    'label.team IN ("ml", "Ml")',
    'label.team NOT IN ("ml")',
    "label.team IS NULL",
    "label.env IS NOT NULL",
    'label.a/b.c-d = "10"',
    'label.a/b.c-d > "1"',
    "label.a/b.c-d > 1",
    "label.missing IS NULL",
    "output.fit.rows > 2",
    "output.extract.rows = 2.5",
    'output.load.name = "b%"',
    'output.load.name LIKE "b_"',
    'output.fit.name IN ("a", "Z")',
    "output.fit.rows IS NULL",
    'status = "success" AND (label.team = "ml" OR param.max_urls > 10)',
    'NOT status = "success"',
    "NOT error IS NULL",
    'NOT (label.team = "ml" OR label.env = "prod")',
    'NOT label.team = "ml"',
    'not error = "Timeout" and (workflow = "etl" or not param.max_urls <= 9)',
    'status = "failed" OR status = "killed" AND label.env = "dev"',
    '(status = "failed" OR status = "killed") AND label.env = "dev"',
    'NOT NOT workflow = "etl"',
    'param.query NOT LIKE "a%"',
]


def oracle_ids(dataset: Dataset, q: str) -> list[str]:
    expr = parse(q)
    return [s["run_id"] for s in dataset.summaries() if holds(expr, s)]


def test_every_field_and_operator_agrees_with_the_evaluator(dataset: Dataset) -> None:
    everything = len(dataset.summaries())
    selective = 0
    for q in EXPRESSIONS:
        expected = oracle_ids(dataset, q)
        assert dataset.ids(q) == expected, q
        selective += 0 < len(expected) < everything
    assert selective >= len(EXPRESSIONS) * 2 // 3  # the expressions do tell runs apart


def test_results_are_newest_first_and_page_by_cursor(dataset: Dataset) -> None:
    ids = dataset.ids('workflow = "etl" OR label.env IS NOT NULL')
    summaries = {s["run_id"]: s for s in dataset.summaries()}
    keys = [(summaries[i]["created_at"], i) for i in ids]
    assert keys == sorted(keys, reverse=True) and len(ids) > 7  # more than one page


def test_labels_set_at_trigger_and_changed_later(dataset: Dataset) -> None:
    ledger = dataset.ledger
    run_id = ledger.trigger(
        workflow="train", parameters={}, principal="carol", labels={"team": "vision"}
    ).run_id
    dataset.runner.catch_up()
    assert dataset.ids('label.team = "vision"') == [run_id]
    ledger.label(run_id, set_={"team": "audio", "stage": "qa"}, remove=[], principal="olga", reason="moved")
    dataset.runner.catch_up()
    assert dataset.ids('label.team = "vision"') == []
    assert dataset.ids('label.team = "audio" AND label.stage = "qa"') == [run_id]
    ledger.label(run_id, set_={}, remove=["stage"], principal="olga")
    dataset.runner.catch_up()
    assert dataset.ids('label.team = "audio" AND label.stage IS NULL') == [run_id]
    summary = dataset.views.run_summary(run_id)
    assert summary is not None and summary["labels"] == {"team": "audio"}
    # The same answers from a view rebuilt from event 0 (the rebuild's own write path).
    ProjectionRunner(dataset.settings).rebuild()
    assert dataset.ids('label.team = "audio" AND label.stage IS NULL') == [run_id]
    assert dataset.ids('label.stage = "qa" OR label.team = "vision"') == []
    for q in EXPRESSIONS[::5]:
        assert dataset.ids(q) == oracle_ids(dataset, q), q


def test_null_handling_is_two_valued(dataset: Dataset) -> None:
    summaries = dataset.summaries()
    no_error = {s["run_id"] for s in summaries if s["error"] is None}
    # A comparison with a missing value is false, so NOT of it is true.
    assert set(dataset.ids('error != "boom%"')).isdisjoint(no_error)
    assert no_error <= set(dataset.ids('NOT error = "boom%"'))
    assert set(dataset.ids("error IS NULL")) == no_error
    unlabelled = {s["run_id"] for s in summaries if "team" not in s["labels"]}
    assert set(dataset.ids('label.team != "ml"')).isdisjoint(unlabelled)
    assert unlabelled <= set(dataset.ids('NOT label.team = "ml"'))
    assert set(dataset.ids("label.team IS NULL")) == unlabelled


def test_numbers_compare_as_numbers_against_numeric_parameters(dataset: Dataset) -> None:
    summaries = dataset.summaries()
    over = {
        s["run_id"]
        for s in summaries
        if isinstance(s["parameters"].get("max_urls"), int) and s["parameters"]["max_urls"] > 9
    }
    assert over and set(dataset.ids("param.max_urls > 9")) == over  # 10, 11, 100: not text order
    assert set(dataset.ids('param.max_urls > "9"')) == {
        s["run_id"]
        for s in summaries
        if "max_urls" in s["parameters"] and str(s["parameters"]["max_urls"]) > "9"
    }
    # A boolean is not a number; a string that looks like one is not either.
    assert dataset.ids("param.flag = 1") == []
    assert dataset.ids('param.query = "10"') and dataset.ids("param.query = 10") == []


def test_times_are_instants_in_any_offset(dataset: Dataset) -> None:
    utc = dataset.ids('created_at >= "2026-03-01T10:00:00Z"')
    assert utc and utc == dataset.ids('created_at >= "2026-03-01T12:00:00+02:00"')
    assert dataset.ids('created_at >= "2026-03-01T10:00:00Z" AND created_at < "2026-03-01T10:00:00Z"') == []


def test_q_combines_with_plain_filters_and_repeated_filters_mean_any(dataset: Dataset) -> None:
    summaries = dataset.summaries()
    expected = [
        s["run_id"] for s in summaries if s["status"] in ("failed", "killed") and s["workflow"] == "etl"
    ]
    assert dataset.ids('workflow = "etl"', status=["failed", "killed"]) == expected
    labelled = [s["run_id"] for s in summaries if s["labels"].get("team") in ("ml", "data")]
    page, _ = dataset.views.list_runs(labels={"team": ["ml", "data"]}, limit=1000)
    assert [r["run_id"] for r in page] == labelled


def test_stats_count_what_q_selects(dataset: Dataset) -> None:
    for q in ('label.team = "ml"', 'workflow = "etl" OR status = "killed"', "param.max_urls > 9"):
        stats: Any = dataset.views.stats(q=q)
        selected = [s for s in dataset.summaries() if holds(parse(q), s)]
        assert stats["total_runs"] == len(selected) > 0, q
        for status in ("pending", "running", "success", "failed", "killed"):
            assert stats["by_status"][status] == sum(s["status"] == status for s in selected), q
        assert {w["workflow"] for w in stats["per_workflow"]} == {s["workflow"] for s in selected}
    # The same figures as the stats view's own query, for a filter both can say.
    for name in ("etl", "train"):
        by_q, by_filter = dataset.views.stats(q=f'workflow = "{name}"'), dataset.views.stats(workflow=name)
        assert rounded(by_q) == rounded(by_filter) and by_q["p95_duration_seconds"] is not None


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


@pytest.mark.parametrize(
    ("q", "position", "words"),
    [
        ('status = "a" AND', 17, "ends too early"),
        ('status == "a"', 9, "unexpected '='"),
        ('bogus = "a"', 1, "unknown field 'bogus'"),
        ("status = 1", 10, "compare it with a string"),
        ('tasks_failed = "1"', 16, "bare number"),
        ('created_at > "yesterday"', 14, "not an ISO 8601 time"),
        ('(status = "a"', 14, "ends too early"),
        ('status = "a")', 13, "unexpected ')'"),
        ("status = 'a'", 10, "unexpected character"),
        ('duration_seconds LIKE "1%"', 1, "LIKE takes text"),
        ("status IN ()", 12, "unexpected ')'"),
        ("", 1, "empty"),
        ('status = "a"; DROP TABLE runs', 13, "unexpected character ';'"),
    ],
)
def test_bad_expressions_name_the_position(dataset: Dataset, q: str, position: int, words: str) -> None:
    with pytest.raises(InvalidQuery) as caught:
        dataset.views.list_runs(q=q)
    assert caught.value.position == position and f"at position {position}" in caught.value.detail
    assert words in caught.value.detail
    with pytest.raises(InvalidQuery):
        dataset.views.stats(q=q)


#: SQL in values: bound as parameters, so they are only strings no run has.
INJECTED_VALUES = [
    "label.team = \"x' OR '1'='1\"",
    'label.team = "ml\\" OR 1=1 --"',
    'param.query = "\'; DROP TABLE runs; --"',
    "error LIKE \"%' OR ''='\"",
    "status IN (\"success')) OR (('1'='1\")",
]
#: SQL outside values: not the language, refused before any query.
INJECTED_SQL = [
    'label.x;drop = "1"',
    'workflow = "etl" OR workflow = "x" UNION SELECT 1',
    'status = "success" OR 1=1',
    'workflow = "etl" -- AND status = "x"',
]


def test_sql_injection_finds_nothing_and_writes_nothing(dataset: Dataset) -> None:
    before = dataset.summaries()
    events = dataset.ledger.reader.max_position()
    for q in INJECTED_VALUES:
        assert dataset.ids(q) == oracle_ids(dataset, q) == [], q
    for q in INJECTED_SQL:
        with pytest.raises(InvalidQuery):
            dataset.ids(q)
    assert dataset.summaries() == before
    assert dataset.ledger.reader.max_position() == events
