"""Retryable faults get retryable answers: a database that cannot be reached is a 503 with
``Retry-After`` (PostgreSQL behind a proxy the test cuts), no space left is a 507 (SQLite and
the file store on a full tmpfs). Nothing acknowledged is lost; with space again, writes go on."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from tests.conftest import PG_ADMIN_URL, fresh_database_url, postgres_or_skip
from tests.e2e.conftest import start_server
from tests.e2e.faults import CuttableProxy, fill, tiny_tmpfs
from tests.e2e.helpers import assert_problem, pipeline, register, trigger


def via_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}"))


def assert_retry_later(response: httpx.Response, status: int) -> None:
    body = assert_problem(response, status)
    assert int(response.headers["retry-after"]) > 0
    assert "retry" in body["detail"]


@pytest.mark.postgres
def test_a_database_that_went_away_gives_503_with_retry_after_and_loses_nothing(tmp_path: Path) -> None:
    postgres_or_skip()
    target = urlsplit(PG_ADMIN_URL)
    proxy = CuttableProxy((target.hostname or "127.0.0.1", target.port or 5432))
    with fresh_database_url("postgres", tmp_path) as direct_url:
        # A request waiting for a connection gives up (the 503) after 2 s, not the default 10.
        env = {"RUNLEDGER_POOL_TIMEOUT_SECONDS": "2"}
        server = start_server(via_port(direct_url, proxy.port), tmp_path / "server", env=env)
        try:
            client = server.client("operator")
            definition = pipeline()
            register(client, definition)
            acknowledged = trigger(client, definition["name"])["run_id"]

            proxy.cut()
            assert_retry_later(client.get(f"/api/runs/{acknowledged}"), 503)
            assert_retry_later(
                client.post(
                    f"/api/workflows/{definition['name']}/trigger", json={"parameters": {"query": "x"}}
                ),
                503,
            )
            assert_retry_later(client.get("/api/workflows"), 503)
        finally:
            server.stop()
            server.close_clients()
            proxy.close()
        schema = urlsplit(direct_url).query.split("=", 1)[1]
        with psycopg.connect(PG_ADMIN_URL) as conn:
            stored = conn.execute(
                f'SELECT count(*) FROM "{schema}".runledger_events WHERE originator_id = %s', (acknowledged,)
            ).fetchone()
        assert stored is not None and stored[0] >= 1
    assert "store_unavailable" in server.logs()


def test_no_space_left_gives_507_with_retry_after_and_loses_nothing(tmp_path: Path) -> None:
    with tiny_tmpfs(tmp_path / "disk") as disk:
        server = start_server(
            f"sqlite:///{disk / 'ledger.db'}",
            tmp_path / "server",
            env={"RUNLEDGER_DATA_DIR": str(disk / "state")},
        )
        server.admin_token = (disk / "state" / "admin-token").read_text().strip()
        try:
            client = server.client("operator")
            definition = pipeline()
            register(client, definition)
            acknowledged = trigger(client, definition["name"])["run_id"]
            filler = fill(disk / "filler")

            assert_retry_later(client.post("/api/files", content=b"x" * 200_000), 507)
            again = {"parameters": {"query": "x"}}
            refused = client.post(f"/api/workflows/{definition['name']}/trigger", json=again)
            assert_retry_later(refused, 507)

            filler.unlink()
            assert client.get(f"/api/runs/{acknowledged}").status_code == 200
            assert client.post("/api/files", content=b"x" * 200_000).status_code == 201
            trigger(client, definition["name"])
        finally:
            server.stop()
            server.close_clients()
    assert "storage_exhausted" in server.logs()
