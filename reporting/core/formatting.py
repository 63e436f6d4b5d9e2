"""One place for every number's look: 1,234.5 ms, 12.3 %, 1,213.20 (also the Jinja2 filters).

While an audience's non-English voice is active (`i18n.speaking`), the same calls give
its CLDR forms (1.234,5 ms, 12,3 %, 1.213,20 EUR, Sa., 14. Nov. 2026); English keeps the
f-string forms below byte for byte."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from . import i18n
from .i18n import gettext as _

DASH = "–"


def _ok(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _num(v: float, digits: int) -> str:
    """`v` grouped with `digits` decimals in the active voice: 1,234.5 or 1.234,5."""
    voice = i18n.active()
    return f"{v:,.{digits}f}" if voice is None else i18n.decimal(v, digits, voice.locale)


def _g(v: float) -> str:
    """`v` as `{v:g}` writes it, with the active voice's decimal sign: 2.5 or 2,5."""
    voice = i18n.active()
    return f"{v:g}" if voice is None else i18n.short(v, voice.locale)


def short(v: Any) -> str:
    """A threshold as a sentence writes it (2.5, 14.4, 6; 2,5 in German)."""
    return _g(v) if _ok(v) else DASH


def _sp() -> str:
    """The space before a unit: a no-break one in German, French and Polish typography,
    so "2 438,0 ms" never breaks before its unit."""
    return " " if i18n.active() is None else "\u00a0"


def count(v: Any) -> str:
    return _num(v, 0) if _ok(v) else DASH


def ms(v: Any) -> str:
    return f"{_num(v, 1)}{_sp()}ms" if _ok(v) else DASH


def pct(v: Any) -> str:
    """A ratio (0-1) as a percentage; more digits near 0 % and 100 % where they matter."""
    if not _ok(v):
        return DASH
    p = v * 100
    digits = 2 if (0 < abs(p) < 1 or 99 < abs(p) < 100) else 1
    voice = i18n.active()
    if voice is not None:
        return i18n.percent(v, digits, voice.locale)
    return f"{p:,.{digits}f} %"


def pct_points(v: Any) -> str:
    """A value already in percent (CPU 0-100)."""
    if not _ok(v):
        return DASH
    voice = i18n.active()
    return f"{v:,.1f} %" if voice is None else i18n.percent(v / 100, 1, voice.locale)


def money(v: Any, currency: str = "") -> str:
    """1,234.50, or 1,234.50 EUR with a configured currency (1.234,50 EUR in German)."""
    if not _ok(v):
        return DASH
    voice = i18n.active()
    if voice is not None:
        return i18n.money(v, currency, voice.locale)
    return f"{v:,.2f} {currency}" if currency else f"{v:,.2f}"


def is_currency(unit: Any) -> bool:
    """A money unit named by its ISO 4217 code ("EUR"), as kpis.json carries it."""
    return isinstance(unit, str) and len(unit) == 3 and unit.isalpha() and unit.isupper()


# Digits a value keeps in kpis.json: what its unit shows (ratios as 0.9992 = 99.92 %).
PRECISION = {"count": 0, "ms": 1, "ratio": 4, "pct": 1, "money": 2, "min": 1, "h": 1,
             "items": 1, "per_user": 2, "score": 2, "rating": 2, "x": 1, "polarity": 2}


def rounded(v: Any, unit: str) -> Any:
    """`v` rounded to its unit's precision; other values as they are."""
    digits = 2 if is_currency(unit) else PRECISION.get(unit)
    if digits is None or not _ok(v) or isinstance(v, int):
        return v
    return round(float(v), digits) if digits else int(round(v))


def number(v: Any, digits: int = 1) -> str:
    return _num(v, digits) if _ok(v) else DASH


def change(v: Any) -> str:
    """Relative change with sign: +12.3 %, −4.0 %."""
    if not _ok(v):
        return DASH
    sign = "+" if v > 0 else "−" if v < 0 else "±"
    voice = i18n.active()
    if voice is not None:
        return sign + i18n.percent(abs(v), 1, voice.locale)
    return f"{sign}{abs(v) * 100:,.1f} %"


