"""Poisoned input is refused at the door with 422 problem JSON and nothing is written: NUL
characters and lone surrogates in any JSON or YAML body (parameters, worker reports,
OpenLineage facets, token names, definitions), paths and queries; YAML aliases; nesting past
64 levels; positions beyond 64 bits. Each answer comes at once (the client's timeout is 10 s;
a 400-byte alias bomb used to hold a core for 92 s)."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

import httpx

from tests.e2e.conftest import Server
from tests.e2e.helpers import assert_problem, pipeline, register, trigger

QUICK = 10.0
ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)


def with_deep(body: dict[str, Any], levels: int) -> bytes:
    """``body`` as JSON text with its ``"DEEP"`` string replaced by ``levels`` nested objects
    (written by hand: Python's json cannot encode 1,000 levels)."""
    nested = '{"n": ' * levels + '"leaf"' + "}" * levels
    return json.dumps(body).replace('"DEEP"', nested).encode()


def quick(server: Server, role: str) -> httpx.Client:
    client = server.client(role)
    client.timeout = httpx.Timeout(QUICK)
    return client


def written(client: httpx.Client) -> int:
    """How many events the ledger holds (the digest catches up on every request)."""
    return int(client.get("/api/ledger/digest").json()["tree_size"])


def refused(response: httpx.Response, *words: str) -> None:
    body = assert_problem(response, 422)
    for word in words:
        assert word in body["detail"], body


def ol_event(run_facets: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventType": "START",
        "eventTime": "2026-01-02T03:04:05Z",
        "run": {"runId": str(uuid.uuid4()), "facets": run_facets},
        "job": {"namespace": "poison", "name": "job"},
        "inputs": [],
        "outputs": [],
        "producer": "https://example.com/poison",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }


def test_nul_and_lone_surrogates_are_refused_in_every_body_and_nothing_is_written(server: Server) -> None:
    operator = quick(server, "operator")
    admin = quick(server, "admin")
    worker = quick(server, "worker")
    definition = pipeline()
    register(operator, definition)
    name = definition["name"]
    run_id = trigger(operator, name)["run_id"]
    claimed = worker.post("/api/runs/claim", json={"worker_id": "w1"})
    assert claimed.status_code == 200 and claimed.json()["run_id"] == run_id, claimed.text
    before = written(admin)

    refused(operator.post(f"/api/workflows/{name}/trigger", json={"parameters": {"query": "a\x00b"}}), "NUL")
    lone = b'{"parameters": {"query": "\\ud800"}}'  # json.dumps would refuse to send it
    headers = {"Content-Type": "application/json"}
    refused(operator.post(f"/api/workflows/{name}/trigger", content=lone, headers=headers), "surrogate")
    for field in ("error", "host", "command"):
        report = {"type": "task_finished", "task": "fetch", "exit_code": 1, field: "x\x00y"}
        refused(
            worker.post(f"/api/runs/{run_id}/events", json={"worker_id": "w1", "events": [report]}), "NUL"
        )
    refused(operator.post("/api/v1/lineage", json=ol_event({"f": {"k": "v\x00"}})), "NUL")
    refused(operator.post("/api/v1/lineage", json=ol_event({"f\x00": {}})), "NUL")
    squeezed = gzip.compress(json.dumps(ol_event({"f": {"k": "v\x00"}})).encode())
    gz = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    refused(operator.post("/api/v1/lineage", content=squeezed, headers=gz), "NUL")
    refused(admin.post("/api/tokens", json={"name": "bad\x00name", "role": "auditor"}), "NUL")
    refused(operator.post("/api/workflows", json={"definition": pipeline(description="a\x00b")}), "NUL")
    yaml_nul = f'name: {name}-yaml\ndescription: "a\\0b"\ntasks: [{{name: t, command: ["true"]}}]\n'
    refused(
        operator.post("/api/workflows", content=yaml_nul, headers={"Content-Type": "application/yaml"}), "NUL"
    )
    refused(operator.get("/api/runs", params={"workflow": "a\x00b"}), "NUL")
    assert_problem(operator.get("/api/runs/a%00b"), 422)

    assert written(admin) == before
    assert all("\x00" not in t["name"] for t in admin.get("/api/tokens").json()["tokens"])
    run = operator.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "running", run


def test_yaml_aliases_deep_nesting_and_huge_positions_get_a_quick_422(shared_server: Server) -> None:
    operator = quick(shared_server, "operator")
    before = written(operator)
    yaml_headers = {"Content-Type": "application/yaml"}
    refused(operator.post("/api/workflows", content=ALIAS_BOMB, headers=yaml_headers), "aliases")
    anchored = 'name: anchored\ntasks: [&t {name: t, command: ["true"]}]\n'
    refused(operator.post("/api/workflows", content=anchored, headers=yaml_headers), "anchors")
    deep_yaml = "name: deep\nx: " + "[" * 1000 + "]" * 1000 + "\n"
    refused(operator.post("/api/workflows", content=deep_yaml, headers=yaml_headers), "deeper than 64")
    as_json = {"Content-Type": "application/json"}
    deep_definition = with_deep({"definition": pipeline(description="DEEP")}, 1000)
    refused(operator.post("/api/workflows", content=deep_definition, headers=as_json), "deeper than 64")
    deep_facet = with_deep(ol_event({"f": "DEEP"}), 1000)
    refused(operator.post("/api/v1/lineage", content=deep_facet, headers=as_json), "deeper than 64")
    assert written(operator) == before
    # the facet at levels 4 and below: 60 more still fit in the bound of 64 on the whole body
    fits = with_deep(ol_event({"f": "DEEP"}), 60)
    assert operator.post("/api/v1/lineage", content=fits, headers=as_json).status_code == 201
    for query in ("position=1e30", "position=99999999999999999999999", "position=0&tree_size=1e30"):
        assert_problem(operator.get(f"/api/ledger/proof/inclusion?{query}"), 422)
    assert_problem(operator.get("/api/ledger/proof/consistency?first=1&second=1e30"), 422)
