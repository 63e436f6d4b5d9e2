"""TextBlob polarity, computed once per distinct text (no corpus download needed)."""
from __future__ import annotations

from functools import lru_cache

import pandas as pd

POSITIVE = 0.1    # polarity above this reads positive
NEGATIVE = -0.1   # below this, negative


@lru_cache(maxsize=65536)
def score(text: str) -> tuple[float, bool]:
    """(polarity, has opinion words) for one text."""
    # lazy: TextBlob imports NLTK (~1 s); only feedback with text needs it
    from textblob import TextBlob

    result = TextBlob(text).sentiment_assessments
    return float(result.polarity), bool(result.assessments)


def scores(texts: pd.Series) -> pd.DataFrame:
    """Polarity and opinion flag per row, scoring each distinct text once."""
    codes, uniques = pd.factorize(texts.fillna("").astype("str"), sort=False)
    scored = [score(t) for t in uniques]   # one call per distinct text, not per row
    polarity = pd.Series([s[0] for s in scored], dtype="float64").to_numpy()
    opinion = pd.Series([s[1] for s in scored], dtype="bool").to_numpy()
    # Indexing keeps the dtypes when there is no text at all (float and bool, not object).
    return pd.DataFrame({"polarity": polarity[codes], "opinion": opinion[codes]},
                        index=texts.index)


def label(polarity: pd.Series) -> pd.Series:
    """negative / neutral / positive: polarity below NEGATIVE, between, above POSITIVE."""
    return pd.Series(pd.cut(polarity, [-1.01, NEGATIVE, POSITIVE, 1.01], right=True,
                            labels=["negative", "neutral", "positive"]), index=polarity.index)
