"""Sessions: duration, bounce, completion, drop-off pages and the configured funnel."""
from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ...core import formatting
from ...core.config import DEFAULT_FUNNEL, Thresholds
from ...core.periods import Period
from ...core.rollups import Rollup, rollup_of
from ...core.i18n import N_, Phrase
from ...core.i18n import gettext as _
from ...core.values import Chart, Insight, Section, Table, Value
from .base import Cut, Metric, build_kpis, periods_of, ratio, table_percentiles, top

SOURCE = "session_tracking"
NAME = "sessions"
TITLE = "Sessions and funnel"
FINISHED = "none"   # drop_off_page value of a session that finished
SEP = " > "

CATALOGUE = [
    Metric("count", "Sessions", "count", "up"),
    Metric("avg_duration_min", "Average duration", "min"),
    Metric("median_duration_min", "Median duration", "min"),
    Metric("bounce_rate", "Bounce rate", "ratio", "down"),
    Metric("completion_rate", "Completion rate", "ratio", "up"),
    Metric("top_drop_off_page", "Top drop-off page", "text"),
    Metric("pages_per_session", "Pages per session", "items"),
    Metric("checkout_conversion", "Checkout conversion", "ratio", "up"),
]
HEADLINE = ("sessions.completion_rate", "sessions.checkout_conversion")


