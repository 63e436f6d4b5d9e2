"""The sentiment helper (`compute.sentiment.helping`): TextBlob in a child process gives the
numbers TextBlob gives here, for every text; a helper that fails or is never asked changes
nothing but where a text is scored; it never outlives its build."""
import sys

import pandas as pd
import pytest

from reporting import build as build_module
from reporting.compute import sentiment
from reporting.core.config import Config

TEXTS = [
    "Checkout was great, really fast!",
    "Terrible app. The payment page crashed twice :(",
    "",
    "meh",
    'He said "not bad" and left\nthen came back',
    "Très bien, livraison rapide 👍",
    "Zahlung fehlgeschlagen — schlecht",
    "{{ 7 * 7 }} <script>alert(1)</script>",
    "not good, not bad, just average",
]


def _local(texts):
    return [sentiment.score.__wrapped__(t) for t in texts]


def test_the_helper_answers_what_textblob_gives_here():
    helper = sentiment.Helper()
    try:
        helper.ask(pd.Series(TEXTS + [None, TEXTS[0]]))
        got = helper.answers()
    finally:
        helper.close()
    assert set(got) == set(TEXTS)                   # a missing text is asked as ''
    assert [got[t] for t in TEXTS] == _local(TEXTS)  # floats to the last bit, flags
    assert got[TEXTS[0]][0] > 0.1 and got[TEXTS[1]][0] < -0.1


def test_scores_take_the_helpers_answers_and_score_the_rest_here():
    asked = [f"Unusually lovely checkout number {i}" for i in range(5)]
    not_asked = "An awful, unusual delay nobody asked about"
    with sentiment.helping(True) as helper:
        helper.ask(pd.Series(asked))
        before = sentiment.score.cache_info().misses
        frame = sentiment.scores(pd.Series(asked + [not_asked, asked[0]]))
        scored_here = sentiment.score.cache_info().misses - before
    assert scored_here == 1                          # only the text the helper was not asked
    expected = _local(asked + [not_asked, asked[0]])
    assert frame["polarity"].tolist() == [e[0] for e in expected]
    assert frame["opinion"].tolist() == [e[1] for e in expected]
    assert helper._proc.poll() is not None           # ended with its block


def test_a_failing_helper_changes_nothing(monkeypatch):
    monkeypatch.setattr(sentiment, "_HELPER", "import sys; sys.exit(3)")
    texts = pd.Series(["Broken helper, fine numbers", "Awful wait"])
    with sentiment.helping(True) as helper:
        helper.ask(texts)
        frame = sentiment.scores(texts)
        assert helper.answers() == {}
    assert frame["polarity"].tolist() == [p for p, _ in _local(texts)]


def test_a_helper_never_asked_is_stopped():
    with sentiment.helping(True) as helper:
        assert sentiment.scores(pd.Series(["Good"]))["polarity"].iloc[0] > 0
    assert helper._proc.poll() is not None
    with sentiment.helping(False) as none:
        assert none is None


def test_a_build_starts_a_helper_only_with_a_second_core_and_feedback(tmp_path, monkeypatch):
    config = Config.from_dict({})
    (tmp_path / "user_feedback.csv").write_text("user_id,timestamp,feedback_text,rating\n")
    monkeypatch.setattr(build_module.workers, "cores", lambda: 2)
    monkeypatch.setattr(sentiment, "once_here", lambda: True)
    assert build_module._feedback_expected(config, tmp_path)
    assert not build_module._feedback_expected(config, tmp_path / "missing")
    (tmp_path / "user_feedback.csv").rename(tmp_path / "api_logs.csv")
    assert not build_module._feedback_expected(config, tmp_path)
    (tmp_path / "api_logs.csv").rename(tmp_path / "user_feedback.csv")
    monkeypatch.setattr(build_module.workers, "cores", lambda: 1)
    assert not build_module._feedback_expected(config, tmp_path)


FEEDBACK = """user_id,timestamp,feedback_text,rating
u1,2026-11-09 10:00:00,"Terrible checkout, awful",1
u2,2026-11-10 11:00:00,Terrible delivery,1
u3,2026-11-11 12:00:00,"Awful app",2
u4,2026-11-12 13:00:00,Great prices,5
u5,2026-11-13 14:00:00,"Great, fast delivery",5
u6,2026-11-14 15:00:00,The box arrived,3
"""


@pytest.mark.parametrize("cores", [1, 2])
def test_a_builds_feedback_kpis_are_the_same_with_and_without_a_helper(
        tmp_path, monkeypatch, cores):
    """Three of six texts are negative (TextBlob: 'terrible', 'awful' -1.0; 'great' 0.8;
    'the box arrived' 0.0), with the helper (2 cores) and without it (1 core)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "user_feedback.csv").write_text(FEEDBACK)
    monkeypatch.setattr(build_module.workers, "cores", lambda: cores)
    monkeypatch.setattr(sentiment, "once_here", lambda: True)
    started = []
    real = sentiment.Helper
    monkeypatch.setattr(sentiment, "Helper", lambda: started.append(real()) or started[-1])
    result = build_module.build(Config.from_dict({}), data_dir=tmp_path / "data",
                                period="2026-W46", output_dir=tmp_path / "out", fmt="html")
    assert len(started) == (cores >= 2)
    if started:                                  # asked, and its answers were used
        assert set(started[0]._answer) == set(pd.read_csv(
            tmp_path / "data" / "user_feedback.csv")["feedback_text"])
    kpis = result.document["kpis"]
    assert kpis["feedback.negative_share"]["value"] == pytest.approx(0.5)
    assert kpis["feedback.positive_share"]["value"] == 0.3333     # 2 of 6, as kpis.json rounds


def test_only_a_processs_first_build_gets_a_helper(monkeypatch):
    """A long-lived process (the scheduler) imports TextBlob once, on its second build:
    a helper for every build would import it again each time."""
    monkeypatch.setattr(sentiment, "_helped", False)
    monkeypatch.delitem(sys.modules, "textblob", raising=False)
    assert sentiment.once_here()
    assert not sentiment.once_here()
    monkeypatch.setattr(sentiment, "_helped", False)
    monkeypatch.setitem(sys.modules, "textblob", object())
    assert not sentiment.once_here()            # already imported here: scoring is cheap
