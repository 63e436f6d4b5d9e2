"""Support tickets: volume, backlog and its age, flow, response and resolution times
against the SLA (per priority where tickets carry one), and the tickets' own CSAT."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ...core import formatting
from ...core.config import Thresholds
from ...core.periods import Period
from ...core.i18n import N_, Phrase
from ...core.i18n import gettext as _
from ...core.values import Chart, Insight, Section, Table, Value
from .base import (
    Metric,
    build_kpis,
    carried,
    covers_previous,
    days,
    higher,
    lower,
    metric,
    mode,
    percentile,
    ratio,
    records,
)

SOURCE = "support_tickets"
NAME = "support"
TITLE = "Support tickets"
CLOSED = ("resolved", "closed", "done", "solved")

CATALOGUE = [
    Metric("tickets", "New tickets", "count", "down"),
    Metric("open_backlog", "Open backlog at period end", "count", "down"),
    Metric("backlog_median_age_h", "Median age of the open backlog", "h", "down"),
    Metric("net_flow", "Net flow (created − resolved)", "count", "down"),
    Metric("median_first_response_h", "Median first response", "h", "down"),
    Metric("first_response_sla_breach", "First responses over {support_first_response_hours}",
           "ratio", "down", lower(lambda t: (0.10, 0.20))),
    Metric("median_resolution_h", "Median resolution time", "h", "down",
           lower(lambda t: (t.support_sla_hours, 1.25 * t.support_sla_hours))),
    Metric("p90_resolution_h", "p90 resolution time", "h", "down"),
    Metric("sla_breach_rate", "SLA breach rate", "ratio", "down",
           lower(lambda t: (0.10, 0.20))),
    Metric("ticket_csat", "Ticket CSAT (rated 4-5)", "ratio", "up",
           higher(lambda t: (t.csat, t.csat - 0.1))),
    Metric("rated_tickets", "Tickets rated (CSAT)", "count", "up"),
    Metric("top_issue_type", "Top issue type", "text"),
]
# present only where the tickets carry them (a csat or a first_response_at column)
OPTIONAL = {"ticket_csat", "rated_tickets", "first_response_sla_breach"}
BREACH = metric(CATALOGUE, "sla_breach_rate")
FIRST = metric(CATALOGUE, "first_response_sla_breach")
CSAT = metric(CATALOGUE, "ticket_csat")
HEADLINE = ("support.tickets", "support.open_backlog", "support.median_resolution_h",
            "support.sla_breach_rate")
# where tickets are rated, their CSAT takes the median resolution's tile (one row of 4)
RATED_HEADLINE = ("support.tickets", "support.open_backlog", "support.sla_breach_rate",
                  "support.ticket_csat")


def targets(df: pd.DataFrame, t: Thresholds) -> np.ndarray:
    """Each ticket's resolution target in hours: its priority's, else support_sla_hours."""
    by = dict(t.support_sla_hours_by_priority)
    key = df["priority"].astype("str").str.strip().str.lower()
    return key.map(by).astype("float64").fillna(t.support_sla_hours).to_numpy()


def _first_response(df: pd.DataFrame, new: np.ndarray, end: pd.Timestamp, t: Thresholds
                    ) -> tuple[float | None, dict[str, Value]]:
    """Median first response (h) of the tickets created in the period and, where tickets
    carry first_response_at, the share answered later than the target: a ticket still
    unanswered at the period's end counts once it has waited longer than the target
    (earlier it is not judged yet); a resolution answers a ticket without a reply."""
    created, first = df["created_at"], df["first_response_at"]
    waited = ((first - created).dt.total_seconds() / 3600)[new]
    median = float(waited.median()) if waited.notna().any() else None
    if not first.notna().any():
        return median, {}
    answer = first.fillna(df["resolved_at"])[new]
    took = ((answer - created[new]).dt.total_seconds() / 3600).to_numpy()
    open_for = ((end - created[new]).dt.total_seconds() / 3600).to_numpy()
    target = t.support_first_response_hours
    late = np.where(np.isnan(took), open_for > target, took > target)
    judged = ~np.isnan(took) | (open_for > target)
    return median, {"first_response_sla_breach": ratio(late[judged].sum(), judged.sum())}


def _csat(df: pd.DataFrame, new: np.ndarray) -> dict[str, Value]:
    """Of the tickets created in the period that were rated, the share rated 4 or 5."""
    if not df["csat"].notna().any():
        return {}
    csat = df["csat"].to_numpy(dtype="float64")[new]
    rated = ~np.isnan(csat)
    return {"ticket_csat": ratio((csat[rated] >= 4).sum(), rated.sum()),
            "rated_tickets": int(rated.sum())}


def measure(df: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, t: Thresholds
            ) -> dict[str, Value]:
    """KPIs of [start, end): created in it, resolved in it, open at its end."""
    created = df["created_at"]
    resolved = df["resolved_at"]
    new = ((created >= start) & (created < end)).to_numpy()
    done = ((resolved >= start) & (resolved < end)).fillna(False).to_numpy()
    closed_status = df["status"].astype("str").str.lower().isin(CLOSED)
    # Open at the end: created before it and not resolved before it (a ticket marked
    # closed without a resolution time counts as closed).
    open_at_end = ((created < end) & (
        (resolved >= end).fillna(False) | (resolved.isna() & ~closed_status))).to_numpy()
    hours = ((resolved - created).dt.total_seconds() / 3600)[done]
    age = ((end - created[open_at_end]).dt.total_seconds() / 3600)
    first, optional = _first_response(df, new, end, t)
    n_new = int(new.sum())
    return {
        "tickets": n_new, "open_backlog": int(open_at_end.sum()),
        "backlog_median_age_h": float(age.median()) if len(age) else None,
        "net_flow": n_new - int(done.sum()),
        "median_first_response_h": first,
        "median_resolution_h": float(hours.median()) if len(hours) else None,
        "p90_resolution_h": percentile(hours, 90),
        "sla_breach_rate": ratio((hours.to_numpy() > targets(df, t)[done]).sum(), len(hours)),
        "top_issue_type": mode(df.loc[new, "issue_type"]),
        **optional, **_csat(df, new),
    }


def by_priority(df: pd.DataFrame, period: Period, t: Thresholds) -> pd.DataFrame:
    """Per priority of the tickets resolved in the period: resolved, target, breached,
    breach rate and median resolution, the tightest target first."""
    done = period.mask(df["resolved_at"]) & df["priority"].notna().to_numpy()
    hours = ((df["resolved_at"] - df["created_at"]).dt.total_seconds() / 3600)[done]
    target = targets(df, t)[done]
    frame = pd.DataFrame({"priority": df.loc[done, "priority"].astype("str").to_numpy(),
                          "hours": hours.to_numpy(), "sla_hours": target,
                          "breached": hours.to_numpy() > target})
    out = frame.groupby("priority").agg(
        resolved=("hours", "size"), sla_hours=("sla_hours", "first"),
        breached=("breached", "sum"), median_h=("hours", "median"))
    out["breach_rate"] = out["breached"] / out["resolved"]
    return out.sort_values(["sla_hours", "resolved"], ascending=[True, False])[
        ["resolved", "sla_hours", "breached", "breach_rate", "median_h"]]


def compute(frames: Mapping[str, pd.DataFrame], period: Period, t: Thresholds) -> Section:
    df = frames[SOURCE]
    values = measure(df, period.start, period.end, t)
    prev = period.previous
    prev_values = (measure(df, prev.start, prev.end, t)
                   if covers_previous(df["created_at"], period) else None)
    kpis = build_kpis(NAME, carried(CATALOGUE, values, OPTIONAL), values, prev_values, t)
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
    units = {"tickets": "count", "resolved": "count", "share": "ratio", "breached": "count",
             "sla_hours": "h", "breach_rate": "ratio", "median_h": "h"}
    by_channel["share"] = by_channel["tickets"] / max(len(new), 1)
    priorities = by_priority(df, period, t)
    tables = (
        Table("by_type", "By issue type", by_type.head(12), units),
        Table("by_channel", "By channel", by_channel, units),
    ) + ((Table("by_priority", "Resolution SLA by priority", priorities.reset_index(), units,
                N_("Target per priority: thresholds.support_sla_hours_by_priority; a "
                   "priority not named there: thresholds.support_sla_hours.")),)
         if len(priorities) else ())
    sla_line = Phrase(lambda h: _("SLA %(hours)s h") % {"hours": formatting.short(h)},
                      t.support_sla_hours)
    charts = (
        Chart("support_per_day", "stacked", "New tickets per day by channel (tickets)",
              per_day, {"x_label": "", "y_label": "tickets", "date_labels": True}),
        Chart("support_resolution", "hist", "Resolution time of tickets resolved (hours)",
              pd.DataFrame({"hours": res_hours.to_numpy()}),
              {"value": "hours", "unit": "h", "threshold": t.support_sla_hours,
               "threshold_label": sla_line}),
    )
    insights = _insights(values, prev_values, new, df, period, t, priorities)
    breakdowns = {"by_channel": dict(zip(by_channel["channel"],
                                         by_channel["tickets"].astype(int).tolist()))}
    if len(priorities):
        breakdowns["sla_breach_by_priority"] = records(priorities, units)
    return Section(NAME, TITLE, kpis=kpis, tables=tables, charts=charts,
                   insights=tuple(insights), breakdowns=breakdowns,
                   headline=RATED_HEADLINE if "ticket_csat" in values else HEADLINE)


def _insights(values: dict[str, Value], prev_values: dict[str, Value] | None,
              new: pd.DataFrame, df: pd.DataFrame, period: Period, t: Thresholds,
              priorities: pd.DataFrame) -> list[Insight]:
    """SLA breaches (severity as the KPI is judged), late first responses, low ticket
    CSAT, a growing backlog, a rising issue type."""
    insights = []
    said = {
        BREACH: lambda v: Phrase(_breach_text, v, values, priorities, t),
        FIRST: lambda v: Phrase(_first_text, v, values["median_first_response_h"], t),
        CSAT: lambda v: Phrase(_csat_text, v, values["rated_tickets"], t),
    }
    for m, say in said.items():        # each as its KPI is judged, when not good
        v = values.get(m.name)
        if isinstance(v, float) and m.judge(v, t) != "good":
            insights.append(Insight(m.severity(v, t), NAME, say(v),
                                    impact=100 * (v if m.better == "down" else t.csat - v)))
    if values["net_flow"] and values["net_flow"] > 0 and values["tickets"]:
        grow = values["net_flow"] / values["tickets"]
        if grow > 0.1:
            insights.append(Insight(
                "medium", NAME,
                Phrase(_backlog_text, values["tickets"], values["net_flow"],
                       values["open_backlog"]), impact=float(values["net_flow"])))
    top = values["top_issue_type"]
    if top and prev_values and prev_values.get("tickets"):
        now_n = int((new["issue_type"].astype("str") == top).sum())
        pm = period.previous.mask(df["created_at"])
        before = int((df.loc[pm, "issue_type"].astype("str") == top).sum())
        if before and now_n > 1.5 * before:
            insights.append(Insight("medium", NAME,
                                    Phrase(_rise_text, top, before, now_n),
                                    impact=float(now_n - before)))
    return insights


def _first_text(v: float, median_h: Value, t: Thresholds) -> str:
    return _("%(share)s of the new tickets waited longer than %(hours)s h for a first answer "
             "(median %(median)s).") % {"share": formatting.pct(v),
                                         "hours": formatting.short(t.support_first_response_hours),
                                         "median": formatting.value(median_h, "h")}


def _csat_text(v: float, rated: Value, t: Thresholds) -> str:
    return _("Ticket CSAT was %(csat)s: of %(rated)s rated tickets, that share rated their "
             "support 4 or 5 (target %(target)s).") % {
        "csat": formatting.pct(v), "rated": formatting.count(rated),
        "target": formatting.pct(t.csat)}


def _backlog_text(tickets: int, net_flow: int, backlog: Value) -> str:
    return _("The backlog grew: %(came)s tickets came in and %(resolved)s were resolved, "
             "leaving %(open)s open at the end of the period.") % {
        "came": formatting.count(tickets), "resolved": formatting.count(tickets - net_flow),
        "open": formatting.count(backlog)}


def _rise_text(kind: str, before: int, now: int) -> str:
    return _("%(kind)s tickets rose from %(before)d to %(now)d (%(change)s).") % {
        "kind": kind, "before": before, "now": now,
        "change": formatting.change((now - before) / before)}


def _breach_text(breach: float, values: Mapping[str, Value], priorities: pd.DataFrame,
                 t: Thresholds) -> str:
    """'x % of tickets resolved took longer than the 24 h target (...)', or, where tickets
    carry a priority, than their priority's target, naming the worst priority."""
    said = {"share": formatting.pct(breach),
            "median": formatting.value(values["median_resolution_h"], "h"),
            "p90": formatting.value(values["p90_resolution_h"], "h"),
            "hours": formatting.short(t.support_sla_hours)}
    if not len(priorities):
        return _("%(share)s of tickets resolved this period took longer than the %(hours)s h "
                 "target (median %(median)s, p90 %(p90)s).") % said
    worst = priorities.sort_values(["breach_rate", "resolved"], ascending=False).iloc[0]
    said.update(worst=worst.name, rate=formatting.pct(worst["breach_rate"]),
                resolved=formatting.count(worst["resolved"]),
                sla=formatting.short(worst["sla_hours"]))
    return _("%(share)s of tickets resolved this period took longer than their priority's "
             "target (median %(median)s, p90 %(p90)s); worst: %(worst)s, %(rate)s of "
             "%(resolved)s over %(sla)s h.") % said
