"""What a first hour with the API trips on (issue 17), against a real server on both backends:
refusals that write nothing and say why, and a batch's per-item results."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.builders import eventually
from tests.e2e.conftest import Server
from tests.e2e.helpers import assert_problem, pipeline, register, trigger


def test_a_file_parameter_naming_no_stored_file_gets_422_and_no_run(shared_server: Server) -> None:
    definition = pipeline(params={"seed": {"type": "file", "required": True}})
    definition["tasks"][0]["command"] = ["cat", "{{ params.seed }}"]
    missing = hashlib.sha256(b"not uploaded").hexdigest()
    with shared_server.client("operator") as client:
        register(client, definition)
        body = assert_problem(
            client.post(
                f"/api/workflows/{definition['name']}/trigger", json={"parameters": {"seed": missing}}
            ),
            422,
        )
        assert missing in body["detail"]
        assert client.get("/api/runs", params={"workflow": definition["name"]}).json()["runs"] == []
        stored = client.post("/api/files", content=b"uploaded").json()["sha256"]
        trigger(client, definition["name"], parameters={"seed": stored})


def test_an_idempotency_key_reused_with_other_parameters_gets_409_naming_the_first_run(
    shared_server: Server,
) -> None:
    definition = pipeline()
    with shared_server.client("operator") as client:
        register(client, definition)
        first = trigger(client, definition["name"], parameters={"query": "a"}, idempotency_key="key-1")
        url = f"/api/workflows/{definition['name']}/trigger"
        same = client.post(url, json={"parameters": {"query": "a"}, "idempotency_key": "key-1"})
        assert (same.status_code, same.json()["run_id"]) == (200, first["run_id"])
        body = assert_problem(
            client.post(url, json={"parameters": {"query": "b"}, "idempotency_key": "key-1"}), 409
        )
        assert body["run_id"] == first["run_id"]
        assert first["run_id"] in body["detail"]

        def listed() -> list[str]:
            runs = client.get("/api/runs", params={"workflow": definition["name"]}).json()["runs"]
            return [r["run_id"] for r in runs]

        eventually(lambda: listed() != [], timeout=20)  # the listing's view may lag a moment
        assert listed() == [first["run_id"]]


def test_a_template_left_open_is_refused_at_registration_with_its_position(shared_server: Server) -> None:
    definition = pipeline()
    definition["tasks"][0]["command"] = ["echo", "{{ params.query "]
    with shared_server.client("operator") as client:
        body = assert_problem(client.post("/api/workflows", json={"definition": definition}), 422)
        assert "task 'fetch': command[1] character 0" in body["detail"]
        assert_problem(client.get(f"/api/workflows/{definition['name']}"), 404)


def test_an_unknown_key_is_named_with_the_key_it_is_likely_to_mean(shared_server: Server) -> None:
    definition = pipeline()
    definition["params"]["query"] = {"type": "string", "requird": True}
    with shared_server.client("operator") as client:
        body = assert_problem(client.post("/api/workflows", json={"definition": definition}), 422)
        assert "unknown key 'requird' (did you mean 'required'?)" in body["detail"]
        assert "Extra inputs are not permitted" not in body["detail"]


def test_a_json_body_sent_as_a_form_is_told_so(shared_server: Server) -> None:
    definition = pipeline()
    with shared_server.client("operator") as client:
        register(client, definition)
        response = client.post(
            f"/api/workflows/{definition['name']}/trigger",
            content=b'{"parameters": {"query": "x"}}',
            headers={"Content-Type": "application/x-www-form-urlencoded"},  # what curl -d sends
        )
        body = assert_problem(response, 422)
        assert "application/x-www-form-urlencoded" in body["detail"]
        assert "Content-Type: application/json" in body["detail"]
        assert client.get("/api/runs", params={"workflow": definition["name"]}).json()["runs"] == []


def test_a_batch_answers_each_item_with_its_run_and_status(shared_server: Server) -> None:
    definition = pipeline()
    with shared_server.client("operator") as client:
        register(client, definition)
        response = client.post(
            f"/api/workflows/{definition['name']}/trigger",
            json={"batch": {"items": ["a", "b"], "input_param": "query", "parallelism": 1}},
        )
        batch = response.json()
        client.post(f"/api/runs/{batch['run_ids'][1]}/cancel")

        def killed_item_shows() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = client.get(f"/api/batches/{batch['batch_id']}").json()["items"]
            assert items[1]["status"] == "killed"  # once the view has caught up
            return items

        items = eventually(killed_item_shows)
        assert [(i["item"], i["run_id"]) for i in items] == list(
            zip(["a", "b"], batch["run_ids"], strict=True)
        )
        assert all(i["status"] in {"pending", "running", "success", "failed", "killed"} for i in items)


def test_an_unknown_key_in_a_request_body_is_named_with_the_key_it_is_likely_to_mean(
    shared_server: Server,
) -> None:
    definition = pipeline()
    with shared_server.client("operator") as client:
        register(client, definition)
        url = f"/api/workflows/{definition['name']}/trigger"
        body = assert_problem(client.post(url, json={"paramters": {"query": "x"}}), 422)
        assert "unknown key 'paramters' (did you mean 'parameters'?)" in body["detail"]
        nested = {"batch": {"itms": ["a"], "input_param": "query"}}
        body = assert_problem(client.post(url, json=nested), 422)
        assert "unknown key 'itms' (did you mean 'items'?)" in body["detail"]
        assert "Extra inputs are not permitted" not in body["detail"]
