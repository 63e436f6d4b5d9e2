"""Point 5 of issue 15 end to end: a previous period from archived rollups alone.

W43 is built from data holding W43 and W44; its archived KPI values and the hourly
signals of the high-volume sources are then deleted, so only its archived rollups can
tell a later build about those sources (carts, feedback and tickets have no rollups:
their archived signals stay). W44 built
from W44's rows alone must then give the previous values and incidents of a W44 built
from the data holding both weeks."""
from __future__ import annotations

import json
import math
import sqlite3
from zoneinfo import ZoneInfo

import pytest

from reporting.build import build
from reporting.core.config import Config
from reporting.core.contracts import HIGH_VOLUME
from reporting.core.registry import sources
from tests.test_archive_rollups import two_weeks

UTC = ZoneInfo("UTC")


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    root = tmp_path_factory.mktemp("rollups-e2e")
    both, alone = two_weeks(root)     # the outage in W44: judged against W43's hours
    config = Config()
    out, ref = root / "out", root / "ref"
    build(config, period="2026-W43", audiences=["it"], data_dir=both, output_dir=out,
          fmt="html")
    db = sqlite3.connect(out / "archive.sqlite")
    with db:
        db.execute("DELETE FROM kpis WHERE period_id = '2026-W43'")
        db.execute("DELETE FROM signal_hours WHERE period_id = '2026-W43' AND ("
                   "signal LIKE 'api.%' OR signal LIKE 'pages.%' OR signal LIKE 'clicks.%' "
                   "OR signal LIKE 'sessions.%' OR signal LIKE 'system.%')")
    db.close()
    docs = {}
    for data, target in ((alone, out), (both, ref)):
        build(config, period="2026-W44", audiences=["it"], data_dir=data, output_dir=target,
              fmt="html")
        docs[target.name] = json.loads((target / "reports/2026-W44/kpis.json").read_text())
    return docs["out"], docs["ref"]


def high_volume_kpis(document: dict) -> dict:
    wanted = {s for s, src in sources().items() if src in HIGH_VOLUME}
    return {k: v for k, v in document["kpis"].items() if k.split(".")[0] in wanted
            and isinstance(v["value"], (int, float)) and not isinstance(v["value"], bool)}


def same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
            math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a == b


def test_previous_values_come_from_the_archived_rollups(documents):
    archived, full = documents
    got, want = high_volume_kpis(archived), high_volume_kpis(full)
    assert set(got) == set(want) and len(want) > 20
    assert sum(v["previous"] is not None for v in want.values()) > 20
    wrong = {k: (got[k]["previous"], want[k]["previous"]) for k in want
             if not same(got[k]["previous"], want[k]["previous"])}
    assert wrong == {}
    assert {k: v["value"] for k, v in got.items()} == {k: v["value"] for k, v in want.items()}


def test_the_incident_baseline_comes_from_the_archived_rollups(documents):
    archived, full = documents
    assert len(full["incidents"]) >= 1
    assert archived["incidents"] == full["incidents"]
