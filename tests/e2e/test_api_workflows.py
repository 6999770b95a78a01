"""Workflows over real HTTP against a real ``runledger serve``: register, list, show, trigger."""

from __future__ import annotations

from ledger.hashing import definition_hash
from tests.builders import eventually
from tests.e2e.conftest import Server
from tests.e2e.helpers import assert_problem, pipeline, register, trigger


def test_registering_json_then_identical_then_yaml_makes_versions_and_lists_them(
    shared_server: Server,
) -> None:
    definition = pipeline()
    name = definition["name"]
    as_yaml = (
        f"name: {name}\nparams:\n  query: {{type: string, required: true}}\n"
        "tasks:\n  - name: fetch\n    command: [echo, '{{ params.query }}']\n"
    )
    with shared_server.client("operator") as client:
        first = client.post("/api/workflows", json={"definition": definition})
        assert first.status_code == 201
        assert first.json()["version"] == 1
        assert len(first.json()["definition_hash"]) == 64
        again = client.post("/api/workflows", json={"definition": definition})
        assert again.status_code == 200
        assert again.json() == first.json()
        yaml = client.post("/api/workflows", content=as_yaml, headers={"Content-Type": "application/yaml"})
        assert yaml.status_code == 201, yaml.text
        assert yaml.json()["version"] == 2

        listed = {w["name"]: w for w in client.get("/api/workflows").json()["workflows"]}
        assert listed[name]["active_version"] == 2
        assert listed[name]["definition_hash"] == yaml.json()["definition_hash"]

        shown = client.get(f"/api/workflows/{name}").json()
        assert shown["version"] == 2
        assert shown["definition"]["tasks"][0]["name"] == "fetch"
        assert [v["version"] for v in shown["versions"]] == [1, 2]
        assert {v["registered_by"] for v in shown["versions"]} == {"test-operator"}
        assert_problem(client.get("/api/workflows/unknown-workflow"), 404)


def test_bad_definitions_get_422_and_register_nothing(shared_server: Server) -> None:
    definition = pipeline()
    with shared_server.client("operator") as client:
        body = assert_problem(
            client.post("/api/workflows", json={"definition": definition | {"colour": "red"}}), 422
        )
        assert "colour" in body["detail"]
        assert_problem(
            client.post("/api/workflows", content="{not json", headers={"Content-Type": "application/json"}),
            422,
        )
        assert_problem(
            client.post("/api/workflows", content="tasks: [", headers={"Content-Type": "application/yaml"}),
            422,
        )
        body = assert_problem(client.post("/api/workflows", json={"definition": definition, "x": 1}), 422)
        assert body["errors"]
        assert_problem(
            client.post("/api/workflows", content="x", headers={"Content-Type": "text/plain"}), 415
        )
        names = {w["name"] for w in client.get("/api/workflows").json()["workflows"]}
        assert definition["name"] not in names


def test_trigger_returns_202_and_the_run_answers_at_once_with_the_token_name_as_principal(
    shared_server: Server,
) -> None:
    definition = pipeline()
    with shared_server.client("operator") as client:
        digest = register(client, definition)["definition_hash"]
        response = client.post(
            f"/api/workflows/{definition['name']}/trigger", json={"parameters": {"query": "q"}}
        )
        assert response.status_code == 202
        body = response.json()
        assert body["status"] == "pending"
        assert body["definition_hash"] == digest
        run = client.get(f"/api/runs/{body['run_id']}")
        assert run.status_code == 200, run.text
        summary = run.json()
        assert summary["status"] == "pending"
        assert summary["triggered_by"] == "test-operator"
        assert summary["trigger_kind"] == "name"
        assert summary["parameters"] == {"query": "q", "limit": 5}


