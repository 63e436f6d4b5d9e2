"""A real PostgreSQL for the archive tests (issue 29): one throwaway cluster per test
session (`servers.postgres`, on loopback), a fresh database per test."""
from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy

from reporting.build import build
from reporting.core.config import Config

from .servers import postgres

ROOT = Path(__file__).resolve().parent.parent
WEEKS = ("2026-W44", "2026-W45")      # the sample data's two full weeks

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


def pg_config(url: str, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("REPORTS_ARCHIVE_PW", PASSWORD)
    return Config.from_dict({"archive_url": url, "archive_password_env": "REPORTS_ARCHIVE_PW"})


@pytest.fixture(scope="session")
def two_builds(pg, tmp_path_factory):
    """The sample's two weeks built into a SQLite and into a PostgreSQL archive: kind ->
    (config, output folder, kpis.json of the newest week, {week: kpis.json})."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("pgarch")
    pg_cfg = pg_config(pg.database("build"), mp)
    out = {}
    for name, config in (("sqlite", Config()), ("postgresql", pg_cfg)):
        docs = {}
        for week in WEEKS:
            result = build(config, period=week, data_dir=ROOT / "data", fmt="html",
                           output_dir=root / name)
            docs[week] = json.loads((result.folder / "kpis.json").read_text())
        out[name] = (config, root / name, docs[WEEKS[-1]], docs)
    yield out
    mp.undo()
