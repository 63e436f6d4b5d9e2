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

Run: `make bench`, or `python tests/benchmarks/bench_incidents.py [seeds]`.
"""
from __future__ import annotations

import json
import sys
import tempfile
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

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


if __name__ == "__main__":
    chosen = [int(a) for a in sys.argv[1:]] or list(range(1, 21))
    report(measure(chosen))
