"""The section registry: its contract, and a section added by one entry and one function."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from pypdf import PdfReader

from reporting.build import build
from reporting.compute import sections
from reporting.compute.context import BuildContext
from reporting.core import registry
from reporting.core.config import Config
from reporting.core.errors import ConfigError
from reporting.core.periods import resolve
from reporting.core.registry import PARTS, SectionSpec, names
from reporting.core.values import KPI, Section, Table
from reporting.present import html

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")   # its Sections table
TESTS = [p.stem for p in (ROOT / "tests").rglob("test_*.py")]


def problems(spec: SectionSpec, is_part: bool = False) -> list[str]:
    """What a registry entry lacks: compute, a reachable template, a README row, tests."""
    out = []
    env = html.environment()
    if not is_part and not callable(spec.compute):
        out.append("no compute")
    try:
        env.select_template(spec.templates)
    except Exception:
        out.append("no template")
    if not re.search(rf"^\| `{re.escape(spec.name)}` \|", README, re.M):
        out.append("no README row")
    if not is_part and not any(spec.name in name.split("_") for name in TESTS):
        out.append("no unit test module")
    return out


@pytest.mark.parametrize("spec", sections.SECTIONS, ids=lambda s: s.name)
def test_every_section_has_compute_template_readme_row_and_tests(spec):
    assert problems(spec) == []


@pytest.mark.parametrize("spec", PARTS, ids=lambda s: s.name)
def test_every_page_part_has_its_template_and_readme_row(spec):
    assert problems(spec, is_part=True) == []


def test_the_contract_catches_a_half_added_section():
    half = SectionSpec("half_done", "Half", (), None, template="sections/nope.html")
    assert problems(half) == ["no compute", "no template", "no README row",
                              "no unit test module"]
    generic = SectionSpec("half_done", "Half", (), lambda *a: None)
    assert "no template" not in problems(generic)      # the generic partial is reachable


def test_the_registry_knows_the_built_in_names_without_importing_them():
    """Configs are checked against BUILT_IN_NAMES before the sections are imported; they
    must be the built-in entries' names, in page order."""
    assert list(registry.BUILT_IN_NAMES) == [s.name for s in sections.SECTIONS]


def test_config_validates_section_names_against_the_registry():
    assert names() == (
        "overview", "insights", "api", "pages", "clicks", "cart", "orders", "sessions",
        "feedback", "support", "system", "incidents", "trends", "data_quality")
    with pytest.raises(ConfigError, match="unknown section.s. toy; known: overview"):
        Config.from_dict({"audiences": {"x": {"sections": ["overview", "toy"]}}})


def test_a_missing_source_gives_a_no_data_section_and_others_still_compute():
    p = resolve("2026-W45", Config().tz, None)
    frame = pd.DataFrame({"timestamp": [p.start], "page": ["home"], "user_id": ["u1"],
                          "element_clicked": ["buy"], "session_id": [None]})
    done = sections.compute_all({"clickstream": frame}, BuildContext.without_archive(p))
    assert done["clicks"].kpi("clicks.total").value == 1
    assert done["api"].status == "no data" and done["api"].kpis == ()
    assert list(done) == [s.name for s in sections.SECTIONS]


def toy(frames, ctx, earlier):
    """Counts the API requests of the period (the toy section's one function), from the
    api_logs rollup's per-slot counts."""
    n = int(frames["api_logs"].table("times", ctx.period.start, ctx.period.end)["n"].sum())
    return Section("toy", "Toy requests", kpis=(KPI("toy.requests", "Toy request count", n,
                                                    None, "count", None),),
                   tables=(Table("t", "Toy table", pd.DataFrame({"requests": [n]})),))


def test_a_toy_section_from_one_entry_and_one_function_reaches_the_pdf(monkeypatch, tmp_path):
    monkeypatch.setattr(sections, "SECTIONS", [
        *sections.SECTIONS, SectionSpec("toy", "Toy requests", ("api_logs",), toy)])
    config = Config.from_dict({"audiences": {"toy_readers": {"sections": ["toy"]}}})
    result = build(config, period="2026-W46", audiences=["toy_readers"], fmt="pdf",
                   data_dir=ROOT / "data", output_dir=tmp_path)
    text = "\n".join(p.extract_text() for p in PdfReader(result.folder / "toy_readers.pdf").pages)
    requests = result.document["kpis"]["api.requests"]["value"]
    assert "Toy requests" in text and "Toy table" in text
    assert f"Toy request count {requests:,}" in text
    assert result.document["kpis"]["toy.requests"]["value"] == requests > 0


def test_the_readme_kpi_table_lists_every_catalogue_key():
    """Issue 31: each domain's catalogue is the KPI table's row for it (docs/kpis.md), in
    order (a new KPI without a row fails here)."""
    table = (ROOT / "docs" / "kpis.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(\w+)` \| ([`*].*?) \| .*\|$", table, re.M))
    for spec in sections.SECTIONS:
        module = sys.modules.get(spec.compute.__qualname__.rsplit(".", 1)[0])
        if module is None or not hasattr(module, "CATALOGUE"):
            continue
        listed = re.findall(r"`(\w+)`", rows[spec.name])
        assert listed == [m.name for m in module.CATALOGUE], spec.name
