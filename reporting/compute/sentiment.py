"""TextBlob polarity, computed once per distinct text (no corpus download needed).

TextBlob's import (NLTK, which imports scipy.stats: about 1 s) and its scoring (about
0.3 ms a text) can run in a helper process beside the build (`helping`): started before
the load, so the import runs while the sources are read; asked for the feedback's
distinct texts once they are loaded, and answering while the sections before feedback's
are computed. A text it did not answer (no helper, a helper that failed or was slow) is
scored here, by the same TextBlob call, so the numbers never depend on it."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

POSITIVE = 0.1    # polarity above this reads positive
NEGATIVE = -0.1   # below this, negative
ANSWER_S = 120.0  # the helper's time to answer, plus ANSWER_S_PER_TEXT a text
ANSWER_S_PER_TEXT = 0.01

# The helper: `python -P` (no working folder on sys.path) with this program; it imports
# TextBlob at once, then reads one JSON list of texts and writes [polarity, opinion] each.
_HELPER = r"""
import json, sys
from textblob import TextBlob
out = []
for text in json.loads(sys.stdin.buffer.read()):
    result = TextBlob(text).sentiment_assessments
    out.append([float(result.polarity), bool(result.assessments)])
sys.stdout.write(json.dumps(out))
"""


@lru_cache(maxsize=65536)
def score(text: str) -> tuple[float, bool]:
    """(polarity, has opinion words) for one text."""
    # lazy: TextBlob imports NLTK (~1 s); only feedback with text needs it
    from textblob import TextBlob

    result = TextBlob(text).sentiment_assessments
    return float(result.polarity), bool(result.assessments)


_helped = False     # a helper was started in this process


def once_here() -> bool:
    """True for the first build of this process, while TextBlob is not imported here: a
    long-lived process (the scheduler, a test run) then imports it once, on its second
    build, instead of a helper importing it again for every build."""
    global _helped
    if _helped or "textblob" in sys.modules:
        return False
    _helped = True
    return True


def distinct(texts: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """(codes, distinct texts) of `texts` as they are scored: a missing text is ''."""
    return pd.factorize(texts.fillna("").astype("str"), sort=False)


def scores(texts: pd.Series) -> pd.DataFrame:
    """Polarity and opinion flag per row, scoring each distinct text once."""
    codes, uniques = distinct(texts)
    known = _local.helper.answers() if getattr(_local, "helper", None) else {}
    # one call per distinct text, not per row; the helper's answer where it gave one
    scored = [known.get(t) or score(t) for t in uniques]
    polarity = pd.Series([s[0] for s in scored], dtype="float64").to_numpy()
    opinion = pd.Series([s[1] for s in scored], dtype="bool").to_numpy()
    # Indexing keeps the dtypes when there is no text at all (float and bool, not object).
    return pd.DataFrame({"polarity": polarity[codes], "opinion": opinion[codes]},
                        index=texts.index)


def label(polarity: pd.Series) -> pd.Series:
    """negative / neutral / positive: polarity below NEGATIVE, between, above POSITIVE."""
    return pd.Series(pd.cut(polarity, [-1.01, NEGATIVE, POSITIVE, 1.01], right=True,
                            labels=["negative", "neutral", "positive"]), index=polarity.index)


class Helper:
    """TextBlob in a child process, asked once (`ask`) and read once (`answers`)."""

    def __init__(self) -> None:
        self._answer: dict[str, tuple[float, bool]] = {}
        self._talk: threading.Thread | None = None
        self._proc = subprocess.Popen([sys.executable, "-P", "-c", _HELPER],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL)

    def ask(self, texts: pd.Series) -> None:
        """Send the distinct texts of `texts`; a thread waits for the answer, so the
        build goes on."""
        if self._talk is not None:
            return
        asked = [str(t) for t in distinct(texts)[1]]
        self._talk = threading.Thread(target=self._exchange, args=(asked,), daemon=True,
                                      name="sentiment helper")
        self._talk.start()

    def _exchange(self, asked: list[str]) -> None:
        try:
            out, _ = self._proc.communicate(json.dumps(asked).encode(),
                                            timeout=ANSWER_S + ANSWER_S_PER_TEXT * len(asked))
            got = json.loads(out)
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            log.info("sentiment helper gave no answer (%s); texts are scored here", exc)
            self._proc.kill()
            return
        if self._proc.returncode == 0 and len(got) == len(asked):
            self._answer = {t: (float(p), bool(o)) for t, (p, o) in zip(asked, got)}

    def answers(self) -> dict[str, tuple[float, bool]]:
        """What the helper answered (empty when it was not asked or failed)."""
        if self._talk is None:
            return {}
        self._talk.join()
        return self._answer

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._talk is not None:
            self._talk.join()


_local = threading.local()      # the helper of the build running in this thread


@contextmanager
def helping(wanted: bool) -> Iterator[Helper | None]:
    """A helper for the build in this thread while the block runs (None when not
    `wanted` or when no process can be started)."""
    helper = None
    if wanted:
        try:
            helper = Helper()
        except OSError as exc:
            log.info("no sentiment helper (%s); texts are scored here", exc)
    _local.helper = helper
    try:
        yield helper
    finally:
        _local.helper = None
        if helper is not None:
            helper.close()
