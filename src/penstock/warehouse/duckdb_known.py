"""What the DuckDB warehouse knows of its catalog without asking again (warehouse/duckdb.py)."""

from __future__ import annotations

import threading


class Known:
    """The tables there are, the ledger's batch counts and the row counts taken, read once
    and kept until a load or a reset changes them; shared by a warehouse and its worker
    views. A view that read them while a load was open keeps what it read only if no load
    began or ended meanwhile."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generation = 0
        self.tables: frozenset[tuple[str, str]] | None = None
        self.batch_counts: dict[str, int] | None = None
        # live rows of tables counted since the last load or reset (the close's vacuum
        # decision reads them: warehouse/duckdb_vacuum.py)
        self.rows: dict[tuple[str, str], int] = {}

    def forget(self) -> None:
        with self.lock:
            self.generation += 1
            self.tables = self.batch_counts = None
            self.rows = {}

    def keep_rows(self, generation: int, table: tuple[str, str], rows: int) -> None:
        with self.lock:
            if generation == self.generation:
                self.rows[table] = rows

    def keep(
        self,
        generation: int,
        *,
        tables: frozenset[tuple[str, str]] | None = None,
        batch_counts: dict[str, int] | None = None,
    ) -> None:
        with self.lock:
            if generation != self.generation:
                return
            if tables is not None:
                self.tables = tables
            if batch_counts is not None:
                self.batch_counts = batch_counts
