"""Sessions: duration, bounce, completion, drop-off pages and the configured funnel."""
from __future__ import annotations

import fnmatch
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import formatting
from ..config import DEFAULT_FUNNEL, Thresholds
from ..periods import Period
from ..rollups import rows_of
from .base import Chart, Insight, Metric, Section, Table, Value, build_kpis, mode, ratio, window

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


def paths(df: pd.DataFrame) -> pd.Series:
    """page_sequence with separators normalised to ' > ', as a categorical: the string
    work runs once per distinct path, not once per session."""
    seq = df["page_sequence"]
    if not isinstance(seq.dtype, pd.CategoricalDtype):
        seq = seq.astype("str").astype("category")
    cats = pa.array(seq.cat.categories.astype("str").to_numpy(dtype=object), pa.string())
    clean = pc.utf8_trim_whitespace(pc.replace_substring_regex(cats, r"\s*>\s*", SEP))
    return pd.Series(pd.Categorical.from_codes(seq.cat.codes, clean.to_pylist())
                     if len(clean.unique()) == len(clean) else
                     pd.Categorical(np.asarray(clean.to_pylist(), dtype=object)[seq.cat.codes]),
                     index=df.index)


def _per_path(seq: pd.Series, fn) -> np.ndarray:
    """fn applied to each distinct path, spread back to one value per session."""
    cats = seq.cat.categories.astype("str")
    return np.asarray(fn(pd.Series(cats)))[seq.cat.codes.to_numpy()]


def measure(df: pd.DataFrame, t: Thresholds) -> dict[str, Value]:
    n = len(df)
    if not n:
        return {"count": 0}
    seq = paths(df)
    steps = pd.Series(_per_path(seq, lambda c: c.str.count(">") + 1))
    minutes = (df["end_time"] - df["start_time"]).dt.total_seconds() / 60
    finished = _finished(df)
    # "Reached the cart": any step naming the cart (cart, /cart, Cart page).
    cart = _per_path(seq, lambda c: c.str.contains("cart", case=False, regex=False))
    dropped = df.loc[~finished, "drop_off_page"]
    return {
        "count": n, "avg_duration_min": float(minutes.mean()),
        "median_duration_min": float(minutes.median()),
        "bounce_rate": float((steps == 1).mean()), "completion_rate": float(finished.mean()),
        "top_drop_off_page": mode(dropped), "pages_per_session": float(steps.mean()),
        "checkout_conversion": ratio((cart & finished).sum(), cart.sum()),
    }


def _finished(df: pd.DataFrame) -> np.ndarray:
    drop = df["drop_off_page"]
    if isinstance(drop.dtype, pd.CategoricalDtype):
        return _per_path(drop, lambda c: c.str.lower() == FINISHED)
    return (drop.astype("str").str.lower() == FINISHED).to_numpy()


def funnel(df: pd.DataFrame, steps: tuple[tuple[str, tuple[str, ...]], ...] = DEFAULT_FUNNEL
           ) -> pd.DataFrame:
    """Sessions reaching each configured step, and of those that finished after the last.

    A session reaches step k when its path shows a page of each step 1..k in that order
    (other pages may come between); the work runs once per distinct path.
    """
    seq = paths(df)
    cats = [str(c).split(SEP) for c in seq.cat.categories]
    depth = np.array([_depth(pages, steps) for pages in cats], dtype=int)
    reached_depth = depth[seq.cat.codes.to_numpy()] if len(cats) else np.zeros(0, dtype=int)
    rows = [(name, int((reached_depth > k).sum())) for k, (name, _) in enumerate(steps)]
    rows.append(("finished", int(((reached_depth == len(steps)) & _finished(df)).sum())))
    out = pd.DataFrame(rows, columns=["step", "sessions"])
    with np.errstate(all="ignore"):
        out["step_conversion"] = out["sessions"] / out["sessions"].shift(1).where(
            out["sessions"].shift(1) > 0)
    out.loc[0, "step_conversion"] = np.nan
    return out


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
    cur, prev = window(rows_of(frames[SOURCE]), "start_time", period)
    values = measure(cur, t)
    kpis = build_kpis(NAME, CATALOGUE, values, measure(prev, t) if prev is not None else None, t)
    if cur.empty:
        return Section(NAME, TITLE, "no data", "No sessions in this period.", kpis=kpis)
    funnel_steps = " → ".join([name for name, _ in steps] + ["finished"])
    steps = funnel(cur, steps)
    finished = _finished(cur)
    drops = (cur.loc[~finished, "drop_off_page"].value_counts()
             .rename_axis("page").rename("sessions").reset_index())
    drops = drops[drops["sessions"] > 0]
    drops["page"] = drops["page"].astype("str")
    drops["share"] = drops["sessions"] / len(cur)
    tables = (
        Table("funnel", f"Funnel: {funnel_steps}",
              steps, {"sessions": "count", "step_conversion": "ratio"},
              "A session reaches a step when its pages show every step so far, in order "
              "(the page patterns are in the config's [funnel]). Step conversion: sessions "
              "at this step / sessions at the step before."),
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
            f"The funnel loses most between {before} and {worst['step']}: only "
            f"{formatting.pct(worst['step_conversion'])} of sessions go on; "
            f"{values['top_drop_off_page']} is the most common drop-off page "
            f"({formatting.count(drops['sessions'].iloc[0]) if len(drops) else 0} sessions).",
            impact=float(1 - worst["step_conversion"])))
    return Section(NAME, TITLE, kpis=kpis, tables=tables, charts=charts,
                   insights=tuple(insights), headline=HEADLINE,
                   breakdowns={"funnel": steps.replace({np.nan: None}).to_dict("records")})
