"""User feedback: ratings, CSAT, TextBlob sentiment, and where text and stars disagree.

TextBlob misreads contractions and negations ("isn't bad"), so the report shows the
comments behind the rates, not only the rates.
"""
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
from .. import sentiment
from .base import Metric, build_kpis, higher, mean, metric, period_rows, ratio

SOURCE = "user_feedback"
NAME = "feedback"
TITLE = "User feedback"
NOTE = N_("Sentiment is TextBlob polarity (> 0.1 positive, < -0.1 negative). TextBlob misreads "
        "contractions and negations such as \"isn't bad\": read the examples below.")
THEMES = {   # theme -> words that mark it (lower case, matched as substrings)
    "checkout & payment": ("checkout", "payment", "card", "pay"),
    "speed": ("slow", "fast", "speed", "load", "lag", "wait"),
    "errors & crashes": ("crash", "error", "froze", "freez", "bug", "broken", "fail"),
    "cart": ("cart", "basket"),
    "mobile": ("mobile", "phone", "app "),
    "search & navigation": ("search", "find", "navigat", "menu", "filter"),
    "design & usability": ("design", "easy", "ux", "layout", "confus", "steps"),
    "delivery & orders": ("deliver", "order", "shipping", "refund"),
}

CATALOGUE = [
    Metric("responses", "Responses", "count"),
    Metric("avg_rating", "Average rating", "rating", "up"),
    Metric("csat", "Feedback CSAT (4-5 stars)", "ratio", "up",
           higher(lambda t: (t.csat, t.csat - 0.1))),
    Metric("positive_share", "Positive text", "ratio", "up"),
    Metric("negative_share", "Negative text", "ratio", "down"),
    Metric("mismatch_rate", "Text/rating mismatch", "ratio", "down"),
]
CSAT = metric(CATALOGUE, "csat")
HEADLINE = ("feedback.avg_rating", "feedback.csat")


def scored(df: pd.DataFrame) -> pd.DataFrame:
    """Feedback with polarity, opinion flag and mismatch flag per row."""
    s = sentiment.scores(df["feedback_text"])
    rating = df["rating"].to_numpy()
    pol = s["polarity"].to_numpy()
    mismatch = s["opinion"].to_numpy() & (
        ((rating <= 2) & (pol > sentiment.POSITIVE)) | ((rating >= 4) & (pol < sentiment.NEGATIVE)))
    return df.assign(polarity=pol, opinion=s["opinion"].to_numpy(), mismatch=mismatch)


def measure(df: pd.DataFrame, t: Thresholds) -> dict[str, Value]:
    n = len(df)
    if not n:
        return {"responses": 0}
    opinion = df["opinion"].to_numpy()
    return {
        "responses": n, "avg_rating": mean(df["rating"]),
        "csat": float((df["rating"] >= 4).mean()),
        "positive_share": float((df["polarity"] > sentiment.POSITIVE).mean()),
        "negative_share": float((df["polarity"] < sentiment.NEGATIVE).mean()),
        "mismatch_rate": ratio(df["mismatch"].to_numpy().sum(), opinion.sum()),
    }


def themes(df: pd.DataFrame) -> pd.DataFrame:
    """Per theme, the comments that mention one of its words: each distinct text is
    searched once (feedback repeats itself: canned answers, one-word comments)."""
    codes, uniques = sentiment.distinct(df["feedback_text"])
    text = pd.Series(uniques, dtype="str").str.lower() + " "
    rows = []
    for theme, words in THEMES.items():
        said = np.zeros(len(text), bool)
        for w in words:
            said |= text.str.contains(w, regex=False).to_numpy(dtype=bool)
        hit = said[codes]
        if hit.any():
            rows.append((theme, int(hit.sum()), float(hit.mean()),
                         float(df["rating"].to_numpy()[hit].mean()),
                         float((df["polarity"].to_numpy()[hit] < sentiment.NEGATIVE).mean())))
    return pd.DataFrame(rows, columns=["theme", "mentions", "share", "avg_rating",
                                       "negative_share"]).sort_values("mentions",
                                                                      ascending=False)


def _examples(df: pd.DataFrame, n: int = 6) -> pd.DataFrame:
    out = df[["timestamp", "rating", "polarity", "feedback_text"]]
    return out.rename(columns={"feedback_text": "comment"}).head(n)


