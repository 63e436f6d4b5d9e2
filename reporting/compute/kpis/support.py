"""Support tickets: volume, backlog, flow, response and resolution times, SLA."""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ...core import formatting
from ...core.config import Thresholds
from ...core.periods import Period
from ...core.values import Chart, Insight, Section, Table, Value
from .base import (
    Metric,
    build_kpis,
    covers_previous,
    days,
    lower_is_better,
    metric,
    mode,
    percentile,
    ratio,
)

SOURCE = "support_tickets"
NAME = "support"
TITLE = "Support tickets"
CLOSED = ("resolved", "closed", "done", "solved")

CATALOGUE = [
    Metric("tickets", "New tickets", "count", "down"),
    Metric("open_backlog", "Open backlog at period end", "count", "down"),
    Metric("net_flow", "Net flow (created − resolved)", "count", "down"),
    Metric("median_first_response_h", "Median first response", "h", "down"),
    Metric("median_resolution_h", "Median resolution time", "h", "down",
           lambda v, t: lower_is_better(v, t.support_sla_hours, 1.25 * t.support_sla_hours)),
    Metric("p90_resolution_h", "p90 resolution time", "h", "down"),
    Metric("sla_breach_rate", "SLA breach rate", "ratio", "down",
           lambda v, t: lower_is_better(v, 0.10, 0.20)),
    Metric("top_issue_type", "Top issue type", "text"),
]
BREACH = metric(CATALOGUE, "sla_breach_rate")
HEADLINE = ("support.tickets", "support.open_backlog", "support.median_resolution_h",
            "support.sla_breach_rate")


def measure(df: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, t: Thresholds
            ) -> dict[str, Value]:
    """KPIs of [start, end): created in it, resolved in it, open at its end."""
    created = df["created_at"]
    resolved = df["resolved_at"]
    new = (created >= start) & (created < end)
    done = ((resolved >= start) & (resolved < end)).fillna(False)
    closed_status = df["status"].astype("str").str.lower().isin(CLOSED)
    # Open at the end: created before it and not resolved before it (a ticket marked
    # closed without a resolution time counts as closed).
    open_at_end = (created < end) & (
        (resolved >= end).fillna(False) | (resolved.isna() & ~closed_status))
    hours = ((resolved - created).dt.total_seconds() / 3600)[done.to_numpy()]
    first = ((df["first_response_at"] - created).dt.total_seconds() / 3600)[new.to_numpy()]
    n_new = int(new.sum())
    return {
        "tickets": n_new, "open_backlog": int(open_at_end.sum()),
        "net_flow": n_new - int(done.sum()),
        "median_first_response_h": float(first.median()) if first.notna().any() else None,
        "median_resolution_h": float(hours.median()) if len(hours) else None,
        "p90_resolution_h": percentile(hours, 90),
        "sla_breach_rate": ratio((hours > t.support_sla_hours).sum(), len(hours)),
        "top_issue_type": mode(df.loc[new.to_numpy(), "issue_type"]),
    }


def compute(frames: Mapping[str, pd.DataFrame], period: Period, t: Thresholds) -> Section:
    df = frames[SOURCE]
    values = measure(df, period.start, period.end, t)
    prev = period.previous
    prev_values = (measure(df, prev.start, prev.end, t)
                   if covers_previous(df["created_at"], period) else None)
    kpis = build_kpis(NAME, CATALOGUE, values, prev_values, t)
    new = df.loc[period.mask(df["created_at"])]
    if new.empty and not values["open_backlog"]:
        return Section(NAME, TITLE, "no data", "No tickets in this period.", kpis=kpis)
    resolved_mask = period.mask(df["resolved_at"])
    res_hours = ((df["resolved_at"] - df["created_at"]).dt.total_seconds() / 3600)[resolved_mask]
    by_channel = new["channel"].astype("str").value_counts().rename_axis("channel") \
        .rename("tickets").reset_index()
    by_type = (new.assign(resolved=new["resolved_at"].notna())
               .groupby(new["issue_type"].astype("str"))
               .agg(tickets=("ticket_id", "size"), resolved=("resolved", "sum"))
               .sort_values("tickets", ascending=False).reset_index())
    per_day = pd.crosstab(days(new["created_at"]), new["channel"].astype("str"))
    units = {"tickets": "count", "resolved": "count", "share": "ratio"}
    by_channel["share"] = by_channel["tickets"] / max(len(new), 1)
    tables = (
        Table("by_type", "By issue type", by_type.head(12), units),
        Table("by_channel", "By channel", by_channel, units),
    )
    charts = (
        Chart("support_per_day", "stacked", "New tickets per day by channel (tickets)",
              per_day, {"x_label": "", "y_label": "tickets", "date_labels": True}),
        Chart("support_resolution", "hist", "Resolution time of tickets resolved (hours)",
              pd.DataFrame({"hours": res_hours.to_numpy()}),
              {"value": "hours", "unit": "h", "threshold": t.support_sla_hours,
               "threshold_label": f"SLA {t.support_sla_hours:g} h"}),
    )
    insights = _insights(values, prev_values, new, df, period, t)
    return Section(NAME, TITLE, kpis=kpis, tables=tables, charts=charts,
                   insights=tuple(insights), headline=HEADLINE,
                   breakdowns={"by_channel": dict(zip(by_channel["channel"],
                                                      by_channel["tickets"].astype(int).tolist()))})


def _insights(values: dict[str, Value], prev_values: dict[str, Value] | None,
              new: pd.DataFrame, df: pd.DataFrame, period: Period, t: Thresholds
              ) -> list[Insight]:
    """SLA breaches (severity as the KPI is judged), a growing backlog, a rising issue type."""
    insights = []
    breach = values["sla_breach_rate"]
    if isinstance(breach, float) and BREACH.judge(breach, t) != "good":
        insights.append(Insight(
            BREACH.severity(breach, t), NAME,
            f"{formatting.pct(breach)} of tickets resolved this period took longer than the "
            f"{t.support_sla_hours:g} h target "
            f"(median {formatting.value(values['median_resolution_h'], 'h')}, "
            f"p90 {formatting.value(values['p90_resolution_h'], 'h')}).", impact=breach * 100))
    if values["net_flow"] and values["net_flow"] > 0 and values["tickets"]:
        grow = values["net_flow"] / values["tickets"]
        if grow > 0.1:
            insights.append(Insight(
                "medium", NAME,
                f"The backlog grew: {formatting.count(values['tickets'])} tickets came in and "
                f"{formatting.count(values['tickets'] - values['net_flow'])} were resolved, "
                f"leaving {formatting.count(values['open_backlog'])} open at the end of the "
                "period.", impact=float(values["net_flow"])))
    top = values["top_issue_type"]
    if top and prev_values and prev_values.get("tickets"):
        now_n = int((new["issue_type"].astype("str") == top).sum())
        pm = period.previous.mask(df["created_at"])
        before = int((df.loc[pm, "issue_type"].astype("str") == top).sum())
        if before and now_n > 1.5 * before:
            insights.append(Insight("medium", NAME,
                                    f"{top} tickets rose from {before} to {now_n} "
                                    f"({formatting.change((now_n - before) / before)}).",
                                    impact=float(now_n - before)))
    return insights
