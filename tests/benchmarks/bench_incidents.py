"""Incident detection on the simulator's suite of fault kinds, over 20 seeds.

Each seed simulates ten weeks (`simulate.suite_faults`): two of history, two quiet, one a
week of latency only, an evening error burst, a night outage, a traffic drop, the payment
outage, and a level shift with a memory creep. Printed and judged:
- recall: the incident found with its start and end within an hour and the right
  service first (target >= 95 %);
- false incidents per quiet week (target <= 1 per 20), and any other incident that
  matches no fault in the other weeks;
- impact error: extra abandoned value and tickets found vs injected (target within 20 %);
- the level shift found with its start within 3 hours; the memory creep no incident.

The second suite (`measure_prod`, issue 28) holds the kinds production series show and
the simulator does not: falls and surges of requests, one-hour spikes of requests and of
p95 latency, CPU falling on a busy host and rising on an idle one, a ramp, level shifts
of CPU and latency, on 10-14 days of data (so under two weeks of baseline), and the data
cut mid-week. Printed: recall per kind with how many findings each fault gave (a change
that lasts should be one), false findings per quiet week split into rises and falls,
those beside the faults, and any finding in the hours after the data ends. Targets:
recall >= 95 % for every kind, at most 1 false finding per 20 quiet weeks, none after the
end.

Run: `make bench`, or `python tests/benchmarks/bench_incidents.py [sim|prod] [seeds...]`
(`--seeds 5`: the first 5 seeds only; default both suites over seeds 1-20).
"""
from __future__ import annotations

import json
import sys
import tempfile
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from scipy import stats

from reporting.compute.incidents.detect import detect
from reporting.core import rollups
from reporting.core.config import Thresholds
from reporting.core.periods import resolve
from reporting.simulate import simulate, suite_faults
from tests.rows import load_all

UTC = ZoneInfo("UTC")
HOUR = pd.Timedelta(hours=1)
INCIDENT_KINDS = ("latency", "errors", "night", "traffic", "outage")
QUIET_WEEKS = (2, 8)
START = date(2026, 8, 3)    # a Monday: ten weeks that end before today (no future rows)


def week_id(t0: pd.Timestamp, week: int) -> str:
    year, number, _ = (t0 + pd.Timedelta(weeks=week)).isocalendar()
    return f"{year}-W{number:02d}"


def run_seed(seed: int) -> dict:
    t0 = pd.Timestamp(START, tz="UTC")
    faults = suite_faults(t0)
    with tempfile.TemporaryDirectory() as tmp:
        simulate(Path(tmp), weeks=10, scale="small", seed=seed, fmt="parquet", faults=faults,
                 start=START)
        injected = json.loads((Path(tmp) / "simulation.json").read_text())["incidents"]
        frames = rollups.from_frames(load_all(Path(tmp), UTC).frames, UTC)   # as a build
    out = {"found": {}, "false": {"quiet": 0, "other": 0}, "impact": [], "shift": None,
           "creep_incidents": 0, "details": []}
    for week in range(2, 10):
        found = detect(frames, resolve(week_id(t0, week), UTC, None), Thresholds())
        mine = [(f, meta) for f, meta in zip(faults, injected)
                if f.start < t0 + pd.Timedelta(weeks=week + 1) and
                f.end > t0 + pd.Timedelta(weeks=week)]
        matched = set()
        for f, meta in mine:
            if f.kind not in INCIDENT_KINDS:
                continue
            hit = next((i for i in found.incidents
                        if abs(i.start - f.start) <= HOUR and abs(i.end - f.end) <= HOUR
                        and i.services[0] == f.service), None)
            out["found"][f.kind] = hit is not None
            if hit is None:
                out["details"].append(f"seed {seed} missed {f.kind}: "
                                      f"{[i.text for i in found.incidents]}")
                continue
            matched.add(id(hit))
            for key, value in (("abandoned_value", meta["extra_abandoned_value"]),
                               ("tickets", meta["extra_tickets"])):
                if value > 0:
                    got, se = getattr(hit.impact, key), getattr(hit.impact, key + "_se")
                    out["impact"].append((f.kind, key, got, value, se))
                    if abs(got - value) > 0.2 * value:
                        out["details"].append(
                            f"seed {seed} {f.kind} {key}: found {got} (se {se}) of {value} "
                            f"injected ({hit.start:%a %H:%M}-{hit.end:%H:%M})")
        extra = [i for i in found.incidents if id(i) not in matched]
        out["false"]["quiet" if week in QUIET_WEEKS else "other"] += len(extra)
        out["details"] += [f"seed {seed} {week_id(t0, week)} false: {i.text}" for i in extra]
        if week == 9:
            shift = next((s for s in found.shifts if s.entity == "recommendation-api"
                          and s.name == "api.p95_ms"), None)
            want = next(f for f in faults if f.kind == "level_shift").start
            out["shift"] = None if shift is None else abs(shift.start - want) / HOUR
            if shift is not None and out["shift"] > 3:
                out["details"].append(f"seed {seed} level shift from {shift.start}, "
                                      f"injected {want}")
            out["creep_incidents"] = sum("inventory-service" in i.services
                                         for i in found.incidents)
    return out


