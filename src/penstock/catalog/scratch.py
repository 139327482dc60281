"""One in-memory DuckDB per process for vetting the contract at load time.

Loading a project asks DuckDB whether each pattern compiles, whether each check expression
binds to a BOOLEAN, and which time zones exist. Opening a DuckDB database costs 10-25 ms, and
opening one per question made most of what `penstock status` spends in penstock itself; the
questions only read, so they share one database, each on a cursor of its own (a cursor is a
separate connection to the same database: safe across threads). The database is closed and
dropped at exit: DuckDB's bindings complain on stderr about objects alive at shutdown.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

_lock = threading.Lock()
_database: tuple[int, duckdb.DuckDBPyConnection] | None = None


@contextmanager
def scratch_connection() -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the process's scratch database, closed on leaving the block."""
    global _database
    with _lock:
        if _database is None or _database[0] != os.getpid():  # a forked child opens its own
            if _database is None:
                atexit.register(_close)
            _database = (os.getpid(), duckdb.connect())
        database = _database[1]
    connection = database.cursor()
    try:
        yield connection
    finally:
        connection.close()


def _close() -> None:
    global _database
    with _lock:
        if _database is not None and _database[0] == os.getpid():
            _database[1].close()
        _database = None
