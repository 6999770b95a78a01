"""Small helpers shared by the API end-to-end tests."""

from __future__ import annotations

import copy
import re
import uuid
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from tests.e2e.conftest import Server

PROBLEM = "application/problem+json"

PIPELINE: dict[str, Any] = {
    "name": "pipeline",
    "description": "two tasks",
    "params": {
        "query": {"type": "string", "required": True},
        "limit": {"type": "integer", "default": 5},
    },
    "tasks": [
        {"name": "fetch", "command": ["echo", "{{ params.query }}"], "outputs": ["out.txt"]},
        {
            "name": "summarise",
            "depends_on": ["fetch"],
            "command": ["wc", "-l", "out.txt"],
            "inputs": ["out.txt"],
        },
    ],
}


def pipeline(**changes: Any) -> dict[str, Any]:
    """PIPELINE under a name of its own (tests share a server per module)."""
    return copy.deepcopy(PIPELINE) | {"name": f"pipeline-{uuid.uuid4().hex[:10]}"} | changes


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    return body


def register(client: httpx.Client, definition: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/workflows", json={"definition": definition})
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def trigger(client: httpx.Client, name: str, **body: Any) -> dict[str, Any]:
    body.setdefault("parameters", {"query": "hello"})
    response = client.post(f"/api/workflows/{name}/trigger", json=body)
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


def ui_session(server: Server, token: str) -> httpx.Client:
    """An httpx client signed in to the web UI with ``token`` (closed with the server)."""
    client = httpx.Client(base_url=server.url, timeout=60)
    server.clients.append(client)
    form = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    signed_in = client.post("/login", data={"token": token, "csrf": csrf.group(1), "next": "/runs"})
    assert signed_in.status_code == 303, signed_in.text
    return client
