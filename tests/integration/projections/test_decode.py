"""The read side's fast event decoding agrees with the ledger's own, field for field."""

from __future__ import annotations

from ledger.service import Ledger
from ledger.settings import Settings
from projections.db import connect, max_position, read_events
from tests.integration.projections.conftest import Driver, sha


def test_events_read_by_the_projections_equal_the_ledgers_records(
    ledger: Ledger, driver: Driver, settings: Settings
) -> None:
    run_id = driver.trigger("decode")
    driver.succeed(run_id, consumed=sha("c"), produced=sha("d"), extract_attempts=2)
    conn = connect(settings)
    try:
        assert read_events(conn, -1, 1000) == ledger.reader.after(-1, limit=1000)
        assert read_events(conn, 3, 2) == ledger.reader.after(3, limit=2)
        assert max_position(conn) == ledger.reader.max_position()
    finally:
        conn.close()
