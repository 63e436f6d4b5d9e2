"""Detection on real monitoring series with labelled anomaly windows (issue 28, point 6).

Three series of Numenta's Anomaly Benchmark (tests/fixtures/README.md: source, licence,
conversion), each a data folder as a shop exports it: an autoscaling cluster's CPU, an
autoscaling group's CloudWatch metric read as CPU, and taxi passengers as requests.
Each ISO week the data touches is judged as a weekly report judges it; a labelled window
is found when a finding overlaps it, and a finding that overlaps no window is a false
alarm. Hours before a series starts and after it ends are hours without data: nothing
is found there.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from reporting.compute.incidents.detect import detect
from reporting.core import rollups
from reporting.core.config import Thresholds
from reporting.core.periods import resolve

from .conftest import UTC
from .rows import load_all

FIXTURE = Path(__file__).parent / "fixtures" / "labelled"
LABELS = json.loads((FIXTURE / "labels.json").read_text())
HOUR = pd.Timedelta(hours=1)


def findings(folder: str) -> tuple[list[tuple[pd.Timestamp, pd.Timestamp, str]],
                                   tuple[pd.Timestamp, pd.Timestamp]]:
    """(start, end, text) of every finding of every ISO week the folder's data touches,
    and the data's first and last hour. A level shift lasts to its week's end."""
    frames = load_all(FIXTURE / folder, UTC).frames
    source = LABELS[folder]["source"]
    times = frames[source]["timestamp"]
    first, last = times.min().floor("h"), times.max().floor("h")
    built = rollups.from_frames(frames, UTC)
    out = []
    monday = (first - pd.Timedelta(days=first.day_of_week)).normalize()
    while monday <= last:
        year, week, _ = monday.isocalendar()
        period = resolve(f"{year}-W{week:02d}", UTC, None)
        found = detect(built, period, Thresholds())
        out += [(f.start, f.end, f.text) for f in
                (*found.incidents, *found.back_end, *found.user_felt)]
        out += [(s.start, period.end, s.text) for s in found.shifts]
        monday += pd.Timedelta(weeks=1)
    return out, (first, last)


def scored(folder: str) -> dict:
    """Labelled windows found, findings outside every window, findings in hours without
    data (before the first hour or after the last)."""
    got, (first, last) = findings(folder)
    windows = [(pd.Timestamp(a, tz=UTC), pd.Timestamp(b, tz=UTC))
               for a, b in LABELS[folder]["windows"]]
    def inside(f, w):
        return f[0] < w[1] and f[1] > w[0]
    return {"windows": len(windows),
            "found": sum(any(inside(f, w) for f in got) for w in windows),
            "false": [f[2] for f in got if not any(inside(f, w) for w in windows)],
            "no_data": [f[2] for f in got if f[0] < first or f[0] > last
                        or (f[1] > last + HOUR and "level shift" not in f[2])]}


@pytest.fixture(scope="module")
def scores():
    return {folder: scored(folder) for folder in LABELS}


def test_fixture_is_what_its_readme_says():
    for folder, label in LABELS.items():
        frames = load_all(FIXTURE / folder, UTC).frames
        times = frames[label["source"]]["timestamp"]
        assert times.min() >= pd.Timestamp(label["first"], tz=UTC)
        assert times.max() <= pd.Timestamp(label["last"], tz=UTC) + pd.Timedelta(minutes=30)
        assert times.max() - times.min() <= pd.Timedelta(days=14)
        assert label["windows"], folder


def test_nothing_is_found_in_hours_without_data(scores):
    assert {f: s["no_data"] for f, s in scores.items()} == {f: [] for f in scores}


# Measured on main at b6a22a8 (before issue 28's detector work), the floors and ceilings
# below: 2 of the 5 labelled windows found, 1 finding outside every window.
# - asg_cpu: its one window (the misconfigured cluster, 10-15 Jul) found by a CPU rise on
#   Mon 14 Jul 16:00-19:00 (78.9 % against a usual 40.2 %).
# - grok_asg: none of its 3 windows found, nothing else reported.
# - nyc_taxi: its window (the marathon, 30 Oct-3 Nov) "found" by a fall of requests on
#   Sunday 2 Nov 06:00-09:00, the same Sunday-morning dip that is the one false alarm a
#   week earlier (26 Oct): under two weeks of data the baseline is the same hour of the
#   preceding days, weekdays included.
# Now (issue 28: both sides, baselines of days, traffic judged as a count too, a baseline
# of days that keeps a weekend hour to weekend days): 3 of 5 windows (grok_asg's first found
# by a CPU rise), 1 false alarm: nyc_taxi's Thursday night (Fri 24 Oct 00:00-05:00, 96
# passengers an hour against 52 on the 3 nights before it; there is no earlier Thursday).
# Now (traffic on a log scale; each robust scale at least how far the signal's values
# usually lie from their baseline, learnt from the history before the judged week, its
# heavy tails included): 2 of 5 windows, no false alarm. nyc_taxi's window was "found" by
# Sat 1 Nov 05:00-07:00 (137 passengers against 80, x 1.7), as large a move as the false
# alarm's (x 1.85); the series' hours lie that far from a baseline of days as a rule (the
# scale learnt there: a MAD of 0.16 in ln), so neither is reported; the window's least
# likely hour (Sun 2 Nov 23:00, 232 against 520) has a chance of 6e-4, far above the bound.
FOUND_AT_LEAST = {"asg_cpu": 1, "grok_asg": 1, "nyc_taxi": 0}
FALSE_AT_MOST = {"asg_cpu": 0, "grok_asg": 0, "nyc_taxi": 0}


def test_recall_and_false_alarms_on_the_labelled_windows(scores):
    """Recall 2 of 5 windows and no false alarm today: a change that finds fewer windows
    in a series, or reports more outside them, fails here (and should say why)."""
    for folder, s in scores.items():
        print(f"{folder}: {s['found']} of {s['windows']} windows found, "
              f"{len(s['false'])} false: {s['false']}")
    assert {f: s["found"] >= FOUND_AT_LEAST[f] for f, s in scores.items()} == \
        {f: True for f in scores}
    assert {f: len(s["false"]) <= FALSE_AT_MOST[f] for f, s in scores.items()} == \
        {f: True for f in scores}
    assert sum(s["windows"] for s in scores.values()) == 5