def measure(seeds: list[int]) -> dict:
    runs = [run_seed(s) for s in seeds]
    kinds = {k: sum(r["found"].get(k, False) for r in runs) for k in INCIDENT_KINDS}
    total = len(runs) * len(INCIDENT_KINDS)
    impacts = [i for r in runs for i in r["impact"]]
    errors = [abs(got - want) / want for _, _, got, want, _ in impacts]
    # counts are whole: half a ticket of rounding is no error of the estimate
    covered = sum(abs(got - want) <= 2 * se + (0.5 if key != "abandoned_value" else 0)
                  for _, key, got, want, se in impacts)
    # how many misses of 20 % the stated noise alone makes likely (normal approximation)
    likely = sum(2 * stats.norm.sf(0.2 * want / se) if se > 0 else 0.0
                 for _, _, _, want, se in impacts)
    shifts = [r["shift"] for r in runs]
    return {
        "seeds": len(seeds), "recall": sum(kinds.values()) / total, "by_kind": kinds,
        "quiet_weeks": len(runs) * len(QUIET_WEEKS),
        "false_quiet": sum(r["false"]["quiet"] for r in runs),
        "false_other": sum(r["false"]["other"] for r in runs),
        "impact_max_error": max(errors, default=0.0),
        "impact_median_error": float(pd.Series(errors).median()) if errors else 0.0,
        "impact_within_20": sum(e <= 0.2 for e in errors), "impact_count": len(errors),
        "impact_covered": covered, "impact_likely_misses": likely,
        "shift_found": sum(s is not None for s in shifts),
        "shift_within_3h": sum(s is not None and s <= 3 for s in shifts),
        "shift_start_max_h": max((s for s in shifts if s is not None), default=None),
        "creep_incidents": sum(r["creep_incidents"] for r in runs),
        "details": [d for r in runs for d in r["details"]],
    }


def report(m: dict) -> None:
    print(f"\nincident suite over {m['seeds']} seeds")
    print(f"recall: {m['recall']:.1%} (target >= 95 %); found per kind: {m['by_kind']}")
    print(f"false incidents: {m['false_quiet']} in {m['quiet_weeks']} quiet weeks "
          f"({m['false_quiet'] / m['quiet_weeks'] * 20:.2f} per 20, target <= 1); "
          f"{m['false_other']} more in the weeks with a fault")
    print(f"impact error: median {m['impact_median_error']:.1%}, max "
          f"{m['impact_max_error']:.1%}; {m['impact_within_20']} of {m['impact_count']} "
          "within 20 %")
    print(f"impact uncertainty: the injected total within 2 standard errors in "
          f"{m['impact_covered']} of {m['impact_count']}; misses of 20 % that the ordinary "
          f"traffic's noise alone makes likely: {m['impact_likely_misses']:.1f}")
    print(f"level shift found in {m['shift_found']} of {m['seeds']} seeds, its start within "
          f"3 h in {m['shift_within_3h']}, off by at most {m['shift_start_max_h']} h; "
          "incidents from the memory creep: "
          f"{m['creep_incidents']}")
    for line in m["details"][:20]:
        print("  ", line)


