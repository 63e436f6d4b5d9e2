"""The shipped sample (data/): what `make simulate` writes, small, and its newest week
holds the one injected incident while the weeks before it are quiet."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from reporting.cli import main
from reporting.compute.incidents.detect import detect
from reporting.core.config import Thresholds
from reporting.core.periods import resolve

from .conftest import UTC
from .rows import load_all

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


def make_simulate_args() -> list[str]:
    """The arguments of `reporting simulate` in the Makefile's simulate target."""
    recipe = re.search(r"^simulate:.*\n\t((?:.*\\\n)*.+)", (ROOT / "Makefile").read_text(),
                       re.M).group(1)
    words = shlex.split(recipe.replace("\\\n", " "))
    return words[words.index("simulate") + 1:]


def test_make_simulate_writes_exactly_the_shipped_sample(tmp_path):
    args = make_simulate_args()
    assert args[args.index("--out") + 1] == "data"
    args[args.index("--out") + 1] = str(tmp_path)
    r = CliRunner().invoke(main, ["simulate", *args])
    assert r.exit_code == 0, r.output
    shipped = sorted(p.name for p in DATA.glob("*.parquet"))
    assert sorted(p.name for p in tmp_path.glob("*.parquet")) == shipped and len(shipped) == 10
    for name in shipped:
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / name),
                                      pd.read_parquet(DATA / name), obj=name)
    assert (json.loads((tmp_path / "simulation.json").read_text())
            == json.loads((DATA / "simulation.json").read_text()))


def test_the_sample_is_four_weeks_of_parquet_well_under_10_mb():
    size = sum(p.stat().st_size for p in DATA.iterdir())
    assert size < 6 * 2**20, size
    assert not list(DATA.glob("*.csv"))
    meta = json.loads((DATA / "simulation.json").read_text())
    assert (meta["weeks"], meta["start"]) == (4, "2026-10-19T00:00:00+00:00")


@pytest.fixture(scope="module")
def frames():
    return load_all(DATA, UTC).frames


def test_the_newest_week_holds_the_one_injected_incident(frames):
    [injected] = json.loads((DATA / "simulation.json").read_text())["incidents"]
    assert (injected["start"], injected["end"]) == ("2026-11-11T10:00:00+00:00",
                                                    "2026-11-11T12:00:00+00:00")
    found = detect(frames, resolve("2026-W46", UTC, None), Thresholds())
    [inc] = found.incidents
    assert abs(inc.start - pd.Timestamp(injected["start"])) <= pd.Timedelta(hours=1)
    assert abs(inc.end - pd.Timestamp(injected["end"])) <= pd.Timedelta(hours=1)
    assert inc.services[0] == "payment-api"
    assert inc.text.startswith("Wed 11 Nov 10:00–12:00: payment-api 5xx at")
    assert inc.impact.tickets == pytest.approx(injected["extra_tickets"], rel=0.2)


@pytest.mark.parametrize("week", ["2026-W44", "2026-W45"])
def test_the_weeks_before_it_are_quiet(frames, week):
    found = detect(frames, resolve(week, UTC, None), Thresholds())
    assert found.incidents == () and found.user_felt == () and found.shifts == ()
