"""A Grafana provisioning bundle (`reporting archive export --format grafana`).

`provisioning/datasources/reports.yaml` names the archive: Grafana's core PostgreSQL
datasource (the password as `$VAR`, which Grafana reads from its own environment; never
the password itself), or the SQLite community datasource (frser-sqlite-datasource) with
the archive file's path. `provisioning/dashboards/reports.yaml` points Grafana at
`dashboards/`, which holds one dashboard: per audience a row with its headline KPIs as
stat panels (colours from our thresholds) and their history as time series; incidents
as annotations; data quality as a table. Every panel's SQL reads the BI tables
(`store.bi`); `panel_queries` lists them so tests can run each one.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..store.files import atomic_write

UID = "diagnostics-reports"
DATASOURCE = {"uid": "reports-archive"}
COLOURS = {"good": "green", "warn": "orange", "bad": "red"}


def _time(dialect: str, column: str) -> str:
    """An ISO 8601 text column as the instant Grafana plots."""
    if dialect == "postgresql":
        return f"CAST({column} AS timestamptz)"
    return f"CAST(strftime('%s', {column}) AS INTEGER)"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def latest_sql(audience: str, kpi: str) -> str:
    """The KPI's value in the newest period (by its end) of the slice."""
    return (f"SELECT value FROM kpi_history WHERE audience = {_quote(audience)} AND kpi = "
            f"{_quote(kpi)} ORDER BY period_end DESC, period_start DESC LIMIT 1")


def history_sql(dialect: str, audience: str, kpi: str) -> str:
    return (f"SELECT {_time(dialect, 'period_end')} AS time, value AS {_ident(kpi)}"
            f" FROM kpi_history WHERE audience = {_quote(audience)} AND kpi = {_quote(kpi)}"
            " AND value IS NOT NULL ORDER BY period_end")


def _ident(kpi: str) -> str:
    return '"' + kpi.replace('"', "") + '"'


def incidents_sql(dialect: str) -> str:
    return (f"SELECT {_time(dialect, 'started_at')} AS time, {_time(dialect, 'ended_at')} AS"
            " timeend, text, services AS tags FROM incidents ORDER BY started_at")


QUALITY_SQL = ("SELECT period_id, source, reason, status, row_count, valid_rows, message"
               " FROM data_quality WHERE period_id = (SELECT period_id FROM kpi_history"
               " ORDER BY period_end DESC, period_start DESC LIMIT 1) ORDER BY source, reason")


def thresholds(bounds: tuple[float, float] | None, better: str | None) -> dict[str, Any]:
    """Grafana's threshold steps from our bounds: lower is better is green up to the
    first, orange up to the second, red beyond; higher is better the other way round."""
    if not bounds:
        return {"mode": "absolute", "steps": [{"color": "text", "value": None}]}
    good, bad = bounds
    if better == "up":
        steps = [("red", None), ("orange", bad), ("green", good)]
    else:
        steps = [("green", None), ("orange", good), ("red", bad)]
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


def _target(sql: str, fmt: str = "table") -> dict[str, Any]:
    return {"refId": "A", "datasource": DATASOURCE, "rawSql": sql, "rawQuery": True,
            "editorMode": "code", "format": fmt, "queryText": sql,
            "queryType": "table" if fmt == "table" else "time series"}


def _stat(kpi: Mapping[str, Any], slice_name: str, x: int, y: int) -> dict[str, Any]:
    return {"type": "stat", "title": kpi["label"], "datasource": DATASOURCE,
            "gridPos": {"x": x, "y": y, "w": 4, "h": 4},
            "targets": [_target(latest_sql(slice_name, kpi["key"]))],
            "fieldConfig": {"defaults": {"unit": UNITS.get(kpi["unit"], "none"),
                                         "thresholds": thresholds(_bounds(kpi),
                                                                  kpi.get("better"))},
                            "overrides": []},
            "options": {"colorMode": "background", "reduceOptions": {"calcs": ["lastNotNull"]}}}


def _bounds(kpi: Mapping[str, Any]) -> tuple[float, float] | None:
    if kpi.get("threshold") is None or kpi.get("threshold_bad") is None:
        return None
    return float(kpi["threshold"]), float(kpi["threshold_bad"])


UNITS = {"ratio": "percentunit", "ms": "ms", "pct": "percent", "count": "short",
         "h": "h", "min": "m", "money": "none", "score": "none", "rating": "none"}


