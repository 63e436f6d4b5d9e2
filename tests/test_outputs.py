"""One period, one consistent set of files: rebuilds leave nothing that disagrees."""
from __future__ import annotations

import json

from click.testing import CliRunner

from reporting.cli import build_report, main
from reporting.simulate import simulate


def build(data, out, *args):
    result = CliRunner().invoke(build_report, ["--data", str(data), "--output", str(out),
                                               "--period", "2026-W43", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def test_a_rebuild_from_other_data_leaves_no_disagreeing_pdf_and_send_refuses(tmp_path):
    simulate(tmp_path / "a", weeks=1, scale="tiny", seed=3)
    simulate(tmp_path / "b", weeks=1, scale="tiny", seed=4)
    out = tmp_path / "out"
    folder = out / "reports" / "2026-W43"
    build(tmp_path / "a", out, "--format", "pdf", "-a", "executive", "-a", "it")
    assert (folder / "executive.pdf").exists()
    # Rebuilt as HTML from other data: the PDFs of the first build disagree and go.
    shown = build(tmp_path / "b", out, "--format", "html", "-a", "executive").output
    assert not (folder / "executive.pdf").exists() and not (folder / "it.pdf").exists()
    assert "executive.html" in shown            # the files table names the HTML too
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sorted(manifest["outputs"]) == ["html/executive.html", "kpis.json"] + sorted(
        f"rejected/{p.name}" for p in (folder / "rejected").glob("*.csv"))
    sent = CliRunner().invoke(main, ["send", "-p", "2026-W43", "-a", "executive",
                                     "--output", str(out)])
    assert sent.exit_code == 2 and "build the PDF before sending" in sent.output
    assert not (out / "outbox").exists()


def test_a_partial_rebuild_from_the_same_data_keeps_and_lists_the_other_pdfs(tmp_path):
    simulate(tmp_path / "a", weeks=1, scale="tiny", seed=3)
    out = tmp_path / "out"
    folder = out / "reports" / "2026-W43"
    build(tmp_path / "a", out, "--format", "pdf", "-a", "executive", "-a", "it")
    first = json.loads((folder / "manifest.json").read_text())
    build(tmp_path / "a", out, "--format", "pdf", "-a", "executive")
    second = json.loads((folder / "manifest.json").read_text())
    assert second["outputs"]["it.pdf"] == first["outputs"]["it.pdf"]     # the earlier build
    assert second["outputs"]["executive.pdf"]["build"] == second["built_at"]
    assert second["outputs"]["it.pdf"]["kpis"] == second["kpis"]
    sent = CliRunner().invoke(main, ["send", "-p", "2026-W43", "--output", str(out),
                                     "-a", "it"])
    assert sent.exit_code == 0, sent.output


def test_send_refuses_a_pdf_whose_build_differs_from_its_kpis(tmp_path):
    simulate(tmp_path / "a", weeks=1, scale="tiny", seed=3)
    out = tmp_path / "out"
    folder = out / "reports" / "2026-W43"
    build(tmp_path / "a", out, "--format", "pdf", "-a", "it")
    doc = json.loads((folder / "kpis.json").read_text())
    doc["kpis"]["api.requests"]["value"] += 1          # kpis.json of another build
    (folder / "kpis.json").write_text(json.dumps(doc))
    sent = CliRunner().invoke(main, ["send", "-p", "2026-W43", "--output", str(out)])
    assert sent.exit_code == 2
    assert "was not built from the KPIs in" in " ".join(sent.output.split())
    assert not (out / "outbox").exists()
