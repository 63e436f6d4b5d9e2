"""The sentences and labels of incidents, anomalies and their readings."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ...core import formatting as fmt
from ...core import i18n
from ...core.i18n import N_, ngettext
from ...core.i18n import gettext as _
from .findings import Incident, Reading
from .signals import BACK_END, SIDES


def finite(v: Any) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def reading_text(r: Reading) -> str:
    """'payment-api p95 latency 900 ms (usually 200 ms)'; a signal that means trouble
    both ways (or falling) names its side: 'CPU on ec2-825cc2 fell to 25 % (usually 95 %)'.
    In the active voice, as every function here: `Phrase` says them again per page."""
    said = {"what": label(dataclasses.asdict(r)), "value": fmt.value(r.peak, r.unit),
            "usual": fmt.value(r.baseline, r.unit)
            + (ngettext("; baseline: %(num)d day", "; baseline: %(num)d days", r.days)
               % {"num": r.days} if r.days else "")}
    if SIDES.get(r.name, "up") != "up" and r.peak is not None and r.baseline is not None:
        if r.peak < r.baseline:
            return _("%(what)s fell to %(value)s (usually %(usual)s)") % said
        return _("%(what)s rose to %(value)s (usually %(usual)s)") % said
    return _("%(what)s %(value)s (usually %(usual)s)") % said


def _service_bits(inc: Incident, service: str) -> list[str]:
    by = {(r.name, r.entity): r for r in inc.signals}
    bits = []
    e = by.get(("api.server_error_rate", service))
    if e:
        bits.append(_("5xx at %(peak)s (baseline %(usual)s)")
                    % {"peak": fmt.pct(e.peak), "usual": fmt.pct(e.baseline)})
    p = by.get(("api.p95_ms", service))
    if p:
        bits.append(_("p95 %(peak)s (baseline %(usual)s)")
                    % {"peak": fmt.ms(p.peak), "usual": fmt.ms(p.baseline)})
    r = by.get(("api.requests", service))
    if r:
        bits.append(_("%(peak)s requests in an hour (usually %(usual)s)")
                    % {"peak": fmt.count(r.peak), "usual": fmt.count(r.baseline)})
    c = by.get(("system.cpu_pct", service)) or next(
        (r for r in inc.signals if r.name == "system.cpu_pct" and r.service == service), None)
    if c:
        bits.append(_("CPU %(peak)s") % {"peak": fmt.pct_points(c.peak)})
    return bits


def sentence(inc: Incident, currency: str = "") -> str:
    """'Wed 4 Nov 10:00-12:00: payment-api 5xx at 38.0 % (baseline 0.40 %), p95 ...'"""
    parts = []
    for service in inc.services[:2]:
        bits = _service_bits(inc, service)
        if bits:
            parts.append(f"{service} " + ", ".join(bits))
    impact = inc.impact
    if impact.abandoned_value > 0:
        parts.append(_("%(carts)s more carts than usual abandoned, worth %(value)s") % {
            "carts": fmt.count(impact.abandoned_carts),
            "value": fmt.money(impact.abandoned_value, currency)}
            + _give_or_take(impact.abandoned_value, impact.abandoned_value_se,
                            lambda v: fmt.money(v, currency)))
    if impact.tickets > 0:
        kinds = [r.entity for r in inc.signals if r.name == "support.new_tickets"]
        parts.append(_("%(tickets)s extra tickets") % {"tickets": fmt.count(impact.tickets)}
                     + _give_or_take(impact.tickets, impact.tickets_se, fmt.count)
                     + (f" ({', '.join(kinds[:2])})" if kinds else ""))
    for r in inc.signals:
        if r.name.startswith("feedback."):
            said = {"peak": fmt.count(r.peak), "usual": fmt.count(r.baseline)}
            parts.append((_("%(peak)s negative comments in a day (usually %(usual)s)")
                          if r.daily else
                          _("%(peak)s negative comments in an hour (usually %(usual)s)"))
                         % said)
            break
    if not impact.abandoned_value and not impact.tickets:   # say what users felt
        felt = [r for r in inc.signals if not r.name.startswith(BACK_END)]
        parts += [reading_text(r) for r in felt[:1] if not r.name.startswith("feedback.")]
    return f"{span_text(inc.start, inc.end)}: " + "; ".join(parts) + "."


def anomaly_text(side_: str, start: pd.Timestamp, end: pd.Timestamp,
                 readings: tuple[Reading, ...]) -> str:
    """'Wed 11 Nov 03:00–05:00: payment-api p95 latency 900 ms (usually 200 ms); no sign
    that users felt it.'"""
    shown = "; ".join(reading_text(r) for r in readings[:3])
    tail = _("no sign that users felt it") if side_ == "back-end" else \
        _("no back-end cause found")
    return f"{span_text(start, end)}: {shown}; {tail}."


def recurring_text(start: pd.Timestamp, end: pd.Timestamp, readings: tuple[Reading, ...],
                   times: int) -> str:
    """'Wed 16 Sep 06:00 – Sun 20 Sep 22:00: CPU on h rose to 51.3 % (usually 5.0 %),
    again and again: 12 times since Wed 16 Sep 06:00, one change, not 12 outages; no sign
    that users felt it.'"""
    shown = "; ".join(reading_text(r) for r in readings[:3])
    again = ngettext("again and again: %(num)d time since %(since)s, one change, not "
                     "%(num)d outage", "again and again: %(num)d times since %(since)s, one "
                     "change, not %(num)d outages", times) % {
        "num": times, "since": fmt.when(start, "datetime")}
    return f"{span_text(start, end)}: {shown}, {again}; {_('no sign that users felt it')}."