def test_incident_suite():
    m = measure(list(range(1, 21)))
    report(m)
    assert m["recall"] >= 0.95
    assert m["false_quiet"] / m["quiet_weeks"] <= 1 / 20
    # Thin night-time impacts (a few carts, 4 tickets) miss 20 % by noise alone: the
    # window's ordinary carts at night are worth 508 +- 320 against an injected 450-7,000,
    # and a chance refund ticket is 25 % of 4 (see the README). The standard errors each
    # impact states must hold the injected total about as often as they claim (95 %).
    assert m["impact_within_20"] >= 0.95 * m["impact_count"]
    assert m["impact_covered"] >= 0.9 * m["impact_count"]
    assert m["impact_median_error"] <= 0.05
    assert m["shift_found"] == m["seeds"] and m["creep_incidents"] == 0




# --- production-like kinds on short histories (issue 28, point 5) ----------------------
#
# Each seed writes two data folders as a shop's exports would come (api_logs and
# system_metrics, Parquet): one service or host per kind, 10-14 days of data that end
# with the judged ISO week. Traffic follows a daily curve (weekends at 80 %) with
# day-to-day swings of 10 % beyond Poisson; latencies are lognormal; CPU is a daily curve
# of the host's own level with noise. The fault folder holds one fault per kind on its own
# entity, at a random daytime hour from Tuesday to Saturday; the quiet folder the same
# entities without faults. A third folder of every entity ends on Wednesday 12:00: the
# hours after it are hours without data, never judged.

PROD_WEEK = date(2026, 9, 14)       # the judged ISO week's Monday (2026-W38)
API_PEAKS = {"surge-api": 765, "fall-api": 300, "spike-api": 200, "burst-api": 300,
             "shift-api": 200}      # requests at the daily peak
HOSTS = {"busy-host": 94.6, "idle-host": 6.0, "ramp-host": 20.0, "shift-host": 20.0,
         "bursty-host": 5.0}
# kind: (entity, signal prefix, hours, what it does)
PROD_KINDS = {
    "fall": ("fall-api", "api.requests", 3, "requests fall to 20 %"),
    "surge": ("surge-api", "api.requests", 3, "requests x 3.3 (765 -> 2,526 at the peak)"),
    "spike_requests": ("burst-api", "api.requests", 1, "one hour of requests x 4"),
    "spike_p95": ("spike-api", "api.p95_ms", 1, "one hour of latency x 1.69 (p95 48 -> 81 ms)"),
    "cpu_fall": ("busy-host", "system.cpu_pct", 4, "CPU 94.6 % -> 25 %"),
    "cpu_rise": ("idle-host", "system.cpu_pct", 6, "CPU 6 % -> 15 %"),
    "ramp": ("ramp-host", "system.cpu_pct", 0, "CPU rises 2 pp an hour for 24 h, stays"),
    "level_shift": ("shift-host", "system.cpu_pct", 0, "CPU 20 % -> 45 %, stays"),
    "level_shift_p95": ("shift-api", "api.p95_ms", 0, "latency x 1.4, stays"),
    "bursts": ("bursty-host", "system.cpu_pct", 0, "idle host, then 10 hours at ~50 %: once"),
}
CUT = pd.Timestamp(PROD_WEEK, tz="UTC") + pd.Timedelta(days=2, hours=12)   # Wed 12:00


def _curve(hours: pd.DatetimeIndex) -> np.ndarray:
    """Share of the daily peak per hour: low at night, late-morning and evening highs,
    weekends at 80 %."""
    h = hours.hour.to_numpy()
    daily = 0.15 + 0.85 * np.exp(-((h - 11) ** 2) / 18) + 0.7 * np.exp(-((h - 20) ** 2) / 8)
    return daily / daily.max() * np.where(hours.day_of_week.to_numpy() >= 5, 0.8, 1.0)


