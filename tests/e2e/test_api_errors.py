"""Authentication, roles and problem JSON for every kind of error, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from tests.e2e.conftest import SHARED_BODY_LIMIT, Server
from tests.e2e.helpers import assert_problem, pipeline, register


def test_healthz_openapi_and_docs_need_no_token_but_the_api_does(shared_server: Server) -> None:
    with shared_server.client(None) as anonymous:
        assert anonymous.get("/healthz").json()["status"] == "ok"
        paths = anonymous.get("/openapi.json").json()["paths"]
        assert {
            "/api/workflows",
            "/api/runs/{run_id}",
            "/api/runs/claim",
            "/api/runs/compare",
            "/api/files/{sha256}",
            "/api/stats",
        } <= set(paths)
        assert "swagger" in anonymous.get("/docs").text.lower()
        body = assert_problem(anonymous.get("/api/runs"), 401)
        assert "token" in body["detail"]
        assert anonymous.get("/api/runs").headers["www-authenticate"] == "Bearer"
    with shared_server.client(None, token="rl_not-a-real-token") as forged:
        assert_problem(forged.get("/api/workflows"), 401)
    with httpx.Client(base_url=shared_server.url, headers={"Authorization": "Basic dXNlcjpwdw=="}) as basic:
        assert_problem(basic.get("/api/workflows"), 401)


def test_each_role_is_refused_what_it_may_not_do_with_403(shared_server: Server) -> None:
    definition = pipeline()
    with shared_server.client("auditor") as auditor:
        assert auditor.get("/api/runs").status_code == 200
        assert_problem(auditor.post("/api/workflows", json={"definition": definition}), 403)
        assert_problem(auditor.post("/api/runs/claim"), 403)
    with shared_server.client("worker") as worker:
        assert_problem(worker.get("/api/runs"), 403)
        assert_problem(worker.get("/api/workflows"), 403)
        assert worker.post("/api/runs/claim", json={"worker_id": "idle"}).status_code in (200, 204)
    with shared_server.client("operator") as operator:
        assert register(operator, definition)["version"] == 1
        assert_problem(operator.post("/api/runs/claim"), 403)
    with shared_server.client("admin") as admin:
        assert admin.get(f"/api/workflows/{definition['name']}").status_code == 200


def test_a_revoked_token_is_refused_on_the_very_next_request(shared_server: Server) -> None:
    token = shared_server.token("operator", name="short-lived", via_cli=True)
    with shared_server.client(None, token=token) as client:
        assert client.get("/api/workflows").status_code == 200
        shared_server.cli("tokens", "revoke", "short-lived")
        assert_problem(client.get("/api/workflows"), 401)


def test_admins_manage_tokens_over_the_api_and_nobody_else_may(shared_server: Server) -> None:
    with shared_server.client("admin") as admin:
        created = admin.post("/api/tokens", json={"name": "api-made", "role": "auditor"})
        assert created.status_code == 201, created.text
        secret = created.json()["token"]
        listed = admin.get("/api/tokens").json()["tokens"]
        assert any(t["name"] == "api-made" and t["revoked_at"] is None for t in listed)
        assert all("token" not in t for t in listed)
        with shared_server.client(None, token=secret) as auditor:
            assert auditor.get("/api/runs").status_code == 200
            assert_problem(auditor.get("/api/tokens"), 403)
            assert admin.delete(f"/api/tokens/{created.json()['id']}").status_code == 204
            assert_problem(auditor.get("/api/runs"), 401)
        assert_problem(admin.delete("/api/tokens/api-made"), 404)
        assert_problem(admin.post("/api/tokens", json={"name": "x", "role": "root"}), 422)
    with shared_server.client("operator") as operator:
        assert_problem(operator.post("/api/tokens", json={"name": "y", "role": "admin"}), 403)


def test_unknown_routes_wrong_methods_and_bad_input_are_problem_json(
    shared_server: Server,
) -> None:
    with shared_server.client("admin") as client:
        assert_problem(client.get("/api/nothing-here"), 404)
        assert_problem(client.get("/api/runs/00000000-0000-0000-0000-000000000000"), 404)
        assert_problem(client.delete("/api/workflows"), 405)
        assert_problem(client.put("/api/runs/claim"), 405)
        body = assert_problem(
            client.post(
                "/api/workflows/x/trigger", content=b"{oops", headers={"Content-Type": "application/json"}
            ),
            422,
        )
        assert body["errors"][0]["type"] == "json_invalid"
        body = assert_problem(
            client.post("/api/workflows/x/trigger", json={"parameters": "not an object"}), 422
        )
        assert body["errors"][0]["loc"] == "body.parameters"
        assert_problem(client.get("/api/files/not-a-hash"), 422)
        assert_problem(client.get("/api/runs/..%2F..%2Fetc"), 404)


def test_bodies_over_the_limit_get_413_whether_declared_or_streamed(
    shared_server: Server,
) -> None:
    limit = SHARED_BODY_LIMIT

    def chunks() -> Iterator[bytes]:
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    with shared_server.client("operator") as client:
        assert client.post("/api/files", content=b"x" * limit).status_code == 201
        assert_problem(client.post("/api/files", content=b"x" * (limit + 1)), 413)
        assert_problem(client.post("/api/files", content=chunks()), 413)
        assert_problem(client.post("/api/workflows", json={"definition": {"d": "x" * limit}}), 413)
