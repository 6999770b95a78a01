"""A ledger written before workspaces (``tests/fixtures``), with a token table of that time,
served by a real ``runledger serve``: its runs and workflows are in ``default``, its old token
covers every workspace, it verifies, and a new workspace beside it sees none of it."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from api.auth import hash_token
from tests.builders import eventually
from tests.conftest import BACKENDS, PG_ADMIN_URL, postgres_or_skip
from tests.e2e.conftest import start_server

FIXTURES = Path(__file__).parent.parent / "fixtures"
OLD_TOKEN = "rl_" + "o" * 43
OLD_TABLE = (
    "CREATE TABLE {t} (id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, "
    "token_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, revoked_at TEXT)"
)
OLD_ROW = ("old-admin", "old-admin", "admin", hash_token(OLD_TOKEN), "2026-01-01T00:00:00.000000Z")


@pytest.fixture(params=BACKENDS)
def legacy_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        shutil.copy(FIXTURES / "legacy-v0.1.sqlite", path)
        with sqlite3.connect(path) as conn:
            conn.execute(OLD_TABLE.format(t="runledger_tokens"))
            conn.execute("INSERT INTO runledger_tokens VALUES (?, ?, ?, ?, ?, NULL)", OLD_ROW)
        yield f"sqlite:///{path}"
        return
    postgres_or_skip()
    schema = f"rl_legacy_{uuid.uuid4().hex[:12]}"
    script = (FIXTURES / "legacy-v0.1.pg.sql").read_text().replace("legacy_fixture", schema)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(script)
        conn.execute(OLD_TABLE.format(t=f'"{schema}".runledger_tokens'))
        conn.execute(f'INSERT INTO "{schema}".runledger_tokens VALUES (%s, %s, %s, %s, %s, NULL)', OLD_ROW)
    try:
        yield f"{PG_ADMIN_URL}?schema={schema}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_a_ledger_from_before_workspaces_serves_its_runs_under_default(
    legacy_url: str, tmp_path: Path
) -> None:
    server = start_server(legacy_url, tmp_path / "server")
    try:
        headers = {"Authorization": f"Bearer {OLD_TOKEN}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as old:

            def all_eight() -> list[dict[str, object]]:
                runs = old.get("/api/runs").json()["runs"]
                return runs if len(runs) == 8 else []

            runs = eventually(all_eight, timeout=60)
            assert {r["workspace"] for r in runs} == {"default"}
            named = old.get("/api/runs", headers={"Runledger-Workspace": "default"}).json()["runs"]
            assert [r["run_id"] for r in named] == [r["run_id"] for r in runs]
            assert old.get(f"/api/runs/{runs[0]['run_id']}").json()["workspace"] == "default"
            assert [w["name"] for w in old.get("/api/workflows").json()["workflows"]] == ["legacy_etl"]
            assert old.post("/api/ledger/verify").json()["ok"] is True
            tokens = old.get("/api/tokens").json()["tokens"]
            assert tokens[0]["name"] == "old-admin" and tokens[0]["workspaces"] == ["*"]

            assert old.post("/api/workspaces", json={"name": "new"}).status_code == 201
            made = old.post("/api/tokens", json={"name": "n", "role": "auditor", "workspaces": ["new"]})
            assert made.status_code == 201, made.text
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {made.json()['token']}"}, timeout=60
            ) as new:
                assert new.get("/api/runs").json()["runs"] == []
                assert new.get("/api/workflows").json()["workflows"] == []
                assert new.get(f"/api/runs/{runs[0]['run_id']}").status_code == 404
    finally:
        server.stop()
        server.close_clients()
