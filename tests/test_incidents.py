"""Cross-signal incidents: the pieces by hand, then injected faults on simulated data."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reporting.compute.incidents import section
from reporting.compute.incidents import section as incidents
from reporting.compute.incidents.detect import SUGGESTIVE, _extra, _incidents, detect
from reporting.compute.incidents.findings import Impact, Incident
from reporting.compute.incidents.links import infer_links, service_map, tied
from reporting.compute.incidents.signals import HOUR, TIME_COLUMNS, Signal, signals
from reporting.compute.incidents.stats import (
    _column_median,
    _ordinary,
    baseline,
    count_tail,
    fisher,
    level_shift,
    ratio_tail,
    runs,
    shifted,
    side,
    tail,
)
from reporting.compute.incidents.words import sentence
from reporting.compute.kpis.base import grouped_quantile
from reporting.core.config import Config, ServiceLinks, Thresholds
from reporting.core.periods import date_range, resolve
from reporting.present import charts
from reporting.simulate import Fault, _write, simulate

from .conftest import UTC
from .rows import load_all


def test_baseline_is_the_same_hour_of_the_week_over_up_to_four_weeks():
    hours = 5 * 168
    values = np.zeros(hours)
    h = 4 * 168 + 10                     # hour 10 of the fifth week
    values[[h - 168, h - 2 * 168, h - 3 * 168, h - 4 * 168]] = [4, 6, 8, 100]
    med, mad = baseline(values)
    assert med[h] == 7.0                 # median of 4, 6, 8, 100
    assert mad[h] == 2.0                 # median of |4-7|, |6-7|, |8-7|, |100-7| = 3, 1, 1, 93


def test_short_history_falls_back_to_the_same_hour_of_day():
    values = np.arange(24 * 5, dtype=float)  # five days: less than two weeks of history
    med, _ = baseline(values)
    h = 4 * 24 + 7                            # day 5, 07:00
    # the same hour on the four preceding days: h-24, h-48, h-72, h-96
    assert med[h] == np.median([h - 24, h - 48, h - 72, h - 96])


def test_count_tail_is_the_poisson_tail_with_a_learnt_rate():
    # No history, a prior mean of 1 worth 4 hours: negative binomial with r = 4, p = 4/5:
    # P(X >= 3) = 1 - 0.8^4 (1 + 4 * 0.2 + 10 * 0.2^2) = 1 - 0.4096 * 2.2.
    assert count_tail(np.array([3.0]), np.array([0.0]), np.array([0.0]),
                      np.array([1.0]))[0] == pytest.approx(1 - 0.4096 * 2.2)
    # A long history pins the rate: the Poisson tail, 1 - 7 e^-2 for X >= 5 at rate 2.
    long = count_tail(np.array([5.0]), np.array([2e7]), np.array([1e7]), np.array([2.0]))
    assert long[0] == pytest.approx(1 - 7 * np.exp(-2), rel=1e-4)
    assert long[0] == pytest.approx(stats.poisson.sf(4, 2.0), rel=1e-4)
    # Nothing seen is nothing unusual.
    assert count_tail(np.array([0.0]), np.array([3.0]), np.array([4.0]), np.array([1.0]))[0] == 1


def test_ratio_tail_is_the_binomial_tail_with_its_event_count():
    # No history, prior mean 1/2 worth 100 requests: beta-binomial a = b = 50; both of 2
    # requests failing: a (a + 1) / ((a + b)(a + b + 1)).
    got = ratio_tail(np.array([2.0]), np.array([2.0]), np.array([0.0]), np.array([0.0]),
                     np.array([0.5]))
    assert got[0] == pytest.approx(50 * 51 / (100 * 101))
    # A long history pins the rate at 1 %: the binomial tail of 3 or more of 10.
    got = ratio_tail(np.array([3.0]), np.array([10.0]), np.array([1e7]), np.array([1e9]),
                     np.array([0.01]))
    assert got[0] == pytest.approx(stats.binom.sf(2, 10, 0.01), rel=1e-3)
    # The event count decides: 1 failure of 3 is common, 3 of 3 is not; no requests, no test.
    seen = (np.array([2.0]), np.array([2000.0]), np.array([0.001]))
    assert ratio_tail(np.array([1.0]), np.array([3.0]), *seen)[0] > 0.001
    assert ratio_tail(np.array([3.0]), np.array([3.0]), *seen)[0] < 1e-7
    assert np.isnan(ratio_tail(np.array([0.0]), np.array([0.0]), *seen)[0])


def test_fisher_combines_two_sides_and_holds_its_level():
    # q = 1e-4: P = q (1 - ln q), as scipy's Fisher method gives.
    assert fisher(np.array([1e-2]), np.array([1e-2]))[0] == pytest.approx(1e-4 * (1 + np.log(1e4)))
    assert fisher(np.array([1e-2]), np.array([1e-2]))[0] == pytest.approx(
        stats.combine_pvalues([1e-2, 1e-2], method="fisher").pvalue)
    # Under no incident both sides are uniform: the combined hour passes a level L with
    # chance at most L.
    rng = np.random.default_rng(5)
    pb, pu = rng.random(2_000_000), rng.random(2_000_000)
    assert np.mean(fisher(pb, pu) <= 1e-3) == pytest.approx(1e-3, rel=0.1)


def test_each_side_is_bonferroni_over_its_judged_signals():
    p = np.array([[0.001, np.nan, 0.5], [0.2, 0.003, np.nan], [np.nan, np.nan, np.nan]])
    # hour 0: 2 judged, the smallest 0.001 -> 0.002; hour 1: 1 judged; hour 2: 1 judged
    assert side(p, [0, 1, 2]).tolist() == pytest.approx([0.002, 0.003, 0.5])
    assert side(p, []).tolist() == [1, 1, 1]
    assert side(p, [2]).tolist() == [1, 1, 1]     # nothing judged: no evidence


def test_the_false_alarm_bound_counts_every_hour_and_service():
    """An hour with back-end p 1e-4 and user p 1e-3 combines to 1.7e-6: an incident in a
    week of 168 hours and 6 services (bound 0.01 / 1008 = 9.9e-6), not with 60 services."""
    hours = pd.date_range("2026-11-02", periods=3, freq="h", tz="UTC")
    sigs = [Signal("api.server_error_rate", "pay", "ratio", np.zeros(3), np.ones(3), "ratio",
                   ("pay",)),
            Signal("support.new_tickets", "Payment Failure", "count", np.zeros(3), np.zeros(3),
                   "count", ("pay",))]
    p = np.array([[1.0, 1e-4, 1.0], [1.0, 1e-3, 1.0]])
    combined = fisher(np.array([1e-4]), np.array([1e-3]))[0]
    assert combined == pytest.approx(1e-7 * (1 - np.log(1e-7)))
    args = (p, np.zeros_like(p), sigs, {"pay": [0]}, {"pay": [1]}, ["pay"])
    [(inc, (a, b, rows))] = _incidents(*args, 0.01 / (168 * 6), hours, UTC)
    assert (a, b) == (1, 2) and inc.services == ("pay",) and rows == [0, 1]
    assert _incidents(*args, 0.01 / (168 * 60), hours, UTC) == []
    # each side must also be below SUGGESTIVE on its own
    p[1, 1] = 0.02
    assert _incidents(*args, 1.0, hours, UTC) == []


def test_ratios_are_judged_with_their_event_count_not_a_minimum():
    n = 3 * 168
    values = np.zeros(n)
    events = np.full(n, 3.0)
    values[-2:] = [1 / 3, 1.0]     # 1 of 3 failed, then all 3
    p, _ = tail(Signal("api.server_error_rate", "s", "ratio", values, events, "ratio"), 30)
    assert p[-2] > SUGGESTIVE and p[-1] < 1e-4


def test_an_earlier_incident_in_the_baseline_is_left_out():
    # Tickets of the same hour in three earlier weeks: 0, 0, 0 and 3 (the last outage);
    # the prior (same hour of day) is 0.03 an hour. Left out of the others, the 3 is
    # judged against 0 tickets in 3 hours plus the prior worth 4 hours: negative binomial
    # r = 0.12, p = 7/8, P(X >= 3) = 1 - P0 - P1 - P2 with P0 = 0.875^0.12,
    # P1 = 0.12 x 0.125 P0, P2 = P1 x 1.12 / 2 x 0.125: about 1e-4, below SCREEN.
    p0 = 0.875 ** 0.12
    p1 = 0.12 * 0.125 * p0
    p2 = p1 * 1.12 / 2 * 0.125
    assert 1 - p0 - p1 - p2 == pytest.approx(1.0e-4, rel=0.05)
    stack = np.array([[0.0, 1.0], [0.0, 0.0], [0.0, 0.0], [3.0, 1.0]])
    kept = _ordinary(stack, np.array([0.03, 0.03]))
    assert kept[:, 0].tolist() == [True, True, True, False]
    # one ticket in two of the weeks: P(X >= 1) = 1 - 0.875^1.12 = 0.139, ordinary
    assert kept[:, 1].all()
    # 5xx: 4 of 14 requests failing against 0 of 26 in the other weeks is an outage
    errors, events = np.array([[0.0], [0.0], [0.0], [4.0]]), np.array([[8.0], [10], [8], [14]])
    assert _ordinary(errors, np.array([0.001]), events)[:, 0].tolist() == [
        True, True, True, False]
    # NaN cells (hours before the data) are never ordinary; 2 known others are needed
    assert _ordinary(np.array([[np.nan], [0.0], [9.0]]))[:, 0].tolist() == [
        False, True, True]


def test_an_outage_is_found_when_the_previous_one_is_in_its_baseline(tmp_path):
    # Seven tiny weeks from 1 Jun: the default payment outage on Wed 17 Jun and Wed 15 Jul,
    # the first in the baseline weeks of the second. Its 3 payment tickets (and 12
    # carts) raised the second's expected tickets from 0.01 to 0.44 an hour, so its own
    # 3 + 3 tickets and 10 carts were no longer unusual: before the earlier outage was
    # left out of the baseline, only a back-end anomaly was reported.
    simulate(tmp_path, weeks=7, scale="tiny", seed=2, fmt="parquet",
             start=pd.Timestamp("2026-06-01").date())
    frames = load_all(tmp_path, UTC).frames
    found = detect(frames, resolve("2026-W29", UTC, None), Thresholds())
    [inc] = found.incidents
    assert inc.start == pd.Timestamp("2026-07-15 10:00", tz="UTC")
    assert inc.end == pd.Timestamp("2026-07-15 12:00", tz="UTC")
    assert inc.services[0] == "payment-api" and inc.impact.tickets == 6
    assert found.back_end == ()


def test_impact_is_the_excess_over_expected_with_its_standard_error():
    n, a = 5 * 168, 4 * 168 + 10          # a two-hour window in the fifth week
    tickets = np.zeros(n)
    tickets[a:a + 2] = [0, 5]
    usual = np.zeros((2, n))
    usual[0, a:a + 2] = [2, 1]
    # the window's sum: 0 - 2 + 5 - 1 = 2 (clipping each hour would say 0 + 4);
    # variance: Poisson 2 + 1, the expected level a mean of 4 weekly hours and a prior
    # worth 4: (2 + 1) (1 + 1/8) = 3.375
    carts = np.tile([1.0, 1.0], n // 2)
    value = np.tile([50.0, 150.0], n // 2)   # a cart is worth 100 on average, sd 50
    value[a:a + 2], carts[a:a + 2] = [900, 700], [6, 5]
    usual[1, a:a + 2] = [300, 300]
    sigs = [Signal("support.new_tickets", "Payment Failure", "count", tickets, tickets,
                   "count"),
            Signal("cart.abandoned_value", "all", "value", value, carts, "money")]
    got, se = _extra(sigs, usual, [0, 1], "support.new_tickets", a, a + 2)
    assert got == 2.0 and se == pytest.approx(np.sqrt(3.375))
    # money: 900 + 700 - 600; compound Poisson: 300 / 100 = 3 carts an hour expected, each
    # with a mean square of 100^2 + 50^2 = 12,500, the expected level a mean of 4 weeks:
    # 2 x 3 x 12,500 x (1 + 1/4) = 93,750
    got, se = _extra(sigs, usual, [0, 1], "cart.abandoned_value", a, a + 2)
    assert got == 1000.0 and se == pytest.approx(np.sqrt(93_750))


def test_a_noisy_impact_is_told_with_its_uncertainty():
    start = pd.Timestamp("2026-09-09 02:00", tz="UTC")
    def text(impact):
        return sentence(Incident(
            start, start + 2 * HOUR, ("payment-api",), (), (), impact), "EUR")
    # a few carts at night: two standard errors (800) are more than a fifth of 153
    assert text(Impact(153.3, 2, 5, 399.8, 1.5, 0.3)) == (
        "Wed 9 Sep 02:00–04:00: 2 more carts than usual abandoned, worth 153.30 EUR "
        "(± 799.60 EUR); 5 extra tickets.")
    # a daytime outage: 1,400 is 7 % of 19,992, so no range
    assert text(Impact(19991.9, 120, 11, 700.0, 11, 0.8)).endswith(
        "120 more carts than usual abandoned, worth 19,991.90 EUR; 11 extra tickets.")


def test_windows_merge_consecutive_hours():
    flagged = np.array([0, 1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    assert runs(flagged) == [(1, 3), (5, 6), (7, 10)]
    assert runs(np.zeros(4, bool)) == []


@pytest.fixture(scope="module", params=[11, 12, 13])
def sim(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"inc{request.param}")
    simulate(folder, weeks=4, scale="small", seed=request.param, fmt="parquet")
    meta = json.loads((folder / "simulation.json").read_text())["incidents"][0]
    return load_all(folder, UTC).frames, meta


def test_injected_outage_is_found_with_its_window_service_and_impact(sim):
    frames, injected = sim
    found = detect(frames, resolve("2026-W45", UTC, None), Thresholds())
    [inc] = found.incidents
    assert abs(inc.start - pd.Timestamp(injected["start"])) <= pd.Timedelta(hours=1)
    assert abs(inc.end - pd.Timestamp(injected["end"])) <= pd.Timedelta(hours=1)
    assert inc.services[0] == injected["service"]
    assert inc.impact.abandoned_value == pytest.approx(injected["extra_abandoned_value"],
                                                       rel=0.2)
    assert inc.impact.tickets == pytest.approx(injected["extra_tickets"], rel=0.2)
    names = {r.name for r in inc.signals}
    assert {"api.server_error_rate", "api.p95_ms", "support.new_tickets"} <= names
    # the payment failure pairs with what its users see, no other ticket type
    assert {r.entity for r in inc.signals if r.name == "support.new_tickets"} == {
        "Payment Failure"}
    assert inc.text.startswith("Wed 4 Nov 10:00–12:00: payment-api 5xx at")
    assert found.back_end == () and found.user_felt == () and found.shifts == ()


@pytest.mark.parametrize("week", ["2026-W44", "2026-W46"])
def test_no_incident_in_weeks_without_one(sim, week):
    frames, _ = sim
    found = detect(frames, resolve(week, UTC, None), Thresholds())
    assert found.incidents == () and found.user_felt == () and found.shifts == ()


def test_section_and_kpis_json(tmp_path):
    simulate(tmp_path / "d", weeks=3, scale="small", seed=14, fmt="parquet")
    frames = load_all(tmp_path / "d", UTC).frames
    section, found, _ = incidents.compute(frames, resolve("2026-W45", UTC, None), Thresholds())
    assert section.insights[0].text == found[0].text
    assert section.table("incidents").frame["tickets"].tolist() == [found[0].impact.tickets]
    as_json = found[0].as_dict()
    assert set(as_json) == {"start", "end", "services", "pages", "signals", "impact", "text"}
    assert as_json["start"] == "2026-11-04T10:00:00+00:00" and as_json["services"][0] == \
        "payment-api"
    keys = {"name", "entity", "peak", "baseline", "p", "unit"}
    assert all(set(x) == keys | ({"service"} if x["name"].startswith("system.") else set())
               for x in as_json["signals"])
    quiet, none, _ = incidents.compute(frames, resolve("2026-W44", UTC, None), Thresholds())
    assert none == [] and "No incident" in quiet.message
    # a configured currency reaches the money in the sentence (and nothing else changes)
    _, eur, _ = incidents.compute(frames, resolve("2026-W45", UTC, None), Thresholds(),
                                  currency="EUR")
    value = f"{found[0].impact.abandoned_value:,.2f}"
    assert f"worth {value}" in found[0].text and f"worth {value} EUR" not in found[0].text
    def sentence(text: str) -> str:        # without the deploy and revenue sentences
        return text.split(". It began")[0]
    assert sentence(eur[0].text) == sentence(found[0].text).replace(f"worth {value}",
                                                                    f"worth {value} EUR")
    assert eur[0].text.endswith(" EUR).") and not found[0].text.endswith(" EUR).")


def test_rare_errors_in_the_baseline_are_the_usual_rate_not_an_incident():
    # 14 days of 250 requests an hour; 1 error in every other hour of the day, but the
    # 23:00 hours had none except 2 on the third day. The last hour: 3 errors of 195. The
    # 2 errors are ordinary against the service's rate over all its hours (about 1 in
    # 500), so the 23:00 baseline keeps them: 2 of 13 x 250 requests, the prior of the
    # same hour's days (2 + 0.5) / (3,250 + 1): the beta-binomial tail of 3 in 195 is
    # 0.00068, far above a week's bound (about 1e-6). Left out as an "incident", 0 of 3,000
    # would make it look like less than 1e-5.
    n = 14 * 24
    hour = np.arange(n) % 24
    errors = np.where(hour % 2 == 1, 1.0, 0.0)
    errors[hour == 23] = 0.0
    errors[2 * 24 + 23] = 2.0
    events = np.full(n, 250.0)
    events[-1], errors[-1] = 195.0, 3.0
    p, _ = tail(Signal("api.server_error_rate", "pay", "ratio", errors / events, events,
                       "ratio"), 30, np.array([n - 1]))
    kept = ratio_tail(np.array([3.0]), np.array([195.0]), np.array([2.0]),
                      np.array([3250.0]), np.array([2.5 / 3251]))[0]
    dropped = ratio_tail(np.array([3.0]), np.array([195.0]), np.array([0.0]),
                         np.array([3000.0]), np.array([0.5 / 3001]))[0]
    assert p[-1] == pytest.approx(kept) and kept > 1e-4 and dropped < 1e-5


def test_traffic_is_judged_by_its_falls_and_its_surges_in_busy_hours():
    n = 3 * 168
    values = np.full(n, 100.0)
    values[[-3, -2, -1]] = [30.0, 60.0, 300.0]
    p, _ = tail(Signal("api.requests", "s", "traffic", values, values, "count"), 30)
    # On the log scale, the floor 10 %: a fall to 60 is z = 0.6745 ln(0.6) / 0.1 = -3.4455,
    # a surge to 300 z = 0.6745 ln 3 / 0.1 = 7.4102 (both sides: twice the normal tail).
    # A fall to 30 (z = -8.12) is likelier as a count: 200 requests in the 2 weeks' hours,
    # the prior the same hour of the 20 days before ((20 x 100 + 0.5) / 21) worth 4 hours.
    assert p[-2] == pytest.approx(2 * stats.norm.sf(3.4455), rel=1e-4)
    assert p[-1] == pytest.approx(2 * stats.norm.sf(7.4102), rel=1e-4)
    as_count = 2 * stats.nbinom.cdf(30, 200 + 4 * (2000.5 / 21), 6 / 7)
    assert p[-3] == pytest.approx(as_count) and as_count > 2 * stats.norm.sf(8.12)
    quiet = np.full(n, 20.0)
    quiet[-1] = 0.0
    p, _ = tail(Signal("api.requests", "s", "traffic", quiet, quiet, "count"), 30)
    assert np.isnan(p[-1])                              # 20 requests an hour: too few to judge


def test_hours_before_a_source_starts_and_after_it_ends_are_unknown_not_zero():
    hours = pd.date_range("2026-11-02", periods=48, freq="h", tz="UTC")
    tickets = pd.DataFrame({"created_at": pd.to_datetime(["2026-11-03 05:30",
                                                          "2026-11-03 07:10"]).tz_localize("UTC"),
                            "issue_type": ["Payment Failure"] * 2})
    [sig] = signals({"support_tickets": tickets}, hours)
    assert np.isnan(sig.values[:29]).all()             # up to 04:00 on the second day
    assert sig.values[29:32].tolist() == [1, 0, 1]     # 05:00, 06:00 (a real 0), 07:00
    assert np.isnan(sig.values[32:]).all()             # after the last ticket: unknown


def test_archived_hours_fill_the_weeks_the_data_lacks(sim):
    """Week N cut out of the data, with the earlier weeks only in the archive, finds the
    same incident with the same baselines as the full data."""
    frames, _ = sim
    w45 = resolve("2026-W45", UTC, None)
    history = pd.concat([section.compute(frames, resolve(w, UTC, None), Thresholds())[2]
                         for w in ("2026-W43", "2026-W44")])
    assert set(history.columns) == {"signal", "entity", "hour", "value", "events"}
    assert len(history) == history[["signal", "entity", "hour"]].drop_duplicates().shape[0]
    # from an hour before the week: the first hour of rows cut off is not judged when
    # its first row is far from its start (issue 27: a partial hour), so the cut's
    # first hour is the Sunday's, and the week is judged from its first hour
    cut = {name: f[f[TIME_COLUMNS[name]] >= w45.start - pd.Timedelta(hours=1)]
           for name, f in frames.items() if name in TIME_COLUMNS}
    full = detect(frames, w45, Thresholds()).incidents
    alone = detect(cut, w45, Thresholds()).incidents
    archived = detect(cut, w45, Thresholds(), history=history).incidents
    assert archived == full and len(full) == 1
    # Without the archive, Wednesday has two earlier days of history: too few to judge.
    assert alone == ()


def test_timeline_without_its_sources_says_no_data(tmp_path):
    tickets = pd.DataFrame({"created_at": pd.to_datetime(["2026-11-10 05:30"]).tz_localize("UTC"),
                            "issue_type": ["Payment Failure"]})
    section, found, rows = incidents.compute({"support_tickets": tickets},
                                             resolve("2026-W46", UTC, None), Thresholds())
    assert found == [] and list(section.charts[0].data.columns) == ["hour"]
    svg = charts.draw(section.charts[0], tmp_path / "t.svg").read_text()
    assert "No data for this period" in svg
    assert len(rows) == 1          # the ticket's own hour: the tickets say nothing of others


API = """timestamp,endpoint,status_code,response_time_ms,service_name
2026-11-01T10:05:00,/pay,500,900,payment-api
2026-11-01T10:20:00,/pay,200,100,payment-api
2026-11-01T10:40:00,/p,200,100,product-api
2026-11-01T23:10:00,/p,200,100,product-api
2026-11-05T09:00:00,/p,200,100,product-api
2026-11-05T09:30:00,/p,503,100,product-api
"""


def test_timeline_is_hourly_for_a_week_and_daily_for_longer_periods(frame):
    frames = {"api_logs": frame("api_logs", API)}
    week = date_range(pd.Timestamp("2026-11-01").date(), pd.Timestamp("2026-11-07").date(), UTC)
    hourly = section.compute(frames, week, Thresholds())[0].charts[0]
    assert hourly.title.endswith("per hour") and len(hourly.data) == 7 * 24
    rate = hourly.data["5xx rate (%)"].to_numpy()
    assert rate[10] == pytest.approx(1 / 3) and rate[23] == 0 and np.isnan(rate[11])
    month = date_range(pd.Timestamp("2026-11-01").date(), pd.Timestamp("2026-11-21").date(), UTC)
    daily = section.compute(frames, month, Thresholds())[0].charts[0]
    assert daily.title.endswith("per day") and len(daily.data) == 21
    rate = daily.data["5xx rate (%)"].to_numpy()
    # 1 of 4 requests on 1 Nov, 1 of 2 on 5 Nov, no requests on the other days
    assert rate[0] == pytest.approx(0.25) and rate[4] == pytest.approx(0.5)
    assert np.isnan(rate[1]) and list(daily.data.columns) == ["hour", "5xx rate (%)"]


def test_column_median_matches_numpy():
    rows = np.array([[1.0, np.nan, 5.0, np.nan], [3.0, 2.0, np.nan, np.nan],
                     [2.0, 4.0, np.nan, np.nan], [10.0, np.nan, np.nan, np.nan]])
    got = _column_median(rows)
    assert got[:3].tolist() == [2.5, 3.0, 5.0] and np.isnan(got[3])


def test_grouped_quantile_is_numpys_per_hour():
    rng = np.random.default_rng(3)
    pos = rng.integers(-1, 6, 500)                  # -1: outside the grid
    values = rng.lognormal(5, 1, 500)
    got = grouped_quantile(pos, values, 7, 0.95)
    for h in range(6):
        assert got[h] == np.percentile(values[pos == h], 95)     # to the last bit
    assert np.isnan(got[6])                         # an hour without values


def test_two_days_of_history_are_no_baseline():
    values = np.arange(24 * 4, dtype=float)
    med, mad = baseline(values)
    assert np.isnan(med[2 * 24 + 5]) and np.isnan(mad[2 * 24 + 5])   # day 3: 2 days before
    assert med[3 * 24 + 5] == 1 * 24 + 5           # day 4: median of days 1-3 at 05:00


# --- the service map -----------------------------------------------------------------

def test_service_links_are_inferred_from_names():
    pay = infer_links("payment-api", ["/checkout", "/payments/authorize"])
    assert pay.carts and "pay" in pay.feedback_words
    links = {"payment-api": pay,
             "user-service": infer_links("user-service", ["/login", "/profile"]),
             "product-api": infer_links("product-api", ["/products", "/search"]),
             "recommendation-api": infer_links("recommendation-api")}
    assert tied(links, issue_type="Payment Failure") == ("payment-api",)
    assert tied(links, issue_type="Refund Request") == ("payment-api",)
    # /payments/authorize is a payment word, not `auth` of the accounts family
    assert tied(links, issue_type="Login Issue") == ("user-service",)
    assert tied(links, issue_type="Account Update") == ("user-service",)
    assert tied(links, page="/checkout") == ("payment-api",)
    assert tied(links, page="/search") == ("product-api",)
    assert tied(links, carts=True) == ("payment-api",)
    assert tied(links, issue_type="Technical Bug") == ()     # tied to nothing
    assert tied(links, page="/") == ()


def test_service_map_from_the_config_replaces_the_inferred_links():
    config = Config.from_dict({"service_map": {"payments-gw": {
        "pages": ["/Pay/*"], "issue_types": ["Billing*"], "feedback_words": ["Card"],
        "carts": True}}})
    assert config.service_map == {"payments-gw": ServiceLinks(("/pay/*",), ("billing*",),
                                                              ("card",), True)}
    frames = {"api_logs": pd.DataFrame({"service_name": ["payments-gw", "login-svc"],
                                        "endpoint": ["/v2/x", "/v2/login"]})}
    links = service_map(frames, config.service_map)
    assert links["payments-gw"] == config.service_map["payments-gw"]
    assert "login" in links["login-svc"].feedback_words           # the other one inferred
    assert tied(links, page="/pay/confirm") == ("payments-gw",)
    assert tied(links, issue_type="Payment Failure") == ()   # not configured
    with pytest.raises(Exception, match="service_map.x.carts must be true or false"):
        Config.from_dict({"service_map": {"x": {"carts": "yes"}}})
    with pytest.raises(Exception, match="unknown key"):
        Config.from_dict({"service_map": {"x": {"page": ["/"]}}})


# --- one-sided anomalies, level shifts: simulated -------------------------------------

WED = pd.Timestamp("2026-11-04", tz="UTC")          # Wednesday of 2026-W45
QUIET = dict(error_rate=0.0, latency_factor=1.0, cart_factor=1.0, finish_p=None,
             feedback=(), slow_pages=(), cpu=False)


def _scenario(folder: Path, ticket_type: str) -> dict:
    """A payment-api failure users did not feel (5xx only), tickets of `ticket_type` in the
    same hours with no back-end cause, and a level shift of recommendations from Tuesday."""
    faults = [
        Fault(WED + pd.Timedelta(hours=14), WED + pd.Timedelta(hours=16), "payment-api",
              "errors", **{**QUIET, "error_rate": 0.3}),
        Fault(WED + pd.Timedelta(hours=14), WED + pd.Timedelta(hours=16), "", "tickets",
              **QUIET, ticket_extra=14, ticket_type=ticket_type),
        Fault(WED - pd.Timedelta(hours=15), WED + pd.Timedelta(days=12), "recommendation-api",
              "level_shift", **{**QUIET, "latency_factor": 1.6}),
    ]
    simulate(folder, weeks=4, scale="small", seed=21, fmt="parquet", faults=faults)
    return load_all(folder, UTC).frames


@pytest.fixture(scope="module")
def unrelated(tmp_path_factory):
    return _scenario(tmp_path_factory.mktemp("unrelated"), "Order Delay")


def test_unrelated_coincident_signals_make_no_incident_and_each_side_is_shown(unrelated):
    found = detect(unrelated, resolve("2026-W45", UTC, None), Thresholds())
    assert found.incidents == ()
    [back] = found.back_end
    assert back.side == "back-end" and back.entity == "payment-api"
    assert (back.start, back.end) == (WED + pd.Timedelta(hours=14), WED + pd.Timedelta(hours=16))
    assert back.signals[0].name == "api.server_error_rate" and back.signals[0].p < 1e-9
    assert back.text.endswith("no sign that users felt it.")
    [felt] = found.user_felt
    assert felt.entity == "Order Delay" and felt.start == WED + pd.Timedelta(hours=14)
    assert felt.text.endswith("no back-end cause found.")


def test_the_same_tickets_tied_to_the_failing_service_make_an_incident(tmp_path):
    frames = _scenario(tmp_path, "Payment Failure")
    found = detect(frames, resolve("2026-W45", UTC, None), Thresholds())
    [inc] = found.incidents
    assert inc.services == ("payment-api",) and inc.start == WED + pd.Timedelta(hours=14)
    assert inc.impact.tickets == pytest.approx(14, abs=2)
    assert found.back_end == () and found.user_felt == ()


def test_a_level_shift_is_one_finding_with_its_start(unrelated):
    found = detect(unrelated, resolve("2026-W45", UTC, None), Thresholds())
    [shift] = [s for s in found.shifts if s.entity == "recommendation-api"]
    assert shift.name == "api.p95_ms" and not shift.rising
    assert abs(shift.start - (WED - pd.Timedelta(hours=15))) <= pd.Timedelta(hours=2)
    assert shift.after / shift.before == pytest.approx(1.6, rel=0.15)
    # not a string of back-end anomalies
    assert [a.entity for a in found.back_end] == ["payment-api"]
    section, _, _ = incidents.compute(unrelated, resolve("2026-W45", UTC, None), Thresholds())
    assert any("recommendation-api p95 latency has stayed higher since Tue 3 Nov" in i.text
               for i in section.insights)
    assert section.table("level_shifts").frame["signal"].tolist() == [
        "recommendation-api p95 latency"]


def _shifted_week(step: float, spike_at: int | None = None) -> tuple[Signal, np.ndarray]:
    rng = np.random.default_rng(4)
    n = 4 * 168
    values = 100 * rng.lognormal(0, 0.05, n)
    values[3 * 168 + 33:] *= step                     # from Tuesday 09:00 of week 4
    if spike_at is not None:
        values[spike_at] *= 4
    return Signal("api.p95_ms", "s", "level", values, np.full(n, 200.0), "ms"), \
        np.arange(3 * 168, n)


def test_level_shift_start_and_later_hours_still_judged():
    sig, judged = _shifted_week(3.0, spike_at=3 * 168 + 3 * 24 + 10)    # Thursday 10:00
    p, usual = tail(sig, 30, judged)
    assert np.sum(p[judged] < 1e-6) > 100               # unshifted: every later hour flags
    start, before, after, rising = level_shift(sig, usual, judged, 0.01, 30)
    assert start == 3 * 168 + 33 and before == pytest.approx(100, rel=0.05)
    assert after == pytest.approx(300, rel=0.05) and not rising
    p, _ = tail(shifted(sig, start, usual), 30, judged)
    flagged = np.flatnonzero(p < 1e-6)
    assert flagged.tolist() == [3 * 168 + 3 * 24 + 10]    # only the spike after the shift


def test_no_level_shift_in_noise_or_a_short_burst():
    sig, judged = _shifted_week(1.0)
    _, usual = tail(sig, 30, judged)
    assert level_shift(sig, usual, judged, 0.01, 30) is None
    values = sig.values.copy()
    values[-20:] *= 2                                   # 20 hours: less than a day
    burst = dataclasses.replace(sig, values=values)
    assert level_shift(burst, usual, judged, 0.01, 30) is None


def test_it_report_shows_back_end_anomalies_and_support_what_users_felt(unrelated, tmp_path):
    from tests.test_cli import main, run
    data = tmp_path / "data"
    data.mkdir()
    for name, frame in unrelated.items():
        _write(frame, data / f"{name}.parquet", "parquet")
    out = tmp_path / "out"
    result = run(main, ["build", "--data", data, "--output", out, "--period", "2026-W45",
                        "--audience", "it", "--audience", "support", "--format", "html"])
    assert result.exit_code == 0, result.output
    it = (out / "reports/2026-W45/html/it.html").read_text()
    support = (out / "reports/2026-W45/html/support.html").read_text()
    assert "Back-end anomalies users did not visibly feel" in it
    assert "What users felt without a back-end cause" not in it
    assert "What users felt without a back-end cause" in support
    assert "Order Delay new tickets per hour" in support
    assert "Back-end anomalies users did not visibly feel" not in support
    doc = json.loads((out / "reports/2026-W45/kpis.json").read_text())
    extra = doc["breakdowns"]["incidents"]
    assert [a["entity"] for a in extra["back_end_anomalies"]] == ["payment-api"]
    assert extra["level_shifts"][0]["entity"] == "recommendation-api"
