"""The web UI's session over HTTP against a real ``runledger serve --workers 2``: it holds across
the processes, revocation ends it, and hostile input gets a problem page that writes nothing."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e


def _sign_in(url: str, token: str, next_path: str = "/runs") -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(base_url=url, timeout=30)
    form = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    answer = client.post("/login", data={"token": token, "csrf": csrf.group(1), "next": next_path})
    return client, answer


def test_a_session_holds_across_two_server_processes_until_its_token_is_revoked(
    server_factory: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two worker processes each import the app before either answers: on a loaded 2-core
    # machine that can take longer than one process's start.
    monkeypatch.setattr("tests.e2e.conftest.START_TIMEOUT", 90.0)
    server = server_factory(workers=2)
    token = server.token("auditor", "ui-session")
    client, answer = _sign_in(server.url, token)
    try:
        assert answer.status_code == 303 and answer.headers["location"] == "/runs"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and token not in cookie
        # New connections each time, so both worker processes answer some of them.
        for _ in range(12):
            page = httpx.get(f"{server.url}/runs", cookies=dict(client.cookies), timeout=30)
            assert page.status_code == 200 and "Sign out" in page.text
        revoked = server.client("admin").delete(f"/api/tokens/{_token_id(server, 'ui-session')}")
        assert revoked.status_code in (200, 204), revoked.text
        after = client.get("/runs")
        assert after.status_code == 303 and after.headers["location"].startswith("/login")
    finally:
        client.close()


def _token_id(server: Server, name: str) -> str:
    tokens = server.client("admin").get("/api/tokens").json()["tokens"]
    return str(next(t["id"] for t in tokens if t["name"] == name))


def test_hostile_input_gets_a_problem_page_and_no_redirect_leaves_the_server(shared_server: Server) -> None:
    client, answer = _sign_in(shared_server.url, shared_server.token("operator"), "//evil.example/x")
    try:
        assert answer.status_code == 303 and answer.headers["location"] == "/runs"
        bad = client.get("/runs", params={"status": "<i>x</i>"})
        assert bad.status_code == 422 and "text/html" in bad.headers["content-type"]
        assert "<i>x" not in bad.text and "got &#39;&lt;i&gt;x&lt;/i&gt;&#39;" in bad.text
        assert client.get("/runs/no-such-run").status_code == 404
        assert client.get("/runs", params={"cursor": "not-a-cursor"}).status_code == 422
        # A state-changing form posted without its CSRF token is refused before anything else.
        forged = client.post("/runs/no-such-run/cancel", data={"reason": "x"})
        assert forged.status_code == 403 and "CSRF" in forged.text
        # Signing in needs the sign-in form's own token too.
        fresh = httpx.post(
            f"{shared_server.url}/login", data={"token": shared_server.admin_token}, timeout=30
        )
        assert fresh.status_code == 403 and "rl_session" not in fresh.headers.get("set-cookie", "")
    finally:
        client.close()


def test_an_operator_replays_with_overrides_and_resumes_from_a_task_through_the_forms(
    shared_server: Server,
) -> None:
    api = shared_server.client("admin")
    definition = {
        "name": "ui-forms",
        "params": {"n": {"type": "integer", "default": 1}},
        "tasks": [{"name": "one", "command": ["true"]}],
    }
    registered = api.post("/api/workflows", json={"definition": definition})
    assert registered.status_code in (200, 201), registered.text
    original = api.post("/api/workflows/ui-forms/trigger", json={}).json()["run_id"]
    client, _ = _sign_in(shared_server.url, shared_server.token("operator"))
    try:
        page = client.get(f"/runs/{original}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert page.status_code == 200 and csrf is not None and 'id="replay-form"' in page.text
        bad = client.post(
            f"/runs/{original}/replay", data={"csrf": csrf.group(1), "overrides": "no equals sign"}
        )
        assert bad.status_code == 422 and "name=value" in bad.text
        replayed = client.post(
            f"/runs/{original}/replay",
            data={"csrf": csrf.group(1), "overrides": "n=5", "reason": "rerun with n=5"},
        )
        assert replayed.status_code == 303
        replay_id = replayed.headers["location"].removeprefix("/runs/")
        replay = api.get(f"/api/runs/{replay_id}").json()
        assert replay["replay_of"] == original and replay["parameters"]["n"] == 5
        resumed = client.post(
            f"/runs/{original}/resume", data={"csrf": csrf.group(1), "from_task": "one", "reason": "again"}
        )
        assert resumed.status_code == 303
        resume = api.get(f"/api/runs/{resumed.headers['location'].removeprefix('/runs/')}").json()
        assert resume["resume_of"] == original
    finally:
        client.close()
