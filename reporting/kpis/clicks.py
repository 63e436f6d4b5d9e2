"""Clickstream: volume, reach, what gets clicked and when."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .. import formatting
from ..config import Thresholds
from ..periods import Period
from ..rollups import rows_of
from .base import (Chart, Insight, Metric, Section, Table, Value, build_kpis, mode, ratio,
                   window)

SOURCE = "clickstream"
NAME = "clicks"
TITLE = "Clickstream"
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

CATALOGUE = [
    Metric("total", "Clicks", "count"),
    Metric("unique_users", "Unique users", "count", "up"),
    Metric("clicks_per_user", "Clicks per user", "per_user"),
    Metric("top_page", "Most clicked page", "text"),
    Metric("top_element", "Most clicked element", "text"),
]
HEADLINE = ("clicks.total", "clicks.unique_users")


def user_codes(df: pd.DataFrame) -> np.ndarray:
    """One integer per distinct user id (counting distinct ints is cheaper than strings)."""
    return pd.factorize(df["user_id"])[0]


def measure(df: pd.DataFrame, t: Thresholds, codes: np.ndarray | None = None
            ) -> dict[str, Value]:
    codes = user_codes(df) if codes is None else codes
    users = int(codes.max() + 1) if len(codes) else 0
    return {"total": len(df), "unique_users": users, "clicks_per_user": ratio(len(df), users),
            "top_page": mode(df["page"]), "top_element": mode(df["element_clicked"])}


def by_hour_of_week(df: pd.DataFrame) -> pd.DataFrame:
    """7 x 24 click counts: rows Mon..Sun, columns hour 0..23."""
    ts = df["timestamp"]
    cell = ts.dt.day_of_week.to_numpy() * 24 + ts.dt.hour.to_numpy()
    counts = np.bincount(cell, minlength=7 * 24).reshape(7, 24)
    return pd.DataFrame(counts, index=DAYS, columns=range(24))


def compute(frames: Mapping[str, pd.DataFrame], period: Period, t: Thresholds) -> Section:
    cur, prev = window(rows_of(frames[SOURCE]), "timestamp", period)
    codes = user_codes(cur)
    values = measure(cur, t, codes)
    kpis = build_kpis(NAME, CATALOGUE, values, measure(prev, t) if prev is not None else None, t)
    if cur.empty:
        return Section(NAME, TITLE, "no data", "No clicks in this period.", kpis=kpis)
    # Distinct users per group, counted on integer codes rather than strings.
    work = cur.assign(user=codes)
    elements = (work.groupby("element_clicked", observed=True)
                .agg(clicks=("user", "size"), users=("user", "nunique"))
                .sort_values(["clicks", "users"], ascending=False))
    pages = (work.groupby("page", observed=True)
             .agg(clicks=("user", "size"), users=("user", "nunique"))
             .sort_values("clicks", ascending=False))
    grid = by_hour_of_week(cur)
    by_hour = grid.sum(axis=0)
    peak_hour = int(by_hour.idxmax())
    tables = (
        Table("top_elements", "Most clicked elements", elements.head(10).reset_index(),
              {"clicks": "count", "users": "count"}),
        Table("top_pages", "Clicks by page", pages.head(10).reset_index(),
              {"clicks": "count", "users": "count"}),
    )
    charts = (
        Chart("clicks_heatmap", "heatmap", "Clicks by hour of week (count)", grid,
              {"x_label": "hour of day", "colorbar": "clicks"}),
        Chart("clicks_top_elements", "barh", "Most clicked elements (clicks)",
              elements.head(10).reset_index()[["element_clicked", "clicks"]],
              {"label": "element_clicked", "value": "clicks", "unit": "count"}),
    )
    share = by_hour.max() / by_hour.sum() if by_hour.sum() else 0
    insights = (Insight("low", NAME,
                        f"{formatting.count(values['total'])} clicks from "
                        f"{formatting.count(values['unique_users'])} users; {values['top_element']} on "
                        f"{values['top_page']} leads, and {peak_hour:02d}:00-{peak_hour + 1:02d}:00 "
                        f"is the busiest hour ({formatting.pct(share)} of clicks).", impact=0),)
    return Section(NAME, TITLE, kpis=kpis, tables=tables, charts=charts, insights=insights,
                   headline=HEADLINE,
                   breakdowns={"by_hour": {int(h): int(c) for h, c in by_hour.items()}})
