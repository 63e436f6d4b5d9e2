"""The README's pictures are `make pictures`'s output on the current code: the test builds
the shipped sample as `make report` does and compares the pages taken and the incident
sentence with docs/pictures.json (not pixels), and page 1 of the executive PDF names it."""
from __future__ import annotations

import importlib.util
import json
import math
import struct
from pathlib import Path

import pytest
from pypdf import PdfReader

from reporting.build import build
from reporting.core.config import Config

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def pictures_module():
    spec = importlib.util.spec_from_file_location("pictures", DOCS / "pictures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """What `make report` builds on a fresh clone: the shipped sample, period latest."""
    out = tmp_path_factory.mktemp("report")
    return build(Config(), period="latest", data_dir=ROOT / "data", output_dir=out,
                 fmt="pdf").folder


def test_page_1_of_the_executive_report_names_the_incident(report):
    incident = json.loads((report / "kpis.json").read_text())["incidents"][0]["text"]
    assert incident.startswith("Wed 11 Nov 10:00–12:00: payment-api 5xx at")
    page1 = " ".join(PdfReader(report / "executive.pdf").pages[0].extract_text().split())
    assert incident in page1          # "What stands out" opens with it


def test_the_stored_pictures_json_is_what_the_current_code_gives(report):
    stored = json.loads((DOCS / "pictures.json").read_text())
    assert pictures_module().describe(report) == stored, \
        "docs/ is stale: run `make pictures` and commit docs/"
    assert stored["period"] == "2026-W46" and stored["executive"]["page"] == 1


def test_the_pngs_are_those_pages_at_the_targets_resolution_and_small():
    module = pictures_module()
    stored = json.loads((DOCS / "pictures.json").read_text())
    total = 0
    for audience in ("executive", "it"):
        png = DOCS / stored[audience]["png"]
        head = png.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        # A4 at the target's dpi, rounded up as pdftoppm does: 595.3 x 841.9 pt -> 497 x 702
        assert struct.unpack(">II", head[16:24]) == (
            math.ceil(595.2756 * module.DPI / 72), math.ceil(841.8898 * module.DPI / 72))
        total += png.stat().st_size
    assert total < 300 * 1024, total


def test_the_readme_opens_with_both_pictures():
    readme = (ROOT / "README.md").read_text()
    head = readme[:readme.index("## Two commands")]
    stored = json.loads((DOCS / "pictures.json").read_text())
    for audience in ("executive", "it"):
        assert f"](docs/{stored[audience]['png']})" in head
