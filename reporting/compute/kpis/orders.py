"""Orders and revenue (the optional `orders` source): orders, revenue, average order value
and conversion (orders per session started in the period, where sessions are given)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ...core import formatting, rollups
from ...core.config import Thresholds
from ...core.periods import Period
from ...core.i18n import N_, Phrase
from ...core.i18n import gettext as _
from ...core.values import Chart, Insight, Section, Table, Value
from .base import Metric, build_kpis, days, period_rows, ratio, records

SOURCE = "orders"
NAME = "orders"
TITLE = "Orders and revenue"
SESSIONS = "session_tracking"

CATALOGUE = [
    Metric("revenue", "Revenue", "money", "up"),
    Metric("orders", "Orders", "count", "up"),
    Metric("conversion_rate", "Conversion (orders / sessions)", "ratio", "up"),
    Metric("avg_order_value", "Average order value", "money", "up"),
]
HEADLINE = ("orders.revenue", "orders.conversion_rate")


def sessions_in(frames: Mapping[str, Any], start: pd.Timestamp, end: pd.Timestamp
                ) -> int | None:
    """Sessions started in [start, end), from the sessions' rollup (None without it)."""
    if SESSIONS not in frames:
        return None
    r = rollups.rollup_of(frames[SESSIONS], SESSIONS)
    return int(r.table("sessions", start, end)["n"].sum())


def revenue_in(frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> float:
    """The value of the orders placed in [start, end)."""
    t = frame["ordered_at"]
    return float(frame["value"].to_numpy(dtype="float64")[
        ((t >= start) & (t < end)).to_numpy(dtype=bool, na_value=False)].sum())


def measure(df: pd.DataFrame, sessions: int | None) -> dict[str, Value]:
    n, value = len(df), float(df["value"].sum())
    return {"revenue": value, "orders": n, "avg_order_value": ratio(value, n),
            "conversion_rate": ratio(n, sessions) if sessions is not None else None}


def compute(frames: Mapping[str, Any], period: Period, t: Thresholds, currency: str = ""
            ) -> Section:
    cur, prev = period_rows(frames[SOURCE], "ordered_at", period)
    values = measure(cur, sessions_in(frames, period.start, period.end))
    prev_values = None
    if prev is not None:
        p = period.previous
        prev_values = measure(prev, sessions_in(frames, p.start, p.end))
    kpis = build_kpis(NAME, CATALOGUE, values, prev_values, t)
    if cur.empty:
        return Section(NAME, TITLE, "no data", "No orders in this period.", kpis=kpis)
    by_day = (cur.groupby(days(cur["ordered_at"]))
              .agg(orders=("order_id", "size"), revenue=("value", "sum")))
    by_day.index.name = "day"
    by_day["avg_order_value"] = by_day["revenue"] / by_day["orders"]
    units = {"orders": "count", "revenue": "money", "avg_order_value": "money",
             "day": "date"}
    message = "" if values["conversion_rate"] is not None else \
        N_("Conversion needs the sessions (session_tracking), which are not in this data.")
    return Section(
        NAME, TITLE, message=message, kpis=kpis,
        tables=(Table("by_day", "By day", by_day.reset_index(), units),),
        charts=(Chart("orders_revenue_by_day", "bar", "Revenue per day",
                      by_day.reset_index()[["day", "revenue"]],
                      {"label": "day", "value": "revenue", "unit": "money",
                       "date_labels": True}),),
        insights=(_insight(values, prev_values, currency),), headline=HEADLINE,
        breakdowns={"by_day": records(by_day.set_axis(by_day.index.astype("str")), units)})


def _insight(v: dict[str, Value], pv: dict[str, Value] | None, currency: str) -> Insight:
    """Revenue, orders and conversion against the previous period: high when revenue fell
    by more than a quarter, medium by more than a tenth."""
    change = None
    if pv and pv.get("revenue"):
        change = (v["revenue"] - pv["revenue"]) / pv["revenue"]
    before = pv.get("conversion_rate") if pv else None
    severity = "high" if change is not None and change < -0.25 else \
        "medium" if change is not None and change < -0.10 else "low"
    return Insight(severity, NAME,
                   Phrase(_text, v["revenue"], v["orders"], v["avg_order_value"], change,
                          v.get("conversion_rate"), before, currency),
                   impact=-(change or 0.0))


def _text(revenue: float, orders: Value, average: Value, change: float | None, conv: Value,
          before: Value, currency: str) -> str:
    text = _("Revenue was %(revenue)s from %(orders)s orders (average %(average)s)") % {
        "revenue": formatting.money(revenue, currency), "orders": formatting.count(orders),
        "average": formatting.money(average, currency)}
    if change is not None:
        text += ", " + _("%(change)s vs the previous period") % {
            "change": formatting.change(change)}
    if isinstance(conv, float):
        text += "; " + _("%(conversion)s of sessions ordered") % {
            "conversion": formatting.pct(conv)}
        d = formatting.delta(conv, before, "ratio") if isinstance(before, float) else None
        if d:
            text += " (" + _("%(change)s vs %(before)s") % {
                "change": d.text, "before": formatting.pct(before)} + ")"
    return text + "."