def paths(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each row's code into its distinct paths, and those paths with separators normalised
    to ' > ': the string work runs once per distinct path, not once per session."""
    codes, uniques = pd.factorize(table["page_sequence"])
    raw = pa.array(pd.Index(uniques).astype("str").to_numpy(dtype=object), pa.string())
    clean = pc.utf8_trim_whitespace(pc.replace_substring_regex(raw, r"\s*>\s*", SEP))
    return codes, np.asarray(clean.to_pylist(), dtype=object)


def _per_path(table: pd.DataFrame, fn: Callable[[pd.Series], pd.Series]) -> np.ndarray:
    """fn applied to each distinct (normalised) path, spread back to one value per row."""
    codes, clean = paths(table)
    return np.asarray(fn(pd.Series(clean, dtype=object)))[codes]


def _weights(table: pd.DataFrame) -> np.ndarray:
    """Sessions per row: a rollup table's `n`, or 1 per row of plain rows."""
    return table["n"].to_numpy(dtype="int64") if "n" in table else np.ones(len(table), "int64")


def measure(r: Rollup, cut: Cut) -> dict[str, Value]:
    """The KPIs of the sessions that start in [start, end)."""
    table = r.table("sessions", *cut)
    w = _weights(table)
    n = int(w.sum())
    if not n:
        return {"count": 0}
    steps = _per_path(table, lambda c: c.str.count(">") + 1).astype("int64")
    finished = _finished(table)
    # "Reached the cart": any step naming the cart (cart, /cart, Cart page).
    cart = _per_path(table, lambda c: c.str.contains("cart", case=False, regex=False))
    median_s, = table_percentiles(r.table("durations", *cut), "seconds", (50,))
    return {
        "count": n, "avg_duration_min": float(table["seconds_sum"].sum()) / n / 60,
        "median_duration_min": median_s / 60,
        "bounce_rate": int(w[steps == 1].sum()) / n,
        "completion_rate": int(w[finished].sum()) / n,
        "top_drop_off_page": top(table[~finished], "drop_off_page"),
        "pages_per_session": int((w * steps).sum()) / n,
        "checkout_conversion": ratio(w[cart & finished].sum(), w[cart].sum()),
    }


def _finished(table: pd.DataFrame) -> np.ndarray:
    codes, uniques = pd.factorize(table["drop_off_page"])
    done = pd.Index(uniques).astype("str").str.lower() == FINISHED
    return np.append(np.asarray(done, dtype=bool), False)[codes]   # code -1 (empty): no


def funnel(table: pd.DataFrame, steps: tuple[tuple[str, tuple[str, ...]], ...] = DEFAULT_FUNNEL
           ) -> pd.DataFrame:
    """Sessions reaching each configured step, and of those that finished after the last.

    A session reaches step k when its path shows a page of each step 1..k in that order
    (other pages may come between); the work runs once per distinct path, weighted by its
    sessions (`n` of a rollup table; plain rows count 1).
    """
    codes, clean = paths(table)
    depth = np.array([_depth(c.split(SEP), steps) for c in clean], dtype=int)[codes] \
        if len(clean) else np.zeros(0, dtype=int)
    w = _weights(table)
    rows = [(name, int(w[depth > k].sum())) for k, (name, _) in enumerate(steps)]
    rows.append(("finished", int(w[(depth == len(steps)) & _finished(table)].sum())))
    out = pd.DataFrame(rows, columns=["step", "sessions"])
    with np.errstate(all="ignore"):
        out["step_conversion"] = out["sessions"] / out["sessions"].shift(1).where(
            out["sessions"].shift(1) > 0)
    out.loc[0, "step_conversion"] = np.nan
    return out


def _drops(table: pd.DataFrame, count: int) -> pd.DataFrame:
    """Sessions per drop-off page of the unfinished ones, most first (ties in the key's
    order, as `value_counts`), and their share of all `count` sessions."""
    drops = (table.groupby("drop_off_page", observed=True)["n"].sum().rename_axis("page")
             .rename("sessions").sort_values(ascending=False, kind="stable").reset_index())
    drops = drops[drops["sessions"] > 0]
    drops["page"] = drops["page"].astype("str")
    drops["share"] = drops["sessions"] / count
    return drops


def _depth(pages: list[str], steps: tuple[tuple[str, tuple[str, ...]], ...]) -> int:
    """How many steps, in order, a path's pages reach."""
    k = 0
    for page in pages:
        if k == len(steps):
            break
        name = page.strip().lower()
        if any(fnmatch.fnmatchcase(name, p.lower()) for p in steps[k][1]):
            k += 1
    return k


def compute(frames: Mapping[str, pd.DataFrame], period: Period, t: Thresholds,
            steps: tuple[tuple[str, tuple[str, ...]], ...] = DEFAULT_FUNNEL) -> Section:
    r = rollup_of(frames[SOURCE], SOURCE)
    cur, prev = periods_of(r, period)
    values = measure(r, cur)
    kpis = build_kpis(NAME, CATALOGUE, values, measure(r, prev) if prev is not None else None,
                      t)
    if not values["count"]:
        return Section(NAME, TITLE, "no data", "No sessions in this period.", kpis=kpis)
    funnel_steps = " → ".join([name for name, _ in steps] + ["finished"])
    table = r.table("sessions", *cur)
    steps = funnel(table, steps)
    drops = _drops(table[~_finished(table)], values["count"])
    tables = (
        Table("funnel", f"Funnel: {funnel_steps}",
              steps, {"sessions": "count", "step_conversion": "ratio"},
              N_("A session reaches a step when its pages show every step so far, in "
                 "order (the page patterns are in the config's [funnel]). Step conversion: "
                 "sessions at this step / sessions at the step before.")),
        Table("drop_off", "Top drop-off pages", drops.head(10),
              {"sessions": "count", "share": "ratio"}),
    )
    charts = (
        Chart("sessions_funnel", "funnel", "Funnel (sessions)",
              steps, {"label": "step", "value": "sessions"}),
        Chart("sessions_drop_off", "barh", "Top drop-off pages (sessions)",
              drops.head(10)[["page", "sessions"]],
              {"label": "page", "value": "sessions", "unit": "count"}),
    )
    insights = []
    if len(steps) > 2:
        worst = steps.iloc[1:].nsmallest(1, "step_conversion").iloc[0]
        i = int(steps.index[steps["step"] == worst["step"]][0])
        before = steps.iloc[i - 1]["step"]
        insights.append(Insight(
            "medium" if worst["step_conversion"] < 0.5 else "low", NAME,
            Phrase(_funnel_text, before, worst["step"], worst["step_conversion"],
                   values["top_drop_off_page"], drops["sessions"].iloc[0] if len(drops) else 0),
            impact=float(1 - worst["step_conversion"])))
    return Section(NAME, TITLE, kpis=kpis, tables=tables, charts=charts,
                   insights=tuple(insights), headline=HEADLINE,
                   breakdowns={"funnel": [
                       {**step, "step_conversion": formatting.rounded(step["step_conversion"],
                                                                      "ratio")}
                       for step in steps.replace({np.nan: None}).to_dict("records")]})


def _funnel_text(before: str, step: str, conversion: float, page: Value, sessions: int) -> str:
    return _("The funnel loses most between %(before)s and %(step)s: only %(share)s of "
             "sessions go on; %(page)s is the most common drop-off page (%(sessions)s "
             "sessions).") % {"before": before, "step": step,
                               "share": formatting.pct(conversion), "page": page,
                               "sessions": formatting.count(sessions)}
