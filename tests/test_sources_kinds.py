"""Acceptance: the same week from a flat folder, Hive-partitioned Parquet by day, daily
.csv.gz, PostgreSQL (a real server) and SQLite gives the same kpis.json values."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sqlalchemy

from reporting.build import build
from reporting.cli import build_report
from reporting.core.config import Config
from reporting.core.contracts import SPECS
from reporting.core.periods import Window
from reporting.core.quality import Loaded
from reporting.ingest.engine.load import newest_window
from reporting.simulate import simulate

from . import layouts
from .rows import load_all
from .servers import postgres

WEEK = "2026-W46"          # simulated weeks: 2026-W43 .. 2026-W48
PASSWORD = "pg-test-secret-91"


@pytest.fixture(scope="module")
def flat(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("flat")
    simulate(folder, weeks=6, scale="tiny", seed=11)
    return folder


@pytest.fixture(scope="module")
def pg_url(flat):
    with postgres(PASSWORD) as (port, _):
        admin = sqlalchemy.create_engine(
            f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{port}/postgres")
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("create database helpdesk")
        admin.dispose()
        engine = sqlalchemy.create_engine(
            f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{port}/helpdesk")
        layouts.to_database(flat, engine)
        engine.dispose()
        yield f"postgresql://postgres@127.0.0.1:{port}/helpdesk"


def _build(tmp: Path, data: Path, sources: dict) -> dict:
    config = Config.from_dict({"sources": sources}, base=tmp)
    out = tmp / "out"
    result = build(config, period=WEEK, audiences=["it"], fmt="html", data_dir=data,
                   output_dir=out)
    return json.loads((result.folder / "kpis.json").read_text())


def _differences(a: dict, b: dict) -> list:
    """Keys whose values differ (a readable failure instead of a wall of JSON)."""
    return [(part, key, a[part].get(key) if isinstance(a[part], dict) else a[part],
             b[part].get(key) if isinstance(b[part], dict) else b[part])
            for part in a for key in (a[part] if isinstance(a[part], dict) else [None])
            if (a[part].get(key) if isinstance(a[part], dict) else a[part])
            != (b[part].get(key) if isinstance(b[part], dict) else b[part])]


def _comparable(doc: dict) -> dict:
    """The parts that must not depend on where rows came from; floats to 12 significant
    digits (a sum over chunks in another order may differ in its last bit)."""
    return _rounded({k: doc[k] for k in ("period", "kpis", "sections", "breakdowns",
                                         "insights", "incidents")})


def _rounded(value):
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def test_same_week_from_every_kind_of_source(flat, pg_url, tmp_path, monkeypatch):
    expected = _comparable(_build(tmp_path / "flat", flat, {}))
    assert expected["kpis"]["api.requests"]["value"] > 1000

    gz = layouts.daily_csv_gz(flat, tmp_path / "gz")
    doc = _build(tmp_path / "b-gz", tmp_path / "none",
                 {n: {"path": str(gz / n / "*.csv.gz")} for n in SPECS})
    assert _differences(_comparable(doc), expected) == []
    q = doc["data_quality"]["api_logs"]
    # the window: W46 with the four weeks before it (from 12 Oct; the data starts on
    # 19 Oct), a day either side: 19 Oct .. 17 Nov read, the 12 days after never opened
    assert (q["read"], q["skipped"]) == (13 + 17, 12)
    assert q["origin"] == str(gz / "api_logs" / "*.csv.gz")

    hive = layouts.hive_parquet(flat, tmp_path / "hive")
    doc = _build(tmp_path / "b-hive", tmp_path / "none",
                 {n: {"path": str(hive / n)} for n in SPECS})
    assert _differences(_comparable(doc), expected) == []
    assert doc["data_quality"]["clickstream"]["skipped"] == 12

    monkeypatch.setenv("HELPDESK_DB_PASSWORD", PASSWORD)
    sql = {n: {"url": pg_url, "password_env": "HELPDESK_DB_PASSWORD",
               "sql": layouts.TICKETS_SQL if n == "support_tickets" else f"select * from {n}"}
           for n in SPECS}
    doc = _build(tmp_path / "b-pg", tmp_path / "none", sql)
    assert _differences(_comparable(doc), expected) == []
    q = doc["data_quality"]["support_tickets"]
    assert q["unit"] == "query" and q["read"] == 1 and PASSWORD not in json.dumps(doc)
    assert q["origin"] == f"query on {pg_url}"

    lite = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    queries = layouts.to_database(flat, lite)
    lite.dispose()
    doc = _build(tmp_path / "b-lite", tmp_path / "none",
                 {n: {"url": f"sqlite:///{tmp_path / 'shop.db'}", "sql": queries[n]}
                  for n in SPECS})
    assert _differences(_comparable(doc), expected) == []


def test_sql_reads_only_the_window_with_bound_values(flat, pg_url, tmp_path, monkeypatch):
    """The WHERE carries the window as parameters (never in the SQL text), so a week's
    build reads the week, its previous week and the baseline weeks, not the later ones."""
    from zoneinfo import ZoneInfo

    statements = []
    monkeypatch.setenv("PW", PASSWORD)

    @sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "before_cursor_execute")
    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    try:
        config = Config.from_dict({"sources": {"api_logs": {
            "url": pg_url, "password_env": "PW", "sql": "select * from api_logs"}}})
        loaded = load_all(tmp_path, ZoneInfo("UTC"), sources=config.sources,
                          period=WEEK)
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "before_cursor_execute", seen)
    api = loaded.frames["api_logs"]
    flat_api = layouts.typed(flat, "api_logs")
    inside = flat_api["timestamp"].between("2026-10-11", "2026-11-17", inclusive="left")
    assert len(api) == int(inside.sum())         # 11 Oct .. 16 Nov: window with margins
    assert api["timestamp"].max() < __import__("pandas").Timestamp("2026-11-17", tz="UTC")
    final, params = statements[-1]
    assert "2026" not in final and "window_start" in final
    assert sorted(params) == ["window_end", "window_start"]


def test_unreachable_database_names_host_port_database_not_password(tmp_path, monkeypatch):
    from .servers import free_port

    port = free_port()       # nothing listens there
    monkeypatch.setenv("PW", "hunter2-secret")
    config = Config.from_dict({"sources": {"support_tickets": {
        "url": f"postgresql://reports@127.0.0.1:{port}/helpdesk", "password_env": "PW",
        "sql": "select * from tickets"}}})
    from zoneinfo import ZoneInfo

    loaded = load_all(tmp_path, ZoneInfo("UTC"), sources=config.sources)
    q = loaded.quality["support_tickets"]
    assert q.status == "error"
    assert q.message.startswith(f"Source support_tickets: cannot reach the database helpdesk "
                                f"on 127.0.0.1:{port} (")
    assert "hunter2" not in q.message and loaded.errors == [q.message]


def test_sql_error_gives_the_database_message_and_the_source(pg_url, tmp_path, monkeypatch):
    from zoneinfo import ZoneInfo

    monkeypatch.setenv("PW", PASSWORD)
    config = Config.from_dict({"sources": {
        "user_feedback": {"url": pg_url, "password_env": "PW", "sql": "select * from nope"},
        "cart_abandonment": {"url": pg_url, "password_env": "PW",
                             "sql": "select user_id, cart_id from cart_abandonment"}}})
    loaded = load_all(tmp_path, ZoneInfo("UTC"), sources=config.sources)
    assert loaded.quality["user_feedback"].message == (
        'Source user_feedback: the database refused the query: relation "nope" does not '
        'exist.')
    assert loaded.quality["cart_abandonment"].message == (
        "The query of source cart_abandonment has no column 'abandonment_time', "
        "'items_in_cart', 'total_value' (required: user_id, cart_id, abandonment_time, "
        "items_in_cart, total_value); columns found: 'user_id', 'cart_id'.")


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_a_rejected_row_names_the_query_and_its_row(kind, pg_url, tmp_path, monkeypatch):
    from zoneinfo import ZoneInfo

    import pandas as pd

    monkeypatch.setenv("PW", PASSWORD)
    if kind == "postgresql":
        url = pg_url.replace("postgresql://postgres@", f"postgresql+psycopg://postgres:{PASSWORD}@")
        table = f"bad_api_{kind}"
    else:
        url, table = f"sqlite:///{tmp_path / 'bad.db'}", "bad_api"
    engine = sqlalchemy.create_engine(url)
    pd.DataFrame({"ts": pd.to_datetime(["2026-11-10 09:00", "2026-11-10 10:00",
                                        "2026-11-10 11:00"], utc=True),
                  "endpoint": ["/a", "/b", "/c"], "status_code": [200, 200, 700],
                  "response_time_ms": [120.0, -3.0, 80.0], "service_name": ["s", "s", "s"]}
                 ).to_sql(table, engine, index=False, if_exists="replace")
    engine.dispose()
    source = {"url": pg_url if kind == "postgresql" else url, "sql":
              f"select ts as timestamp, endpoint, status_code, response_time_ms, service_name "
              f"from {table} order by ts"}
    if kind == "postgresql":
        source["password_env"] = "PW"
    config = Config.from_dict({"sources": {"api_logs": source}})
    loaded = load_all(tmp_path, ZoneInfo("UTC"), sources=config.sources,
                      period="2026-W46")
    bad = loaded.rejected["api_logs"]
    assert bad[["query", "row", "reason"]].values.tolist() == [
        ["query of api_logs", 2, "negative response_time_ms"],
        ["query of api_logs", 3, "status_code out of range"]]
    assert loaded.quality["api_logs"].valid == 1


def test_latest_asks_the_database_for_its_newest_time(flat, pg_url, monkeypatch):
    """`--period latest` finds the newest time with one max() query, then reads that
    week's window only."""
    from zoneinfo import ZoneInfo

    import pandas as pd

    monkeypatch.setenv("PW", PASSWORD)
    config = Config.from_dict({"sources": {"api_logs": {
        "url": pg_url, "password_env": "PW", "sql": "select * from api_logs"}}})
    window = newest_window(config.sources, ZoneInfo("UTC"), Loaded({}, {}, {}), {})
    newest = layouts.typed(flat, "api_logs")["timestamp"].max()     # Sunday 29 Nov
    assert newest.date() == pd.Timestamp("2026-11-29").date()
    # latest week 23..29 Nov; its window 26 Oct - 1 day .. 30 Nov + 1 day
    assert window == Window(pd.Timestamp("2026-10-25", tz="UTC"),
                            pd.Timestamp("2026-12-01", tz="UTC"))


def test_strict_build_stops_on_an_unreachable_database(tmp_path):
    from click.testing import CliRunner

    from .servers import free_port

    port = free_port()
    (tmp_path / "report.toml").write_text(
        f'[sources.support_tickets]\nurl = "postgresql://reports@127.0.0.1:{port}/helpdesk"\n'
        'sql = "select * from tickets"\n')
    result = CliRunner().invoke(build_report, [
        "--config", str(tmp_path / "report.toml"), "--data", str(tmp_path),
        "--output", str(tmp_path / "out"), "--strict"])
    assert result.exit_code == 2
    assert (f"Source support_tickets: cannot reach the database helpdesk on 127.0.0.1:{port}"
            in " ".join(result.output.split()))
