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


def test_daily_charts_show_every_day_gaps_as_nan_and_weeks_past_five():
    from datetime import date, timedelta

    import numpy as np
    import pandas as pd

    from reporting.charts import daily
    from reporting.kpis.base import Chart

    days = [date(2026, 11, 9) + timedelta(days=i) for i in range(7)]
    c = Chart("cart_value_by_day", "bar", "Abandoned cart value per day",
              pd.DataFrame({"day": [date(2026, 11, 9), date(2026, 11, 11)],
                            "value": [10.0, 30.0]}),
              {"label": "day", "value": "value", "unit": "money", "date_labels": True})
    # 10 Nov had data but no cart (0); 13-15 Nov the source has no data (a gap).
    out = daily(c, days, {date(2026, 11, 13), date(2026, 11, 14), date(2026, 11, 15)})
    assert out.data["value"].tolist()[:4] == [10.0, 0.0, 30.0, 0.0]
    assert np.isnan(out.data["value"].tolist()[4:]).all()
    six_weeks = [date(2026, 10, 5) + timedelta(days=i) for i in range(42)]
    weekly = daily(c, six_weeks, set())
    assert weekly.title == "Abandoned cart value per week"
    assert weekly.data["value"].tolist() == [0, 0, 0, 0, 0, 40.0]   # w/c 9 Nov: 10 + 30