def audience_row(dialect: str, audience: str, slice_name: str,
                 kpis: list[Mapping[str, Any]], y: int) -> list[dict[str, Any]]:
    """The audience's row: a collapsed-free row header, its headline KPIs as stat panels
    and one time series of their history."""
    panels: list[dict[str, Any]] = [{"type": "row", "title": audience, "collapsed": False,
                                     "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
                                     "panels": []}]
    for n, kpi in enumerate(kpis):
        panels.append(_stat(kpi, slice_name, (n % 6) * 4, y + 1 + (n // 6) * 4))
    top = y + 1 + ((len(kpis) + 5) // 6) * 4
    panels.append({"type": "timeseries", "title": f"{audience}: KPI history",
                   "datasource": DATASOURCE, "gridPos": {"x": 0, "y": top, "w": 24, "h": 8},
                   "targets": [dict(_target(history_sql(dialect, slice_name, k["key"]),
                                            "time_series"), refId=chr(65 + i % 26) + str(i))
                               for i, k in enumerate(kpis)]})
    return panels


def dashboard(dialect: str, rows: Iterable[tuple[str, str, list[Mapping[str, Any]]]]
              ) -> dict[str, Any]:
    """The dashboard: `rows` are (audience, its kpi_history slice, its headline KPIs)."""
    panels: list[dict[str, Any]] = []
    for audience, slice_name, kpis in rows:
        panels += audience_row(dialect, audience, slice_name, kpis,
                               max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels),
                                   default=0))
    y = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels), default=0)
    panels.append({"type": "table", "title": "Data quality (newest period)",
                   "datasource": DATASOURCE, "gridPos": {"x": 0, "y": y, "w": 24, "h": 8},
                   "targets": [_target(QUALITY_SQL)]})
    for n, panel in enumerate(panels, start=1):
        panel["id"] = n
    return {"uid": UID, "title": "Diagnostics reports", "schemaVersion": 39, "version": 1,
            "time": {"from": "now-1y", "to": "now"}, "tags": ["reports"],
            "annotations": {"list": [{"name": "Incidents", "enable": True,
                                      "iconColor": "red", "datasource": DATASOURCE,
                                      "target": _target(incidents_sql(dialect)),
                                      "rawQuery": incidents_sql(dialect)}]},
            "panels": panels}


def panel_queries(board: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(panel title, SQL) of every query on the dashboard, annotations included."""
    out = [(p["title"], t["rawSql"]) for p in board["panels"] for t in p.get("targets", [])]
    out += [(a["name"], a["target"]["rawSql"]) for a in board["annotations"]["list"]]
    return out


def datasource(dialect: str, where: Mapping[str, str]) -> str:
    """Grafana's datasource provisioning YAML (written by hand: a few fixed keys)."""
    head = ("apiVersion: 1\ndatasources:\n  - name: Diagnostics reports archive\n"
            f"    uid: {DATASOURCE['uid']}\n")
    if dialect == "postgresql":
        password = (f"    secureJsonData:\n      password: ${where['password_env']}\n"
                    if where.get("password_env") else "")
        return head + ("    type: grafana-postgresql-datasource\n"
                       f"    url: {json.dumps(where['server'])}\n"
                       f"    user: {json.dumps(where['user'])}\n"
                       f"    jsonData:\n      database: {json.dumps(where['database'])}\n"
                       "      sslmode: require\n      postgresVersion: 1200\n" + password)
    return head + ("    type: frser-sqlite-datasource\n"
                   f"    jsonData:\n      path: {json.dumps(where['path'])}\n")


PROVIDER = ("apiVersion: 1\nproviders:\n  - name: Diagnostics reports\n    type: file\n"
            "    options:\n      path: {path}\n")


def write_grafana(out_dir: Path, dialect: str, where: Mapping[str, str],
                  rows: Iterable[tuple[str, str, list[Mapping[str, Any]]]]) -> list[Path]:
    """The bundle under `out_dir`: provisioning/datasources, provisioning/dashboards and
    dashboards/reports.json."""
    out_dir = Path(out_dir)
    board = dashboard(dialect, rows)
    return [
        atomic_write(out_dir / "provisioning" / "datasources" / "reports.yaml",
                     datasource(dialect, where)),
        atomic_write(out_dir / "provisioning" / "dashboards" / "reports.yaml",
                     PROVIDER.format(path=json.dumps(str((out_dir / "dashboards").resolve())))),
        atomic_write(out_dir / "dashboards" / "reports.json", json.dumps(board, indent=2) + "\n"),
    ]