def compute(frames: Mapping[str, pd.DataFrame], period: Period, t: Thresholds) -> Section:
    raw_cur, raw_prev = period_rows(frames[SOURCE], "timestamp", period)
    cur = scored(raw_cur)
    prev = scored(raw_prev) if raw_prev is not None else None
    values = measure(cur, t)
    kpis = build_kpis(NAME, CATALOGUE, values, measure(prev, t) if prev is not None else None, t)
    if cur.empty:
        return Section(NAME, TITLE, "no data", "No feedback in this period.", kpis=kpis)
    dist = (cur["rating"].value_counts().reindex(range(1, 6), fill_value=0)
            .rename_axis("rating").rename("responses").reset_index())
    cls = sentiment.label(cur["polarity"])
    by_rating = pd.crosstab(cur["rating"], cls).reindex(
        index=range(1, 6), columns=["negative", "neutral", "positive"], fill_value=0)
    negative = cur[cur["polarity"] < sentiment.NEGATIVE].sort_values(["polarity", "rating"])
    negative = negative.drop_duplicates("feedback_text")
    mismatched = cur[cur["mismatch"]].drop_duplicates("feedback_text")
    theme_table = themes(cur)
    units = {"rating": "count", "polarity": "polarity", "timestamp": "datetime",
             "mentions": "count", "share": "ratio", "avg_rating": "rating",
             "negative_share": "ratio", "responses": "count"}
    tables = (
        Table("themes", "Feedback themes", theme_table, units,
              N_("Themes are keyword matches; a comment can fall under several.")),
        Table("most_negative", "Most negative comments", _examples(negative), units),
        Table("mismatched", "Text and stars disagree", _examples(mismatched), units, NOTE),
    )
    charts = (
        Chart("feedback_ratings", "bar", "Rating distribution (responses)", dist,
              {"label": "rating", "value": "responses", "unit": "count"}),
        Chart("feedback_sentiment", "stacked", "Text sentiment by star rating (responses)",
              by_rating, {"x_label": "rating (stars)", "y_label": "responses",
                          "colors": ["negative", "neutral", "positive"]}),
    )
    insights = []
    if isinstance(values.get("mismatch_rate"), float) and values["mismatch_rate"] > 0.05:
        pos_bad = cur["mismatch"] & (cur["rating"] >= 4)
        opinion = int(cur["opinion"].sum())
        insights.append(Insight(
            "medium", NAME,
            Phrase(lambda rate, bad, opinion: _(
                "%(share)s of comments with opinion words read the opposite of their stars "
                "(%(bad)d read negative with 4-5 stars) out of %(opinion)s; see the examples, "
                "TextBlob misreads negations.") % {"share": formatting.pct(rate), "bad": bad,
                                                   "opinion": formatting.count(opinion)},
                values["mismatch_rate"], int(pos_bad.sum()), opinion),
            impact=float(values["mismatch_rate"])))
    csat = values.get("csat")
    if isinstance(csat, float) and csat < t.csat:
        worst = theme_table.sort_values("avg_rating").iloc[0] if len(theme_table) else None
        insights.append(Insight(
            CSAT.severity(csat, t), NAME,
            Phrase(_csat_text, csat, values["responses"], t.csat,
                   (worst["theme"], worst["avg_rating"]) if worst is not None else None),
            impact=float(t.csat - csat) * 100))
    return Section(NAME, TITLE, kpis=kpis, tables=tables, charts=charts,
                   insights=tuple(insights), headline=HEADLINE, message=NOTE,
                   breakdowns={"ratings": {int(r): int(c) for r, c in
                                           zip(dist["rating"], dist["responses"])}})


def _csat_text(csat: float, responses: Value, target: float,
               worst: tuple[str, float] | None) -> str:
    said = {"csat": formatting.pct(csat), "responses": formatting.count(responses),
            "target": formatting.pct(target)}
    if worst is None:
        return _("Feedback CSAT was %(csat)s (%(responses)s feedback form responses), below "
                 "the %(target)s target.") % said
    said.update(theme=worst[0], rating=formatting.number(worst[1], 2))
    return _("Feedback CSAT was %(csat)s (%(responses)s feedback form responses), below the "
             "%(target)s target; comments that mention %(theme)s give the fewest stars "
             "(%(rating)s of 5 on average).") % said
