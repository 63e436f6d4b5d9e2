"""End to end: the commands on the seed data and on simulated data, PDFs read back."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from reporting.cli import build_report, main
from reporting.core.config import DEFAULT_AUDIENCES
from reporting.simulate import simulate

from .conftest import require_seed

AUDIENCES = ("executive", "ux", "it", "support")


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def run(cmd, args):
    result = CliRunner().invoke(cmd, [str(a) for a in args], catch_exceptions=False)
    return result


@pytest.fixture(scope="module")
def seed_build(tmp_path_factory):
    seed = require_seed()
    out = tmp_path_factory.mktemp("out")
    result = run(build_report, ["--data", seed, "--period", "all", "--output", out])
    assert result.exit_code == 0, result.output
    return out / "reports" / "all", result


def test_seed_builds_all_four_pdfs(seed_build):
    folder, result = seed_build
    for a in AUDIENCES:
        title = DEFAULT_AUDIENCES[a].title
        text = pdf_text(folder / f"{a}.pdf")
        assert text.startswith(title) and "Period: 10 May 2023 – 1 Jul 2025" in text and "page 1 of" in text
        html = (folder / "html" / f"{a}.html").read_text()
        assert f"<h1>{title.replace('&', '&amp;')}</h1>" in html
    assert "done in" in result.output


def test_seed_kpis_in_the_pdf_text(seed_build):
    folder, _ = seed_build
    it = pdf_text(folder / "it.pdf")
    assert "IT & operations weekly" in it and "page 1 of" in it
    assert "Requests 13" in it and "Server errors (5xx) 2" in it and "payment-api" in it
    ux = pdf_text(folder / "ux.pdf")
    assert "1,117.0 ms" in ux                               # mean page load
    assert "Clicks 20" in ux and "Unique users 12" in ux and "add_to_cart_button" in ux
    assert "1,213.19" in ux and "Average items per cart 2.4" in ux
    assert "Average duration 5.0 min" in ux and "Top drop-off page checkout" in ux
    assert "Average rating 3.00 / 5" in ux
    assert "Appendix: data quality" in ux
    assert "system_metrics" in ux and "missing: no file supplied" in ux


def test_executive_is_short(seed_build):
    folder, _ = seed_build
    assert len(PdfReader(folder / "executive.pdf").pages) <= 4
    text = pdf_text(folder / "executive.pdf")
    assert "Headline KPIs" in text and "What stands out" in text


def test_kpis_json_and_manifest(seed_build):
    folder, _ = seed_build
    doc = json.loads((folder / "kpis.json").read_text())
    assert doc["period"]["id"] == "all"
    assert doc["kpis"]["api.requests"] == {"value": 13, "previous": None, "unit": "count",
                                           "better": None,
                                           "status": None}
    assert doc["kpis"]["api.server_errors"]["value"] == 2
    assert doc["kpis"]["clicks.top_element"]["value"] == "add_to_cart_button"
    assert doc["data_quality"]["api_logs"]["valid"] == 13
    assert doc["data_quality"]["system_metrics"]["status"] == "absent"
    assert doc["insights"] and {"severity", "domain", "text"} <= set(doc["insights"][0])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["inputs"]["api_logs"]["rows"] == 13
    assert set(manifest["outputs"]) >= {f"{a}.pdf" for a in AUDIENCES} | {"kpis.json"}
    assert not [p for p in folder.rglob("*.tmp")]


@pytest.fixture
def seed_copy(tmp_path):
    seed = require_seed()
    data = tmp_path / "data"
    shutil.copytree(seed, data)
    return data


def test_hostile_feedback_text_is_literal_and_embeds_nothing(seed_copy, tmp_path):
    evil = 'Terrible <a rel="attachment" href="file:///etc/passwd">click</a> {{ 7*7 }}'
    quoted = '"' + evil.replace('"', '""') + '"'
    with open(seed_copy / "user_feedback.csv", "a") as fh:
        fh.write(f"user011,2025-06-28T10:50:00,{quoted},1\n")
    with open(seed_copy / "page_load_times.csv", "a") as fh:
        fh.write(f"{quoted},2025-07-01 12:10:00,9000\n")
    out = tmp_path / "out"
    result = run(build_report, ["--data", seed_copy, "--period", "all", "--output", out,
                                "--audience", "ux"])
    assert result.exit_code == 0, result.output
    pdf = out / "reports" / "all" / "ux.pdf"
    text = pdf_text(pdf)
    assert text.count("{{ 7*7 }}") >= 2 and 'rel="attachment"' in text
    reader = PdfReader(pdf)
    assert not reader.attachments
    assert b"/EmbeddedFile" not in pdf.read_bytes()
    html = (out / "reports" / "all" / "html" / "ux.html").read_text()
    assert "&lt;a rel=&#34;attachment&#34;" in html and "<a rel" not in html


def test_missing_column_warns_builds_the_rest_and_strict_stops(seed_copy, tmp_path):
    (seed_copy / "api_logs.csv").write_text("timestamp,endpoint\n2025-06-28T09:00:00,/x\n")
    out = tmp_path / "out"
    result = run(build_report, ["--data", seed_copy, "--period", "all", "--output", out,
                                "--format", "html", "--audience", "it"])
    assert result.exit_code == 0
    assert "warning:" in result.output and "'response_time_ms'" in result.output
    html = (out / "reports" / "all" / "html" / "it.html").read_text()
    assert "Not loaded." in html and "columns found: &#39;timestamp&#39;, &#39;endpoint&#39;" in html
    strict = run(build_report, ["--data", seed_copy, "--period", "all", "--output", out,
                                "--strict"])
    assert strict.exit_code == 2 and "Traceback" not in strict.output
    assert "api_logs.csv has no column" in strict.output


def test_rejected_rows_are_written_and_counted(seed_copy, tmp_path):
    with open(seed_copy / "api_logs.csv", "a") as fh:
        fh.write("2025-06-28T09:16:00,/get_product,200,-4,product-api\n"
                 "not-a-date,/get_product,200,10,product-api\n")
    out = tmp_path / "out"
    result = run(build_report, ["--data", seed_copy, "--period", "all", "--output", out,
                                "--format", "html", "--audience", "it"])
    assert result.exit_code == 0, result.output
    folder = out / "reports" / "all"
    rejected = (folder / "rejected" / "api_logs.csv").read_text().splitlines()
    assert rejected[0] == "row,timestamp,endpoint,status_code,response_time_ms,service_name,reason"
    assert rejected[1] == "15,2025-06-28T09:16:00,/get_product,200,-4,product-api,negative response_time_ms"
    assert rejected[2] == "16,not-a-date,/get_product,200,10,product-api,unparseable timestamp"
    doc = json.loads((folder / "kpis.json").read_text())
    assert doc["data_quality"]["api_logs"]["rejected"] == {"negative response_time_ms": 1,
                                                           "unparseable timestamp": 1}
    assert doc["kpis"]["api.requests"]["value"] == 13
    html = (folder / "html" / "it.html").read_text()
    assert "negative response_time_ms: 1" in html


@pytest.mark.parametrize("args, words", [
    (["--period", "yesterday"], "is not one of"),
    (["--audience", "board"], "Unknown audience board"),
    (["--data", "/nonexistent/folder"], "does not exist"),
    (["--config", "/nonexistent/report.toml"], "does not exist"),
])
def test_usage_errors_are_one_sentence_exit_2(seed_copy, tmp_path, args, words):
    base = ["--data", seed_copy, "--output", tmp_path / "out"]
    result = run(build_report, base + args)
    assert result.exit_code == 2, result.output
    assert words in result.output and "Traceback" not in result.output


def test_validate_prints_table_and_writes_nothing(seed_copy, tmp_path):
    result = run(main, ["validate", "--data", seed_copy])
    assert result.exit_code == 0, result.output
    assert "api_logs" in result.output and "all rows valid" in result.output
    assert sorted(p.name for p in seed_copy.iterdir()) == sorted(
        p.name for p in (Path(__file__).resolve().parent.parent.parent / "shared" /
                         "seed-data").iterdir())
    (seed_copy / "clickstream.csv").write_text("user_id,when\n")
    bad = run(main, ["validate", "--data", seed_copy])
    assert bad.exit_code == 2 and "clickstream.csv has no column" in bad.output


def test_simulated_week_builds_with_previous_period(tmp_path):
    data = tmp_path / "data"
    simulate(data, weeks=2, scale="tiny", seed=5)
    out = tmp_path / "out"
    result = run(main, ["build", "--data", data, "--output", out, "--audience", "executive",
                        "--audience", "it"])
    assert result.exit_code == 0, result.output
    folder = out / "reports" / "2026-W44"           # latest: the second simulated week
    doc = json.loads((folder / "kpis.json").read_text())
    assert doc["period"]["previous_id"] == "2026-W43"
    assert doc["kpis"]["api.requests"]["previous"] > 0
    assert len(PdfReader(folder / "executive.pdf").pages) <= 4
    assert (folder / "it.pdf").exists() and not (folder / "ux.pdf").exists()
    assert "vs" in pdf_text(folder / "executive.pdf")
    # No incident this week: the executive summary spends no room on an empty timeline.
    assert "incidents_timeline" not in (folder / "html/executive.html").read_text()
    assert "incidents_timeline" in (folder / "html/it.html").read_text()


def test_an_incident_opens_the_executive_summary(tmp_path):
    simulate(tmp_path / "data", weeks=3, scale="tiny", seed=14, fmt="parquet")
    out = tmp_path / "out"
    result = run(main, ["build", "--data", tmp_path / "data", "--output", out,
                        "--audience", "executive", "--period", "2026-W45"])
    assert result.exit_code == 0, result.output
    folder = out / "reports" / "2026-W45"
    doc = json.loads((folder / "kpis.json").read_text())
    assert len(doc["incidents"]) == 1 and doc["insights"][0]["domain"] == "incidents"
    first_page = PdfReader(folder / "executive.pdf").pages[0].extract_text()
    assert "Wed 4 Nov 10:00–12:00: payment-api" in " ".join(first_page.split())
    assert "incidents_timeline" in (folder / "html/executive.html").read_text()
