"""Abandoned carts: how many, how much value, when, and the biggest ones."""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ...core import formatting
from ...core.config import Thresholds
from ...core.periods import Period
from ...core.i18n import Phrase
from ...core.i18n import gettext as _
from ...core.values import Chart, Insight, Section, Table, Value
from . import orders
from .base import Metric, build_kpis, carried, days, hours, mean, period_rows, ratio

SOURCE = "cart_abandonment"
NAME = "cart"
TITLE = "Cart abandonment"

CATALOGUE = [
    Metric("abandoned_carts", "Abandoned carts", "count", "down"),
    Metric("abandoned_value", "Abandoned value", "money", "down"),
    Metric("avg_value", "Average cart value", "money"),
    Metric("avg_items", "Average items per cart", "items"),
    Metric("abandoned_share", "Abandoned share of cart and order value", "ratio", "down"),
]
OPTIONAL = {"abandoned_share"}          # only with the orders source
HEADLINE = ("cart.abandoned_carts", "cart.abandoned_value")


def measure(df: pd.DataFrame, t: Thresholds, revenue: float | None = None
            ) -> dict[str, Value]:
    """The period's carts; with the orders' `revenue` of the same period, the abandoned
    value's share of abandoned value + revenue."""
    value = float(df["total_value"].sum())
    out: dict[str, Value] = {
        "abandoned_carts": len(df), "abandoned_value": value,
        "avg_value": mean(df["total_value"]), "avg_items": mean(df["items_in_cart"])}
    if revenue is not None:
        out["abandoned_share"] = ratio(value, value + revenue)
    return out


def peak_window(df: pd.DataFrame, hours_wide: int = 2) -> tuple[pd.Timestamp, float] | None:
    """Start of the `hours_wide` window holding the most abandoned value, and its share."""
    total = df["total_value"].sum()
    if not total:
        return None
    per_hour = df.groupby(hours(df["abandonment_time"]))["total_value"].sum()
    per_hour = per_hour.asfreq("h", fill_value=0) if len(per_hour) > 1 else per_hour
    rolled = per_hour.rolling(hours_wide, min_periods=1).sum()
    end = rolled.idxmax()
    return end - pd.Timedelta(hours=hours_wide - 1), float(rolled.max() / total)


def compute(frames: Mapping[str, pd.DataFrame], period: Period, t: Thresholds,
            currency: str = "") -> Section:
    cur, prev = period_rows(frames[SOURCE], "abandonment_time", period)
    sold = frames.get(orders.SOURCE)

    def revenue(p: Period) -> float | None:
        return orders.revenue_in(sold, p.start, p.end) if sold is not None else None
    values = measure(cur, t, revenue(period))
    prev_values = measure(prev, t, revenue(period.previous)) if prev is not None else None
    kpis = build_kpis(NAME, carried(CATALOGUE, values, OPTIONAL), values, prev_values, t)
    if cur.empty:
        return Section(NAME, TITLE, "no data", "No abandoned carts in this period.", kpis=kpis)
    by_day = (cur.groupby(days(cur["abandonment_time"]))
              .agg(carts=("cart_id", "size"), value=("total_value", "sum")))
    by_day.index.name = "day"
    by_hour = (cur.groupby(cur["abandonment_time"].dt.hour)
               .agg(carts=("cart_id", "size"), value=("total_value", "sum"))
               .reindex(range(24), fill_value=0))
    by_hour.index.name = "hour"
    biggest = cur.nlargest(10, "total_value")[
        ["cart_id", "user_id", "abandonment_time", "items_in_cart", "total_value"]]
    units = {"carts": "count", "value": "money", "items_in_cart": "count",
             "total_value": "money", "abandonment_time": "datetime", "day": "date"}
    tables = (
        Table("biggest", "Biggest abandoned carts", biggest, units),
        Table("by_day", "By day", by_day.reset_index(), units),
    )
    charts = (
        Chart("cart_value_by_day", "bar", "Abandoned cart value per day",
              by_day.reset_index()[["day", "value"]],
              {"label": "day", "value": "value", "unit": "money", "date_labels": True}),
        Chart("cart_by_hour", "bar", "Abandoned carts by hour of day (count)",
              by_hour.reset_index()[["hour", "carts"]],
              {"label": "hour", "value": "carts", "unit": "count"}),
    )
    times = cur["abandonment_time"]
    if bool((times == times.dt.normalize()).all()):   # bare dates: no hour to chart by
        charts = charts[:1]
    insights = [_insight(values, prev_values, cur, currency, revenue(period))]
    return Section(NAME, TITLE, kpis=kpis, tables=tables, charts=charts,
                   insights=tuple(insights), headline=HEADLINE,
                   breakdowns={"by_hour": {int(h): formatting.rounded(float(v), "money")
                                          for h, v in by_hour["value"].items()}})


def _insight(values: dict[str, Value], prev_values: dict[str, Value] | None,
             cur: pd.DataFrame, currency: str, revenue: float | None) -> Insight:
    """The abandoned value (against revenue, where orders are given), its change and its
    busiest two hours; high when it rose by more than a quarter."""
    value = values["abandoned_value"]
    pv = prev_values["abandoned_value"] if prev_values else None
    peak = peak_window(cur)
    peak = peak if peak and peak[1] >= 0.2 and len(cur) >= 30 else None
    severity = "high" if pv and (value - pv) / pv > 0.25 else "medium" if pv and \
        (value - pv) / pv > 0.10 else "low"
    return Insight(severity, NAME, Phrase(_text, value, values.get("abandoned_share"), pv, peak,
                                          currency, revenue), impact=float(value))


def _text(value: float, share: Value, pv: float | None, peak: tuple[pd.Timestamp, float] | None,
          currency: str, revenue: float | None) -> str:
    text = _("Abandoned carts were worth %(value)s this period") % {
        "value": formatting.money(value, currency)}
    if revenue:
        text += " " + _("(%(of_revenue)s of revenue, %(share)s of cart and order value)") % {
            "of_revenue": formatting.pct(value / revenue), "share": formatting.pct(share)}
    if pv:
        text += ", " + _("%(change)s vs the previous period") % {
            "change": formatting.change((value - pv) / pv)}
    if peak:
        start, part = peak
        text += "; " + _("%(share)s were abandoned between %(start)s and %(end)s on %(day)s") % {
            "share": formatting.pct(part), "start": formatting.when(start, "time"),
            "end": formatting.when(start + pd.Timedelta(hours=2), "time"),
            "day": formatting.when(start, "weekday")}
    return text + "."
