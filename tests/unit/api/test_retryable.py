"""``api.errors.retryable_status``: which store errors a client may retry, and how."""

from __future__ import annotations

import errno
import sqlite3

import psycopg
import psycopg_pool
from eventsourcing.persistence import OperationalError as StoreOperationalError

from api.errors import retryable_status


def wrapped(cause: BaseException) -> BaseException:
    """``cause`` as the store raises it: inside its own error."""
    try:
        raise StoreOperationalError(str(cause)) from cause
    except StoreOperationalError as exc:
        return exc


def test_no_space_is_507_whatever_says_it() -> None:
    assert retryable_status(OSError(errno.ENOSPC, "No space left on device")) == 507
    assert retryable_status(wrapped(sqlite3.OperationalError("database or disk is full"))) == 507
    assert retryable_status(wrapped(psycopg.errors.DiskFull("could not extend file"))) == 507


def test_an_unreachable_database_is_503() -> None:
    assert retryable_status(wrapped(psycopg.OperationalError("connection refused"))) == 503
    assert retryable_status(psycopg_pool.PoolTimeout("couldn't get a connection")) == 503
    assert retryable_status(sqlite3.OperationalError("unable to open database file")) == 503


def test_other_errors_stay_server_errors() -> None:
    assert retryable_status(sqlite3.OperationalError("no such table: x")) is None
    assert retryable_status(OSError(errno.EACCES, "Permission denied")) is None
    assert retryable_status(psycopg.errors.UndefinedTable("relation does not exist")) is None
