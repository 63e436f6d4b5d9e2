"""Tidy tables for BI tools (issue 29): what a build's kpis.json says, as rows.

`kpi_history` (a view: one row per period x audience slice x KPI), `incidents`,
`anomalies`, `data_quality` (per source and reason) and `deliveries` (one row per send
attempt) have the same names, columns and values in SQLite and PostgreSQL; a period's
latest build replaces its rows. docs/dashboards.md documents every column (COLUMNS is
what a test checks it against).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..core.formatting import delta
from .db import Db

# table -> its columns, in order: what the exports write and the docs document
COLUMNS: dict[str, tuple[str, ...]] = {
    "kpi_history": ("period_id", "period_start", "period_end", "audience", "kpi", "label",
                    "unit", "value", "text", "previous", "change", "change_unit", "status",
                    "better", "threshold", "threshold_bad", "built_at"),
    "incidents": ("period_id", "number", "started_at", "ended_at", "services", "pages",
                  "signals", "abandoned_carts", "abandoned_value", "tickets", "deploy",
                  "text", "built_at"),
    "anomalies": ("period_id", "number", "side", "started_at", "ended_at", "entity",
                  "signals", "text", "built_at"),
    "data_quality": ("period_id", "source", "reason", "status", "row_count", "valid_rows",
                     "message", "built_at"),
    "deliveries": ("id", "period_id", "audience", "recipient", "message_id", "status",
                   "attempts", "last_error", "updated_at", "pid", "host"),
}
TABLES = tuple(COLUMNS)
# the timestamps BI tools should read as instants (stored as ISO 8601 text)
INSTANTS = ("period_start", "period_end", "started_at", "ended_at", "built_at", "updated_at")


def kpi_row(period_id: str, slice_name: str, key: str, k: Mapping[str, Any],
            label: str | None, built_at: str) -> tuple[Any, ...]:
    """One `kpis` row: the value (a number, or `text` for a name such as the slowest
    page), its previous value, the change as the report shows it (points for rates,
    units for scores, percent otherwise) and the thresholds it was judged against."""
    v, prev = k.get("value"), k.get("previous")
    number = v if isinstance(v, (int, float)) and not isinstance(v, bool) else None
    before = prev if isinstance(prev, (int, float)) and not isinstance(prev, bool) else None
    unit = k.get("unit", "")
    d = delta(number, before, unit) if number is not None and before is not None else None
    change = None if d is None else 0.0 if d.text == "no change" else _shown(d, unit)
    bounds = k.get("threshold"), k.get("threshold_bad")
    return (period_id, slice_name, key, number, v if isinstance(v, str) else None, unit,
            k.get("status"), built_at, label, before, change,
            None if d is None else change_unit(unit), k.get("better"), *bounds)


def change_unit(unit: str) -> str:
    """The unit of `change`: percentage points, the KPI's own unit, or percent."""
    return "pp" if unit in ("ratio", "pct") else unit if unit in ("score", "rating") else "%"


def _shown(d: Any, unit: str) -> float:
    """The number the report prints: "+7.3 pp" is 7.3, "-4.0 %" is -4.0."""
    text = d.text.replace("−", "-").replace(",", "").replace("pp", "").replace("%", "")
    return float(text.strip())


KPI_INSERT = ("INSERT INTO kpis (period_id, slice, key, value, text, unit, status, built_at,"
              " label, previous, change, change_unit, better, threshold, threshold_bad)"
              " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")


def write_document(db: Db, period_id: str, document: Mapping[str, Any],
                   built_at: str) -> None:
    """The period's incidents, anomalies and data quality from its kpis.json, replacing
    an earlier build's rows."""
    for table in ("incidents", "anomalies", "data_quality"):
        db.execute(f"DELETE FROM {table} WHERE period_id = ?", (period_id,))
    incidents = [(period_id, n, i["start"], i["end"], ", ".join(i.get("services", [])),
                  ", ".join(i.get("pages", [])), _signals(i), *_impact(i),
                  json.dumps(i["deploy"], sort_keys=True) if i.get("deploy") else None,
                  i.get("text", ""), built_at)
                 for n, i in enumerate(document.get("incidents") or [], start=1)]
    db.executemany(_insert("incidents"), incidents)
    found = (document.get("breakdowns") or {}).get("incidents") or {}
    anomalies = [*found.get("back_end_anomalies", []), *found.get("user_felt_anomalies", [])]
    db.executemany(_insert("anomalies"), [
        (period_id, n, a["side"], a["start"], a["end"], a["entity"], _signals(a),
         a.get("text", ""), built_at) for n, a in enumerate(anomalies, start=1)])
    db.executemany(_insert("data_quality"), quality_rows(period_id, document, built_at))


def quality_rows(period_id: str, document: Mapping[str, Any], built_at: str
                 ) -> list[tuple[Any, ...]]:
    """Per source one row with reason "" (rows read and valid) and one per reason its
    rows were rejected (row_count: how many; valid_rows empty)."""
    rows = []
    for source, q in (document.get("data_quality") or {}).items():
        rows.append((period_id, source, "", q.get("status", ""), int(q.get("rows") or 0),
                     int(q.get("valid") or 0), q.get("message"), built_at))
        rows += [(period_id, source, reason, q.get("status", ""), int(count), None, None,
                  built_at) for reason, count in sorted((q.get("rejected") or {}).items())]
    return rows


def _insert(table: str) -> str:
    cols = COLUMNS[table]
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({','.join('?' * len(cols))})"


def _signals(finding: Mapping[str, Any]) -> str:
    return ", ".join(f"{s['name']} ({s['entity']})" for s in finding.get("signals", []))


def _impact(incident: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    impact = incident.get("impact") or {}
    return (impact.get("abandoned_carts"), impact.get("abandoned_value"),
            impact.get("tickets"))


def read(db: Db, table: str) -> pd.DataFrame:
    """A BI table in its documented column order, oldest period first."""
    if table not in COLUMNS:
        raise ValueError(table)
    order = {"kpi_history": "period_start, audience, kpi", "deliveries": "id"}.get(
        table, "period_id, " + COLUMNS[table][1])
    quoted = ", ".join(COLUMNS[table])
    return db.frame(f"SELECT {quoted} FROM {table} ORDER BY {order}")
