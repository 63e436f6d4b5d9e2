"""One audience view for the page and the email."""
from __future__ import annotations

import pytest

from reporting.core.config import DEFAULT_AUDIENCES
from reporting.core.errors import ReportError
from reporting.present.audience import audience_view, check_audiences

DOC = {
    "kpis": {"api.p95_ms": {"value": 250.0, "previous": 200.0, "unit": "ms", "status": "good"},
             "support.tickets": {"value": 30, "previous": 0, "unit": "count", "status": None}},
    "labels": {"api.p95_ms": "p95 latency"},
    "headline": {"it": ["api.p95_ms", "missing.key"], "support": ["support.tickets"]},
    "insights": [{"severity": "high", "domain": "incidents", "text": "outage"},
                 {"severity": "high", "domain": "api", "text": "errors"},
                 {"severity": "medium", "domain": "support", "text": "backlog"}],
}


def test_it_sees_its_headline_with_change_and_its_own_and_incident_insights():
    view = audience_view(DOC, DEFAULT_AUDIENCES["it"])
    assert view.headline == ({"key": "api.p95_ms", "label": "p95 latency", "value": 250.0,
                              "previous": 200.0, "unit": "ms", "status": "good",
                              "change": "+25.0 %", "arrow": "▲", "tone": None},)
    assert [i["text"] for i in view.insights] == ["outage", "errors"]
    assert view.insight_limit == 12


def test_compact_audience_and_a_zero_previous():
    view = audience_view(DOC, DEFAULT_AUDIENCES["support"])
    assert view.headline[0]["label"] == "support.tickets"       # no label: the key
    assert view.headline[0]["change"] is None                    # previous 0: no change
    assert [i["text"] for i in view.insights] == ["outage", "backlog"]
    assert audience_view(DOC, DEFAULT_AUDIENCES["executive"]).insight_limit == 5


def test_unknown_audience_is_one_sentence():
    assert check_audiences(("it",), DEFAULT_AUDIENCES) == ["it"]
    with pytest.raises(ReportError, match="Unknown audience ops; configured: executive, ux"):
        check_audiences(["it", "ops"], DEFAULT_AUDIENCES)
