"""The served API keeps to its own schema and to HTTP: timestamps typed ``date-time``, an
``Allow`` header on every 405, and an empty upload refused with 422 (nothing stored)."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Server
from tests.e2e.helpers import assert_problem


def test_every_timestamp_in_the_schema_is_typed_date_time(shared_server: Server) -> None:
    with shared_server.client(None) as anonymous:
        schemas: dict[str, Any] = anonymous.get("/openapi.json").json()["components"]["schemas"]

    def formats(prop: dict[str, Any]) -> set[str | None]:
        options = prop.get("anyOf", [prop])
        return {o.get("format") for o in options if o.get("type") == "string"}

    stamps = {
        (name, field): formats(prop)
        for name, schema in schemas.items()
        for field, prop in schema.get("properties", {}).items()
        if field.endswith("_at") or field == "at"
    }
    assert ("RunPublic", "created_at") in stamps and ("TokenPublic", "revoked_at") in stamps
    assert {key: f for key, f in stamps.items() if f != {"date-time"}} == {}


def test_a_405_names_every_method_the_path_takes_in_allow(shared_server: Server) -> None:
    with shared_server.client("admin") as admin:
        response = admin.put("/api/tokens")
        assert_problem(response, 405)
        assert set(response.headers["allow"].split(", ")) >= {"GET", "POST"}
        response = admin.post("/api/tokens/some-id")
        assert_problem(response, 405)
        assert "DELETE" in response.headers["allow"].split(", ")


def test_an_empty_upload_is_refused_with_422_and_stores_nothing(shared_server: Server) -> None:
    with shared_server.client("operator") as operator:
        body = assert_problem(operator.post("/api/files", content=b""), 422)
        assert "empty" in body["detail"]
        empty_sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        assert_problem(operator.get(f"/api/files/{empty_sha}"), 404)
        assert operator.post("/api/files", content=b"x").status_code == 201
