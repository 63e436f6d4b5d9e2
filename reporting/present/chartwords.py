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


def days_formatter(english: str, tz: Any) -> Formatter:
    """Hourly time-axis labels: `english` (strftime) on English pages, as they always
    were; else, in the page's language, the day over the time ("9. Nov." over "00:00": with
    its weekday, "Mo., 9. Nov." ran into the next label), or the weekday over the day when
    `english` has no time."""
    if i18n.current() is None:
        return mdates.DateFormatter(english, tz=tz)
    timed = "%H" in english

    def label(x: float, _pos: Any = None) -> str:
        t = pd.Timestamp(mdates.num2date(x, tz=tz))
        if timed:
            return f"{formatting.when(t, 'dm')}\n{formatting.when(t, 'time')}"
        return two_lines(formatting.when(t, "day"))
    return FuncFormatter(label)


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
