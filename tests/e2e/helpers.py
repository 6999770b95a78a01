"""Small helpers shared by the API end-to-end tests."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx

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
