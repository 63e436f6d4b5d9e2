from __future__ import annotations

import pytest

from reporting.cli import build_report
from reporting.core.config import Thresholds
from reporting.core.values import KPI, Chart
from reporting.present import html
from reporting.present.glossary import entries
from reporting.present.html import flagged_insights
from reporting.present.pdf import allowed_path, fetcher
from reporting.simulate import simulate


def test_fetcher_serves_only_allowed_folders(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "chart.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    f = fetcher([run])
    assert f.fetch((run / "chart.svg").as_uri()).read().startswith(b"<svg")
    for url in ("file:///etc/passwd", "http://example.com/x.png", "https://example.com/",
                (run / ".." / "secret.txt").as_uri(), "ftp://example.com/x",
                (run / "missing.svg").as_uri()):
        with pytest.raises(ValueError):
            f.fetch(url)


def test_allowed_path_resolves_traversal(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b.txt").write_text("x")
    assert allowed_path(f"file://{tmp_path}/a/../b.txt", [tmp_path / "a"]) is None
    assert allowed_path(f"file://{tmp_path}/b.txt", [tmp_path]) == tmp_path / "b.txt"


def test_untrusted_text_is_escaped_and_never_evaluated():
    env = html.environment()
    t = env.from_string("{{ x }}")
    evil = '<a rel="attachment" href="file:///etc/passwd">x</a> {{ 7*7 }}'
    out = t.render(x=evil)
    assert "<a" not in out and "&lt;a rel=&#34;attachment&#34;" in out
    assert "{{ 7*7 }}" in out and "49" not in out


def test_templates_are_found(tmp_path):
    assert (html.template_dir() / "base.html").is_file()
    assert (html.template_dir() / "audiences" / "generic.html").is_file()


def test_a_warn_kpi_without_an_insight_gets_a_plain_sentence():
    burn = KPI("api.max_burn_rate", "Worst 1-hour burn rate", 12.0, None, "x", "warn", "down")
    csat = KPI("feedback.csat", "CSAT", 0.432, None, "ratio", "bad", "up")
    said = [{"domain": "feedback", "severity": "high", "text": "CSAT was 43.2 % (340 ...)."}]
    out = flagged_insights([burn, csat], said, {"api": "API reliability and latency"})
    assert [(i["severity"], i["text"]) for i in out] == [
        ("medium", "Worst 1-hour burn rate was 12.0x, just outside its target "
                   "(see API reliability and latency).")]


def test_pdfs_are_tagged_archival_and_every_figure_has_alt_text(tmp_path):
    from click.testing import CliRunner
    from pypdf import PdfReader

    simulate(tmp_path / "data", weeks=1, scale="tiny", seed=3)
    out = tmp_path / "out"
    result = CliRunner().invoke(build_report, ["--data", str(tmp_path / "data"), "--output",
                                               str(out), "--format", "pdf", "-a", "it"])
    assert result.exit_code == 0, result.output
    reader = PdfReader(out / "reports" / "2026-W43" / "it.pdf")
    root = reader.trailer["/Root"]
    assert root["/Lang"] == "en" and root["/MarkInfo"]["/Marked"]
    xmp = root["/Metadata"].get_object().get_data().decode()
    assert 'pdfaid:part="2" pdfaid:conformance="A"' in xmp         # PDF/A-2a
    assert "IT &amp; operations weekly" in xmp                    # dc:title
    figures = []

    def walk(node):
        node = node.get_object()
        if not hasattr(node, "keys"):
            return
        if node.get("/S") == "/Figure":
            figures.append(str(node.get("/Alt") or ""))
        kids = node.get("/K")
        for kid in kids if isinstance(kids, list) else [kids] if kids is not None else []:
            walk(kid)

    walk(root["/StructTreeRoot"])
    assert len(figures) >= 4 and all(figures)
    assert any(f.startswith("p95 latency by service (ms): ") and "target" in f
               for f in figures)


def test_alt_text_names_the_highest_bar_against_its_target():
    import pandas as pd

    c = Chart("pages_p75", "barh", "p75 load time by page (ms)",
              pd.DataFrame({"page_url": ["/checkout", "/", "/cart"],
                            "p75_ms": [3625.5, 1849.0, 2117.5]}),
              {"label": "page_url", "value": "p75_ms", "unit": "ms", "threshold": 2500.0})
    assert c.alt == ("p75 load time by page (ms): /checkout highest at 3,625.5 ms, above the "
                     "2,500.0 ms target (1 of 3 above it); / lowest at 1,849.0 ms.")


def test_the_glossary_says_what_a_kpi_counts_and_its_configured_target():
    csat = KPI("feedback.csat", "CSAT (4-5 stars)", 0.432, None, "ratio", "bad", "up")
    views = KPI("pages.views", "Page views", 13900, None, "count", None)
    slowest = KPI("pages.slowest_page", "Slowest page", "/checkout", None, "text", None)
    assert entries([csat, views, slowest, csat], Thresholds(csat=0.8)) == [
        {"label": "CSAT (4-5 stars)",
         "meaning": "Share of the feedback form's ratings with 4 or 5 stars (not the "
                    "tickets' CSAT).",
         "judged": "good ≥ 80.0 %, warn ≥ 70.0 % (thresholds.csat)."},
        {"label": "Page views", "meaning": "Page loads measured.", "judged": "–"}]
