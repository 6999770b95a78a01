"""Labels and the ``q`` search language over real HTTP (SPEC section 8), on both backends: labels
at trigger and later with their reason in the audit trail, ``q`` and repeated filters on
``/api/runs`` and ``/api/stats``, bad expressions as 422 naming the position, and 422 for a
query parameter an endpoint does not take."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.builders import eventually
from tests.e2e.conftest import Server
from tests.e2e.helpers import assert_problem, pipeline, register, trigger


def listed(client: httpx.Client, **params: Any) -> list[str]:
    response = client.get("/api/runs", params=params)
    assert response.status_code == 200, response.text
    return [r["run_id"] for r in response.json()["runs"]]


def test_labels_at_trigger_and_later_are_searchable_and_audited(shared_server: Server) -> None:
    admin = shared_server.client()
    operator = shared_server.client("operator")
    auditor = shared_server.client("auditor")
    team = f"team-{uuid.uuid4().hex[:8]}"
    name = register(admin, pipeline())["name"]
    run_id = trigger(operator, name, labels={"team": team, "env": "prod"})["run_id"]
    other = trigger(operator, name, labels={"team": "other"})["run_id"]
    q = f'label.team = "{team}"'
    assert eventually(lambda: listed(auditor, q=q) == [run_id] or None)
    assert auditor.get(f"/api/runs/{run_id}").json()["labels"] == {"env": "prod", "team": team}

    changed = operator.post(
        f"/api/runs/{run_id}/labels", json={"set": {"stage": "qa"}, "remove": ["env"], "reason": "QA review"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"run_id": run_id, "labels": {"stage": "qa", "team": team}}
    both = f'{q} AND label.stage = "qa" AND label.env IS NULL'
    assert eventually(lambda: listed(auditor, q=both) == [run_id] or None)
    assert listed(auditor, **{"label.team": [team, "other"], "workflow": name}) == [other, run_id]

    entries = eventually(
        lambda: (
            [
                e
                for e in auditor.get(f"/api/runs/{run_id}/audit").json()["entries"]
                if e["action"] == "labelled"
            ]
            if len(auditor.get(f"/api/runs/{run_id}/audit").json()["entries"]) >= 3
            else None
        )
    )
    assert [(e["actor"], e["detail"], e["reason"]) for e in entries] == [
        ("test-operator", {"set": {"env": "prod", "team": team}, "remove": []}, None),
        ("test-operator", {"set": {"stage": "qa"}, "remove": ["env"]}, "QA review"),
    ]
    stats = auditor.get("/api/stats", params={"q": f'{q} OR label.team = "other" AND workflow = "{name}"'})
    assert stats.status_code == 200, stats.text
    assert stats.json()["total_runs"] == 2 and stats.json()["by_status"]["pending"] == 2


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"set": {"Team": "x"}}, "label key 'Team'"),
        ({"set": {"t": "x" * 257}}, "256"),
        ({"set": {"t": 5}}, "string"),
        ({"set": {}, "remove": []}, "at least one"),
        ({"set": {"t": "x"}, "remove": ["t"]}, "both set and removed"),
        ({"set": {f"k{i}": "v" for i in range(65)}}, "64"),
        ({"set": {"t": "x"}, "colour": "red"}, "colour"),
    ],
)
def test_bad_label_changes_get_422_and_write_nothing(
    shared_server: Server, body: dict[str, Any], words: str
) -> None:
    operator = shared_server.client("operator")
    name = register(shared_server.client(), pipeline())["name"]
    run_id = trigger(operator, name, labels={"keep": "me"})["run_id"]
    audit_before = eventually(
        lambda: shared_server.client("auditor").get(f"/api/runs/{run_id}/audit").json()["entries"] or None
    )
    problem = assert_problem(operator.post(f"/api/runs/{run_id}/labels", json=body), 422)
    assert words in str(problem)
    assert shared_server.client("auditor").get(f"/api/runs/{run_id}/audit").json()["entries"] == audit_before


def test_labels_need_an_operator_a_known_run_and_good_trigger_labels(shared_server: Server) -> None:
    auditor = shared_server.client("auditor")
    operator = shared_server.client("operator")
    name = register(shared_server.client(), pipeline())["name"]
    run_id = trigger(operator, name)["run_id"]
    assert_problem(auditor.post(f"/api/runs/{run_id}/labels", json={"set": {"a": "b"}}), 403)
    assert_problem(operator.post("/api/runs/no-such-run/labels", json={"set": {"a": "b"}}), 404)
    bad = operator.post(
        f"/api/workflows/{name}/trigger", json={"parameters": {"query": "x"}, "labels": {"A B": "c"}}
    )
    assert "label key 'A B'" in assert_problem(bad, 422)["detail"]
    assert eventually(lambda: listed(auditor, workflow=name) or None) == [
        run_id
    ]  # no run from the refused one


def test_bad_expressions_get_422_naming_the_position(shared_server: Server) -> None:
    auditor = shared_server.client("auditor")
    for path in ("/api/runs", "/api/stats"):
        problem = assert_problem(
            auditor.get(path, params={"q": 'status = "failed" AND (label.team = 1 OR'}), 422
        )
        assert problem["position"] == 41 and "ends too early at position 41" in problem["detail"]
        problem = assert_problem(auditor.get(path, params={"q": 'colour = "red"'}), 422)
        assert problem["position"] == 1 and "unknown field 'colour'" in problem["detail"]


def test_repeated_status_means_any_and_injection_finds_nothing(shared_server: Server) -> None:
    operator = shared_server.client("operator")
    auditor = shared_server.client("auditor")
    name = register(shared_server.client(), pipeline())["name"]
    first = trigger(operator, name)["run_id"]
    second = trigger(operator, name)["run_id"]
    assert operator.post(f"/api/runs/{first}/cancel", json={}).status_code == 202
    eventually(lambda: listed(auditor, workflow=name, status="killed") or None)
    assert listed(auditor, workflow=name, status=["killed", "pending"]) == [second, first]
    assert listed(auditor, workflow=name, status="killed") == [first]
    before = auditor.get("/api/ledger/digest").json()["tree_size"]
    for q in (f"workflow = \"{name}' OR '1'='1\"", 'label.x = "a\\" OR 1=1 --"'):
        assert listed(auditor, q=q) == []
    assert_problem(auditor.get("/api/runs", params={"q": "status = 'x' OR 1=1"}), 422)
    assert auditor.get("/api/ledger/digest").json()["tree_size"] == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs?bogus=1",
        "/api/runs?batch_id=x",
        "/api/runs?status=failed&labels=x",
        "/api/stats?status=failed",
        "/api/workflows?name=x",
        "/api/tokens?x=1",
        "/api/projections?x=1",
        "/api/ledger/digest?x=1",
        "/api/runs/{run}/audit?x=1",
        "/api/runs/{run}/tasks?x=1",
        "/api/v1/namespaces?x=1",
        "/api/v1/events/lineage?x=1",
    ],
)
def test_an_unknown_query_parameter_gets_422(shared_server: Server, path: str) -> None:
    admin = shared_server.client()
    run_id = eventually(lambda: (admin.get("/api/runs", params={"limit": 1}).json()["runs"] or [None])[0])
    problem = assert_problem(admin.get(path.format(run=run_id["run_id"])), 422)
    assert "unknown query parameter" in problem["detail"]
    known = path.split("?")[0].format(run=run_id["run_id"])
    assert admin.get(known).status_code == 200