def prod_faults(rng: np.random.Generator) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    """Each kind's window: a random hour 08:00-19:00 from Tuesday to Saturday (ramps and
    level shifts, from Tuesday to Thursday, run to the end of the week)."""
    week = pd.Timestamp(PROD_WEEK, tz="UTC")
    end = week + pd.Timedelta(weeks=1)
    out = {}
    for kind, (_, _, length, _) in PROD_KINDS.items():
        last = 6 if length else 4       # a lasting change keeps at least two days
        start = week + pd.Timedelta(days=int(rng.integers(1, last)),
                                    hours=int(rng.integers(8, 20)))
        out[kind] = (start, start + pd.Timedelta(hours=length) if length else end)
    return out


def _api_rows(rng: np.random.Generator, hours: pd.DatetimeIndex,
              faults: dict[str, tuple[pd.Timestamp, pd.Timestamp]]) -> pd.DataFrame:
    """One row per request of each API_PEAKS service, its faults applied."""
    parts = []
    for service, peak in API_PEAKS.items():
        rate = peak * _curve(hours) * rng.lognormal(0, 0.1, len(hours))
        slow = np.ones(len(hours))
        for kind, (start, end) in faults.items():
            entity, signal, _, _ = PROD_KINDS[kind]
            inside = np.asarray((hours >= start) & (hours < end))
            if entity != service:
                continue
            if signal == "api.requests":
                rate[inside] *= {"fall": 0.2, "surge": 3.3, "spike_requests": 4.0}[kind]
            else:
                slow[inside] *= 81 / 48 if kind == "spike_p95" else 1.4
        counts = rng.poisson(rate)
        at = np.repeat(np.arange(len(hours)), counts)
        stamp = hours[at] + pd.to_timedelta(rng.uniform(0, 3600, len(at)), unit="s")
        # p95 of a lognormal with sigma 0.3 is 1.64 x its median: 48 ms from 29.3 ms
        ms = 29.3 * rng.lognormal(0, 0.3, len(at)) * slow[at]
        status = np.where(rng.random(len(at)) < 0.002, 500, 200)
        parts.append(pd.DataFrame({"timestamp": stamp, "endpoint": f"/{service}",
                                   "status_code": status, "response_time_ms": ms.round(1),
                                   "service_name": service, "method": "GET"}))
    return pd.concat(parts, ignore_index=True).sort_values("timestamp", kind="stable")


def _system_rows(rng: np.random.Generator, hours: pd.DatetimeIndex,
                 faults: dict[str, tuple[pd.Timestamp, pd.Timestamp]]) -> pd.DataFrame:
    """A sample every 5 minutes of each HOSTS host (its own service), faults applied."""
    times = pd.date_range(hours[0], hours[-1] + pd.Timedelta(minutes=55), freq="5min")
    curve = _curve(times.floor("h"))
    parts = []
    for host, level in HOSTS.items():
        noise = 1.0 if level < 10 else 2.0
        cpu = level + (5 * curve if level == 20 else 0) + rng.normal(0, noise, len(times))
        for kind, (start, end) in faults.items():
            entity, _, _, _ = PROD_KINDS[kind]
            if entity != host:
                continue
            inside = np.asarray((times >= start) & (times < end))
            since = np.asarray((times - start) / pd.Timedelta(hours=1))
            if kind == "cpu_fall":
                cpu[inside] = 25 + rng.normal(0, 2, inside.sum())
            elif kind == "cpu_rise":
                cpu[inside] = 15 + rng.normal(0, 1, inside.sum())
            elif kind == "bursts":      # 10 of the hours from the change on, at ~50 %
                hours_in = np.unique(times[inside].floor("h"))
                chosen = rng.choice(hours_in, size=min(10, len(hours_in)), replace=False)
                hit = np.isin(times.floor("h"), chosen)
                cpu[hit] = 50 + rng.normal(0, 3, hit.sum())
            elif kind == "ramp":
                cpu[inside] += np.minimum(2 * since[inside], 48)
            else:
                cpu[inside] += 25
        parts.append(pd.DataFrame({
            "timestamp": times, "service_name": host, "host": host,
            "cpu_pct": np.clip(cpu, 0, 100).round(2),
            "memory_pct": np.clip(40 + rng.normal(0, 1, len(times)), 0, 100).round(2),
            "healthy": 1}))
    return pd.concat(parts, ignore_index=True).sort_values("timestamp", kind="stable")


