"""The design pass on the charts (issue 32, point 3), read from the matplotlib figures:
integer ticks on count axes, the currency on money axes, incident bands visible at print
size, histograms that fit their data with the SLA on a bin edge, a target per series, and
trend axes that show a change in proportion."""
from __future__ import annotations

from zoneinfo import ZoneInfo

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from reporting.core import i18n
from reporting.core.values import Chart
from reporting.present import charts
from reporting.present.theme import NARROW


@pytest.fixture
def figure():
    made = []

    def make(chart: Chart) -> plt.Figure:
        with plt.rc_context(charts.THEME):
            fig = charts._figure(chart)
            fig.canvas.draw()
        made.append(fig)
        return fig
    yield make
    for fig in made:
        plt.close(fig)


def _timeline(**options) -> Chart:
    hours = pd.date_range("2026-11-09", periods=7 * 24, freq="h", tz="Europe/Warsaw")
    rate = np.zeros(len(hours))
    rate[50:52] = 0.386
    comments = np.zeros(len(hours))
    comments[[10, 50, 51]] = [1, 2, 1]          # peak 2: MaxNLocator(3) puts ticks at 0.8
    data = pd.DataFrame({"hour": hours, "payment-api 5xx rate (%)": rate,
                         "abandoned value": np.linspace(0, 900, len(hours)),
                         "negative comments": comments})
    return Chart("incidents_timeline", "stacked_lines", "Timeline", data,
                 {"x": "hour", "shade": [(hours[50], hours[52])],
                  "units": {"payment-api 5xx rate (%)": "pct", "abandoned value": "money",
                            "negative comments": "count"}, **options})


def test_a_count_panel_has_integer_ticks_only(figure):
    fig = figure(_timeline())
    ticks = fig.axes[2].get_yticks()
    assert len(ticks) >= 2 and np.all(ticks == np.round(ticks)), ticks


def test_a_money_panel_names_its_currency(figure):
    fig = figure(_timeline(currency="EUR"))
    assert [a.get_ylabel() for a in fig.axes] == [
        "payment-api 5xx rate (%)", "abandoned value (EUR)", "negative comments"]
    assert figure(_timeline()).axes[1].get_ylabel() == "abandoned value"   # none configured


def test_a_two_hour_incident_is_a_visible_band_on_a_weeks_axis(figure):
    fig = figure(_timeline())
    band = fig.axes[0].patches[0].get_window_extent()
    page = fig.axes[0].get_window_extent()
    # 2 h of a week's axis is ~1.1 % of it (0.07 in on paper): now at least 2 %, darker
    assert band.width / page.width >= 0.02
    assert fig.axes[0].patches[0].get_alpha() >= 0.45


def test_a_long_incident_keeps_its_own_width():
    x = pd.Series(pd.date_range("2026-11-09", periods=168, freq="h"))
    start, end = x[10], x[40]
    assert charts._visible_span(start, end, x) == (start, end)
    a, b = charts._visible_span(x[50], x[51], x)
    assert b - a == (x.max() - x.min()) * charts.SHADE_MIN
    assert a + (b - a) / 2 == x[50] + pd.Timedelta(minutes=30)       # centred on the window


def _resolution(hours) -> Chart:
    return Chart("support_resolution", "hist", "Resolution", pd.DataFrame({"hours": hours}),
                 {"value": "hours", "unit": "h", "threshold": 24,
                  "threshold_label": "SLA 24 h"})


def test_the_resolution_histogram_ends_at_its_data_and_has_a_bin_edge_on_the_sla(figure):
    # 199 tickets from 0.3 h to 60 h and one at 175 h: the axis ran to 175 h before
    hours = np.r_[np.linspace(0.3, 60, 199), [175.0]]
    fig = figure(_resolution(hours))
    ax = fig.axes[0]
    # the 99th percentile is 59.4 h: 30 bins of 2 h (24 / 12) end at 60 h
    assert ax.get_xlim() == (0.0, 60.0)
    edges = sorted({round(p.get_x(), 9) for p in ax.patches})
    assert 24.0 in edges                        # a bin starts on the SLA line: none hides it
    assert edges[1] - edges[0] == 2.0 and len(edges) == 30
    assert sum(p.get_height() for p in ax.patches) == 200     # the 175 h one is counted
    in_last = int(((hours >= 58) & (hours <= 60)).sum())
    assert ax.patches[-1].get_height() == in_last + 1    # 175 h shares the last bar
    assert ax.get_xlabel() == "hours (1 over 60 counted in the last bar)"
    assert [ln.get_xdata()[0] for ln in ax.lines] == [24]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["SLA 24 h"]