def shift_text(row: Mapping[str, Any], unit: str, start: pd.Timestamp, before: float,
               after: float, rising: bool, days: int = 0) -> str:
    """'CPU on h has stayed lower since Tue 10 Nov 03:00: 25.0 % against a usual 95.0 %
    (-70.0 pp; baseline: 5 days); a level shift, not an incident.'"""
    english = i18n.active() is None
    if unit == "ms":
        change = (f"{after / before - 1:+.0%}" if english else fmt.change(after / before - 1)
                  ) if before else ""
    else:
        change = f"{after - before:+.1f} pp" if english else \
            ("+" if after >= before else "−") + f"{fmt.number(abs(after - before), 1)} " + _("pp")
    up = after >= before
    said = {"what": label(row), "since": fmt.when(start, "datetime"),
            "now": fmt.value(after, unit), "usual": fmt.value(before, unit),
            "change": change + (ngettext("; baseline: %(num)d day", "; baseline: %(num)d days",
                                         days) % {"num": days} if days else "")}
    if rising:
        text = _("%(what)s has kept rising since %(since)s: %(now)s against a usual "
                 "%(usual)s (%(change)s); a level shift, not an incident.") if up else \
            _("%(what)s has kept falling since %(since)s: %(now)s against a usual "
              "%(usual)s (%(change)s); a level shift, not an incident.")
    else:
        text = _("%(what)s has stayed higher since %(since)s: %(now)s against a usual "
                 "%(usual)s (%(change)s); a level shift, not an incident.") if up else \
            _("%(what)s has stayed lower since %(since)s: %(now)s against a usual "
              "%(usual)s (%(change)s); a level shift, not an incident.")
    return text % said


def _give_or_take(value: float, se: float, show: Callable[[float], str]) -> str:
    """' (± 640)': two standard errors, where they are more than a fifth of the value (a
    few carts at night: the window's ordinary traffic weighs as much as the incident)."""
    return f" (± {show(2 * se)})" if 2 * se > 0.2 * value else ""


# Each label as said per hour and, for a signal of bare dates, per day.
LABELS = {
    "api.requests": (N_("requests per hour"), N_("requests per day")),
    "api.server_error_rate": (N_("5xx rate"),) * 2,
    "api.p95_ms": (N_("p95 latency"),) * 2, "pages.p75_load_ms": (N_("p75 load time"),) * 2,
    "cart.abandoned_carts": (N_("abandoned carts per hour"), N_("abandoned carts per day")),
    "cart.abandoned_value": (N_("abandoned value per hour"), N_("abandoned value per day")),
    "sessions.dropped_at_checkout": (N_("sessions dropped at checkout per hour"),
                                     N_("sessions dropped at checkout per day")),
    "feedback.negative": (N_("negative comments per hour"), N_("negative comments per day")),
    "feedback.negative_about": (N_("Negative comments on %(topic)s per hour"),
                                N_("Negative comments on %(topic)s per day")),
    "support.new_tickets": (N_("new tickets per hour"), N_("new tickets per day")),
    "system.cpu_pct": (N_("CPU"),) * 2, "system.memory_pct": (N_("memory"),) * 2,
    "system.failed_probes": (N_("failed health probes per hour"),
                             N_("failed health probes per day")),
    "feedback.rating": (N_("mean rating per hour"), N_("mean rating per day")),
}
ON_HOST = ("system.cpu_pct", "system.memory_pct")    # 'CPU on ec2-825cc2'


def label(row: Mapping[str, Any]) -> str:
    """'payment-api 5xx rate'; signals over everything ('all') name only the measure; a
    signal of bare dates counts per day."""
    forms = LABELS.get(row["name"])
    what = _(forms[bool(row.get("daily"))]) if forms else row["name"]
    if row["name"] == "feedback.negative_about":
        return what % {"topic": row["entity"]}
    if row["name"] in ON_HOST and row["entity"] != "all":
        return _("%(what)s on %(host)s") % {"what": what, "host": row["entity"]}
    if row["entity"] == "all":
        return what[0].upper() + what[1:]
    return f"{row['entity']} {what}"


def usual_text(r: Reading) -> str:
    """A usual count is an expected value: 0.4 tickets an hour is not 0."""
    if r.unit == "count" and r.baseline is not None and r.baseline < 10:
        return fmt.number(r.baseline, 1)
    return fmt.value(r.baseline, r.unit)


def chance_text(p: float | None) -> str:
    return "–" if p is None else "< 1e-12" if p < 1e-12 else f"{p:.0e}".replace("e-0", "e-")


def span_text(start: pd.Timestamp, end: pd.Timestamp) -> str:
    """'Mon 16 Nov 03:00–07:00'; a window that ends at midnight ends at 24:00 of its day
    (not at a bare '00:00' that reads as its start); one over days names both; whole
    days (a source of bare dates) only their days: 'Mon 30 Jul', 'Mon 30 Jul – Tue 31 Jul'."""
    if start == start.normalize() and end == end.normalize() and end > start:
        last = end - pd.Timedelta(days=1)
        return fmt.when(start, "day") if last.date() == start.date() else \
            f"{fmt.when(start, 'day')} – {fmt.when(last, 'day')}"
    if start.date() == (end - pd.Timedelta(seconds=1)).date():
        until = "24:00" if end.date() != start.date() else fmt.when(end, "time")
        return f"{fmt.when(start, 'datetime')}–{until}"
    return f"{fmt.when(start, 'datetime')} – {fmt.when(end, 'datetime')}"
