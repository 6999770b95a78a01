"""Shared fixtures: a ``backend`` parametrised over a real SQLite file and a real PostgreSQL
schema of its own (dropped afterwards).

Marks: every test under ``tests/e2e`` is ``e2e`` (it starts real servers); every test on
PostgreSQL is ``postgres``, through :data:`BACKENDS` (collection refuses one that is not).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from ledger.service import Ledger
from ledger.settings import Settings

PG_ADMIN_URL = os.environ.get("RUNLEDGER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("RUNLEDGER_REQUIRE_POSTGRES") == "1"

#: A fixture's params over both backends, the PostgreSQL one marked.
POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)
BACKENDS = ["sqlite", POSTGRES]
E2E_TESTS = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(E2E_TESTS):
            item.add_marker(pytest.mark.e2e)
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and "postgres" in callspec.params.values()
        if on_postgres and item.get_closest_marker("postgres") is None:
            raise pytest.UsageError(
                f"{item.nodeid} runs on PostgreSQL without the postgres mark "
                "(parametrise with tests.conftest.BACKENDS or POSTGRES)"
            )


def _postgres_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


_PG_OK: bool | None = None


def postgres_or_skip() -> None:
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = _postgres_available()
    if not _PG_OK:
        if REQUIRE_POSTGRES:
            pytest.fail(
                f"PostgreSQL is required (RUNLEDGER_REQUIRE_POSTGRES=1) but {PG_ADMIN_URL} is unreachable"
            )
        pytest.skip("PostgreSQL is not reachable")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        postgres_or_skip()
    return str(request.param)


@contextmanager
def fresh_database_url(backend: str, directory: Path) -> Iterator[str]:
    """A fresh, empty database: an SQLite file in ``directory``, or a PostgreSQL schema of its
    own that is dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'ledger.db'}"
        return
    postgres_or_skip()
    schema = f"rl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_ADMIN_URL}?schema={schema}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test."""
    with fresh_database_url(backend, tmp_path) as url:
        yield url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path / "state")


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    app = Ledger(settings)
    try:
        yield app
    finally:
        app.close()