POINT_UNITS = {"ratio": 100.0, "pct": 1.0}    # rates and shares: change in points
ABSOLUTE_UNITS = {"score": 2, "rating": 2}    # bounded scores: change in their own unit


@dataclass(frozen=True)
class Delta:
    """A change against the previous period, in the unit people think in."""

    text: str                 # "+7.3 pp", "−4.0 %", "+0.05", "no change"
    arrow: str                # "▲" "▼" or "" for no change
    tone: str | None          # good | bad (by the KPI's better direction) | None
    amount: float             # the shown number: points, relative ratio or units


def delta(value: Any, previous: Any, unit: str, better: str | None = None) -> Delta | None:
    """Rates and shares in percentage points, scores in their unit, counts, durations and
    money in relative percent; None where no change can be said (no previous, from 0)."""
    if not (_ok(value) and _ok(previous)):
        return None
    if unit in POINT_UNITS:
        amount = (value - previous) * POINT_UNITS[unit]
        near_edge = any(0 < abs(v * POINT_UNITS[unit]) < 1 or 99 < v * POINT_UNITS[unit] < 100
                        for v in (value, previous))
        digits = 2 if near_edge else 1
        shown = round(amount, digits)
        points = _("pp")                  # percentage points: Pp. (de), p.p. (pl), pts (fr)
        text = f"{_sign(shown)}{_num(abs(shown), digits)} {points}"
    elif unit in ABSOLUTE_UNITS:
        digits = ABSOLUTE_UNITS[unit]
        amount = value - previous
        shown = round(amount, digits)
        text = f"{_sign(shown)}{_num(abs(shown), digits)}"
    else:
        if previous == 0:
            return None
        amount = (value - previous) / abs(previous)
        shown = round(amount * 100, 1)
        text = f"{_sign(shown)}{_num(abs(shown), 1)} %" if i18n.active() is None else \
            _sign(shown) + i18n.percent(abs(shown) / 100, 1, i18n.active().locale)
    if shown == 0:
        return Delta(_("no change"), "", None, 0.0)
    tone = None if better is None else "good" if (shown > 0) == (better == "up") else "bad"
    return Delta(text, "▲" if shown > 0 else "▼", tone, amount)


def change_view(value: Any, previous: Any, unit: str, better: str | None = None
                ) -> dict[str, Any]:
    """The change as a page shows it beside a KPI: its text, arrow and tone (the one
    place the KPI cards, the headline tiles and the mail's headline get them)."""
    d = delta(value, previous, unit, better)
    return {"change": d.text if d else None, "arrow": d.arrow if d else "",
            "tone": d.tone if d else None}


def _sign(v: float) -> str:
    return "+" if v > 0 else "−" if v < 0 else ""


FORMATS = {
    "count": count,
    "ms": ms,
    "ratio": pct,
    "pct": pct_points,
    "money": money,
    "min": lambda v: f"{_num(v, 1)}{_sp()}min" if _ok(v) else DASH,
    "h": lambda v: f"{_num(v, 1)}{_sp()}h" if _ok(v) else DASH,
    "items": lambda v: number(v, 1),
    "per_user": lambda v: number(v, 2),
    "score": lambda v: number(v, 2),
    "rating": lambda v: f"{_num(v, 2)} / 5" if _ok(v) else DASH,
    "x": lambda v: f"{_num(v, 1)}x" if _ok(v) else DASH,
    "polarity": lambda v: (("+" if v >= 0 else "−") + _num(abs(v), 2) if i18n.active()
                           else f"{v:+.2f}") if _ok(v) else DASH,
    "date": lambda v: when(v, "date"),
    "datetime": lambda v: when(v, "datetime"),
}

ENGLISH_DATES = {"date": "%a %-d %b %Y", "datetime": "%a %-d %b %H:%M", "day": "%a %-d %b",
                 "dm": "%-d %b", "dmy": "%-d %b %Y", "time": "%H:%M",
                 "weekday": "%A %-d %b"}