def test_a_histogram_of_quick_tickets_still_shows_the_sla_line(figure):
    fig = figure(_resolution([1.0, 2.0, 3.5, 5.0]))
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert lo == 0 and hi == 27.0              # past the line at 24 h: 26.4 h to a 1 h step
    assert ax.get_xlabel() == "hours"


def test_cpu_and_memory_each_have_their_own_target_in_their_colour(figure):
    data = pd.DataFrame({"service_name": ["a", "b"], "cpu_p95": [70.0, 50.0],
                         "memory_p95": [60.0, 90.0]})
    fig = figure(Chart("system_p95", "grouped_barh", "CPU and memory", data,
                       {"label": "service_name", "values": ["cpu_p95", "memory_p95"],
                        "names": ["CPU p95", "memory p95"], "threshold": 80,
                        "threshold_label": "CPU target", "threshold2": 85,
                        "threshold2_label": "memory target", "threshold_colors": True}))
    ax = fig.axes[0]
    lines = {ln.get_label(): (ln.get_xdata()[0], ln.get_color()) for ln in ax.lines}
    assert lines == {"CPU target": (80, charts.PALETTE[0]),
                     "memory target": (85, charts.PALETTE[1])}
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert set(legend) == {"CPU target", "memory target", "CPU p95", "memory p95"}


def _trend(values: dict[str, list[float]], units: dict[str, str]) -> Chart:
    frame = pd.DataFrame(values, index=["2026-W44", "2026-W45", "2026-W46"])
    return Chart("trends", "trends", "Trends", frame,
                 {"units": units, "labels": {}, "current": "2026-W46"})


def test_a_small_change_is_drawn_small_and_the_axis_says_it_is_not_from_0(figure):
    # availability 99.94 % -> 99.89 % (-0.05 pp): auto-scaling fills the panel with it
    fig = figure(_trend({"api.availability": [0.9994, 0.9992, 0.9989]},
                        {"api.availability": "ratio"}))
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    assert hi - lo >= 0.1 * 99.94 * 0.999       # at least 10 % of the value's size
    assert (99.94 - 99.89) / (hi - lo) < 0.01   # the change is under 1 % of the height
    assert "axis not from 0" in [t.get_text() for t in ax.texts]


def test_a_share_s_trend_axis_never_runs_past_100_percent(figure):
    fig = figure(_trend({"api.availability": [0.9994, 0.9992, 0.9989]},
                        {"api.availability": "ratio"}))
    lo, hi = fig.axes[0].get_ylim()
    assert hi == 100.0 and hi - lo >= 0.1 * 99.94 * 0.999
    assert max(fig.axes[0].get_yticks()[fig.axes[0].get_yticks() <= hi]) <= 100.0


def test_a_percent_level_such_as_cpu_stops_at_100_percent(figure):
    fig = figure(_trend({"system.cpu_p95": [97.0, 97.5, 98.0]}, {"system.cpu_p95": "pct"}))
    assert fig.axes[0].get_ylim()[1] == 100.0


def test_a_share_from_0_stops_at_100_percent_too(figure):
    fig = figure(_trend({"orders.conversion_rate": [0.4, 0.7, 0.9]},
                        {"orders.conversion_rate": "ratio"}))
    assert fig.axes[0].get_ylim() == (0.0, 100.0)


def test_a_long_label_wraps_inside_a_narrow_trend_panel(figure):
    """The site's history charts are 2.8 in wide, one panel each: a German label
    ("Konversion (Bestellungen / Sitzungen)") wraps instead of running out of it."""
    frame = pd.DataFrame({"k": [0.12, 0.13]}, index=["2026-W44", "2026-W45"])
    fig = figure(Chart("history_k", "trends", "", frame,
                       {"units": {"k": "ratio"}, "current": "2026-W45", "columns": 1,
                        "width": 2.8,
                        "labels": {"k": "Konversion (Bestellungen / Sitzungen)"}}))
    ax = fig.axes[0]
    title = ax._left_title.get_window_extent()      # set_title(loc="left")
    assert "\n" in ax._left_title.get_text()
    assert title.x1 <= fig.bbox.x1, (title, fig.bbox)


