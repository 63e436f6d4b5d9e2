"""Charts: external text is drawn as written, never parsed; empty data says so."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pandas as pd

from reporting import charts
from reporting.kpis.base import Chart

SVG = "{http://www.w3.org/2000/svg}"


def texts(path) -> list[str]:
    return ["".join(t.itertext()) for t in ET.parse(path).getroot().iter(f"{SVG}text")]


def test_page_names_with_dollars_and_markup_are_drawn_as_written(tmp_path):
    names = [r"/bad$\undefinedcmd$", "/promo$x^2$", "<script>&amp;"]
    data = pd.DataFrame({"page": names, "p75": [900.0, 700.0, 500.0]})
    chart = Chart("pages", "barh", "p75 load time by page (ms)", data,
                  {"label": "page", "value": "p75"})
    drawn = texts(charts.draw(chart, tmp_path / "pages.svg"))   # parses: well-formed XML
    for name in names:
        assert name in drawn


def test_a_chart_without_data_says_so(tmp_path):
    chart = Chart("none", "bar", "Abandoned value per day", pd.DataFrame(), {})
    assert "No data for this period" in texts(charts.draw(chart, tmp_path / "none.svg"))
