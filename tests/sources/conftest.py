"""`db`: a fresh source database on each real server (PostgreSQL, MariaDB)."""

from __future__ import annotations

import pytest

from db_sources import SourceDb, source_db


@pytest.fixture(params=["postgres", "mysql"])
def db(request: pytest.FixtureRequest) -> SourceDb:
    url: str = request.getfixturevalue("pg_url" if request.param == "postgres" else "mysql_url")
    return source_db(request.param, url)
