"""Visual regression (issue 32, point 4): page 1 of each audience's PDF and the site at
1280 and 390 px, against the PNGs stored in tests/visual/. An unintended layout change
fails here; `make visual-baseline` rewrites the stored PNGs after an intended one."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .visual import render as visual


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    """One build and one set of pictures for every comparison."""
    return visual.render(tmp_path_factory.mktemp("visual"))


@pytest.mark.parametrize("name", visual.names())
def test_page_matches_its_stored_picture(name, rendered, tmp_path):
    stored = visual.HERE / name
    assert stored.exists(), f"{stored} is missing: run `make visual-baseline`"
    ratio = visual.difference(rendered[name], stored)
    if ratio > visual.TOLERANCE:
        kept = shutil.copyfile(rendered[name], tmp_path / name)
        pytest.fail(f"{name}: {ratio:.2%} of the pixels differ from {stored} (tolerance "
                    f"{visual.TOLERANCE:.0%}); this build's picture is {kept}. If the "
                    "change is intended, run `make visual-baseline`.")


def test_the_it_reports_first_page_holds_the_incident_timeline(rendered):
    # It used to start page 2, leaving half of page 1 blank (issue 32).
    page1 = subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(rendered["it.pdf"]), "-"],
                           capture_output=True, text=True, check=True).stdout
    assert "API errors, abandoned carts and negative feedback per hour" in page1
    assert "payment-api 5xx rate (%)" in page1       # the service the sentence names


def _picture(path: Path, shift: int = 0) -> Path:
    """A white page with a black block, moved down by `shift` px."""
    pixels = np.full((100, 80, 3), 255, np.uint8)
    pixels[20 + shift:40 + shift, 10:70] = 0
    Image.fromarray(pixels).save(path)
    return path


def test_the_comparison_sees_a_moved_block_and_ignores_faint_noise(tmp_path):
    base = _picture(tmp_path / "a.png")
    assert visual.difference(base, base) == 0.0
    # moved 4 px: 2 strips of 4 x 60 px change, 480 of 8,000 pixels = 6 %
    assert visual.difference(base, _picture(tmp_path / "b.png", 4)) == 0.06
    noisy = np.asarray(Image.open(base), dtype=np.int16) + 20     # anti-aliasing shades
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(tmp_path / "c.png")
    assert visual.difference(base, tmp_path / "c.png") == 0.0
    Image.new("RGB", (80, 99), "white").save(tmp_path / "d.png")
    assert visual.difference(base, tmp_path / "d.png") == 1.0     # a page size change


def test_money_tiles_with_a_currency_keep_value_and_comparison_on_one_line(tmp_path):
    # With currency = "EUR" the abandoned-value tile wrapped "EUR" and its comparison.
    from reporting.build import build
    from reporting.core.config import Config
    result = build(Config.from_dict({"currency": "EUR"}), period="latest",
                   audiences=["executive"], fmt="pdf", data_dir=visual.ROOT / "data",
                   output_dir=tmp_path)
    pdf = next(p for p in result.files if p.suffix == ".pdf")
    lines = subprocess.run(["pdftotext", "-layout", "-f", "1", "-l", "1", str(pdf), "-"],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert any("163,172.06 EUR" in line for line in lines)
    assert any("vs 138,637.92 EUR" in line for line in lines)
    assert any("▼ −3.1 % vs 92,929.66 EUR" in line for line in lines)
    assert not any(line.strip() == "EUR" for line in lines)
