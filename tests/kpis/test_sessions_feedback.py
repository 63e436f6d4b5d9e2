from __future__ import annotations

import pandas as pd
import pytest

from reporting.compute import sentiment
from reporting.compute.kpis import feedback, sessions
from reporting.core.periods import resolve

from ..conftest import week_of
from ..rows import load_all

W46 = week_of("2026-11-09")
SESSIONS = """session_id,user_id,start_time,end_time,page_sequence,drop_off_page
s1,u1,2026-11-10T09:00:00,2026-11-10T09:02:00,home,home
s2,u2,2026-11-10T09:00:00,2026-11-10T09:04:00,home > product > cart,cart
s3,u3,2026-11-10T09:00:00,2026-11-10T09:06:00,home > product > cart > checkout,none
s4,u4,2026-11-10T09:00:00,2026-11-10T09:12:00,home>product >cart> checkout,checkout
"""


def test_session_kpis_by_hand(frame, thresholds):
    s = sessions.compute({"session_tracking": frame("session_tracking", SESSIONS)}, W46,
                         thresholds)
    v = {k.key.split(".")[1]: k.value for k in s.kpis}
    assert v["count"] == 4
    assert v["avg_duration_min"] == 6 and v["median_duration_min"] == 5
    assert v["bounce_rate"] == 0.25 and v["completion_rate"] == 0.25
    assert v["top_drop_off_page"] == "cart"          # three-way tie: alphabetical
    assert v["pages_per_session"] == 3
    assert v["checkout_conversion"] == pytest.approx(1 / 3)   # 3 reached the cart, 1 finished
    f = s.table("funnel").frame
    assert f["step"].tolist() == ["landing", "product", "cart", "checkout", "finished"]
    assert f["sessions"].tolist() == [4, 3, 3, 2, 1]
    assert f["step_conversion"].tolist()[1:] == pytest.approx([0.75, 1.0, 2 / 3, 0.5])


def test_funnel_from_page_patterns_in_order():
    df = pd.DataFrame({"page_sequence": pd.Categorical([
        "home",                                   # landing only
        "home > cart > product > checkout",       # cart before product: landing, product
        "/ > /product/sneaker-x > /cart",         # URL pages: landing, product, cart
        "search > product > cart > checkout",     # all four steps
        "home > product > checkout"]),             # skips the cart: landing, product
        "drop_off_page": ["home", "checkout", "/cart", "none", "none"]})
    f = sessions.funnel(df)
    assert f["sessions"].tolist() == [5, 4, 2, 1, 1]      # finished: only the full path
    assert f["step_conversion"].tolist()[1:] == pytest.approx([0.8, 0.5, 0.5, 1.0])
    mine = sessions.funnel(df, (("search", ("search",)), ("buy", ("checkout",))))
    assert mine["step"].tolist() == ["search", "buy", "finished"]
    assert mine["sessions"].tolist() == [1, 1, 1]


def test_seed_sessions(seed_dir, thresholds):
    from ..conftest import UTC
    f = load_all(seed_dir, UTC).frames
    t = f["session_tracking"]["start_time"]
    s = sessions.compute(f, resolve("all", UTC, (t.min(), t.max())), thresholds)
    assert s.kpi("sessions.count").value == 10
    assert s.kpi("sessions.avg_duration_min").value == 5.0
    assert s.kpi("sessions.top_drop_off_page").value == "checkout"
    assert s.table("drop_off").frame.iloc[0].tolist()[:2] == ["checkout", 5]


FEEDBACK = """user_id,timestamp,feedback_text,rating
u1,2026-11-10T09:00:00,Great service,5
u2,2026-11-10T09:00:00,Terrible checkout,1
u3,2026-11-10T09:00:00,"Great, another error",1
u4,2026-11-10T09:00:00,The search isn't bad,4
u5,2026-11-10T09:00:00,Delivered on Tuesday,3
"""


