"""Anomalies as production series behave (issue 28): falls and surges where both mean
trouble, each side named; worked out by hand on small series."""
from __future__ import annotations

import dataclasses
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reporting.compute.incidents.detect import detect
from reporting.compute.incidents.signals import Signal
from reporting.compute.incidents.stats import baseline_days, sided, tail
from reporting.core.config import Thresholds
from reporting.core.periods import week

UTC = ZoneInfo("UTC")
W46 = week(2026, 46, UTC)            # Mon 9 Nov .. Sun 15 Nov 2026
HOUR = pd.Timedelta(hours=1)


def minutes(first: str, last: str, every: str = "min") -> pd.Series:
    return pd.Series(pd.date_range(first, f"{last} 23:59", freq=every, tz=UTC))


def cpu_rows(level: dict[str, float], changed: dict[str, float] | None = None,
             host: bool = False) -> pd.DataFrame:
    """One sample a minute per service from 19 Oct to 15 Nov at a steady CPU (memory 50 %,
    healthy), each sample of the hours in `changed` (timestamp -> CPU) at that value
    instead; the host unnamed (or `<service>-1`)."""
    parts = []
    for service, cpu in level.items():
        t = minutes("2026-10-19", "2026-11-15")
        values = np.full(len(t), cpu)
        for at, v in (changed or {}).items():
            values[(t.dt.floor("h") == pd.Timestamp(at, tz=UTC)).to_numpy()] = v
        parts.append(pd.DataFrame({"timestamp": t, "service_name": service, "cpu_pct": values,
                                   "memory_pct": 50.0, "healthy": 1.0,
                                   "host": f"{service}-1" if host else None}))
    return pd.concat(parts, ignore_index=True)


def test_the_tail_of_each_side_by_hand():
    z = np.array([-2.0, 2.0])
    # up: P(Z >= z); down: P(Z <= z); both: twice the smaller of the two
    assert sided(z, "up") == pytest.approx([0.97725, 0.02275], abs=1e-5)
    assert sided(z, "down") == pytest.approx([0.02275, 0.97725], abs=1e-5)
    assert sided(z, "both") == pytest.approx([0.0455, 0.0455], abs=1e-4)
    assert sided(np.array([0.0]), "both")[0] == 1.0


def test_cpu_is_judged_by_its_falls_and_its_rises():
    n = 3 * 168
    values = np.full(n, 95.0)
    values[-1 - 2 * 168] = 94.0          # the baseline of the last hour: 94, 95 -> median 94.5
    values[[-2, -1]] = [25.0, 99.0]
    p, usual = tail(Signal("system.cpu_pct", "h1", "pct", values, np.full(n, 60), "pct"),
                    30)
    # MAD 0.5 floored at 5 points: a fall to 25 is z = 0.6745 * -70 / 5 (both sides: twice
    # the tail); 99 against 94.5 is z = 0.6745 * 4.5 / 5, nothing unusual
    assert p[-2] == pytest.approx(2 * stats.norm.sf(0.6745 * 70 / 5))
    assert p[-1] == pytest.approx(2 * stats.norm.sf(0.6745 * 4.5 / 5))
    assert usual[-1] == 94.5 and p[-1] > 0.5


def test_a_busy_service_whose_cpu_falls_to_near_idle_is_reported_with_its_side():
    rows = cpu_rows({"payment-api": 95.0, "search-api": 20.0},
                    {"2026-11-11 03:00": 25.0})
    found = detect({"system_metrics": rows}, W46, Thresholds())
    [a] = found.back_end
    assert (a.entity, a.start, a.end) == ("payment-api", pd.Timestamp("2026-11-11 03:00",
                                                                      tz=UTC),
                                          pd.Timestamp("2026-11-11 04:00", tz=UTC))
    assert "CPU on payment-api fell to 25.0 % (usually 95.0 %)" in a.text
    rose = detect({"system_metrics": cpu_rows({"payment-api": 20.0},
                                              {"2026-11-11 03:00": 90.0})}, W46, Thresholds())
    assert "CPU on payment-api rose to 90.0 % (usually 20.0 %)" in rose.back_end[0].text


