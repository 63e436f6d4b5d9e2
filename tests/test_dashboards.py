"""Dashboards where teams already look (issue 29): `archive export --format powerbi` (a
Parquet folder per BI table, CSV, .pbids files) read back by pyarrow and DuckDB, and
`--format grafana` whose every panel's SQL runs against a SQLite and a PostgreSQL archive
filled by real builds and returns what kpis.json holds."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pytest
import yaml
from click.testing import CliRunner

from reporting.cli import main
from reporting.core.config import Config
from reporting.present import grafana
from reporting.store import bi
from reporting.store.archive import Archive

from .pgarchive import PASSWORD, WEEKS, pg, two_builds  # noqa: F401 - fixtures

DOCS = Path(__file__).resolve().parent.parent / "docs" / "dashboards.md"


def export(kind: str, two_builds, fmt: str, target: Path) -> Path:   # noqa: F811
    config, folder, _, _ = two_builds[kind]
    toml = target.parent / f"{kind}.toml"
    toml.write_text("" if kind == "sqlite" else
                    f'archive_url = "{config.archive_url}"\n'
                    'archive_password_env = "REPORTS_ARCHIVE_PW"\n')
    r = CliRunner(env={"REPORTS_ARCHIVE_PW": PASSWORD}).invoke(
        main, ["archive", "export", "--format", fmt, "--out", str(target),
               "--output", str(folder), "--config", str(toml)])
    assert r.exit_code == 0, r.output
    for f in target.rglob("*"):     # nothing written holds the password
        assert not f.is_file() or PASSWORD.encode() not in f.read_bytes(), f
    return target


def newest(doc_by_week: dict, key: str):
    return doc_by_week[WEEKS[-1]]["kpis"][key]["value"]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_powerbi_folder_is_read_back_by_pyarrow_and_duckdb(two_builds, kind, tmp_path):  # noqa: F811
    out = export(kind, two_builds, "powerbi", tmp_path / "powerbi")
    _, _, doc, docs = two_builds[kind]
    for table in bi.TABLES:
        assert (out / f"{table}.csv").is_file() and (out / table).is_dir()
    kpis = ds.dataset(out / "kpi_history", format="parquet", partitioning="hive").to_table()
    assert sorted(kpis.schema.names) == sorted(bi.COLUMNS["kpi_history"])
    assert sorted(p.name for p in (out / "kpi_history").iterdir()) == [
        f"period_id={w}" for w in WEEKS]              # partitioned by period
    frame = kpis.to_pandas()
    assert len(frame) == sum(len(d["kpis"]) for d in docs.values()) + \
        len(frame[frame["audience"] != "all"])
    con = duckdb.connect()
    glob = str(out / "kpi_history" / "**" / "*.parquet")
    for key, k in doc["kpis"].items():
        if not isinstance(k["value"], (int, float)) or isinstance(k["value"], bool):
            continue
        [(value, status)] = con.execute(
            "SELECT value, status FROM read_parquet(?, hive_partitioning = true) WHERE"
            " period_id = ? AND audience = 'all' AND kpi = ?", [glob, WEEKS[-1], key]).fetchall()
        assert value == k["value"] and status == k["status"], key
    [(n,)] = con.execute("SELECT COUNT(DISTINCT period_start) FROM read_parquet(?, "
                         "hive_partitioning = true)", [glob]).fetchall()
    assert n == 2
    types = dict(con.execute("DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = true)",
                             [glob]).fetchall()[i][:2] for i in range(len(frame.columns)))
    assert types["period_start"].startswith("TIMESTAMP")     # instants, not text


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_every_pbids_file_has_the_documented_structure(two_builds, kind, tmp_path):  # noqa: F811
    out = export(kind, two_builds, "powerbi", tmp_path / "powerbi")
    files = sorted(p.name for p in out.glob("*.pbids"))
    assert files == (["reports-folder.pbids"] if kind == "sqlite"
                     else ["reports-folder.pbids", "reports-postgresql.pbids"])
    for name in files:
        doc = json.loads((out / name).read_text())
        assert set(doc) == {"version", "connections"} and doc["version"] == "0.1"
        [conn] = doc["connections"]
        assert set(conn) == {"details", "options", "mode"}
        assert set(conn["details"]) == {"protocol", "address"}
        text = json.dumps(doc).lower()
        assert "password" not in text and "credential" not in text
        if name == "reports-folder.pbids":
            assert conn["details"] == {"protocol": "folder",
                                       "address": {"path": str(out.resolve())}}
            assert conn["mode"] == "Import"
        else:
            url = two_builds[kind][0].archive_url
            server, database = re.fullmatch(r"postgresql://postgres@(.+)/(\w+)", url).groups()
            assert conn["details"] == {"protocol": "postgresql",
                                       "address": {"server": server, "database": database}}
            assert conn["mode"] == "DirectQuery"


def run_sql(kind: str, two_builds, sql: str) -> list[tuple]:   # noqa: F811
    config, folder, _, _ = two_builds[kind]
    with Archive.of(config, folder) as store:
        return [tuple(r) for r in store.db.execute(sql)]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_every_grafana_panel_query_returns_what_kpis_json_holds(two_builds, kind, tmp_path):  # noqa: F811
    out = export(kind, two_builds, "grafana", tmp_path / "grafana")
    config, folder, doc, docs = two_builds[kind]
    board = json.loads((out / "dashboards" / "reports.json").read_text())
    rows = [p for p in board["panels"] if p["type"] == "row"]
    assert [r["title"] for r in rows] == list(Config().audiences)   # one row per audience
    checked = {"stat": 0, "timeseries": 0}
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            result = run_sql(kind, two_builds, target["rawSql"])
            if panel["type"] == "stat":
                key = re.search(r"kpi = '([^']+)'", target["rawSql"]).group(1)
                assert result == [(pytest.approx(newest(docs, key)),)], key
                bounds = doc["kpis"][key].get("threshold"), doc["kpis"][key].get("threshold_bad")
                steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
                if bounds[0] is not None:
                    assert sorted(s["value"] for s in steps if s["value"] is not None) == \
                        sorted(bounds)
                checked["stat"] += 1
            elif panel["type"] == "timeseries":
                key = re.search(r"kpi = '([^']+)'", target["rawSql"]).group(1)
                values = [v for _, v in result]
                wanted = [d["kpis"][key]["value"] for d in docs.values()
                          if d["kpis"][key]["value"] is not None]
                assert values == pytest.approx(wanted), key
                assert len({t for t, _ in result}) == len(result)     # one point a period
                checked["timeseries"] += 1
            else:       # data quality of the newest period: one row per source
                assert sorted(r[1] for r in result if r[2] == "") == sorted(doc["data_quality"])
                assert all(r[0] == WEEKS[-1] for r in result)
    assert checked["stat"] >= 12 and checked["timeseries"] == checked["stat"]
    [(name, sql)] = [(n, s) for n, s in grafana.panel_queries(board) if n == "Incidents"]
    assert len(run_sql(kind, two_builds, sql)) == sum(len(d["incidents"]) for d in docs.values())


def test_the_grafana_datasource_names_the_archive_without_its_password(two_builds, tmp_path):  # noqa: F811
    for kind in ("sqlite", "postgresql"):
        out = export(kind, two_builds, "grafana", tmp_path / kind)
        source = yaml.safe_load((out / "provisioning/datasources/reports.yaml").read_text())
        [ds_] = source["datasources"]
        assert ds_["uid"] == "reports-archive"
        if kind == "sqlite":
            assert ds_["type"] == "frser-sqlite-datasource"
            assert ds_["jsonData"]["path"] == str((two_builds[kind][1] / "archive.sqlite")
                                                  .resolve())
        else:
            assert ds_["type"] == "grafana-postgresql-datasource"
            assert ds_["secureJsonData"] == {"password": "$REPORTS_ARCHIVE_PW"}
            assert ds_["user"] == "postgres" and ds_["url"].startswith("127.0.0.1:")
        provider = yaml.safe_load((out / "provisioning/dashboards/reports.yaml").read_text())
        assert provider["providers"][0]["options"]["path"] == str((out / "dashboards").resolve())


def test_incident_anomaly_and_quality_rows_worked_by_hand(tmp_path):
    """A small kpis.json: one incident, one anomaly, a source with rejected rows."""
    doc = {"incidents": [{"start": "2026-11-03T10:00:00+00:00", "end": "2026-11-03T12:00:00+00:00",
                          "services": ["payment-api"], "pages": ["/checkout"],
                          "signals": [{"name": "api.p95_ms", "entity": "payment-api"}],
                          "impact": {"abandoned_carts": 63, "abandoned_value": 9550.5,
                                     "tickets": 12}, "text": "payment-api 5xx at 40 %"}],
           "breakdowns": {"incidents": {"back_end_anomalies": [
               {"side": "back-end", "start": "2026-11-04T01:00:00+00:00",
                "end": "2026-11-04T02:00:00+00:00", "entity": "search-api",
                "signals": [{"name": "system.cpu_pct", "entity": "search-api"}],
                "text": "CPU 97 %"}], "user_felt_anomalies": []}},
           "data_quality": {"api_logs": {"status": "loaded", "rows": 10, "valid": 7,
                                         "rejected": {"status_code not a number": 2,
                                                      "timestamp in the future": 1},
                                         "message": None}}}
    with Archive(tmp_path) as store:
        with store.transaction() as db:
            bi.write_document(db, "2026-W45", doc, "2026-11-09T07:00:00+00:00")
        incidents = bi.read(store.db, "incidents")
        anomalies = bi.read(store.db, "anomalies")
        quality = bi.read(store.db, "data_quality")
    assert incidents[["number", "services", "signals", "abandoned_carts", "abandoned_value",
                      "tickets"]].values.tolist() == [
        [1, "payment-api", "api.p95_ms (payment-api)", 63, 9550.5, 12]]
    assert anomalies[["side", "entity", "started_at"]].values.tolist() == [
        ["back-end", "search-api", "2026-11-04T01:00:00+00:00"]]
    # 10 rows read, 7 valid; the 3 rejected split by reason: 2 + 1
    assert quality[["reason", "row_count"]].values.tolist() == [
        ["", 10], ["status_code not a number", 2], ["timestamp in the future", 1]]
    assert quality["valid_rows"].tolist()[0] == 7 and math.isnan(quality["valid_rows"][1])


def test_every_bi_column_is_documented():
    text = DOCS.read_text()
    for table, columns in bi.COLUMNS.items():
        section = text.split(f"### `{table}`", 1)
        assert len(section) == 2, f"docs/dashboards.md has no section for {table}"
        body = section[1].split("\n### ", 1)[0]
        for col in columns:
            assert f"| `{col}` |" in body, f"{table}.{col} is not documented"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_site_links_each_report_to_its_rows(two_builds, kind):  # noqa: F811
    """Each report card of the index links to its period's kpi_history rows, whose KPI
    keys and values are its kpis.json's."""
    _, folder, _, docs = two_builds[kind]
    index = (folder / "index.html").read_text()
    for week, doc in docs.items():
        href = f"site/rows/{week}/kpi_history-all.csv"
        assert index.count(f'<a href="{href}"') == len(Config().audiences)
        rows = pd.read_csv(folder / href).set_index("kpi")
        assert sorted(rows.index) == sorted(doc["kpis"])
        for key, k in doc["kpis"].items():
            if isinstance(k["value"], (int, float)):
                assert rows.loc[key, "value"] == pytest.approx(k["value"]), key
        for table in ("incidents", "anomalies", "data_quality"):
            assert f'<a href="site/rows/{week}/{table}.csv">' in index
        quality = pd.read_csv(folder / f"site/rows/{week}/data_quality.csv")
        assert sorted(quality["source"]) == sorted(doc["data_quality"])
