"""A chart's words in the page's language: its own texts through the audience's catalogue,
day labels and hourly time axes in its locale (English pages as they always were)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.dates as mdates
import pandas as pd
from matplotlib.ticker import Formatter, FuncFormatter, PercentFormatter

from ..core import formatting, i18n
from ..core.i18n import gettext as _
from ..core.values import Chart


def date_labels(values: Any, o: Mapping[str, Any]) -> list[str]:
    if o.get("week_labels"):
        return [_("w/c %(day)s") % {"day": formatting.when(pd.Timestamp(v), "dm")}
                for v in values]
    # two lines, weekday over day: seven "Mon 9 Nov" labels at 9 pt ran into each other on one
    return [two_lines(formatting.when(pd.Timestamp(v), "day")) for v in values]


def two_lines(day: str) -> str:
    """A day label with its weekday on a line of its own: "Mon\n9 Nov", "Sa.\n14. Nov."."""
    head, sep, rest = day.partition(", ")
    if not sep:
        head, sep, rest = day.partition(" ")
    return f"{head}\n{rest}" if sep else day


def axis_zone(tz: Any) -> Any:
    """The zone of a time axis' ticks: the page's (its labels say times in it), else the
    data's."""
    voice = i18n.current()
    return voice.zone if voice is not None else tz


class HourTicks(Formatter):
    """An hourly time axis' labels, short so that none runs into the next: a tick at
    midnight says its day, weekday over date ("Mon" over "9 Nov"; "Mo." over "9. Nov."),
    any other only its time ("12:00"), the first one shown its time over its day. ("Mon 09
    Nov" over "00:00" at each of a week's 8 ticks ran into each other at 9 pt.) English
    pages strftime in `tz`; others say it in their language and zone."""

    def __init__(self, tz: Any) -> None:
        self.tz = tz

    def __call__(self, x: float, pos: Any = None) -> str:
        return self.format_ticks([x])[0]

    def format_ticks(self, values: Any) -> list[str]:
        if not len(values):
            return []
        lo, hi = self.axis.get_view_interval() if self.axis else (min(values), max(values))
        first = next((i for i, v in enumerate(values) if min(lo, hi) <= v), 0)
        out = []
        for i, x in enumerate(values):
            t = pd.Timestamp(mdates.num2date(x, tz=self.tz))
            if (t.hour, t.minute) == (0, 0):
                out.append(self.day(t))
            elif i == first:
                out.append(f"{self.time(t)}\n{self.day(t).replace(chr(10), ' ')}")
            else:
                out.append(self.time(t))
        return out

    @staticmethod
    def day(t: pd.Timestamp) -> str:
        if i18n.current() is None:
            return t.strftime("%a\n%-d %b")
        return two_lines(formatting.when(t, "day"))

    @staticmethod
    def time(t: pd.Timestamp) -> str:
        return t.strftime("%H:%M") if i18n.current() is None else formatting.when(t, "time")


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def weekday(label: Any) -> str:
    """An English weekday abbreviation ("Mon", a heatmap's row) in the page's language
    (CLDR's abbreviated form: "Mo.", "lun.", "pon."); anything else as written."""
    voice = i18n.current()
    if voice is None or label not in WEEKDAYS:
        return str(label)
    return voice.locale.days["format"]["abbreviated"][WEEKDAYS.index(label)]


def trends_title(chart: Chart) -> str:
    """The trends chart's title, its number of periods said in the page's language."""
    n = chart.options.get("periods")
    if n is None:
        return _(chart.title)
    return i18n.ngettext("Headline KPIs over the last %(n)s period (this one in orange)",
                         "Headline KPIs over the last %(n)s periods (this one in orange)",
                         n) % {"n": n}


def percent_axis(xmax: float, decimals: int) -> Formatter:
    """Percent ticks ("1.0%" as matplotlib writes them on English pages; "1,0 %" in German,
    "1,0%" in Polish)."""
    voice = i18n.active()
    if voice is None:
        return PercentFormatter(xmax, decimals=decimals)
    return FuncFormatter(lambda v, _pos: i18n.percent(v / xmax, decimals, voice.locale))