def when(t: Any, form: str = "date") -> str:
    """A time in the active voice (in its audience's zone when `t` is aware): English
    "Sat 14 Nov 2026" (form date), "Sat 14 Nov 14:05" (datetime), "Sat 14 Nov" (day),
    "14 Nov" (dm), "14 Nov 2026" (dmy), "14:05" (time); German "Sa., 14. Nov. 2026"."""
    if not hasattr(t, "strftime"):
        return DASH
    voice = i18n.current()
    if voice is not None and getattr(t, "tzinfo", None) is not None:
        t = t.astimezone(voice.zone)
    if voice is None or voice.english:
        return t.strftime(ENGLISH_DATES[form])
    return i18n.when(t, form, voice.locale)


def listing(items: list[str], comma: bool = False) -> str:
    """Words as a list in the active voice: "A, B and C" ("A, B, C" with `comma`);
    German "A, B und C"."""
    voice = i18n.current()
    if comma or len(items) < 2:
        return ", ".join(items)
    if voice is None or voice.english:
        return f"{', '.join(items[:-1])} and {items[-1]}"
    return i18n.listing(items, voice.locale)


def day_span(a: Any, b: Any, years: bool = False) -> str:
    """Two days as a range in the active voice: "13–15 Nov", "30 Oct–2 Nov", with the
    year where `years` ("30 Dec 2026–2 Jan 2027"); German "13.–15. Nov."."""
    voice = i18n.current()
    if voice is not None and not voice.english:
        return i18n.span(a, b, voice.locale, voice.zone, "yMMMd" if years else "MMMd")
    day = "%-d %b %Y" if years else "%-d %b"
    if (a.year, a.month) == (b.year, b.month):
        return f"{a:%-d}–{b:{day}}"
    if a.year == b.year:
        return f"{a:%-d %b}–{b:{day}}"
    return f"{a:{day}}–{b:{day}}"


def value(v: Any, unit: str) -> str:
    """Format `v` for its unit; text passes through; missing values are a dash."""
    if v is None or (isinstance(v, numbers.Real) and not math.isfinite(v)):
        return DASH
    fmt = FORMATS.get(unit)
    if fmt is None and is_currency(unit):
        return money(v, unit)
    if isinstance(v, i18n.Phrase):        # a window or a signal's name, said per page
        return v.said()
    if fmt is None:
        return str(v)
    return fmt(v)


def seconds(v_ms: Any) -> str:
    """A threshold in ms as people say it: 2500 -> "2.5 s", 4000 -> "4 s"."""
    return f"{_g(v_ms / 1000)}{_sp()}s" if _ok(v_ms) else DASH


def thresholds_said(template: str, t: Any) -> i18n.Phrase:
    """A sentence or label naming thresholds ("Loads > {page_poor_ms}"), filled in and
    said in the page's voice: "Loads > 4 s", "Ladevorgänge > 4 s"."""
    return i18n.Phrase(_filled, template, t)


def _filled(template: str, t: Any) -> str:
    return _(template).format(**threshold_words(t))


def threshold_words(t: Any) -> dict[str, str]:
    """Every threshold as text, for labels and sentences: {"page_p75_ms": "2.5 s", ...}.
    Milliseconds read as seconds, ratios as percentages, hours with "h"; CLS is unitless
    and tables (hours by priority) are left out."""
    out = {}
    for name, v in vars(t).items():
        if not _ok(v):
            continue
        if name.startswith("cls_"):
            out[name] = _g(v)
        elif name.endswith("_ms"):
            out[name] = seconds(v)
        elif name.endswith("_hours"):
            out[name] = f"{_g(v)} h"
        elif name.endswith("_pct"):
            out[name] = f"{_g(v)} %"
        elif isinstance(v, float) and 0 < v < 1:
            out[name] = f"{_g(v * 100)} %"
        else:
            out[name] = _g(v)
    return out
