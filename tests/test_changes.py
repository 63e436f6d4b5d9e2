"""Changes in the unit people think in: points for rates, percent for counts."""
from __future__ import annotations

import pytest

from reporting.compute.document import with_currency
from reporting.core.config import Config
from reporting.core.errors import ConfigError
from reporting.core.formatting import delta, value
from reporting.core.values import KPI, Section
from reporting.present.html import kpi_view


@pytest.mark.parametrize("value, previous, unit, better, text, arrow, tone", [
    # CSAT 35.9 % -> 43.2 %: 7.3 points, not +20.3 %
    (0.432, 0.359, "ratio", "up", "+7.3 pp", "▲", "good"),
    # error budget used 79.2 % -> 36.7 %: 42.5 points less, good for a "down" KPI
    (0.367, 0.792, "ratio", "down", "−42.5 pp", "▼", "good"),
    # availability 99.95 % -> 99.92 %: near 100 % two decimals show −0.03 pp
    (0.9992, 0.9995, "ratio", "up", "−0.03 pp", "▼", "bad"),
    # Apdex 0.912 -> 0.914 rounds to no change at two decimals: no arrow, no colour
    (0.914, 0.912, "score", "up", "no change", "", None),
    # CPU p95 in percent 61.0 -> 72.5: 11.5 points
    (72.5, 61.0, "pct", "down", "+11.5 pp", "▲", "bad"),
    # counts, durations and money: relative percent; 1,000 -> 1,250 is +25.0 %
    (1250, 1000, "count", None, "+25.0 %", "▲", None),
    (231.0, 248.0, "ms", "down", "−6.9 %", "▼", "good"),
    (134106.91, 134100.0, "money", "down", "no change", "", None),
])
def test_delta(value, previous, unit, better, text, arrow, tone):
    d = delta(value, previous, unit, better)
    assert (d.text, d.arrow, d.tone) == (text, arrow, tone)


def test_no_change_against_zero_or_nothing():
    assert delta(5, 0, "count") is None
    assert delta(0.5, None, "ratio") is None
    assert delta(0.5, 0.0, "ratio").text == "+50.0 pp"


def test_the_tile_reads_points():
    v = kpi_view(KPI("feedback.csat", "CSAT", 0.432, 0.359, "ratio", "bad", "up"))
    assert (v["arrow"], v["change"], v["tone"]) == ("▲", "+7.3 pp", "good")


def test_money_carries_the_currency_and_kpis_json_is_rounded():
    k = KPI("cart.abandoned_value", "Abandoned value", 134106.91000000003, 120000.0,
            "money", None, "down")
    assert k.as_dict()["value"] == 134106.91
    [eur] = with_currency({"cart": Section("cart", "Cart", kpis=(k,))}, "EUR")["cart"].kpis
    assert eur.as_dict()["unit"] == "EUR" and value(eur.value, eur.unit) == "134,106.91 EUR"
    # availability 0.999523... keeps the four digits 99.95 % needs; a count is whole
    assert KPI("a", "A", 0.9995238, None, "ratio", None).as_dict()["value"] == 0.9995
    assert KPI("c", "C", 12.0, None, "count", None).as_dict()["value"] == 12
    assert Config.from_dict({"currency": "eur"}).currency == "EUR"
    with pytest.raises(ConfigError, match="ISO 4217"):
        Config.from_dict({"currency": "euros"})