def test_triggering_an_unknown_workflow_is_404_and_bad_parameters_422_writing_nothing(
    shared_server: Server,
) -> None:
    definition = pipeline()
    name = definition["name"]
    with shared_server.client("operator") as client:
        register(client, definition)
        assert_problem(client.post("/api/workflows/nope/trigger", json={"parameters": {}}), 404)
        body = assert_problem(
            client.post(f"/api/workflows/{name}/trigger", json={"parameters": {"query": 3}}), 422
        )
        assert body["errors"][0]["loc"] == "parameters.query"
        assert_problem(client.post(f"/api/workflows/{name}/trigger", json={"parameters": {}}), 422)
        assert_problem(
            client.post(
                f"/api/workflows/{name}/trigger", json={"parameters": {"query": "q"}, "triggered_by": "x"}
            ),
            422,
        )
        trigger(client, name, parameters={"query": "the only run"})
        runs = eventually(lambda: client.get("/api/runs", params={"workflow": name}).json()["runs"])
        assert [r["parameters"]["query"] for r in runs] == ["the only run"]


def test_a_repeated_idempotency_key_returns_the_first_run_with_200(shared_server: Server) -> None:
    definition = pipeline()
    name = definition["name"]
    with shared_server.client("operator") as client:
        register(client, definition)
        body = {"parameters": {"query": "q"}, "idempotency_key": "k-1"}
        first = client.post(f"/api/workflows/{name}/trigger", json=body)
        second = client.post(f"/api/workflows/{name}/trigger", json=body)
        assert (first.status_code, second.status_code) == (202, 200)
        assert first.json()["run_id"] == second.json()["run_id"]
        other = client.post(f"/api/workflows/{name}/trigger", json=body | {"idempotency_key": "k-2"})
        assert other.status_code == 202
        assert other.json()["run_id"] != first.json()["run_id"]


def test_trigger_by_hash_stays_pinned_to_the_old_version(shared_server: Server) -> None:
    definition = pipeline()
    with shared_server.client("operator") as client:
        old = register(client, definition)["definition_hash"]
        assert register(client, definition | {"description": "newer"})["version"] == 2
        response = client.post(f"/api/workflows/by-hash/{old}/trigger", json={"parameters": {"query": "q"}})
        assert response.status_code == 202, response.text
        summary = client.get(f"/api/runs/{response.json()['run_id']}").json()
        assert (summary["definition_hash"], summary["version"]) == (old, 1)
        assert summary["trigger_kind"] == "hash"
        assert_problem(client.post(f"/api/workflows/by-hash/{'0' * 64}/trigger", json={}), 404)
        assert_problem(client.post("/api/workflows/by-hash/XYZ/trigger", json={}), 422)


def test_a_batch_trigger_makes_one_run_per_item_and_reports_progress(
    shared_server: Server,
) -> None:
    definition = pipeline()
    with shared_server.client("operator") as client:
        register(client, definition)
        response = client.post(
            f"/api/workflows/{definition['name']}/trigger",
            json={
                "batch": {"items": ["a", "b", "c"], "input_param": "query", "parallelism": 2},
                "parameters": {"limit": 7},
            },
        )
        assert response.status_code == 202, response.text
        batch = response.json()
        assert len(batch["run_ids"]) == 3
        progress = client.get(f"/api/batches/{batch['batch_id']}")
        assert progress.status_code == 200, progress.text
        assert progress.json()["progress"] == {"total_items": 3, "processed_items": 0, "failed_items": 0}
        assert progress.json()["run_ids"] == batch["run_ids"]
        params = [client.get(f"/api/runs/{r}").json()["parameters"] for r in batch["run_ids"]]
        assert params == [{"query": q, "limit": 7} for q in "abc"]
        assert_problem(client.get("/api/batches/no-such-batch"), 404)
        assert_problem(
            client.post(
                f"/api/workflows/{definition['name']}/trigger",
                json={"batch": {"items": ["a"], "input_param": "nope"}},
            ),
            422,
        )


def test_the_definition_hash_is_the_sha256_of_the_canonical_json_as_submitted(
    shared_server: Server,
) -> None:
    definition = pipeline(
        params={"rate": {"type": "number", "default": 0.00001}, "query": {"type": "string", "required": True}}
    )
    with shared_server.client("operator") as client:
        registered = register(client, definition)
        shown = client.get(f"/api/workflows/{definition['name']}").json()
    assert registered["definition_hash"] == definition_hash(definition)
    assert shown["definition"] == definition
    assert shown["definition"]["params"]["rate"]["default"] == 0.00001
