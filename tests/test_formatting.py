"""Every number's look, in one place (also the Jinja2 filters)."""
from __future__ import annotations

import pytest

from reporting.core import formatting
from reporting.core.config import Thresholds


@pytest.mark.parametrize("value, unit, text", [
    (1234.5, "ms", "1,234.5 ms"), (0.123, "ratio", "12.3 %"), (0.9995, "ratio", "99.95 %"),
    (0.004, "ratio", "0.40 %"), (1213.19, "money", "1,213.19"), (66842, "count", "66,842"),
    (None, "ms", "–"), (float("nan"), "count", "–"), (3.0, "rating", "3.00 / 5"),
    (14.4, "x", "14.4x"), ("payment-api", "text", "payment-api"), (81.25, "pct", "81.2 %"),
])
def test_formats(value, unit, text):
    assert formatting.value(value, unit) == text


@pytest.mark.parametrize("value, text", [
    (0.123, "+12.3 %"), (-0.04, "−4.0 %"), (0.0, "±0.0 %"), (None, "–"),
])
def test_change(value, text):
    assert formatting.change(value) == text


def test_thresholds_as_people_say_them():
    words = formatting.threshold_words(Thresholds(page_p75_ms=2500, page_poor_ms=4000))
    assert words["page_p75_ms"] == "2.5 s" and words["page_poor_ms"] == "4 s"
    assert words["api_p95_ms"] == "0.8 s" and words["support_sla_hours"] == "24 h"
    assert words["availability_slo"] == "99.9 %" and words["cpu_p95_pct"] == "80 %"
    assert words["incident_min_events"] == "30"
    assert formatting.seconds(1250) == "1.25 s" and formatting.seconds(None) == "–"
