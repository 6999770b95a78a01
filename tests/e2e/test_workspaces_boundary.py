"""SPEC 9 across the workspace boundary, on both backends, through a real server.

Two workspaces, ``red`` and ``blue``, each with a token of every role, a workflow of the same
name (``etl``, different definitions), a finished run whose task wrote a file of its own and
read one both workspaces share (under names of their own), a pending run, a batch and an
OpenLineage run of the same namespace and job in both (reading a dataset of its own, writing
a shared-named one whose schema and column lineage name its own field); the ``default``
workspace holds an OpenLineage run too. Then every route of ``/openapi.json`` is
called with each token of one workspace, naming the other's run, batch, file, definition and
token, both without a workspace and with the other's named: the answer is 403 (the role may
not), 404 or something of the caller's own, and never holds a run id, parameter value, file
name, file hash or token name of the other (or of ``default``). A route the table below does
not know how to call fails the test: add it to ``ROUTES``.
"""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.builders import eventually
from tests.conftest import BACKENDS
from tests.e2e.conftest import Server, serving

WORKSPACES = ("red", "blue")
ROLES = ("auditor", "operator", "admin", "worker")
SHARED_BYTES = b"bytes both workspaces hold\n"
OL_RUN = str(uuid.uuid4())
#: The OpenLineage namespace, job and output dataset every workspace reports under one name.
OL_NS, OL_JOB, OL_OUT = "shared-ns", "shared-job", "shared-out"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def definition(workspace: str) -> dict[str, Any]:
    """The same workflow name in each workspace, a different definition (and hash)."""
    return {
        "name": "etl",
        "params": {
            "note": {"type": "string", "required": True},
            "motto": {"type": "string", "default": f"{workspace}-secret-motto"},
        },
        "tasks": [{"name": "fetch", "command": ["echo", "{{ params.note }}"]}],
    }


@dataclass
class Side:
    """One workspace's tokens and data, and what no other workspace may ever see of it."""

    name: str
    tokens: dict[str, str] = field(default_factory=dict)
    run_id: str = ""
    pending_run_id: str = ""
    batch_id: str = ""
    batch_run_ids: list[str] = field(default_factory=list)
    definition_hash: str = ""
    own_file: str = ""
    ol_run: str = ""

    def secrets(self) -> list[str]:
        return [
            self.run_id,
            self.pending_run_id,
            self.batch_id,
            *self.batch_run_ids,
            self.definition_hash,
            self.own_file,
            f"{self.name}-secret-note",
            f"{self.name}-pending-note",
            f"{self.name}-secret-motto",
            f"{self.name}-secret-item",
            f"{self.name}-secret-out.txt",
            f"{self.name}-secret-shared.txt",
            *(f"{self.name}-token-{role}" for role in ROLES),
            self.ol_run,
            f"{self.name}-secret-ns",
            f"{self.name}-secret-ds",
            f"{self.name}-secret-field",
        ]


@dataclass
class World:
    server: Server
    sides: dict[str, Side]
    shared_file: str
    #: What only ``default`` holds (its OpenLineage run, job, namespace and dataset).
    default_secrets: list[str]

    def other(self, name: str) -> Side:
        return next(side for side in self.sides.values() if side.name != name)


