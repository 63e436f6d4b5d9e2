"""Page speed: Core Web Vitals (LCP, INP, CLS at p75) where the page loads carry them,
then load-time percentiles per page and device against the web.dev LCP bands.

Load time is not LCP; the bands (`page_p75_ms`, `page_poor_ms`, by default 2.5 s and
4 s) are borrowed from web.dev's LCP guidance. The Core Web Vitals are judged by
web.dev's own bands (`lcp_good_ms`... `cls_poor`): good, needs improvement (warn), poor.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ...core import formatting, rollups
from ...core.config import Thresholds
from ...core.periods import Period
from ...core.rollups import Rollup, rollup_of
from ...core.i18n import N_, Phrase, concat
from ...core.i18n import gettext as _
from ...core.values import Chart, Insight, Section, Table, Value
from .base import (
    Metric,
    build_kpis,
    carried,
    codes_of,
    lower,
    metric,
    records,
    rollups_of,
    table_percentiles,
    table_quantiles,
    table_sums,
)

SOURCE = "page_load_times"
NAME = "pages"
TITLE = "Page speed"
NOTE = N_("Load time is not LCP: the good (≤ {page_p75_ms} at p75) and poor "
        "(> {page_poor_ms}) bands are borrowed from web.dev's Largest Contentful Paint "
        "guidance.")
NO_VITALS = N_("Core Web Vitals (LCP, INP, CLS): not in this data.")
# metric column -> (KPI name, label, unit, good and poor band thresholds)
VITALS = {"lcp_ms": ("lcp_p75_ms", "LCP p75", "ms", "lcp_good_ms", "lcp_poor_ms"),
          "inp_ms": ("inp_p75_ms", "INP p75", "ms", "inp_good_ms", "inp_poor_ms"),
          "cls": ("cls_p75", "CLS p75", "score", "cls_good", "cls_poor")}


def _vital(column: str) -> Metric:
    name, label, unit, good, poor = VITALS[column]
    return Metric(name, label, unit, "down",
                  lower(lambda t: (getattr(t, good), getattr(t, poor))))


CATALOGUE = [*(_vital(c) for c in VITALS),
    Metric("views", "Page views", "count"),
    Metric("mean_load_ms", "Mean load time", "ms", "down"),
    Metric("p50_load_ms", "p50 load time", "ms", "down"),
    Metric("p75_load_ms", "p75 load time", "ms", "down",
           lower(lambda t: (t.page_p75_ms, t.page_poor_ms))),
    Metric("p95_load_ms", "p95 load time", "ms", "down"),
    Metric("good_share", "Loads ≤ {page_p75_ms}", "ratio", "up"),
    Metric("poor_share", "Loads > {page_poor_ms}", "ratio", "down"),
    Metric("slowest_page", "Slowest page (p75)", "text"),
]
P75 = metric(CATALOGUE, "p75_load_ms")
OPTIONAL = {v[0] for v in VITALS.values()}     # only where the loads carry them
HEADLINE = (*(f"pages.{v[0]}" for v in VITALS.values()), "pages.p75_load_ms",
            "pages.poor_share")
UNITS = {"views": "count", "mean_ms": "ms", "p50_ms": "ms", "p75_ms": "ms", "p95_ms": "ms",
         "good_share": "ratio", "poor_share": "ratio", "loads": "count", "lcp_p75_ms": "ms",
         "inp_p75_ms": "ms", "cls_p75": "score"}


def measure(r: Rollup, t: Thresholds) -> dict[str, Value]:
    """Every catalogue value for one cut of the page_load_times rollup."""
    loads, hist = r.tables["loads"], r.tables["load_time"]
    n = int(loads["n"].sum())
    lt, counts = hist["load_time_ms"].to_numpy(dtype="float64"), hist["n"].to_numpy()
    p50, p75, p95 = table_percentiles(hist, "load_time_ms", (50, 75, 95))
    values: dict[str, Value] = {
        "views": n, "mean_load_ms": float(loads["load_time_ms_sum"].sum() / n) if n else None,
        "p50_load_ms": p50, "p75_load_ms": p75, "p95_load_ms": p95,
        "good_share": float(counts[lt <= t.page_p75_ms].sum() / n) if n else None,
        "poor_share": float(counts[lt > t.page_poor_ms].sum() / n) if n else None,
    }
    if n:
        values["slowest_page"] = str(
            table_quantiles(hist, "page_url", "load_time_ms", (0.75,))["p75"].idxmax())
    for column, p75 in vital_p75s(r.tables["vitals"]).iloc[0].dropna().items():
        values[VITALS[column][0]] = float(p75)
    return values


def vital_p75s(vitals: pd.DataFrame, by_page: bool = False) -> pd.DataFrame:
    """numpy-linear p75 of each Core Web Vital (columns) over the loads that carry it:
    one row, or one per page; NaN where none does."""
    metric, metrics = codes_of(vitals["metric"])
    page, pages = codes_of(vitals["page_url"]) if by_page else \
        (np.zeros(len(vitals), dtype=np.int64), pd.Index(["all"]))
    code = np.where((page >= 0) & (metric >= 0), page * len(metrics) + metric, -1)
    p75 = rollups.hist_quantiles(code, vitals["value"].to_numpy(dtype="float64"),
                                 vitals["n"].to_numpy(), len(pages) * len(metrics), (0.75,))
    return pd.DataFrame(p75[0].reshape(len(pages), len(metrics)),
                        index=pd.Index(pages.astype("str"), name="page_url"),
                        columns=metrics.astype("str"))


def vitals_by_page(r: Rollup, t: Thresholds) -> pd.DataFrame:
    """Per page: the loads that carry LCP, and each vital's p75 with the page's band (its
    worst vital's: good, needs improvement, poor), the worst LCP first."""
    vitals = r.tables["vitals"]
    p75 = vital_p75s(vitals, by_page=True).dropna(how="all")
    p75 = p75.reindex(columns=list(VITALS)).rename(columns={c: v[0] for c, v in
                                                            VITALS.items()})
    lcp = vitals[(vitals["metric"] == "lcp_ms").to_numpy()]
    p75.insert(0, "loads", table_sums(lcp, "page_url", {"n": "n"})["n"]
               .reindex(p75.index).fillna(0).astype("int64"))
    worst = np.zeros(len(p75), dtype=int)
    for column, (name, _label, _unit, good, poor) in VITALS.items():
        v = p75[name].to_numpy(dtype="float64")
        worst = np.maximum(worst, np.where(v > getattr(t, poor), 2,
                                           np.where(v > getattr(t, good), 1, 0)))
    p75["band"] = np.array(["good", "needs improvement", "poor"])[worst]
    return p75.rename_axis("page_url").sort_values("lcp_p75_ms", ascending=False)


def breakdown(r: Rollup, by: str, t: Thresholds) -> pd.DataFrame:
    """Per page or device (rows without one left out): views, mean, percentiles, the good
    and poor shares and the p75's band."""
    loads, hist = r.tables["loads"], r.tables["load_time"]
    lt, counts = hist["load_time_ms"].to_numpy(dtype="float64"), hist["n"].to_numpy()
    sums = table_sums(loads, by, {"views": "n", "ms": "load_time_ms_sum"})
    shares = table_sums(hist, by, {"n": "n", "good": counts * (lt <= t.page_p75_ms),
                                   "poor": counts * (lt > t.page_poor_ms)})
    out = pd.DataFrame({"views": sums["views"], "mean_ms": sums["ms"] / sums["views"]})
    out = out.join(table_quantiles(hist, by, "load_time_ms", (0.5, 0.75, 0.95)).rename(
        columns=lambda c: f"{c}_ms"))
    out["good_share"] = shares["good"] / shares["n"]
    out["poor_share"] = shares["poor"] / shares["n"]
    out["band"] = np.where(out["p75_ms"] <= t.page_p75_ms, "good",
                           np.where(out["p75_ms"] <= t.page_poor_ms, "needs work", "poor"))
    return out.sort_values("p75_ms", ascending=False)


def compute(frames: Mapping[str, Rollup | pd.DataFrame], period: Period, t: Thresholds
            ) -> Section:
    cur, prev = rollups_of(rollup_of(frames[SOURCE], SOURCE), period)
    values = measure(cur, t)
    prev_values = measure(prev, t) if prev is not None else None
    kpis = build_kpis(NAME, carried(CATALOGUE, values, OPTIONAL), values, prev_values, t)
    if not len(cur):
        return Section(NAME, TITLE, "no data", "No page loads in this period.", kpis=kpis)
    pages = breakdown(cur, "page_url", t)
    words = formatting.threshold_words(t)
    note = formatting.thresholds_said(NOTE, t)
    tables = [Table("by_page", "By page (slowest p75 first)", pages.head(15).reset_index(),
                    UNITS, note)]
    breakdowns = {"by_page": records(pages, UNITS)}
    if cur.tables["loads"]["device"].notna().any():
        devices = breakdown(cur, "device", t)
        tables.append(Table("by_device", "By device", devices.reset_index(), UNITS))
        breakdowns["by_device"] = records(devices, UNITS)
    good, poor = _lines(t.page_p75_ms, t.page_poor_ms)
    charts = [Chart("pages_p75", "barh", "p75 load time by page (ms)",
                    pages.head(15).reset_index()[["page_url", "p75_ms"]],
                    {"label": "page_url", "value": "p75_ms", "unit": "ms",
                     "threshold": t.page_p75_ms, "threshold_label": good,
                     "threshold2": t.page_poor_ms, "threshold2_label": poor})]
    insights = _insights(pages, t, words)
    if OPTIONAL & set(values):          # the Core Web Vitals lead the section
        vitals = vitals_by_page(cur, t)
        tables.insert(0, Table("vitals", "Core Web Vitals by page (p75, worst LCP first)",
                               vitals.head(15).reset_index(), UNITS,
                               formatting.thresholds_said(VITALS_NOTE, t)))
        charts.insert(0, _lcp_chart(vitals, t))
        breakdowns["vitals_by_page"] = records(vitals, UNITS)
        insights = _vital_insights(values, vitals, t) + insights
    else:
        note = concat(Phrase(_, NO_VITALS), " ", note)
    return Section(NAME, TITLE, kpis=kpis, tables=tuple(tables), charts=tuple(charts),
                   insights=insights, headline=HEADLINE, breakdowns=breakdowns, message=note)


VITALS_NOTE = N_("Each vital's p75 over the page's loads that carry it; bands from web.dev: "
               "LCP good ≤ {lcp_good_ms}, poor > {lcp_poor_ms}; INP good ≤ {inp_good_ms}, "
               "poor > {inp_poor_ms}; CLS good ≤ {cls_good}, poor > {cls_poor}. A page's "
               "band is its worst vital's.")


def _lcp_chart(vitals: pd.DataFrame, t: Thresholds) -> Chart:
    shown = vitals.dropna(subset=["lcp_p75_ms"]).head(15).reset_index()
    good, poor = _lines(t.lcp_good_ms, t.lcp_poor_ms)
    return Chart("pages_lcp", "barh", "LCP p75 by page (ms)",
                 shown[["page_url", "lcp_p75_ms"]],
                 {"label": "page_url", "value": "lcp_p75_ms", "unit": "ms",
                  "threshold": t.lcp_good_ms, "threshold_label": good,
                  "threshold2": t.lcp_poor_ms, "threshold2_label": poor})


def _vital_insights(values: Mapping[str, Value], vitals: pd.DataFrame, t: Thresholds
                    ) -> tuple[Insight, ...]:
    """One sentence per vital outside its good band, naming the worst pages."""
    out = []
    for column, (name, label, unit, good, poor) in VITALS.items():
        v = values.get(name)
        m = metric(CATALOGUE, name)
        if not isinstance(v, float) or m.judge(v, t) == "good":
            continue
        worst = vitals[name].dropna().sort_values(ascending=False).head(3)
        out.append(Insight(
            m.severity(v, t), NAME,
            Phrase(_vital_text, label, v, unit, m.judge(v, t) == "bad", getattr(t, good),
                   tuple(worst.items())),
            impact=float(v / getattr(t, good))))
    return tuple(out)


def _vital_text(label: str, v: float, unit: str, poor: bool, good: float,
                worst: tuple[tuple[str, float], ...]) -> str:
    said = {"vital": label, "value": formatting.value(v, unit),
            "good": formatting.value(good, unit),
            "pages": ", ".join(f"{p} {formatting.value(x, unit)}" for p, x in worst)}
    if poor:
        return _("%(vital)s was %(value)s, poor by web.dev's bands (good ≤ %(good)s); worst "
                 "pages: %(pages)s.") % said
    return _("%(vital)s was %(value)s, needs improvement by web.dev's bands (good ≤ %(good)s); "
             "worst pages: %(pages)s.") % said


def _insights(pages: pd.DataFrame, t: Thresholds, words: dict[str, str]
              ) -> tuple[Insight, ...]:
    """The slowest pages outside the good band; severity as the p75 KPI is judged."""
    out = []
    for page, row in pages[pages["p75_ms"] > t.page_p75_ms].head(5).iterrows():
        severity = P75.severity(row["p75_ms"], t)
        out.append(Insight(
            severity, NAME,
            Phrase(_page_text, page, row["p75_ms"], row["views"], row["poor_share"],
                   severity == "high", t),
            impact=float(row["views"] * (row["p75_ms"] - t.page_p75_ms))))
    return tuple(out)


def _page_text(page: str, p75: float, views: float, poor_share: float, poor: bool,
               t: Thresholds) -> str:
    words = formatting.threshold_words(t)
    said = {"page": page, "p75": formatting.ms(p75), "views": formatting.count(views),
            "share": formatting.pct(poor_share), "poor": words["page_poor_ms"],
            "good": words["page_p75_ms"]}
    if poor:
        return _("%(page)s loads in %(p75)s at p75 over %(views)s views, in the poor band "
                 "(> %(poor)s); %(share)s of its loads take over %(poor)s.") % said
    return _("%(page)s loads in %(p75)s at p75 over %(views)s views, above the %(good)s good "
             "band; %(share)s of its loads take over %(poor)s.") % said


def _lines(good: float, poor: float) -> tuple[Phrase, Phrase]:
    """The legends of a chart's good and poor lines, in the page's voice: 'good ≤ 2,500 ms'."""
    return (Phrase(lambda v: _("good ≤ %(v)s ms") % {"v": formatting.count(v)}, good),
            Phrase(lambda v: _("poor > %(v)s ms") % {"v": formatting.count(v)}, poor))
