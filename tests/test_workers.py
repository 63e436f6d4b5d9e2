"""Charts drawn in the fork server's workers (`present.workers`) are the charts the build's
own process draws, in the page's language, and a chart's error still stops the build."""
import pickle
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from reporting.core import i18n
from reporting.core.i18n import Phrase, gettext as _
from reporting.core.values import Chart
from reporting.present import chartplan, workers
from reporting.present.theme import NARROW

GERMAN = i18n.voice("de_DE", ZoneInfo("Europe/Berlin"))
HOURS = pd.date_range("2026-11-09", periods=48, freq="h", tz="UTC")


def _rate() -> Phrase:
    """The incident timeline's panel label: a Phrase built by a lambda (not picklable)."""
    return Phrase(lambda name: f"{name} " + _("5xx rate (%)"), "payment-api")


def _charts() -> list[Chart]:
    rate = _rate()
    timeline = pd.DataFrame({"hour": HOURS, rate: [0.01 * (i % 5) for i in range(48)],
                             "negative comments": [i % 3 for i in range(48)]}, dtype=object)
    timeline["hour"] = HOURS
    per_day = pd.DataFrame({"Chat": [3, 4, 5, 2, 6, 1, 0], "Email": [1, 2, 0, 3, 1, 2, 2]},
                           index=pd.date_range("2026-11-09", periods=7, freq="D", tz="UTC"))
    bars = pd.DataFrame({"service": ["payment-api", "search-api"], "p95": [812.5, 140.0]})
    return [
        Chart("timeline", "stacked_lines", "API errors and negative feedback per hour",
              timeline, {"x": "hour", "units": {rate: "pct", "negative comments": "count"}}),
        Chart("tickets", "stacked", "New tickets per day by channel (tickets)", per_day,
              {"x_label": "", "y_label": "tickets", "date_labels": True}),
        Chart("p95", "barh", "p95 latency by service (ms)", bars,
              {"label": "service", "value": "p95", "unit": "ms"}),
        Chart("none", "bar", "Orders per day", pd.DataFrame(), {}),
    ]


def _drawn(folder, monkeypatch, cores: int) -> dict[str, bytes]:
    monkeypatch.setattr(workers, "cores", lambda: cores)
    batches = [(voice, [chartplan.Drawing(c, folder / name / f"{c.name}.svg") for c in _charts()]
                + [chartplan.Drawing(c, folder / name / "narrow" / f"{c.name}.svg", NARROW)
                   for c in _charts()])
               for voice, name in ((None, "en"), (GERMAN, "de"))]
    workers.draw_charts(batches)
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*.svg")}


def test_charts_drawn_by_two_workers_are_byte_for_byte_those_drawn_in_the_build(
        tmp_path, monkeypatch):
    pools = []
    real_pool = workers.pool
    monkeypatch.setattr(workers, "pool",
                        lambda n, pdfs=True: pools.append(n) or real_pool(n, pdfs))
    here = _drawn(tmp_path / "here", monkeypatch, cores=1)
    assert pools == []                                   # one core: no worker
    there = _drawn(tmp_path / "there", monkeypatch, cores=2)
    assert pools == [2]                                  # 16 charts: two workers
    assert len(here) == 16 and here == there
    german = there["de/timeline.svg"].decode()
    assert "payment-api 5xx-Quote (%)" in german and "5xx rate" not in german
    assert "payment-api 5xx rate (%)" in there["en/timeline.svg"].decode()
    assert "Neue Tickets pro Tag nach Kanal (Tickets)" in there["de/tickets.svg"].decode()


def test_a_phrase_sent_to_a_worker_keeps_its_english_and_says_its_pages_words(tmp_path):
    """A pickled Phrase is its English text; one sent to a chart worker is still equal to
    it (a chart's column finds its label by it) and says what the page's voice said."""
    rate = _rate()
    assert pickle.loads(pickle.dumps(rate)) == "payment-api 5xx rate (%)"
    locale, zone, payload = workers._job(GERMAN, chartplan.Drawing(
        Chart("t", "bar", rate, pd.DataFrame(), {"units": {rate: "pct"}}), tmp_path / "t.svg"))
    assert (locale, zone) == ("de_DE", "Europe/Berlin")
    title = pickle.loads(payload).chart.title
    assert title == "payment-api 5xx rate (%)" and isinstance(title, Phrase)
    assert {title: 1}["payment-api 5xx rate (%)"] == 1
    assert title.said() == "payment-api 5xx rate (%)"                  # no voice: English
    with i18n.speaking(GERMAN):
        assert _(title) == "payment-api 5xx-Quote (%)"
    assert workers._job(None, chartplan.Drawing(Chart("t", "bar", "x", pd.DataFrame()),
                                             tmp_path / "t.svg"))[:2] == (None, None)


def test_a_chart_that_fails_in_a_worker_fails_the_build_with_its_own_error(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setattr(workers, "cores", lambda: 2)
    data = pd.DataFrame({"a": [1, 2]})
    todo = [chartplan.Drawing(Chart(f"c{i}", "bar", "Orders", data, {"label": "a", "value": "a"}),
                           tmp_path / f"c{i}.svg") for i in range(7)]
    todo.append(chartplan.Drawing(Chart("odd", "pie", "Shares", data), tmp_path / "odd.svg"))
    with pytest.raises(ValueError, match="unknown chart kind 'pie'"):
        workers.draw_charts([(None, todo)])
