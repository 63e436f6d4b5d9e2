"""Audience slices: `filters` restrict every source before anything is computed."""
from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from click.testing import CliRunner

from reporting.cli import build_report
from reporting.compute import slices
from reporting.compute.context import BuildContext
from reporting.compute.coverage import data_span
from reporting.compute.kpis import api, pages
from reporting.core import periods
from reporting.core.config import Config
from reporting.core.errors import ConfigError
from reporting.simulate import simulate
from reporting.store.archive import Archive

from .conftest import pdf_text
from .rows import load_all

UTC = ZoneInfo("UTC")
CONFIG = """
[audiences.payments]
title = "Payments weekly"
sections = ["overview", "insights", "api", "pages", "trends", "data_quality"]
filters = { services = ["payment-*"], pages = ["/checkout*"] }
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("slice")
    simulate(root / "data", weeks=2, scale="tiny", seed=8)
    (root / "report.toml").write_text(CONFIG)
    r = CliRunner().invoke(build_report, [
        "--data", str(root / "data"), "--output", str(root / "out"), "--format", "pdf",
        "-a", "payments", "-a", "it", "--config", str(root / "report.toml")])
    assert r.exit_code == 0, r.output
    return root


def hand_filtered(root):
    loaded = load_all(root / "data", UTC)
    frames = dict(loaded.frames)
    a = frames["api_logs"]
    frames["api_logs"] = a[a["service_name"].astype(str).str.startswith("payment-")]
    s = frames["system_metrics"]
    frames["system_metrics"] = s[s["service_name"].astype(str).str.startswith("payment-")]
    p = frames["page_load_times"]
    frames["page_load_times"] = p[p["page_url"].astype(str).str.startswith("/checkout")]
    return frames, data_span(loaded.frames)


def test_a_payments_slice_equals_a_hand_filtered_computation(built):
    doc = json.loads((built / "out" / "reports" / "2026-W44" / "kpis-payments.json")
                     .read_text())
    whole = json.loads((built / "out" / "reports" / "2026-W44" / "kpis.json").read_text())
    frames, span = hand_filtered(built)
    period = periods.resolve(doc["period"]["id"], UTC, span)
    config = Config()
    for module in (api, pages):
        section = module.compute(frames, period, config.thresholds)
        for k in section.kpis:
            # kpis.json holds each value rounded to its unit's precision (KPI.as_dict)
            assert doc["kpis"][k.key]["value"] == pytest.approx(k.as_dict()["value"]), k.key
            assert doc["kpis"][k.key]["previous"] == pytest.approx(k.as_dict()["previous"]), \
                k.key
    # and by hand, from the raw rows
    a = frames["api_logs"]
    in_week = a[(a.timestamp >= period.start) & (a.timestamp < period.end)]
    assert set(in_week.service_name.astype(str)) == {"payment-api"}
    assert doc["kpis"]["api.requests"]["value"] == len(in_week) > 0
    assert doc["kpis"]["api.p95_ms"]["value"] == round(    # kpis.json keeps 0.1 ms
        float(np.percentile(in_week.response_time_ms, 95)), 1)
    assert whole["kpis"]["api.requests"]["value"] > len(in_week)
    assert doc["slice"]["text"] == "services payment-*; pages /checkout*"
    assert "support_tickets" in doc["slice"]["whole"]
    assert "api_logs" not in doc["slice"]["whole"]


def test_slice_kpis_are_archived_apart_and_the_cover_names_the_slice(built):
    out = built / "out"
    doc = json.loads((out / "reports" / "2026-W44" / "kpis-payments.json").read_text())
    whole = json.loads((out / "reports" / "2026-W44" / "kpis.json").read_text())
    with Archive(out) as store:
        assert store.kpi_values("2026-W44", "payments")["api.requests"] \
            == doc["kpis"]["api.requests"]["value"]
        assert store.kpi_values("2026-W44")["api.requests"] \
            == whole["kpis"]["api.requests"]["value"]
    text = " ".join(pdf_text(out / "reports" / "2026-W44" / "payments.pdf").split())
    assert "Slice: services payment-*; pages /checkout*" in text
    assert "Slice:" not in pdf_text(out / "reports" / "2026-W44" / "it.pdf")


def test_the_next_period_reads_the_archived_slice_not_the_whole(built):
    out = built / "out"
    doc = json.loads((out / "reports" / "2026-W44" / "kpis-payments.json").read_text())
    whole = json.loads((out / "reports" / "2026-W44" / "kpis.json").read_text())
    nxt = periods.resolve("2026-W45", UTC, None)
    with Archive(out) as store:
        sliced = BuildContext.read(store, Config(), nxt, ["it"], {}, slice_name="payments")
        unsliced = BuildContext.read(store, Config(), nxt, ["it"], {})
    assert sliced.previous["api.requests"] == doc["kpis"]["api.requests"]["value"]
    assert unsliced.previous["api.requests"] == whole["kpis"]["api.requests"]["value"]
    assert sliced.trend_history.loc["2026-W44", "api.p95_ms"] == pytest.approx(
        doc["kpis"]["api.p95_ms"]["value"])
    assert unsliced.trend_history.loc["2026-W44", "api.p95_ms"] == pytest.approx(
        whole["kpis"]["api.p95_ms"]["value"])


def test_a_slice_matching_nothing_warns_and_says_no_data(tmp_path):
    simulate(tmp_path / "data", weeks=1, scale="tiny", seed=8)
    (tmp_path / "report.toml").write_text(
        '[audiences.ghost]\nsections = ["overview", "insights", "api", "data_quality"]\n'
        'filters = { services = ["no-such-*"] }\n')
    r = CliRunner().invoke(build_report, [
        "--data", str(tmp_path / "data"), "--output", str(tmp_path / "out"), "--format",
        "pdf", "-a", "ghost", "--config", str(tmp_path / "report.toml")])
    assert r.exit_code == 0, r.output
    assert "No data in this slice: the ghost audience's filters (services no-such-*) " \
        "match no rows in" in " ".join(r.output.split())
    folder = tmp_path / "out" / "reports" / "2026-W43"
    doc = json.loads((folder / "kpis-ghost.json").read_text())
    assert doc["slice"]["empty"] is True
    assert doc["kpis"] == {} and doc["insights"][0]["severity"] == "high"
    assert not any(k.get("status") == "good" for k in doc["kpis"].values())
    text = " ".join(pdf_text(folder / "ghost.pdf").split())
    assert "no data in this slice" in text and "No data in this slice" in text


def test_restrict_matches_patterns_and_session_steps():
    import pandas as pd
    frames = {"api_logs": pd.DataFrame({"service_name": ["payments-gw", "search", "payments"],
                                        "endpoint": ["/pay", "/s", "/pay"]}),
              "session_tracking": pd.DataFrame({"page_sequence": ["/home > /checkout/pay",
                                                                  "/home > /cart"]}),
              "user_feedback": pd.DataFrame({"rating": [1, 5]})}
    out = slices.restrict(frames, {"services": ["payments-*"], "pages": ["/checkout*"]})
    assert list(out["api_logs"].service_name) == ["payments-gw"]
    assert list(out["session_tracking"].page_sequence) == ["/home > /checkout/pay"]
    assert len(out["user_feedback"]) == 2        # no column a filter names: kept whole


@pytest.mark.parametrize("filters", [{"hosts": ["a"]}, {"services": []}, {"services": [1]},
                                     ["payments-*"]])
def test_bad_filters_are_config_errors(filters):
    with pytest.raises(ConfigError, match="audiences.p.filters"):
        Config.from_dict({"audiences": {"p": {"filters": filters}}})