def _client(server: Server, token: str, workspace: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"}
    if workspace is not None:
        headers["Runledger-Workspace"] = workspace
    client = httpx.Client(base_url=server.url, headers=headers, timeout=60.0)
    server.clients.append(client)
    return client


def _ok(response: httpx.Response, *codes: int) -> dict[str, Any]:
    assert response.status_code in (codes or (200,)), response.text
    return dict(response.json()) if response.content else {}


def _build_side(server: Server, admin: httpx.Client, name: str, shared: str) -> Side:
    side = Side(name)
    _ok(admin.post("/api/workspaces", json={"name": name}), 201)
    for role in ROLES:
        created = _ok(
            admin.post(
                "/api/tokens", json={"name": f"{name}-token-{role}", "role": role, "workspaces": [name]}
            ),
            201,
        )
        assert created["workspaces"] == [name]
        side.tokens[role] = created["token"]
    operator = _client(server, side.tokens["operator"])  # (its only workspace: no header needed)
    worker = _client(server, side.tokens["worker"])
    side.definition_hash = _ok(operator.post("/api/workflows", json={"definition": definition(name)}), 201)[
        "definition_hash"
    ]
    own = f"{name}-secret-bytes\n".encode()
    side.own_file = _ok(operator.post("/api/files", content=own), 201)["sha256"]
    side.run_id = _ok(
        operator.post("/api/workflows/etl/trigger", json={"parameters": {"note": f"{name}-secret-note"}}), 202
    )["run_id"]
    claimed = eventually(lambda: _ok(worker.post("/api/runs/claim", json={"worker_id": "w1"}), 200, 204))
    assert claimed["run_id"] == side.run_id  # (the other workspace's pending runs are not offered)
    own_ref = {"path": f"{name}-secret-out.txt", "sha256": side.own_file, "size": len(own)}
    shared_ref = {"path": f"{name}-secret-shared.txt", "sha256": shared, "size": len(SHARED_BYTES)}
    reports = [
        {"type": "task_started", "task": "fetch", "attempt": 1},
        {
            "type": "task_finished",
            "task": "fetch",
            "attempt": 1,
            "exit_code": 0,
            "inputs": [shared_ref],
            "outputs": [own_ref],
            "stdout": {"sha256": side.own_file, "size": len(own)},
            "duration_seconds": 0.1,
        },
        {"type": "run_succeeded"},
    ]
    _ok(worker.post(f"/api/runs/{side.run_id}/events", json={"worker_id": "w1", "events": reports}))
    side.pending_run_id = _ok(
        operator.post("/api/workflows/etl/trigger", json={"parameters": {"note": f"{name}-pending-note"}}),
        202,
    )["run_id"]
    batch = _ok(
        operator.post(
            "/api/workflows/etl/trigger",
            json={"batch": {"items": [f"{name}-secret-item"], "input_param": "note", "parallelism": 1}},
        ),
        202,
    )
    side.batch_id, side.batch_run_ids = batch["batch_id"], batch["run_ids"]
    side.ol_run = str(uuid.uuid4())
    _ok(operator.post("/api/v1/lineage", json=_ol_event(name, side.ol_run)), 201)
    return side


def _ol_event(name: str, run_id: str) -> dict[str, Any]:
    """Workspace ``name``'s OpenLineage run of the shared job: it reads a dataset of its own and
    writes the shared-named one, whose schema and column lineage name a field of its own."""
    field = f"{name}-secret-field"
    mine = {"namespace": f"{name}-secret-ns", "name": f"{name}-secret-ds"}
    column = {"inputFields": [mine | {"field": field}]}
    facets = {
        "schema": {"_producer": "p", "_schemaURL": "s", "fields": [{"name": field, "type": "int"}]},
        "columnLineage": {"_producer": "p", "_schemaURL": "s", "fields": {field: column}},
    }
    return {
        "eventType": "START",
        "eventTime": "2026-01-02T03:04:05Z",
        "run": {"runId": run_id},
        "job": {"namespace": OL_NS, "name": OL_JOB},
        "inputs": [mine],
        "outputs": [{"namespace": OL_NS, "name": OL_OUT, "facets": facets}],
        "producer": "p",
        "schemaURL": SCHEMA_URL,
    }


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with serving(request.param, tmp_path_factory, "workspaces") as server:
        admin = _client(server, server.admin_token)
        shared = _ok(admin.post("/api/files", content=SHARED_BYTES), 201)["sha256"]
        sides = {name: _build_side(server, admin, name, shared) for name in WORKSPACES}
        lineage = {
            "eventType": "START",
            "eventTime": "2026-01-02T03:04:05Z",
            "run": {"runId": OL_RUN},
            "job": {"namespace": "default-secret-ns", "name": "default-secret-job"},
            "inputs": [{"namespace": "default-secret-ns", "name": "default-secret-ds"}],
            "producer": "p",
            "schemaURL": SCHEMA_URL,
        }
        _ok(admin.post("/api/v1/lineage", json=lineage), 201)
        world = World(
            server, sides, shared, [OL_RUN, "default-secret-ns", "default-secret-job", "default-secret-ds"]
        )
        # Every view has seen everything (so a list that leaves the other's rows out does so
        # because it is confined, not because it lags).
        auditor = _client(server, sides["blue"].tokens["auditor"])
        eventually(lambda: any(r["run_id"] == sides["blue"].batch_run_ids[0] for r in _runs(auditor)))
        eventually(lambda: admin.get(f"/api/v1/jobs/runs/{OL_RUN}").status_code == 200)
        for side in sides.values():
            eventually(_marquez_has(_client(server, server.admin_token, side.name), side.ol_run))
        yield world


def _marquez_has(client: httpx.Client, run_id: str) -> Callable[[], bool]:
    return lambda: client.get(f"/api/v1/jobs/runs/{run_id}").status_code == 200


def _runs(client: httpx.Client) -> list[dict[str, Any]]:
    return list(_ok(client.get("/api/runs", params={"limit": 1000}))["runs"])


# ---- how to call each route, naming the other workspace's things ---------------------------
@dataclass(frozen=True)
class Call:
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    #: The call names something of the other workspace: only 403 or 404 may answer.
    targets: bool = False


Route = Callable[[Side, World], Call]


def _public_key_pem() -> str:
    """A new Ed25519 public key (PEM), for registering a signing key of the caller's own."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _signature_body(v: Side) -> dict[str, Any]:
    return {
        "meaning": "reviewed",
        "signed_at": "2026-01-01T00:00:00.000000Z",
        "head_hash": "0" * 64,
        "key_fingerprint": "0" * 64,
        "signature": "0" * 128,
    }


def _neutral_definition() -> dict[str, Any]:
    return {"name": "probe", "tasks": [{"name": "t", "command": ["true"]}]}


ROUTES: dict[str, Route] = {
    "GET /healthz": lambda v, w: Call("/healthz"),
    "POST /api/workflows": lambda v, w: Call("/api/workflows", json={"definition": _neutral_definition()}),
    "GET /api/workflows": lambda v, w: Call("/api/workflows"),
    "GET /api/workflows/{name}": lambda v, w: Call("/api/workflows/etl"),
    "POST /api/workflows/by-hash/{definition_hash}/trigger": lambda v, w: Call(
        f"/api/workflows/by-hash/{v.definition_hash}/trigger",
        json={"parameters": {"note": "x"}},
        targets=True,
    ),
    "POST /api/workflows/{name}/trigger": lambda v, w: Call(
        "/api/workflows/etl/trigger", json={"parameters": {"note": "probe"}}
    ),
    "POST /api/runs/claim": lambda v, w: Call("/api/runs/claim", json={}),
    "POST /api/runs/{run_id}/events": lambda v, w: Call(
        f"/api/runs/{v.pending_run_id}/events", json={"events": [{"type": "run_succeeded"}]}, targets=True
    ),
    "GET /api/runs/{run_id}/events": lambda v, w: Call(f"/api/runs/{v.run_id}/events", targets=True),
    "GET /api/runs": lambda v, w: Call("/api/runs", params={"workflow": "etl", "limit": 1000}),
    "GET /api/runs/compare": lambda v, w: Call(
        "/api/runs/compare", params={"a": v.run_id, "b": v.pending_run_id}, targets=True
    ),
    "GET /api/runs/{run_id}": lambda v, w: Call(f"/api/runs/{v.run_id}", targets=True),
    "GET /api/runs/{run_id}/tasks": lambda v, w: Call(f"/api/runs/{v.run_id}/tasks", targets=True),
    "GET /api/runs/{run_id}/tasks/{task_name}": lambda v, w: Call(
        f"/api/runs/{v.run_id}/tasks/fetch", targets=True
    ),
    "GET /api/runs/{run_id}/tasks/{task_name}/logs": lambda v, w: Call(
        f"/api/runs/{v.run_id}/tasks/fetch/logs", targets=True
    ),
    "GET /api/runs/{run_id}/files": lambda v, w: Call(f"/api/runs/{v.run_id}/files", targets=True),
    "GET /api/runs/{run_id}/lineage": lambda v, w: Call(
        f"/api/runs/{v.run_id}/lineage", params={"depth": 10}, targets=True
    ),
    "GET /api/runs/{run_id}/audit": lambda v, w: Call(f"/api/runs/{v.run_id}/audit", targets=True),
    "POST /api/runs/{run_id}/cancel": lambda v, w: Call(f"/api/runs/{v.pending_run_id}/cancel", targets=True),
    "POST /api/runs/{run_id}/expunge": lambda v, w: Call(
        f"/api/runs/{v.run_id}/expunge", json={"reason": "probe"}, targets=True
    ),
    "POST /api/runs/{run_id}/hold": lambda v, w: Call(f"/api/runs/{v.run_id}/hold", json={}, targets=True),
    "DELETE /api/runs/{run_id}/hold": lambda v, w: Call(f"/api/runs/{v.run_id}/hold", targets=True),
    "POST /api/signing-keys": lambda v, w: Call("/api/signing-keys", json={"public_key": _public_key_pem()}),
    "GET /api/signing-keys": lambda v, w: Call("/api/signing-keys"),
    "GET /api/signing-keys/{fingerprint}": lambda v, w: Call(f"/api/signing-keys/{'0' * 64}"),
    "DELETE /api/signing-keys/{fingerprint}": lambda v, w: Call(f"/api/signing-keys/{'0' * 64}"),
    "POST /api/runs/{run_id}/signatures": lambda v, w: Call(
        f"/api/runs/{v.run_id}/signatures", json=_signature_body(v), targets=True
    ),
    "GET /api/runs/{run_id}/signatures": lambda v, w: Call(f"/api/runs/{v.run_id}/signatures", targets=True),
    "GET /api/runs/{run_id}/report": lambda v, w: Call(f"/api/runs/{v.run_id}/report", targets=True),
    "GET /api/audit": lambda v, w: Call("/api/audit"),
    "POST /api/runs/{run_id}/labels": lambda v, w: Call(
        f"/api/runs/{v.run_id}/labels", json={"set": {"probe": "x"}}, targets=True
    ),
    "POST /api/runs/{run_id}/replay": lambda v, w: Call(
        f"/api/runs/{v.run_id}/replay", json={}, targets=True
    ),
    "POST /api/runs/{run_id}/resume": lambda v, w: Call(
        f"/api/runs/{v.run_id}/resume", json={"from_task": "fetch"}, targets=True
    ),
    "POST /api/files": lambda v, w: Call("/api/files", content=b"probe bytes\n"),
    "GET /api/files/{sha256}": lambda v, w: Call(f"/api/files/{v.own_file}", targets=True),
    "GET /api/batches/{batch_id}": lambda v, w: Call(f"/api/batches/{v.batch_id}", targets=True),
    "GET /api/stats": lambda v, w: Call("/api/stats"),
    "GET /api/projections": lambda v, w: Call("/api/projections"),
    "GET /api/tokens": lambda v, w: Call("/api/tokens"),
    "POST /api/tokens": lambda v, w: Call(
        "/api/tokens", json={"name": "probe", "role": "auditor", "workspaces": [v.name]}, targets=True
    ),
    "DELETE /api/tokens/{token_ref}": lambda v, w: Call(f"/api/tokens/{v.name}-token-auditor", targets=True),
    "GET /api/workspaces": lambda v, w: Call("/api/workspaces"),
    "POST /api/workspaces": lambda v, w: Call("/api/workspaces", json={"name": "probe"}),
    # OpenLineage and Marquez's reads answer in every workspace, each with its own only: a
    # call naming the other's run or its own-named namespace or dataset is not found; one
    # of the names both workspaces use answers the caller's own (the check below finds any
    # run id, namespace, dataset or field of the other in it).
    "POST /api/v1/lineage": lambda v, w: Call(
        "/api/v1/lineage", json=_ol_event(v.name, v.ol_run) | {"eventType": "COMPLETE"}, targets=True
    ),
    "GET /api/v1/lineage": lambda v, w: Call(
        "/api/v1/lineage", params={"nodeId": f"dataset:{v.name}-secret-ns:{v.name}-secret-ds"}, targets=True
    ),
    "GET /api/v1/namespaces/{ns}/jobs/{job}/runs": lambda v, w: Call(
        f"/api/v1/namespaces/{OL_NS}/jobs/{OL_JOB}/runs"
    ),
    "GET /api/v1/namespaces/{ns}/jobs/{job}": lambda v, w: Call(f"/api/v1/namespaces/{OL_NS}/jobs/{OL_JOB}"),
    "GET /api/v1/namespaces/{ns}/jobs": lambda v, w: Call(f"/api/v1/namespaces/{OL_NS}/jobs"),
    "GET /api/v1/namespaces/{ns}/datasets/{ds}/versions": lambda v, w: Call(
        f"/api/v1/namespaces/{v.name}-secret-ns/datasets/{v.name}-secret-ds/versions", targets=True
    ),
    "GET /api/v1/namespaces/{ns}/datasets/{ds}": lambda v, w: Call(
        f"/api/v1/namespaces/{v.name}-secret-ns/datasets/{v.name}-secret-ds", targets=True
    ),
    "GET /api/v1/namespaces/{ns}/datasets": lambda v, w: Call(f"/api/v1/namespaces/{OL_NS}/datasets"),
    "GET /api/v1/namespaces/{ns}": lambda v, w: Call(f"/api/v1/namespaces/{v.name}-secret-ns", targets=True),
    "GET /api/v1/namespaces": lambda v, w: Call("/api/v1/namespaces"),
    "GET /api/v1/jobs/runs/{run_id}/facets": lambda v, w: Call(
        f"/api/v1/jobs/runs/{v.ol_run}/facets", params={"type": "job"}, targets=True
    ),
    "GET /api/v1/jobs/runs/{run_id}": lambda v, w: Call(f"/api/v1/jobs/runs/{v.ol_run}", targets=True),
    "GET /api/v1/column-lineage": lambda v, w: Call(
        "/api/v1/column-lineage", params={"nodeId": f"dataset:{OL_NS}:{OL_OUT}", "withDownstream": True}
    ),
    "GET /api/v1/events/lineage": lambda v, w: Call("/api/v1/events/lineage"),
    "GET /api/v1/search": lambda v, w: Call("/api/v1/search", params={"q": "secret"}),
    "GET /readyz": lambda v, w: Call("/readyz"),
    "GET /metrics": lambda v, w: Call("/metrics"),
    "GET /api/ledger/digest": lambda v, w: Call("/api/ledger/digest"),
    "GET /api/ledger/proof/inclusion": lambda v, w: Call(
        "/api/ledger/proof/inclusion", params={"position": 0}
    ),
    "GET /api/ledger/proof/consistency": lambda v, w: Call(
        "/api/ledger/proof/consistency", params={"first": 1}
    ),
    "POST /api/ledger/verify": lambda v, w: Call("/api/ledger/verify"),
    "GET /api/ledger/public-key": lambda v, w: Call("/api/ledger/public-key"),
    "GET /api/export": lambda v, w: Call("/api/export"),
}
ALLOWED = {200, 201, 202, 204, 403, 404, 422}


def _body_text(response: httpx.Response) -> str:
    """What the answer says, a tar's members included (an export)."""
    if response.headers.get("content-type", "").startswith("application/x-tar"):
        with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
            return "\n".join(
                (tar.extractfile(m) or io.BytesIO()).read().decode("utf-8", "replace")
                for m in tar.getmembers()
            )
    return response.text


def test_every_route_answers_404_or_only_the_callers_own_across_the_boundary(world: World) -> None:
    operations = [
        f"{method.upper()} {path}"
        for path, methods in httpx.get(f"{world.server.url}/openapi.json").json()["paths"].items()
        for method in methods
    ]
    unknown = [op for op in operations if op not in ROUTES]
    assert not unknown, f"add these routes to ROUTES in {Path(__file__).name} (how to call them): {unknown}"
    tried = 0
    for caller in world.sides.values():
        victim = world.other(caller.name)
        secrets = [s for s in [*victim.secrets(), *world.default_secrets] if s]
        for role in ROLES:
            for named in (None, victim.name):
                client = _client(world.server, caller.tokens[role], named)
                for op in operations:
                    method, _ = op.split(" ", 1)
                    call = ROUTES[op](victim, world)
                    response = client.request(
                        method, call.path, params=call.params, json=call.json, content=call.content
                    )
                    where = (
                        f"{op} as {caller.name}'s {role} (workspace named: {named}): {response.status_code}"
                    )
                    assert response.status_code in ALLOWED, f"{where} {response.text[:300]}"
                    if call.targets or (named is not None and op not in UNCONFINED):
                        assert response.status_code in {403, 404, 422}, f"{where} {response.text[:300]}"
                    text = _body_text(response)
                    # (a 404 may echo what the caller asked for: that discloses nothing)
                    asked = f"{call.path} {call.params} {call.json}"
                    leaked = [s for s in secrets if s in text and s not in asked]
                    assert not leaked, f"{where} shows {leaked}: {text[:600]}"
                    tried += 1
    assert tried == len(operations) * len(ROLES) * 2 * len(WORKSPACES)


#: Routes that take no workspace (nothing in them belongs to one, or they are the ledger-wide
#: Merkle tree): naming another workspace changes nothing there.
UNCONFINED = {
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "POST /api/files",
    "GET /api/projections",
    "GET /api/tokens",
    "GET /api/workspaces",
    "POST /api/workspaces",
    "GET /api/ledger/digest",
    "GET /api/ledger/proof/inclusion",
    "GET /api/ledger/proof/consistency",
    "POST /api/ledger/verify",
    "GET /api/ledger/public-key",
}


def test_each_workspace_sees_its_own_runs_workflows_files_and_lineage(world: World) -> None:
    for side in world.sides.values():
        auditor = _client(world.server, side.tokens["auditor"])
        runs = _runs(auditor)
        assert {side.run_id, side.pending_run_id, *side.batch_run_ids} <= {r["run_id"] for r in runs}
        assert {r["workspace"] for r in runs} == {side.name}
        assert (
            _ok(auditor.get(f"/api/runs/{side.run_id}"))["parameters"]["note"] == f"{side.name}-secret-note"
        )
        (etl,) = [w for w in _ok(auditor.get("/api/workflows"))["workflows"] if w["name"] == "etl"]
        assert etl["name"] == "etl" and etl["definition_hash"] == side.definition_hash
        assert auditor.get(f"/api/files/{side.own_file}").content == f"{side.name}-secret-bytes\n".encode()
        assert auditor.get(f"/api/files/{world.shared_file}").content == SHARED_BYTES
        graph = _ok(auditor.get(f"/api/runs/{side.run_id}/lineage", params={"depth": 10}))
        shared = next(n for n in graph["nodes"] if n["id"] == f"file:{world.shared_file}")
        assert shared["path"] == f"{side.name}-secret-shared.txt"
        assert {n["run_id"] for n in graph["nodes"] if n["kind"] == "run"} == {side.run_id}
        assert [w["name"] for w in _ok(auditor.get("/api/workspaces"))["workspaces"]] == [side.name]
        stats = _ok(auditor.get("/api/stats"))
        assert stats["total_runs"] >= 3 and "etl" in [p["workflow"] for p in stats["per_workflow"]]
        # its OpenLineage run, of the job both workspaces report, is its own
        assert _ok(auditor.get(f"/api/runs/{side.ol_run}"))["workspace"] == side.name
        job = _ok(auditor.get(f"/api/v1/namespaces/{OL_NS}/jobs/{OL_JOB}"))
        assert job["latestRun"]["id"] == side.ol_run
        assert job["inputs"] == [{"namespace": f"{side.name}-secret-ns", "name": f"{side.name}-secret-ds"}]
        out = _ok(auditor.get(f"/api/v1/namespaces/{OL_NS}/datasets/{OL_OUT}"))
        assert [f["name"] for f in out["fields"]] == [f"{side.name}-secret-field"]
        node = f"dataset:{side.name}-secret-ns:{side.name}-secret-ds"
        found = _ok(auditor.get("/api/v1/lineage", params={"nodeId": node, "depth": 5}))
        assert {n["id"] for n in found["graph"]} == {
            node,
            f"job:{OL_NS}:{OL_JOB}",
            f"dataset:{OL_NS}:{OL_OUT}",
        }
    admin = _client(world.server, world.server.admin_token)
    assert [w["name"] for w in _ok(admin.get("/api/workspaces"))["workspaces"]] == ["default", "blue", "red"]
    assert {r["workspace"] for r in _runs(_client(world.server, world.server.admin_token, "red"))} == {"red"}


def test_a_token_of_several_workspaces_names_one(world: World) -> None:
    admin = _client(world.server, world.server.admin_token)
    token = _ok(
        admin.post("/api/tokens", json={"name": "both", "role": "auditor", "workspaces": ["red", "blue"]}),
        201,
    )["token"]
    both = _client(world.server, token)
    assert both.get("/api/runs").status_code == 422
    red, blue = world.sides["red"], world.sides["blue"]
    assert {r["workspace"] for r in _runs(_client(world.server, token, "red"))} == {"red"}
    listed = _ok(both.get("/api/runs", params={"workspace": "blue", "limit": 1000}))["runs"]
    assert {r["workspace"] for r in listed} == {"blue"}
    assert both.get(f"/api/runs/{blue.run_id}").status_code == 200  # (a run names its workspace)
    assert _client(world.server, token, "red").get(f"/api/runs/{blue.run_id}").status_code == 404
    assert both.get("/api/runs", headers={"Runledger-Workspace": "default"}).status_code == 404
    assert both.get("/api/runs", params={"workspace": "BAD!"}).status_code == 422
    assert red.name in [w["name"] for w in _ok(both.get("/api/workspaces"))["workspaces"]]


def test_a_worker_never_claims_another_workspaces_run(world: World) -> None:
    red, blue = world.sides["red"], world.sides["blue"]
    red_operator = _client(world.server, red.tokens["operator"])
    fresh = _ok(red_operator.post("/api/workflows/etl/trigger", json={"parameters": {"note": "n"}}), 202)[
        "run_id"
    ]
    blue_worker, blue_auditor = (
        _client(world.server, blue.tokens["worker"]),
        _client(world.server, blue.tokens["auditor"]),
    )
    claimed = []
    while (answer := blue_worker.post("/api/runs/claim", json={})).status_code == 200:
        claimed.append(answer.json()["run_id"])
        assert _ok(blue_auditor.get(f"/api/runs/{claimed[-1]}"))["workspace"] == "blue"
        assert len(claimed) < 100
    assert answer.status_code == 204 and fresh not in claimed
    red_auditor = _client(world.server, red.tokens["auditor"])
    assert _ok(red_auditor.get(f"/api/runs/{fresh}"))["status"] == "pending"
    red_worker = _client(world.server, red.tokens["worker"])

    def claims_fresh() -> bool:
        while (answer := red_worker.post("/api/runs/claim", json={})).status_code == 200:
            if answer.json()["run_id"] == fresh:
                return True
        return False

    assert eventually(claims_fresh)


def test_an_export_of_one_workspace_holds_nothing_of_the_other_and_verifies(
    world: World, tmp_path: Path
) -> None:
    red, blue = world.sides["red"], world.sides["blue"]
    auditor = _client(world.server, red.tokens["auditor"])
    response = auditor.get("/api/export")
    assert response.status_code == 200
    bundle = tmp_path / "red.tar"
    bundle.write_bytes(response.content)
    text = _body_text(response)
    assert red.run_id in text and f"{red.name}-secret-note" in text
    leaked = [s for s in [*blue.secrets(), *world.default_secrets] if s in text]
    assert not leaked, leaked
    key = tmp_path / "key.pem"
    key.write_text(_ok(auditor.get("/api/ledger/public-key"))["public_key"])
    checked = world.server.cli("verify-bundle", str(bundle), "--public-key", str(key), check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
