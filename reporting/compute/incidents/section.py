"""The incidents section: the period's incidents, anomalies and level shifts as tables,
insights, a timeline chart, kpis.json entries and the hourly values the archive keeps."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ...core import formatting as fmt
from ...core.config import Maintenance, ServiceLinks, Thresholds
from ...core.i18n import N_, Phrase, concat, ngettext
from ...core.i18n import gettext as _
from ...core.periods import Period
from ...core.values import Chart, Insight, Section, Table
from .. import changes, coverage
from .detect import detect
from .findings import Findings, Incident
from .signals import BACK_END, SIGNALS, Signal, archive_rows
from .words import chance_text, label, sentence, span_text, usual_text

NAME = "incidents"
TITLE = "Incidents across the stack"


def compute(frames: Mapping[str, pd.DataFrame], period: Period, t: Thresholds,
            history: pd.DataFrame | None = None,
            links: Mapping[str, ServiceLinks] | None = None, top_n: int | None = None,
            currency: str = "", maintenance: Sequence[Maintenance] = ()
            ) -> tuple[Section, list[Incident], pd.DataFrame]:
    """The incidents section (its kpis.json entries in `document`), the incidents, and
    the period's hourly signal values for the archive; money in their sentences carries
    `currency`; hours of `maintenance` windows are not judged."""
    if not frames:
        return (Section(NAME, TITLE, "no data", "No data to look for incidents in."), [],
                archive_rows([], pd.DatetimeIndex([], tz="UTC"), period))
    found = detect(frames, period, t, history=history, links=links, top_n=top_n,
                   maintenance=maintenance)
    hours, sigs = found.hours, list(found.signals)
    tz = period.start.tz
    in_period = np.asarray((hours >= period.start) & (hours < period.end))
    found, details = _changes(found, frames, t, currency)
    incidents = list(found.incidents)
    timeline = _timeline(hours[in_period], sigs, in_period, incidents, tz, currency)
    insights = tuple(Insight("high", NAME, i.text, impact=1e12 + i.impact.abandoned_value)
                     for i in incidents)
    insights += tuple(Insight("medium", _domain(a.signals[0].name), a.text)
                      for a in found.back_end + found.user_felt)
    insights += tuple(Insight("medium", _domain(s.name), s.text) for s in found.shifts)
    lacking = [name for name in SIGNALS if frames.get(name) is None or not len(frames[name])]
    planned = bool(changes.windows(maintenance, period.start, period.end))
    message = Phrase(_message, bool(incidents), tuple(lacking), t.incident_false_alarms,
                     planned, tuple(_no_whole_hour(sigs, in_period, lacking)))
    section = Section(
        NAME, TITLE, "ok", message,
        tables=_tables(found) + changes.table(changes.deploys(frames), maintenance, period),
        charts=(timeline,), insights=insights,
        breakdowns={"count": len(incidents),
                    "back_end_anomalies": [a.as_dict() for a in found.back_end],
                    "user_felt_anomalies": [a.as_dict() for a in found.user_felt],
                    "level_shifts": [s.as_dict() for s in found.shifts]},
        document={"incidents": [{**i.as_dict(), **d} for i, d in zip(incidents, details)],
                  "incidents_not_judged": lacking})
    return section, incidents, archive_rows(sigs, hours, period)


def _no_whole_hour(sigs: Sequence[Signal], in_period: np.ndarray, lacking: Sequence[str]
                   ) -> list[str]:
    """The sources with rows of which not one hour of the period is known well enough to
    judge (the seed's 13 API requests lie in a quarter of an hour: a partial hour)."""
    known: dict[str, bool] = {}
    for s in sigs:
        known[s.source] = known.get(s.source, False) or bool(
            np.isfinite(s.values[in_period].astype(float)).any())
    return [source for source in SIGNALS if source not in lacking
            and known.get(source) is False]


def _message(found: bool, lacking: tuple[str, ...], false_alarms: float, planned: bool,
             partial: tuple[str, ...] = ()) -> str:
    """What the section says above its tables: never an all-clear over a source that did
    not load, nor over one of which no hour of the period could be judged."""
    if lacking or partial:
        said = []
        if lacking:
            said.append(ngettext(
                "Not judged from %(names)s: no data from it, so an incident there would not "
                "show here.", "Not judged from %(names)s: no data from them, so an incident "
                "there would not show here.", len(lacking)) % {
                "names": coverage.names(list(lacking))})
        if partial:
            said.append(ngettext(
                "Not judged from %(names)s: not one whole hour of its data lies in the "
                "period.", "Not judged from %(names)s: not one whole hour of their data lies "
                "in the period.", len(partial)) % {"names": coverage.names(list(partial))})
        message = " ".join(said)
        if not found:
            message += " " + _("None was found in the other sources.")
    elif not found:
        message = _("No incident: in no hour were a back-end service and what its users see "
                    "(its pages, tickets, comments, carts) both unusual beyond the "
                    "false-alarm bound (%(bound)s per period).") % {
            "bound": fmt.short(false_alarms)}
    else:
        message = ""
    if message and planned:
        message += " " + _("Hours in planned maintenance were not judged.")
    return message


def _changes(found: Findings, frames: Mapping[str, Any], t: Thresholds, currency: str
             ) -> tuple[Findings, list[dict[str, Any]]]:
    """The findings' sentences with money in `currency`, the deploy each followed, and an
    incident's cost against the day's revenue (`changes`); each incident's added
    kpis.json entries."""
    deploys, minutes = changes.deploys(frames), t.deploy_link_minutes
    incidents, details = [], []
    for i in found.incidents:
        i = dataclasses.replace(i, text=Phrase(sentence, i, currency)) if currency else i
        i, extra = changes.linked(i, i.services, deploys, minutes)
        text, share = changes.revenue_text(i.impact.abandoned_value, i.start, i.end,
                                           frames.get("orders"), currency)
        incidents.append(dataclasses.replace(i, text=concat(i.text, text) if text else i.text))
        details.append({**extra, **({"revenue_share": share} if share is not None else {})})
    back_end = tuple(changes.linked(a, (a.entity,), deploys, minutes)[0]
                     for a in found.back_end)
    shifts = tuple(changes.linked(s, (s.service or s.entity,) if s.name.startswith(BACK_END)
                                  else (),
                                  deploys, minutes)[0] for s in found.shifts)
    return dataclasses.replace(found, incidents=tuple(incidents), back_end=back_end,
                               shifts=shifts), details


def _domain(signal: str) -> str:
    """The report section a one-sided finding belongs to (api, system, support, ...)."""
    return {"sessions": "sessions", "cart": "cart", "feedback": "feedback", "pages": "pages",
            "support": "support", "system": "system"}.get(signal.split(".")[0], "api")


# A value said with its unit ("2.307,1 ms"): shown as a number, right-aligned and never
# wrapped inside it (a narrow German column broke "ms" in two).
SAID = {"peak": "said", "usual": "said", "now": "said"}


def _tables(found: Findings) -> tuple[Table, ...]:
    incidents = found.incidents
    windows_ = [Phrase(span_text, i.start, i.end) for i in incidents]
    table = pd.DataFrame([{
        "window": w, "services": ", ".join(i.services) or "–",
        "abandoned_carts": i.impact.abandoned_carts,
        "abandoned_value": i.impact.abandoned_value, "tickets": i.impact.tickets,
    } for w, i in zip(windows_, incidents)],
        columns=["window", "services", "abandoned_carts", "abandoned_value", "tickets"])
    # object, not pandas' str dtype, which would make each Phrase its English text
    table["window"] = pd.Series(windows_, index=table.index, dtype=object)

    def readings(items: Sequence[Any], who: str | None = None) -> pd.DataFrame:
        columns = ["window"] + ([who] if who else []) + ["signal", "peak", "usual", "chance"]
        return pd.DataFrame([{
            "window": Phrase(span_text, i.start, i.end),
            **({who: i.entity} if who else {}),
            # the service column already names a back-end signal's service
            "signal": Phrase(label, {"name": r.name, "entity": "all" if who and
                                     r.entity == i.entity else r.entity}),
            "peak": Phrase(fmt.value, r.peak, r.unit), "usual": Phrase(usual_text, r),
            "chance": chance_text(r.p),
        } for i in items for r in i.signals], columns=columns, dtype=object)

    shifts = pd.DataFrame([{
        "signal": Phrase(label, {"name": s.name, "entity": s.entity}),
        "since": Phrase(fmt.when, s.start, "datetime"),
        "usual": Phrase(fmt.value, s.before, s.unit), "now": Phrase(fmt.value, s.after, s.unit),
        "kind": Phrase(_, N_("still rising") if s.rising else N_("step")),
    } for s in found.shifts], columns=["signal", "since", "usual", "now", "kind"], dtype=object)
    usual_note = N_("Usual: the median of the same hour of the week over up to 4 earlier "
                    "weeks in the data or the archive (of the same hour of day when history "
                    "is short). Peak: the window's least likely hour. Chance: how likely that "
                    "hour was under its baseline.")
    return (
        Table("incidents", "Incidents, most costly first", table,
              {"abandoned_carts": "count", "abandoned_value": "money", "tickets": "count"},
              N_("Impact is what exceeded the usual level during the window.")),
        Table("signals", "What each incident's signals did", readings(incidents), SAID,
              usual_note),
        Table("back_end", "Back-end anomalies users did not visibly feel",
              readings(found.back_end, "service"), SAID,
              N_("A back-end signal far from its usual level with no sign in the pages, "
                 "tickets, comments or carts tied to that service.")),
        Table("user_felt", "What users felt without a back-end cause",
              readings(found.user_felt), SAID,
              N_("Pages, tickets, comments or carts far from their usual level with no "
                 "back-end service failing at the time.")),
        Table("level_shifts", "Level shifts", shifts, SAID,
              N_("A change that lasted at least a day: the hours after it are judged "
                 "against the new level.")),
    )


def _timeline(hours: pd.DatetimeIndex, sigs: list[Signal], in_period: np.ndarray,
              found: Sequence[Incident], tz: Any, currency: str = "") -> Chart:
    """API 5xx rate, abandoned cart value and negative feedback per hour (per day when the
    period is longer than two weeks, or when one of them comes from bare dates), incidents
    shaded; hours no source of a line covers are gaps, not zeros. The 5xx panel is the
    most costly incident's failing service (the series its sentence names), else all of
    the API."""
    names = ("api.server_error_rate", "api.requests", "cart.abandoned_value",
             "feedback.negative")
    service = next((s for i in found for s in i.services
                    if any(g.name == "api.server_error_rate" and g.entity == s
                           for g in sigs)), None)

    def total(name: str, weight: bool = False, entity: str | None = None
              ) -> np.ndarray | None:
        chosen = [s for s in sigs if s.name == name and entity in (None, s.entity)]
        if not chosen:
            return None
        values = np.vstack([s.values.astype(float) * (s.events if weight else 1)
                            for s in chosen])
        known = ~np.isnan(values).all(axis=0)
        return np.where(known, np.nansum(values, axis=0), np.nan)[in_period]

    local = hours.tz_convert(tz)
    sums = pd.DataFrame(index=local)
    for column, values in (("errors", total("api.server_error_rate", True, service)),
                           ("requests", total("api.requests", entity=service)),
                           ("abandoned value", total("cart.abandoned_value")),
                           ("negative comments", total("feedback.negative"))):
        if values is not None:
            sums[column] = values
    daily = len(local) > 14 * 24 or any(s.daily for s in sigs if s.name in names)
    if daily and len(sums.columns):
        sums = sums.groupby(local.floor("D") if len(local) else local).sum(min_count=1)
    data = pd.DataFrame({"hour": sums.index})
    rate = Phrase(lambda name: f"{name} " + _("5xx rate (%)"), service) if service else \
        "5xx rate (%)"
    if "requests" in sums:
        with np.errstate(all="ignore"):
            data[rate] = (sums["errors"] / sums["requests"].where(
                sums["requests"] > 0)).to_numpy()
    for column in ("abandoned value", "negative comments"):
        if column in sums:
            data[column] = sums[column].to_numpy()
    shade = [(i.start, i.end) for i in found]
    unit = "day" if daily else "hour"
    return Chart("incidents_timeline", "stacked_lines",
                 f"API errors, abandoned carts and negative feedback per {unit}", data,
                 {"x": "hour", "shade": shade, "currency": currency,
                  "units": {rate: "pct", "abandoned value": "money",
                            "negative comments": "count"}})
