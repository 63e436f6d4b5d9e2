"""with_previous, ranked_insights and document: how sections add up to kpis.json."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from reporting.compute.document import (
    document,
    headline_keys,
    ranked_insights,
    with_previous,
)
from reporting.core.periods import resolve
from reporting.core.values import KPI, Insight, Section

P = resolve("2026-W46", ZoneInfo("UTC"), None)


def _sections() -> dict[str, Section]:
    api = Section("api", "API", kpis=(KPI("api.requests", "Requests", 120, None, "count", None),
                                      KPI("api.p95_ms", "p95", 250.0, 200.0, "ms", "good")),
                  insights=(Insight("medium", "api", "slow", impact=5.0),
                            Insight("high", "api", "errors", impact=1.0)),
                  headline=("api.p95_ms",), breakdowns={"by_service": {"a": {"requests": 1}}})
    cart = Section("cart", "Cart", insights=(Insight("medium", "cart", "big", impact=9.0),
                                             Insight("low", "cart", "tiny", impact=99.0)))
    inc = Section("incidents", "Incidents", document={"incidents": [{"text": "outage"}]})
    return {"api": api, "cart": cart, "incidents": inc}


def test_with_previous_fills_only_what_the_inputs_left_empty():
    out = with_previous(_sections(), {"api.requests": 100, "api.p95_ms": 999.0,
                                      "gone.key": 1})
    assert out["api"].kpi("api.requests").previous == 100     # was None: from the archive
    assert out["api"].kpi("api.p95_ms").previous == 200.0     # the inputs' value stays
    assert with_previous(_sections(), {})["api"].kpi("api.requests").previous is None


def test_ranked_insights_by_severity_then_impact():
    texts = [i.text for i in ranked_insights(_sections())]
    assert texts == ["errors", "big", "slow", "tiny"]


def test_document_holds_kpis_insights_breakdowns_and_what_sections_add():
    doc = document(_sections(), P, {}, {"it": headline_keys(_sections(), ["api", "cart"])})
    assert doc["period"]["id"] == "2026-W46" and doc["period"]["previous_id"] == "2026-W45"
    assert doc["kpis"]["api.p95_ms"] == {"value": 250.0, "previous": 200.0, "unit": "ms",
                                         "status": "good", "better": None}
    assert doc["labels"]["api.requests"] == "Requests"
    assert [i["text"] for i in doc["insights"]] == ["errors", "big", "slow", "tiny"]
    assert doc["incidents"] == [{"text": "outage"}]
    assert doc["breakdowns"] == {"api": {"by_service": {"a": {"requests": 1}}}}
    assert doc["headline"] == {"it": ["api.p95_ms"]}
    assert document({}, P, {})["incidents"] == []