def test_a_surge_of_requests_is_reported_as_one():
    # 60 calls an hour; on Tue 10 Nov 14:00 four times as many (a retry storm)
    t = minutes("2026-10-19", "2026-11-15")
    extra = pd.Series(pd.date_range("2026-11-10 14:00", periods=180, freq="20s", tz=UTC))
    api = pd.DataFrame({"timestamp": pd.concat([t, extra], ignore_index=True),
                        "endpoint": "/pay", "status_code": 200, "response_time_ms": 100.0,
                        "service_name": "payment-api"}).sort_values("timestamp")
    found = detect({"api_logs": api}, W46, Thresholds())
    [a] = found.back_end
    assert a.start == pd.Timestamp("2026-11-10 14:00", tz=UTC)
    assert a.end == pd.Timestamp("2026-11-10 15:00", tz=UTC)
    assert "payment-api requests per hour rose to 240 (usually 60)" in a.text


def test_a_fall_of_the_rating_is_felt_by_users_and_a_rise_is_not():
    # ten ratings an hour, 4 and 5 in turn (mean 4.5); Thu 12 Nov 10:00 all 1, Fri 13 Nov
    # 10:00 all 5
    t = minutes("2026-10-19", "2026-11-15", "6min")
    rating = np.tile([4.0, 5.0], len(t) // 2)
    hour = t.dt.floor("h")
    rating[(hour == pd.Timestamp("2026-11-12 10:00", tz=UTC)).to_numpy()] = 1.0
    rating[(hour == pd.Timestamp("2026-11-13 10:00", tz=UTC)).to_numpy()] = 5.0
    feedback = pd.DataFrame({"user_id": "u", "timestamp": t, "feedback_text": "ok",
                             "rating": rating})
    found = detect({"user_feedback": feedback}, W46, Thresholds())
    [rating_signal] = [s for s in found.signals if s.name == "feedback.rating"]
    assert rating_signal.spread == pytest.approx(np.std(rating))
    [a] = found.user_felt
    assert a.start == pd.Timestamp("2026-11-12 10:00", tz=UTC)
    assert "Mean rating per hour fell to 1.00 / 5 (usually 4.50 / 5)" in a.text


def test_one_host_that_falls_idle_is_not_hidden_in_its_fleet():
    # four search-api hosts at 90 %; on Wed 11 Nov 03:00 search-api-3 falls to 10 %: the
    # fleet's mean falls only to 70 % (z = 0.6745 * 20 / 5 = 2.7, nothing on 168 hours x
    # signals), the host's to 10 % (z = 0.6745 * 80 / 5 = 10.8)
    rows = pd.concat([cpu_rows({"search-api": 90.0},
                               {"2026-11-11 03:00": 10.0} if h == 3 else None)
                      .assign(host=f"search-api-{h}") for h in range(1, 5)],
                     ignore_index=True)
    found = detect({"system_metrics": rows}, W46, Thresholds())
    [a] = found.back_end
    assert a.entity == "search-api" and a.start == pd.Timestamp("2026-11-11 03:00", tz=UTC)
    assert a.signals[0].entity == "search-api-3" and a.signals[0].service == "search-api"
    assert a.signals[0].as_dict()["service"] == "search-api"
    assert "CPU on search-api-3 fell to 10.0 % (usually 90.0 %)" in a.text
    assert {s.entity for s in found.signals if s.name == "system.cpu_pct"} == {
        f"search-api-{h}" for h in range(1, 5)}


def short_cpu(changes: dict[str, float], until: str | None = None) -> pd.DataFrame:
    """Two weeks of payment-api-1 at 95 % CPU (Mon 2 .. Sun 15 Nov: the days before 9 Nov
    are the only history), from each timestamp in `changes` at its value (None: back to
    95 %) up to `until` (default: to the end)."""
    t = minutes("2026-11-02", "2026-11-15")
    cpu = np.full(len(t), 95.0)
    for at, v in changes.items():
        upto = t < pd.Timestamp(until, tz=UTC) if until else True
        cpu[((t >= pd.Timestamp(at, tz=UTC)) & upto).to_numpy()] = v
    return pd.DataFrame({"timestamp": t, "service_name": "payment-api", "host": "payment-api-1",
                         "cpu_pct": cpu, "memory_pct": 50.0, "healthy": 1.0})


def test_a_short_history_is_judged_on_its_days_and_says_so():
    # one hour at 25 % on Fri 13 Nov 03:00: its baseline is 03:00 of 2 .. 12 Nov, 11 days
    rows = short_cpu({"2026-11-13 03:00": 25.0}, until="2026-11-13 04:00")
    [a] = detect({"system_metrics": rows}, W46, Thresholds()).back_end
    assert a.signals[0].days == 11 and a.signals[0].as_dict()["days"] == 11
    assert "CPU on payment-api-1 fell to 25.0 % (usually 95.0 %; baseline: 11 days)" in a.text


def test_a_change_that_lasts_on_a_short_history_is_one_level_shift_with_its_start():
    # from Wed 11 Nov 03:00 on at 25 %: judged against 03:00 of the 9 days before (2 .. 10
    # Nov), not the days that include the change; one level shift, no hour-by-hour anomaly
    found = detect({"system_metrics": short_cpu({"2026-11-11 03:00": 25.0})}, W46,
                   Thresholds())
    [s] = found.shifts
    assert s.start == pd.Timestamp("2026-11-11 03:00", tz=UTC)
    assert (s.before, s.after, s.days, s.service) == (95.0, 25.0, 9, "payment-api")
    assert s.text.startswith("CPU on payment-api-1 has stayed lower since Wed 11 Nov 03:00: "
                             "25.0 % against a usual 95.0 % (-70.0 pp; baseline: 9 days)")
    assert found.back_end == () and found.incidents == ()


def test_a_traffic_hour_is_never_less_likely_than_as_a_count():
    # Three weeks at 35 requests an hour; the last hour's same hour of the two weeks
    # before: 33 and 37; the last hour itself 15. On the log scale: median ln 34.93, MAD
    # 0.0572 floored at the Poisson noise 0.6745 / sqrt(34.93) = 0.1141, z = 0.6745 ln(15
    # / 34.93) / 0.1141 = -4.997, both sides 5.8e-7. As a count: 70 requests in 2 hours,
    # the prior the same hour of the 20 days before ((18 x 35 + 33 + 37 + 0.5) / 21),
    # worth 4 hours: the negative binomial with shape 70 + 4 prior and p = 6 / 7, twice
    # its lower tail: the larger, as the fall of a thin count is.
    n = 3 * 168
    values = np.full(n, 35.0)
    values[[-1 - 2 * 168, -1 - 168, -1]] = [33.0, 37.0, 15.0]
    p, usual = tail(Signal("api.requests", "inventory", "traffic", values, values, "count"),
                    30, np.array([n - 1]))
    prior = (18 * 35 + 33 + 37 + 0.5) / 21
    as_count = 2 * stats.nbinom.cdf(15, 70 + 4 * prior, 6 / 7)
    assert 2 * stats.norm.sf(4.997) < 1e-6 < as_count
    assert p[-1] == pytest.approx(as_count, rel=1e-9) and usual[-1] == 35.0


def test_cpu_is_judged_on_how_far_it_usually_lies_from_its_baseline():
    # An idle host at 6 %; the last day judged against the same hour of the two weeks
    # before (6 and 6 + d). Each of those 48 baseline values lies d from the other of its
    # hour: with d = 2 in every hour the scale is 2 points (the median), and a rise to 25
    # (usual 7) is z = 0.6745 x 18 / 2 = 6.07; with d = 10 in 4 of the 24 hours the 90th
    # percentile (10) over 1.645 standard deviations sets it, 10 x 0.6745 / 1.645 = 4.100
    # points: z = 0.6745 x 18 / 4.1 = 2.961, ordinary for a series with such swings.
    n = 3 * 168
    def judged_last(d: np.ndarray) -> float:
        values = np.full(n, 6.0)
        values[n - 24 - 168:n - 168] += d
        values[-1] = 25.0
        p, usual = tail(Signal("system.cpu_pct", "h1", "pct", values, np.full(n, 12), "pct"),
                        30, np.arange(n - 24, n))
        assert usual[-1] == 7.0
        return p[-1]
    steady = np.full(24, 2.0)
    swings = steady.copy()
    swings[:4] = 10.0
    assert judged_last(steady) == pytest.approx(2 * stats.norm.sf(0.6745 * 18 / 2))
    assert judged_last(swings) == pytest.approx(2 * stats.norm.sf(0.6745 * 18 / (
        10 * 0.6745 / 1.645)))


def test_a_percentile_is_judged_on_its_relative_swings_wider_on_fewer_events():
    # A p95 of 100 ms on 200 requests an hour; the last day's hours were 110 ms a week
    # before, 100 ms two weeks before. Each of those 48 baseline values against the other
    # of its hour: 10 / 100 = 0.1 and 10 / 110 = 0.0909, a MAD of 0.0955 (the 90th
    # percentile, 0.1 x 0.6745 / 1.645, is below it), relative to the usual 105 ms: 10.02
    # ms. The last hour, 160 ms: on 200 requests z = 0.6745 x 55 / 10.02 = 3.70; on 50, a
    # quarter of the usual events, the scale doubles: z = 1.85.
    n = 3 * 168
    def judged_last(events: float) -> float:
        values, ev = np.full(n, 100.0), np.full(n, 200.0)
        values[n - 24 - 168:n - 168] = 110.0
        values[-1], ev[-1] = 160.0, events
        p, usual = tail(Signal("api.p95_ms", "pay", "level", values, ev, "ms"), 30,
                        np.arange(n - 24, n))
        assert usual[-1] == 105.0
        return p[-1]
    scale = (0.1 + 10 / 110) / 2 * 105
    assert judged_last(200) == pytest.approx(stats.norm.sf(0.6745 * 55 / scale))
    assert judged_last(50) == pytest.approx(stats.norm.sf(0.6745 * 55 / (2 * scale)))


def test_a_first_weekend_is_not_judged_against_the_weekdays_before_it():
    # Traffic from Mon 9 Nov: 50 requests an hour on weekdays, 200 at the weekend. With
    # five weekdays known, Saturday 14 has no weekend day before it: not judged (its rise
    # is the week's rhythm, not news); Sunday 15 has one: not judged either. Monday 16 is
    # judged against all 7 days (median 50: the weekend is the minority); Saturday 21
    # against Sat 14 and Sun 15 (2 weekend days: usual 200, nothing unusual).
    hours = pd.date_range("2026-11-09", periods=13 * 24, freq="h", tz=UTC)
    values = np.where(hours.day_of_week >= 5, 200.0, 50.0)
    weekend = np.asarray(hours.day_of_week >= 5)
    sig = Signal("api.requests", "shop", "traffic", values, values, "count", weekend=weekend)
    p, usual = tail(sig, 30)
    sat, sun, mon, sat2 = (d * 24 + 12 for d in (5, 6, 7, 12))
    assert np.isnan(p[sat]) and np.isnan(p[sun]) and np.isnan(usual[sat])
    assert (usual[mon], usual[sat2]) == (50.0, 200.0) and p[mon] == p[sat2] == 1.0
    assert list(baseline_days(values, np.array([sat, sun, mon, sat2]), weekend)) == [0, 0, 7, 2]
    # without the kinds of day, the first Saturday would be a surge against Tue .. Fri
    p_all, usual_all = tail(dataclasses.replace(sig, weekend=None), 30)
    assert usual_all[sat] == 50.0 and p_all[sat] < 1e-9


def test_a_weekend_count_takes_its_prior_from_weekend_days_too():
    # Carts abandoned at noon, one sample a day: 10 on weekdays, 40 at the weekend, from
    # Mon 9 Nov; Saturday 21 Nov has 40, as every Saturday. Its baseline is Sat 14 and
    # Sun 15 (80 in 2 hours); the count's prior (worth PRIOR_HOURS = 4 hours) comes from
    # the same hour of the same kind of day: (80 + 0.5) / (2 + 1) = 26.83. So X ~ negative
    # binomial with shape 80 + 4 * 26.83 = 187.33 and p = 6 / 7, mean 31.2: P(X >= 40)
    # = 0.089, nothing unusual. With the prior from every day (the 10 weekdays' 10s,
    # the weekend's 40s screened out as unusual among them: (100 + 0.5) / 11 = 9.14),
    # the mean would be 19.4 and P(X >= 40) = 1.3e-4: an ordinary Saturday 700 times as
    # unusual as it is.
    hours = pd.date_range("2026-11-09", periods=13 * 24, freq="h", tz=UTC)
    noon = np.asarray(hours.hour == 12)
    values = np.where(noon, np.where(hours.day_of_week >= 5, 40.0, 10.0), np.nan)
    weekend = np.asarray(hours.day_of_week >= 5)
    sig = Signal("carts.abandoned", "shop", "count", values, values, "count",
                 weekend=weekend)
    sat2 = 12 * 24 + 12
    p, usual = tail(sig, 1, at=np.array([sat2]))
    shape = 80 + 4 * (80.5 / 3)
    assert usual[sat2] == pytest.approx(shape / 6)
    assert p[sat2] == pytest.approx(stats.nbinom.sf(39, shape, 6 / 7))
    assert p[sat2] == pytest.approx(0.0894, abs=0.0001)
    every_day = 80 + 4 * (100.5 / 11)
    assert stats.nbinom.sf(39, every_day, 6 / 7) == pytest.approx(1.26e-4, rel=0.01)


def test_a_host_that_moved_to_repeated_bursts_is_one_finding_not_one_per_burst():
    # An idle host (5 %) from 19 Oct; in W46, 6 hours at 50 % scattered over Tue-Sun (too
    # few to move its median: no level shift). Before: 6 back-end anomalies, one per burst.
    # Now one, from the first burst to the end of the last, its worst hour's reading and
    # how many times; a single burst elsewhere stays one anomaly of its own.
    bursts = ["2026-11-10 06:00", "2026-11-11 14:00", "2026-11-12 20:00",
              "2026-11-13 09:00", "2026-11-14 02:00", "2026-11-15 18:00"]
    rows = cpu_rows({"worker": 5.0, "api": 20.0},
                    {**dict.fromkeys(bursts, 50.0)}, host=True)
    once = rows["service_name"].eq("api") & rows["timestamp"].dt.floor("h").eq(
        pd.Timestamp("2026-11-12 10:00", tz=UTC))
    rows.loc[once, "cpu_pct"] = 60.0
    rows.loc[rows["service_name"].eq("api") & rows["cpu_pct"].eq(50.0), "cpu_pct"] = 20.0
    found = detect({"system_metrics": rows}, W46, Thresholds())
    [api, worker] = sorted(found.back_end, key=lambda a: a.entity)
    assert (worker.entity, worker.start, worker.end) == (
        "worker", pd.Timestamp(bursts[0], tz=UTC), pd.Timestamp(bursts[-1], tz=UTC) + HOUR)
    assert "CPU on worker-1 rose to 50.0 % (usually 5.0 %)" in worker.text
    assert "again and again: 6 times since Tue 10 Nov 06:00, one change, not 6 outages" \
        in worker.text
    assert (api.start, api.end) == (pd.Timestamp("2026-11-12 10:00", tz=UTC),
                                    pd.Timestamp("2026-11-12 11:00", tz=UTC))
    assert "again and again" not in api.text and found.shifts == ()