def prod_folder(folder: Path, seed: int, days: int, faults: dict, cut: bool = False
                ) -> None:
    """The seed's exports of `days` days ending with the judged week (to CUT if `cut`)."""
    rng = np.random.default_rng(seed)
    end = pd.Timestamp(PROD_WEEK, tz="UTC") + pd.Timedelta(weeks=1)
    hours = pd.date_range(end - pd.Timedelta(days=days), end, freq="h", inclusive="left")
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("api_logs", _api_rows(rng, hours, faults)),
                       ("system_metrics", _system_rows(rng, hours, faults))):
        if cut:
            rows = rows[rows["timestamp"] < CUT]
        rows.to_parquet(folder / f"{name}.parquet", index=False)


def _reports(found) -> list[dict]:
    """Every finding of a detection as one plain record: its family, window, the
    entities and signals it names, and whether its worst reading rose or fell."""
    out = []
    end = found.hours[-1] + HOUR
    for fam, items in (("incident", found.incidents), ("back-end", found.back_end),
                       ("user-felt", found.user_felt)):
        for f in items:
            names = {getattr(f, "entity", None), *getattr(f, "services", ())}
            names |= {r.entity for r in f.signals}
            worst = f.signals[0] if f.signals else None
            rose = worst is None or worst.peak is None or worst.baseline is None or \
                worst.peak >= worst.baseline
            out.append({"family": fam, "start": f.start, "end": f.end, "entities": names,
                        "signals": {r.name for r in f.signals}, "rose": rose,
                        "text": f.text})
    for s in found.shifts:
        out.append({"family": "shift", "start": s.start, "end": end, "entities": {s.entity},
                    "signals": {s.name}, "rose": s.after >= s.before, "text": s.text})
    return out


def _matches(report: dict, kind: str, window: tuple[pd.Timestamp, pd.Timestamp]) -> bool:
    """Whether a finding names the kind's entity and signal and overlaps its window (an
    hour either side): one of the fault's reports, however late it came."""
    entity, signal, _, _ = PROD_KINDS[kind]
    start, end = window
    return (entity in report["entities"]
            and any(s.startswith(signal) for s in report["signals"])
            and report["start"] < end + HOUR and report["end"] > start - HOUR)


def _found(kind: str, window: tuple[pd.Timestamp, pd.Timestamp], mine: list[dict]) -> bool:
    """Recall's rule among the fault's reports: a level shift is found as a level shift
    starting within 3 h of the change; a ramp by a finding that starts while it still
    rises (24 h); bursts by exactly one finding; a short fault by any report that starts
    before its end."""
    if kind == "bursts":          # one finding for the change, not one per burst
        return len(mine) == 1 and mine[0]["start"] < window[1]
    if kind.startswith("level_shift"):
        return any(r["family"] == "shift" and abs(r["start"] - window[0]) <= 3 * HOUR
                   for r in mine)
    by = window[0] + pd.Timedelta(hours=24) if kind == "ramp" else window[1]
    return any(r["start"] < by for r in mine)


def _detect_week(folder: Path) -> list[dict]:
    """Detection of the judged week on a folder, as the product builds it."""
    frames = rollups.from_frames(load_all(folder, UTC).frames, UTC)
    year, number, _ = pd.Timestamp(PROD_WEEK).isocalendar()
    return _reports(detect(frames, resolve(f"{year}-W{number:02d}", UTC, None), Thresholds()))