def test_a_trend_reaching_down_to_half_its_top_starts_at_0_and_says_nothing(figure):
    fig = figure(_trend({"support.new": [40.0, 120.0, 160.0]}, {"support.new": "count"}))
    ax = fig.axes[0]
    assert ax.get_ylim() == (0.0, 200.0)
    assert [t.get_text() for t in ax.texts] == []


def test_the_5xx_panel_plots_the_failing_service_its_sentence_names():
    from types import SimpleNamespace

    from reporting.compute.incidents.section import _timeline
    from reporting.compute.incidents.signals import Signal
    hours = pd.date_range("2026-11-11 08:00", periods=4, freq="h", tz="UTC")
    req = {"payment-api": np.array([100, 100, 100, 100]),
           "product-api": np.array([900, 900, 900, 900])}
    err = {"payment-api": np.array([0, 40, 10, 0]), "product-api": np.array([0, 0, 0, 9])}
    sigs = []
    for service in req:
        rate = err[service] / req[service]
        sigs += [Signal("api.requests", service, "traffic", req[service], req[service],
                        "count", (service,)),
                 Signal("api.server_error_rate", service, "ratio", rate, req[service],
                        "ratio", (service,))]
    incident = SimpleNamespace(start=hours[1], end=hours[3], services=("payment-api",))
    chart = _timeline(hours, sigs, np.ones(4, bool), [incident], "UTC", "EUR")
    # payment-api alone: 40 of 100 = 40 %; all of the API would have been 40 of 1,000
    assert chart.data["payment-api 5xx rate (%)"].tolist() == [0.0, 0.4, 0.1, 0.0]
    assert chart.options["currency"] == "EUR"
    quiet = _timeline(hours, sigs, np.ones(4, bool), [], "UTC")
    assert quiet.data["5xx rate (%)"].tolist() == [0.0, 0.04, 0.01, 0.009]


def test_every_chart_text_is_at_least_9_pt_in_the_figure():
    # A figure WIDTH wide fills the page's 510 pt text width (test_readable measures the
    # printed size): nothing may be set smaller than 9 pt in the figure itself.
    sizes = [charts.THEME[k] for k in ("font.size", "axes.labelsize", "legend.fontsize")]
    assert min(sizes) == charts.SMALL == 9.0


def test_a_weeks_day_labels_do_not_run_into_each_other(figure):
    days = pd.date_range("2026-11-09", periods=7, freq="D")
    data = pd.DataFrame({"Chat": [7, 6, 17, 7, 4, 3, 9], "Email": [16, 8, 11, 4, 9, 7, 6]},
                        index=days)
    fig = figure(Chart("support_per_day", "stacked", "New tickets per day", data,
                       {"date_labels": True, "y_label": "tickets"}))
    labels = [t for t in fig.axes[0].get_xticklabels() if t.get_visible()]
    assert len(labels) == 7                   # one label per day, none thinned away
    assert min(t.get_fontsize() for t in labels) >= 9
    boxes = [t.get_window_extent() for t in labels]
    gaps = [right.x0 - left.x1 for left, right in zip(boxes, boxes[1:])]
    assert min(gaps) > 0, gaps                # "Tue 10 NovWed 11 Nov" before: overlapping


# --- hourly time axes and deploy labels (issue 32: page 2's hourly chart) ----------------

def _hourly(kind: str, start: str = "2026-11-09", hours: int = 7 * 24, at: float = 0.5
            ) -> Chart:
    """An hourly timeline with a deploy an incident followed (its label above the axes),
    `at` that share of the way along."""
    x = pd.date_range(start, periods=hours, freq="h", tz="Europe/Berlin")
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"hour": x, "requests": rng.integers(50, 600, len(x)),
                         "5xx rate (%)": rng.uniform(0, 0.03, len(x))})
    deploy = x[int((len(x) - 1) * at)] + pd.Timedelta(minutes=40)
    options = {"x": "hour", "y": "requests", "y2": "5xx rate (%)",
               "y_label": "requests / hour", "y2_label": "5xx rate (%)",
               "deploys": [x[3], deploy], "linked": [(deploy, "payment-api 2.16.7")]}
    if kind == "stacked_lines":
        data = data.drop(columns="requests")
    return Chart("api_hourly", kind, "Requests and server-error rate per hour", data, options)


