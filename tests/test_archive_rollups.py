"""Archived rollups (issue 15, point 5): each build keeps its period's rollup tables, and a
later build whose inputs no longer hold the days before its period reads them back."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from reporting.build import build
from reporting.compute import context
from reporting.compute.kpis import api as kpis_api
from reporting.core import periods, rollups
from reporting.core.config import Config, Thresholds
from reporting.core.contracts import HIGH_VOLUME, SPECS
from reporting.core.periods import window_for
from reporting.ingest.engine import load
from reporting.simulate import simulate
from reporting.store import archive
from reporting.store.archive import Archive
from reporting.store.files import swap_in

UTC = ZoneInfo("UTC")
W45 = {"id": "2026-W45", "start": "2026-11-02T00:00:00+00:00",
       "end": "2026-11-09T00:00:00+00:00"}


def api(*rows: tuple[str, str, int, float]) -> rollups.Rollup:
    """An api_logs rollup of (time, endpoint, status, ms) rows of service web."""
    frame = pd.DataFrame(rows, columns=["timestamp", "endpoint", "status_code",
                                        "response_time_ms"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["service_name"] = pd.Categorical(["web"] * len(frame))
    frame["endpoint"] = frame["endpoint"].astype("category")
    return rollups.reduce(frame, "api_logs", UTC)


def record(out: Path, period: dict, rollup: rollups.Rollup | None, built_at: str,
           **extra) -> None:
    with Archive(out) as store:
        store.record_build(period=period, folder=out / "reports" / period["id"], files={},
                           kpis={}, version="t", config_hash="x", inputs={}, seconds=1.0,
                           built_at=built_at, rollups={"api_logs": rollup} if rollup else {},
                           **extra)


def requests(rollup: rollups.Rollup) -> list[tuple]:
    """The requests table as sorted (slot as UTC time, endpoint, status, n, ms sum)."""
    t = rollup.tables["requests"]
    return sorted((str(pd.Timestamp(int(s) * 60, unit="s")), str(e), int(c), int(n), float(ms))
                  for s, e, c, n, ms in t[["slot", "endpoint", "status_code", "n",
                                           "response_time_ms_sum"]].itertuples(index=False))


ARCHIVED = api(("2026-11-02 10:15", "/a", 200, 100.0), ("2026-11-02 10:45", "/a", 500, 300.0),
               ("2026-11-03 09:00", "/b", 200, 50.0),
               ("2026-11-09 08:00", "/a", 200, 7.0))        # after the period: not archived


def test_a_build_archives_its_rollups_cut_to_its_period(tmp_path):
    record(tmp_path, W45, ARCHIVED, "2026-11-10T00:00:00+00:00")
    folder = tmp_path / "rollups" / "2026-W45"
    assert sorted(p.name for p in folder.iterdir()) == ["api_logs", "meta.json"]
    assert sorted(p.name for p in (folder / "api_logs").iterdir()) == \
        sorted(f"{t}.parquet" for t in rollups.TABLES["api_logs"])
    # nothing of the config: the period, the zone and slot length the keys mean, the build
    meta = json.loads((folder / "meta.json").read_text())
    assert meta == {"period": "2026-W45", "start": W45["start"], "end": W45["end"],
                    "built_at": "2026-11-10T00:00:00+00:00", "tz": "UTC", "minutes": 60,
                    "sources": {"api_logs": sorted(rollups.TABLES["api_logs"])}}
    with Archive(tmp_path) as store:
        [a] = store.archived_rollups(pd.Timestamp("2026-10-01", tz="UTC"),
                                     pd.Timestamp("2026-12-01", tz="UTC"), UTC, 60)
        tables = a.read("api_logs")
    assert (a.period_id, a.first, a.end) == ("2026-W45", 20759, 20766)   # 2 Nov .. 9 Nov
    got = rollups.Rollup("api_logs", tables, UTC, 60)
    assert got.count == 3 and requests(got) == [
        ("2026-11-02 10:00:00", "/a", 200, 1, 100.0), ("2026-11-02 10:00:00", "/a", 500, 1, 300.0),
        ("2026-11-03 09:00:00", "/b", 200, 1, 50.0)]
    assert set(tables["latency"]["day"]) == {20759, 20760}


def test_missing_days_come_from_the_archive_and_held_days_only_from_the_inputs(tmp_path):
    record(tmp_path, W45, ARCHIVED, "2026-11-10T00:00:00+00:00")
    # building W46: the inputs hold 3 Nov (one row) and W46, not 2 Nov
    inputs = api(("2026-11-03 12:00", "/a", 200, 80.0), ("2026-11-10 08:00", "/a", 200, 20.0),
                 ("2026-11-10 08:30", "/c", 200, 40.0))
    p = periods.week(2026, 46, UTC)
    with Archive(tmp_path) as store:
        frames = context.with_archived_rollups(store, {"api_logs": inputs, "carts": "x"}, p)
    merged = frames["api_logs"]
    assert frames["carts"] == "x"
    # 2 Nov from the archive (2 rows), 3 Nov only from the inputs (the archive's /b row is
    # not added to it), W46 from the inputs: 5 rows, none twice
    assert merged.count == 5 and requests(merged) == [
        ("2026-11-02 10:00:00", "/a", 200, 1, 100.0), ("2026-11-02 10:00:00", "/a", 500, 1, 300.0),
        ("2026-11-03 12:00:00", "/a", 200, 1, 80.0), ("2026-11-10 08:00:00", "/a", 200, 1, 20.0),
        ("2026-11-10 08:00:00", "/c", 200, 1, 40.0)]
    latency = merged.tables["latency"]
    assert sorted(zip(latency["day"], latency["response_time_ms"], latency["n"])) == [
        (20759, 100.0, 1), (20759, 300.0, 1), (20760, 80.0, 1), (20767, 20.0, 1),
        (20767, 40.0, 1)]
    # text keys stay categorical, with the archive's categories added
    assert isinstance(merged.tables["requests"]["endpoint"].dtype, pd.CategoricalDtype)


def test_the_rolling_error_budget_adds_the_archived_days_to_the_inputs(tmp_path):
    """Issue 31: a W46 build whose inputs hold W46 only takes the rolling window's W45 from
    the archived rollups (14-day window, SLO 80 %: 20 % of requests may fail)."""
    week45 = [(f"2026-11-{d:02d} 10:00", "/a", 500 if d == 2 else 200, 10.0)
              for d in range(2, 9)]
    record(tmp_path, W45, api(*week45, ("2026-11-04 11:00", "/a", 200, 10.0)),
           "2026-11-10T00:00:00+00:00")
    inputs = api(*[(f"2026-11-{d:02d} 10:00", "/a", 500 if d == 9 else 200, 10.0)
                   for d in range(9, 16)])
    p = periods.week(2026, 46, UTC)
    t = Thresholds(slo_window_days=14, availability_slo=0.8)
    with Archive(tmp_path) as store:
        frames = context.with_archived_rollups(store, {"api_logs": inputs}, p, 14)
    s = kpis_api.compute(frames, p, t)
    # 2-15 Nov: W45 from the archive (8 requests, 1 error) and W46 from the inputs (7, 1):
    # 2 errors of 15 against 20 % allowed, burn 2/3, a third left; every day has requests
    assert s.breakdowns["rolling_budget"]["days_with_data"] == 14
    assert s.kpi("api.burn_rate_rolling").value == pytest.approx(2 / 3)
    assert s.kpi("api.budget_remaining_rolling").value == pytest.approx(1 / 3)
    assert s.kpi("api.budget_remaining_rolling").status == "good"
    # the inputs alone cover 7 of the 14 days: shown, not judged
    alone = kpis_api.compute({"api_logs": inputs}, p, t)
    assert alone.kpi("api.burn_rate_rolling").value == pytest.approx((1 / 7) / 0.2)
    assert alone.kpi("api.burn_rate_rolling").status is None
    assert "only 7 of them" in alone.message


def test_a_day_two_archived_periods_hold_comes_from_the_newest_build(tmp_path):
    record(tmp_path, W45, ARCHIVED, "2026-11-10T00:00:00+00:00")
    later = api(("2026-11-02 11:00", "/z", 200, 9.0))
    record(tmp_path, {"id": "2026-11-01_2026-11-02", "start": "2026-11-01T00:00:00+00:00",
                      "end": "2026-11-03T00:00:00+00:00"}, later, "2026-11-11T00:00:00+00:00")
    p = periods.week(2026, 46, UTC)
    with Archive(tmp_path) as store:
        merged = context.with_archived_rollups(store, {"api_logs": api(
            ("2026-11-10 08:00", "/a", 200, 20.0))}, p)["api_logs"]
    # 2 Nov from the range (built later), 3 Nov from W45
    assert [r[:2] for r in requests(merged)] == [
        ("2026-11-02 11:00:00", "/z"), ("2026-11-03 09:00:00", "/b"),
        ("2026-11-10 08:00:00", "/a")]


def test_archived_rollups_of_another_zone_or_an_older_build_are_not_read(tmp_path):
    record(tmp_path, W45, ARCHIVED, "2026-11-10T00:00:00+00:00")
    with Archive(tmp_path) as store:
        start, end = pd.Timestamp("2026-10-01", tz="UTC"), pd.Timestamp("2026-12-01", tz="UTC")
        assert store.archived_rollups(start, end, ZoneInfo("Asia/Kolkata"), 15) == []
        # a later build of the period that kept no rollups: the old ones no longer match
        store.record_build(period=W45, folder=tmp_path / "reports" / "2026-W45", files={},
                           kpis={}, version="t", config_hash="x", inputs={}, seconds=1.0,
                           built_at="2026-11-12T00:00:00+00:00")
        assert store.archived_rollups(start, end, UTC, 60) == []


def test_an_unreadable_archived_table_is_skipped_with_a_warning(tmp_path, caplog):
    record(tmp_path, W45, ARCHIVED, "2026-11-10T00:00:00+00:00")
    (tmp_path / "rollups/2026-W45/api_logs/latency.parquet").write_bytes(b"not parquet")
    inputs = api(("2026-11-10 08:00", "/a", 200, 20.0))
    with Archive(tmp_path) as store:
        merged = context.with_archived_rollups(store, {"api_logs": inputs},
                                               periods.week(2026, 46, UTC))["api_logs"]
    assert merged is inputs and "2026-W45 (api_logs) are not readable" in caplog.text


def test_a_rebuilt_period_replaces_its_rollups(tmp_path):
    record(tmp_path, W45, ARCHIVED, "2026-11-10T00:00:00+00:00")
    record(tmp_path, W45, api(("2026-11-04 10:00", "/new", 200, 1.0)),
           "2026-11-11T00:00:00+00:00")
    with Archive(tmp_path) as store:
        [a] = store.archived_rollups(pd.Timestamp("2026-10-01", tz="UTC"),
                                     pd.Timestamp("2026-12-01", tz="UTC"), UTC, 60)
        got = rollups.Rollup("api_logs", a.read("api_logs"), UTC, 60)
    assert [r[:2] for r in requests(got)] == [("2026-11-04 10:00:00", "/new")]
    assert sorted(p.name for p in (tmp_path / "rollups").iterdir()) == ["2026-W45"]


@pytest.mark.parametrize("fails", ["kpis", "swap"])
def test_a_failed_build_leaves_no_rollups_and_the_earlier_ones_as_they_were(
        tmp_path, monkeypatch, fails):
    """`kpis`: the transaction fails before the rollups are swapped in; `swap`: after (the
    report folder's swap fails): either way the rows roll back and the folder with them."""
    record(tmp_path, W45, ARCHIVED, "2026-11-10T00:00:00+00:00")
    original = swap_in

    def broken(staging: Path, final: Path):
        if final.parent.name == "reports":
            raise OSError("disk gone")
        return original(staging, final)

    if fails == "kpis":
        monkeypatch.setattr(archive, "_write_kpis", lambda *a: 1 / 0)
    else:
        monkeypatch.setattr(archive, "swap_in", broken)
    (tmp_path / "stage").mkdir()
    for period, built_at in ((W45, "2026-11-11T00:00:00+00:00"),
                             ({**W45, "id": "2026-W44", "start": "2026-10-26T00:00:00+00:00",
                               "end": "2026-11-02T00:00:00+00:00"}, "2026-11-11T00:00:00+00:00")):
        with pytest.raises((ZeroDivisionError, OSError)):
            record(tmp_path, period, api(("2026-11-04 10:00", "/new", 200, 1.0)), built_at,
                   final=tmp_path / "reports" / period["id"])
    # W44 was never built: no rollups; W45 keeps its earlier ones; no staging left
    assert sorted(p.name for p in (tmp_path / "rollups").iterdir()) == ["2026-W45"]
    with Archive(tmp_path) as store:
        [a] = store.archived_rollups(pd.Timestamp("2026-10-01", tz="UTC"),
                                     pd.Timestamp("2026-12-01", tz="UTC"), UTC, 60)
        assert requests(rollups.Rollup("api_logs", a.read("api_logs"), UTC, 60))[0][1] == "/a"


def test_prune_removes_a_period_with_its_rollups(tmp_path):
    record(tmp_path, W45, ARCHIVED, "2026-11-10T00:00:00+00:00")
    record(tmp_path, {"id": "2026-W46", "start": "2026-11-09T00:00:00+00:00",
                      "end": "2026-11-16T00:00:00+00:00"}, ARCHIVED, "2026-11-17T00:00:00+00:00")
    with Archive(tmp_path) as store:
        assert store.prune(1) == ["2026-W45"]
    assert [p.name for p in (tmp_path / "rollups").iterdir()] == ["2026-W46"]


# --- end to end: week A built from data holding A and B, then B from B's rows only --------

def two_weeks(root: Path) -> tuple[Path, Path]:
    """A simulated W43 and W44 (the outage in W44), and the same data without W43."""
    both, alone = root / "both", root / "alone"
    simulate(both, weeks=2, scale="tiny", seed=5, incident_weeks=[2])
    alone.mkdir()
    start = periods.week(2026, 44, UTC).start
    for f in both.glob("*.csv"):
        rows = pd.read_csv(f)
        times = pd.to_datetime(rows[SPECS[f.stem].time], utc=True, format="mixed")
        rows[times >= start].to_csv(alone / f.name, index=False)
    return both, alone


@pytest.fixture(scope="module")
def fortnight(tmp_path_factory):
    """(data holding W43 and W44, data holding only W44, output where W43 was built from
    the first)."""
    root = tmp_path_factory.mktemp("rollups")
    (both, alone), out = two_weeks(root), root / "out"
    config = Config(public_url="https://reports.internal.example/secret-path")
    build(config, period="2026-W43", audiences=["it"], data_dir=both, output_dir=out,
          fmt="html")
    return config, both, alone, out


def loaded(config: Config, data: Path) -> dict:
    return load.load(config, data, window_for(periods.week(2026, 44, config.tz))).frames


def comparable(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    text = {c: object for c in frame if isinstance(frame[c].dtype, pd.CategoricalDtype)}
    return frame.astype(text).sort_values(keys).reset_index(drop=True)


def test_the_archived_rollups_fill_the_week_the_inputs_no_longer_hold(fortnight):
    """Every table of every high-volume source over W43-W44, from W44's rows and W43's
    archived rollups, equals the table from the rows of both weeks: the KPIs, previous
    values and incident baselines computed from the tables are then those of the full
    data."""
    config, both, alone, out = fortnight
    p = periods.week(2026, 44, UTC)
    full, partial = loaded(config, both), loaded(config, alone)
    assert partial["api_logs"].span[0] >= p.start            # the inputs lack W43
    with Archive(out) as store:
        merged = context.with_archived_rollups(store, partial, p)
    for source in HIGH_VOLUME:
        for name, spec in rollups.TABLES[source].items():
            keys = list(spec.keys)
            pd.testing.assert_frame_equal(
                comparable(merged[source].table(name, p.previous.start, p.end), keys),
                comparable(full[source].table(name, p.previous.start, p.end), keys))
    hourly = merged["api_logs"].table("latency_hourly", p.previous.start, p.start)
    assert hourly["n"].sum() == full["api_logs"].table("times", p.previous.start,
                                                       p.start)["n"].sum() > 0


def test_a_build_from_the_later_week_alone_archives_its_own_rollups(fortnight):
    config, _, alone, out = fortnight
    target = out.parent / "out-b"
    shutil.copytree(out, target)
    build(config, period="2026-W44", audiences=["it"], data_dir=alone, output_dir=target,
          fmt="html")
    with Archive(target) as store:
        found = store.archived_rollups(pd.Timestamp("2026-10-01", tz="UTC"),
                                       pd.Timestamp("2026-12-01", tz="UTC"), UTC, 60)
    assert [a.period_id for a in found] == ["2026-W44", "2026-W43"]
    w44 = rollups.Rollup("api_logs", found[0].read("api_logs"), UTC, 60)
    assert w44.span[0] >= periods.week(2026, 44, UTC).start     # its own week only
    # nothing of the config (public_url, data folder) in the archived rollups
    for f in (target / "rollups").rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert b"internal.example" not in data and str(alone).encode() not in data