def run_prod_seed(seed: int) -> dict:
    """One seed's three folders: recall per kind (and how many findings each fault gave),
    false findings in the quiet week and beside the faults, and findings of the folder cut
    mid-week (before the cut: false; after it: in hours without data)."""
    rng = np.random.default_rng(seed + 1000)
    days, faults = int(rng.integers(10, 15)), prod_faults(rng)
    out: dict = {"days": days, "found": {}, "reports": {}, "false_quiet": [],
                 "false_other": [], "cut_before": [], "cut_after": [], "details": [],
                 "misses": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name, chosen, cut in (("fault", faults, False), ("quiet", {}, False),
                                  ("cut", {}, True)):
            prod_folder(Path(tmp) / name, seed, days, chosen, cut)
        fault, quiet, cut = (_detect_week(Path(tmp) / n) for n in ("fault", "quiet", "cut"))
    matched: set[int] = set()
    for kind, window in faults.items():
        mine = [r for r in fault if _matches(r, kind, window)]
        matched |= {id(r) for r in mine}
        out["found"][kind], out["reports"][kind] = _found(kind, window, mine), len(mine)
        if not out["found"][kind] and mine:      # reported, but too late or not as a shift
            out["misses"].append(f"seed {seed} ({days} days) {kind} from "
                                 f"{window[0]:%a %H:%M}: {[r['text'] for r in mine]}")
    out["false_other"] = [r for r in fault if id(r) not in matched]
    out["false_quiet"] = quiet
    out["cut_before"] = [r for r in cut if r["end"] <= CUT]
    out["cut_after"] = [r for r in cut if r["end"] > CUT]
    out["details"] += [f"seed {seed} {where}: {r['text']}" for where, rs in (
        ("quiet", quiet), ("beside the faults", out["false_other"]),
        ("cut mid-week", cut)) for r in rs]
    return out


def measure_prod(seeds: list[int]) -> dict:
    runs = [run_prod_seed(s) for s in seeds]
    def sides(key: str) -> tuple[int, int]:
        rs = [r for run in runs for r in run[key]]
        return sum(r["rose"] for r in rs), sum(not r["rose"] for r in rs)
    return {
        "seeds": len(seeds), "days": sorted({r["days"] for r in runs}),
        "by_kind": {k: sum(r["found"][k] for r in runs) for k in PROD_KINDS},
        "reports": {k: sum(r["reports"][k] for r in runs) for k in PROD_KINDS},
        "quiet": sides("false_quiet"), "other": sides("false_other"),
        "cut_before": sides("cut_before"), "cut_after": sides("cut_after"),
        "details": [d for r in runs for d in r["details"]],
        "misses": [d for r in runs for d in r["misses"]],
    }


def report_prod(m: dict) -> None:
    n = m["seeds"]
    print(f"\nproduction-like kinds over {n} seeds ({m['days'][0]}-{m['days'][-1]} days of "
          "data, the judged week the last 7)")
    print(f"{'kind':<16} {'recall':>7}  findings  what")
    for kind, (_, _, _, what) in PROD_KINDS.items():
        found = m["by_kind"][kind]
        print(f"{kind:<16} {found:>2}/{n:<2} {found / n:>4.0%}  {m['reports'][kind]:>8}  {what}")
    for label, key, weeks in (("in quiet weeks", "quiet", n),
                              ("beside the faults", "other", None),
                              ("cut mid-week, before the cut", "cut_before", None),
                              ("cut mid-week, after the cut (no data)", "cut_after", None)):
        up, down = m[key]
        rate = f" ({(up + down) / weeks * 20:.2f} per 20 quiet weeks)" if weeks else ""
        print(f"false findings {label}: {up + down} ({up} rises, {down} falls){rate}")
    for line in m["details"][:20] + m["misses"][:10]:
        print("  ", line)


def test_production_kinds():
    """Issue 28's targets: recall >= 95 % for every kind, at most 1 false finding per 20
    quiet weeks (rises and falls), none in hours after the data ends."""
    m = measure_prod(list(range(1, 21)))
    report_prod(m)
    assert all(found >= 0.95 * m["seeds"] for found in m["by_kind"].values())
    assert sum(m["quiet"]) <= m["seeds"] / 20
    assert sum(m["cut_after"]) == 0


if __name__ == "__main__":
    args = sys.argv[1:]
    suites = [a for a in args if a in ("sim", "prod")] or ["sim", "prod"]
    numbers = [int(a) for a in args if a.isdigit()]
    chosen = numbers or list(range(1, 21))
    if "--seeds" in args:          # the first N seeds: a quicker run
        chosen = list(range(1, int(args[args.index("--seeds") + 1]) + 1))
    if "sim" in suites:
        report(measure(chosen))
    if "prod" in suites:
        report_prod(measure_prod(chosen))
