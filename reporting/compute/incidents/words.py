"""The sentences and labels of incidents, anomalies and their readings."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ...core import formatting as fmt
from .findings import Incident, Reading
from .signals import BACK_END, SIDES


def finite(v: Any) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def reading_text(r: Reading) -> str:
    """'payment-api p95 latency 900 ms (usually 200 ms)'; a signal that means trouble
    both ways (or falling) names its side: 'CPU on ec2-825cc2 fell to 25 % (usually 95 %)'."""
    verb = " "
    if SIDES.get(r.name, "up") != "up" and r.peak is not None and r.baseline is not None:
        verb = " fell to " if r.peak < r.baseline else " rose to "
    basis = f"; baseline: {r.days} days" if r.days else ""
    return (f"{label(dataclasses.asdict(r))}{verb}{fmt.value(r.peak, r.unit)} "
            f"(usually {fmt.value(r.baseline, r.unit)}{basis})")


def sentence(inc: Incident, currency: str = "") -> str:
    """'Wed 4 Nov 10:00-12:00: payment-api 5xx at 38.0 % (baseline 0.40 %), p95 ...'"""
    parts = []
    by = {(r.name, r.entity): r for r in inc.signals}
    for service in inc.services[:2]:
        bits = []
        e = by.get(("api.server_error_rate", service))
        if e:
            bits.append(f"5xx at {fmt.pct(e.peak)} (baseline {fmt.pct(e.baseline)})")
        p = by.get(("api.p95_ms", service))
        if p:
            bits.append(f"p95 {fmt.ms(p.peak)} (baseline {fmt.ms(p.baseline)})")
        r = by.get(("api.requests", service))
        if r:
            bits.append(f"{fmt.count(r.peak)} requests in an hour (usually "
                        f"{fmt.count(r.baseline)})")
        c = by.get(("system.cpu_pct", service)) or next(
            (r for r in inc.signals if r.name == "system.cpu_pct" and r.service == service),
            None)
        if c:
            bits.append(f"CPU {fmt.pct_points(c.peak)}")
        if bits:
            parts.append(f"{service} " + ", ".join(bits))
    impact = inc.impact
    if impact.abandoned_value > 0:
        parts.append(f"{fmt.count(impact.abandoned_carts)} more carts than usual abandoned, "
                     f"worth {fmt.money(impact.abandoned_value, currency)}"
                     + _give_or_take(impact.abandoned_value, impact.abandoned_value_se,
                                     lambda v: fmt.money(v, currency)))
    if impact.tickets > 0:
        kinds = [r.entity for r in inc.signals if r.name == "support.new_tickets"]
        parts.append(f"{fmt.count(impact.tickets)} extra tickets"
                     + _give_or_take(impact.tickets, impact.tickets_se, fmt.count)
                     + (f" ({', '.join(kinds[:2])})" if kinds else ""))
    for r in inc.signals:
        if r.name.startswith("feedback."):
            parts.append(f"{fmt.count(r.peak)} negative comments in "
                         f"{'a day' if r.daily else 'an hour'} "
                         f"(usually {fmt.count(r.baseline)})")
            break
    if not impact.abandoned_value and not impact.tickets:   # say what users felt
        felt = [r for r in inc.signals if not r.name.startswith(BACK_END)]
        parts += [reading_text(r) for r in felt[:1] if not r.name.startswith("feedback.")]
    return f"{span_text(inc.start, inc.end)}: " + "; ".join(parts) + "."


def _give_or_take(value: float, se: float, show: Callable[[float], str]) -> str:
    """' (± 640)': two standard errors, where they are more than a fifth of the value (a
    few carts at night: the window's ordinary traffic weighs as much as the incident)."""
    return f" (± {show(2 * se)})" if 2 * se > 0.2 * value else ""


LABELS = {
    "api.requests": "requests per hour", "api.server_error_rate": "5xx rate",
    "api.p95_ms": "p95 latency", "pages.p75_load_ms": "p75 load time",
    "cart.abandoned_carts": "abandoned carts per hour",
    "cart.abandoned_value": "abandoned value per hour",
    "sessions.dropped_at_checkout": "sessions dropped at checkout per hour",
    "feedback.negative": "negative comments per hour",
    "feedback.negative_about": "negative comments per hour",
    "support.new_tickets": "new tickets per hour", "system.cpu_pct": "CPU",
    "system.memory_pct": "memory", "system.failed_probes": "failed health probes per hour",
    "feedback.rating": "mean rating per hour",
}
ON_HOST = ("system.cpu_pct", "system.memory_pct")    # 'CPU on ec2-825cc2'



def label(row: Mapping[str, Any]) -> str:
    """'payment-api 5xx rate'; signals over everything ('all') name only the measure; a
    signal of bare dates counts per day."""
    what = LABELS.get(row["name"], row["name"])
    if row["name"] == "feedback.negative_about":
        what = f"Negative comments on {row['entity']} per hour"
    elif row["name"] in ON_HOST and row["entity"] != "all":
        what = f"{what} on {row['entity']}"
    elif row["entity"] == "all":
        what = what[0].upper() + what[1:]
    else:
        what = f"{row['entity']} {what}"
    return what.replace("per hour", "per day") if row.get("daily") else what


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
        return f"{start:%a %-d %b}" if last.date() == start.date() else \
            f"{start:%a %-d %b} – {last:%a %-d %b}"
    if start.date() == (end - pd.Timedelta(seconds=1)).date():
        until = "24:00" if end.date() != start.date() else f"{end:%H:%M}"
        return f"{start:%a %-d %b %H:%M}–{until}"
    return f"{start:%a %-d %b %H:%M} – {end:%a %-d %b %H:%M}"
