"""A real PostgreSQL for the archive tests (issue 29): one throwaway cluster per test
session (`servers.postgres`, on loopback), a fresh database per test."""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy

from .servers import postgres

PASSWORD = "archive-pg-secret-29"
_names = itertools.count(1)


@dataclass
class Server:
    port: int

    def database(self, prefix: str = "archive") -> str:
        """A new empty database; its URL without the password (as a config holds it)."""
        name = f"{prefix}_{next(_names)}"
        admin = sqlalchemy.create_engine(
            f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{self.port}/postgres")
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        admin.dispose()
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def pg() -> Iterator[Server]:
    with postgres(PASSWORD) as (port, _):
        yield Server(port)