def test_feedback_kpis_by_hand(frame, thresholds):
    s = feedback.compute({"user_feedback": frame("user_feedback", FEEDBACK)}, W46, thresholds)
    v = {k.key.split(".")[1]: k.value for k in s.kpis}
    assert v["responses"] == 5
    assert v["avg_rating"] == pytest.approx(2.8)
    assert v["csat"] == pytest.approx(0.4)
    # TextBlob: great +0.8 (twice), terrible -1.0, "isn't bad" -0.7, no opinion words in the last
    assert v["positive_share"] == pytest.approx(0.4) and v["negative_share"] == pytest.approx(0.4)
    # 4 texts have opinion words; 2 read against their stars
    assert v["mismatch_rate"] == pytest.approx(0.5)
    assert s.kpi("feedback.csat").status == "bad"
    mismatched = s.table("mismatched").frame["comment"].tolist()
    assert sorted(mismatched) == ["Great, another error", "The search isn't bad"]
    assert s.table("most_negative").frame["comment"].tolist()[0] == "Terrible checkout"


def test_sentiment_is_computed_once_per_distinct_text(frame, thresholds):
    rows = "user_id,timestamp,feedback_text,rating\n" + "".join(
        f"u{i},2026-11-10T09:00:00,Unique text number {i % 3} is great,5\n" for i in range(300))
    sentiment.score.cache_clear()
    feedback.compute({"user_feedback": frame("user_feedback", rows)}, W46, thresholds)
    assert sentiment.score.cache_info().misses == 3


def test_seed_feedback_mean_rating(seed_dir, thresholds):
    from ..conftest import UTC
    f = load_all(seed_dir, UTC).frames
    t = f["user_feedback"]["timestamp"]
    s = feedback.compute(f, resolve("all", UTC, (t.min(), t.max())), thresholds)
    assert s.kpi("feedback.responses").value == 10
    assert s.kpi("feedback.avg_rating").value == 3.0


def test_feedback_with_no_text_in_the_period(frame, thresholds):
    rows = "user_id,timestamp,feedback_text,rating\nu1,2026-11-02T09:00:00,Great shop,5\n"
    s = feedback.compute({"user_feedback": frame("user_feedback", rows)}, W46, thresholds)
    assert s.kpi("feedback.responses").value == 0
    assert s.kpi("feedback.responses").previous == 1


def test_sentiment_of_no_text_keeps_its_types():
    s = sentiment.scores(pd.Series([], dtype="string"))
    assert s["polarity"].dtype == "float64" and s["opinion"].dtype == "bool"


def test_feedback_themes_by_hand_on_repeated_and_missing_texts():
    # 5 comments: "Checkout was SLOW" twice (checkout & payment and speed), "Crashed at
    # login" (errors & crashes), a missing text and "Great" (no theme). Speed: 2 mentions of 5 = 40 %, ratings 1 and 3
    # -> 2.0, both negative (polarity -0.5 < NEGATIVE) -> 100 %; errors: 1 (rating 2,
    # polarity 0.0: not negative)
    import numpy as np
    df = pd.DataFrame({"feedback_text": ["Checkout was SLOW", "Crashed at login", None,
                                         "Checkout was SLOW", "Great"],
                       "rating": [1, 2, 5, 3, 5],
                       "polarity": [-0.5, 0.0, 0.0, -0.5, 0.8]})
    got = feedback.themes(df).set_index("theme")
    assert sorted(got.index) == ["checkout & payment", "errors & crashes", "speed"]
    assert got.loc["speed"].tolist() == [2, 0.4, 2.0, 1.0]
    assert got.loc["checkout & payment", "mentions"] == 2
    assert got.loc["errors & crashes"].tolist() == [1, 0.2, 2.0, 0.0]
    assert np.array_equal(feedback.themes(df.head(0)).columns,
                          ["theme", "mentions", "share", "avg_rating", "negative_share"])
