"""No token secret is echoed in a response or written to a log line: tokens are revoked by
id or name only, and the server's captured log (JSON on stderr) is grepped for the secrets."""

from __future__ import annotations

import httpx

from api.redact import redact
from tests.e2e.conftest import Server
from tests.e2e.helpers import assert_problem


def test_revoking_by_secret_is_refused_without_echo_and_no_log_line_holds_a_secret(server: Server) -> None:
    admin = server.client("admin")
    created = admin.post("/api/tokens", json={"name": "leaky", "role": "auditor"})
    assert created.status_code == 201, created.text
    secret, token_id = created.json()["token"], created.json()["id"]

    refused = assert_problem(admin.delete(f"/api/tokens/{secret}"), 422)
    assert secret not in refused["detail"] and "secret" in refused["detail"]
    forged = "rl_" + "x" * 43
    assert forged not in assert_problem(admin.delete(f"/api/tokens/{forged}"), 422)["detail"]
    missing = assert_problem(admin.delete("/api/tokens/nobody-by-this-name"), 404)
    assert "nobody-by-this-name" not in missing["detail"]
    named_like_one = admin.post("/api/tokens", json={"name": forged, "role": "auditor"})
    assert_problem(named_like_one, 422)

    with server.client(None, token=secret) as auditor:  # still live: the refused DELETE revoked nothing
        # a secret in a query parameter: refused (no such parameter), echoed nowhere, logged nowhere
        unknown = assert_problem(auditor.get("/api/runs", params={"token": secret}), 422)
        assert secret not in str(unknown)
        assert_problem(auditor.get(f"/api/runs/{secret}"), 404)
    assert admin.delete(f"/api/tokens/{token_id}").status_code == 204
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {secret}"}) as revoked:
        assert_problem(revoked.get("/api/runs"), 401)

    server.stop()
    logs = server.logs()
    assert "request_handled" in logs and "token_revoked" in logs  # the log was captured
    assert logs.count(f"/api/tokens/{token_id}") == 1  # by id, once: the revoke itself
    for leaked in (secret, forged, server.admin_token):
        assert leaked not in logs


def test_redact_hides_token_shapes_bearer_headers_and_token_query_parameters() -> None:
    secret = "rl_" + "A1_-" * 11
    assert redact(f"GET /api/tokens/{secret}") == "GET /api/tokens/rl_[redacted]"
    assert secret not in redact(f"Authorization: Bearer {secret}")
    assert redact("GET /x?a=1&token=hunter2&b=2") == "GET /x?a=1&token=[redacted]&b=2"
    assert redact("token_created name=rl_short") == "token_created name=rl_short"