def _shown_ticks(fig: plt.Figure) -> list:
    """The x tick labels drawn: visible, with text, inside the axis' view."""
    out = []
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        out += [t for loc, t in zip(ax.xaxis.get_majorticklocs(), ax.get_xticklabels())
                if lo <= loc <= hi and t.get_visible() and t.get_text()
                and ax.xaxis.get_visible()]
    return out


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("locale", [None, "de_DE", "fr_FR", "pl_PL"])
@pytest.mark.parametrize("width", [charts.WIDTH, NARROW])
@pytest.mark.parametrize("kind", ["line_dual", "stacked_lines"])
def test_hourly_tick_labels_and_the_deploy_label_clear_each_other_and_the_title(
        kind, width, locale):
    _check_clear(_hourly(kind), width, locale)


@pytest.mark.parametrize("at", [0.0, 1.0])
@pytest.mark.parametrize("kind", ["line_dual", "stacked_lines"])
def test_a_deploy_label_at_the_axis_end_stays_inside_the_figure(kind, at):
    _check_clear(_hourly(kind, at=at), NARROW, "de_DE")


def _check_clear(chart: Chart, width: float, locale: str | None) -> None:
    voice = i18n.voice(locale, ZoneInfo("Europe/Berlin")) if locale else None
    with i18n.speaking(voice), charts.laid_out(chart, width) as fig:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        ticks = _shown_ticks(fig)
        assert len(ticks) >= 2 and min(t.get_fontsize() for t in ticks) >= 9
        boxes = sorted((t.get_window_extent(renderer) for t in ticks), key=lambda b: b.x0)
        gaps = [b.x0 - a.x1 for a, b in zip(boxes, boxes[1:])]
        assert min(gaps) > 0, [t.get_text() for t in ticks]  # "Mon 09 NovTue 10 Nov" before
        label = next(t for ax in fig.axes for t in ax.texts
                     if t.get_text() == "payment-api 2.16.7")
        assert label.get_fontsize() >= 9
        said = i18n.gettext(chart.title).split()       # wrapped onto lines where long
        title = next(t for t in fig.findobj(Text) if t.get_text().split() == said)
        box, top = label.get_window_extent(renderer), title.get_window_extent(renderer)
        assert not _overlap(box, top), (box, top)           # it touched the title before
        assert 0 <= top.x0 and top.x1 <= fig.bbox.x1, (top, fig.bbox)   # "…per hou" on a phone
        others = [t.get_text() for t in fig.findobj(Text) if t is not label
                  and t.get_visible() and t.get_text()
                  and _overlap(box, t.get_window_extent(renderer))]
        assert others == []                                 # nor any other text
        # and inside the figure: not cut at its edge
        assert 0 <= box.x0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1


@pytest.mark.parametrize("hours", [6, 30])
def test_a_short_hourly_axis_says_its_day_and_its_hours(hours):
    with charts.laid_out(_hourly("line_dual", "2026-11-11 06:00", hours)) as fig:
        fig.canvas.draw()
        texts = [t.get_text() for t in _shown_ticks(fig)]
    assert any("11 Nov" in t for t in texts), texts     # the day, at least once
    assert any(":00" in t for t in texts), texts        # and the hours


def test_a_timeline_without_a_single_value_says_no_data_instead_of_a_1970_axis(figure):
    """The seed's `all` period: 784 days, every panel a gap (NaN)."""
    days = pd.date_range("2023-05-10", periods=784, freq="D", tz="UTC")
    data = pd.DataFrame({"hour": days, "5xx rate (%)": np.nan, "abandoned value": np.nan})
    fig = figure(Chart("incidents_timeline", "stacked_lines", "Timeline", data,
                       {"x": "hour", "units": {"5xx rate (%)": "pct",
                                               "abandoned value": "money"}}))
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts == ["No data for this period"]
    assert all(not ax.get_xticklabels() or not ax.axison for ax in fig.axes)


def test_the_timeline_legend_sits_beside_its_panel_not_over_a_deploy_line(figure):
    chart = _hourly("stacked_lines")
    with charts.laid_out(chart) as fig:
        fig.canvas.draw()
        ax = fig.axes[0]
        legend = ax.get_legend().get_window_extent()
        assert legend.x0 >= ax.get_window_extent().x1          # right of the panel
        assert legend.x1 <= fig.bbox.x1                          # and inside the figure
    with charts.laid_out(chart, NARROW) as fig:           # a phone: inside it
        fig.canvas.draw()
        ax = fig.axes[0]
        assert ax.get_legend().get_window_extent().x1 <= ax.get_window_extent().x1
