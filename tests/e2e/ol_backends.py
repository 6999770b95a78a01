"""Backend choice for the OpenLineage/stream/metrics end-to-end tests.

A real server start costs seconds, so these modules run on SQLite by default and the tests
that exercise the store differently on PostgreSQL (SQL in the metrics collector, concurrent
polling) ask for both with ``both_backends``. The service-level tests cover both backends.
"""

from __future__ import annotations

import pytest

from tests.conftest import postgres_or_skip


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        postgres_or_skip()
    return str(request.param)


both_backends = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
