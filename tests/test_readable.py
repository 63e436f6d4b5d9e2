"""Pages that read right on paper (issue 32, point 3), measured on the sample's latest week
as WeasyPrint lays it out: chart text as placed on the page (an SVG drawn W pt wide from a
figure F pt wide scales its fonts by W / F), the glossary never split into a short spill,
and tile labels and values on one line each, also at labels 30 % longer (German)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reporting.build import build
from reporting.core.config import Config
from reporting.present import html as render
from reporting.present import pdf

ROOT = Path(__file__).resolve().parent.parent
AUDIENCES = ("executive", "ux", "it", "support")
PT_PER_PX = 0.75                     # CSS: 96 px = 72 pt
FONT = re.compile(r"font(?:-size)?:[^;\"]*?([\d.]+)px")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The sample's latest week, HTML and PDF, for every audience: its report folder."""
    out = tmp_path_factory.mktemp("readable")
    result = build(Config(), period="latest", data_dir=ROOT / "data", output_dir=out)
    return result.folder


def boxes(box: Any) -> Iterator[Any]:
    """A layout box and every box inside it."""
    yield box
    for child in getattr(box, "children", None) or ():
        yield from boxes(child)


def laid_out(html: Path) -> Any:
    """The report page as the PDF lays it out (print media, the same URL rules)."""
    from weasyprint import HTML

    roots = [html.parent, render.template_dir(), html.parents[3] / "assets"]
    return HTML(filename=str(html), url_fetcher=pdf.fetcher(roots)).render()


def svg_text_sizes(svg: Path) -> tuple[float, list[float]]:
    """An SVG's width in its own units (matplotlib's: pt) and the sizes of its text."""
    text = svg.read_text()
    width = float(re.search(r'viewBox="[\d.]+ [\d.]+ ([\d.]+)', text).group(1))
    return width, [float(s) for s in FONT.findall(text)]


def placed_chart_text(doc: Any, folder: Path) -> dict[str, float]:
    """Each chart's smallest text in pt as printed: its size in the SVG times the scale
    the page gives the picture (placed width / the SVG's own width)."""
    out = {}
    for page in doc.pages:
        for box in boxes(page._page_box):
            src = box.element.get("src", "") if box.element_tag == "img" else ""
            if src.endswith(".svg"):
                width, sizes = svg_text_sizes(folder / src)
                out[Path(src).stem] = min(sizes) * box.width * PT_PER_PX / width
    return out


@pytest.mark.parametrize("audience", AUDIENCES)
def test_every_chart_prints_its_text_at_9_pt_or_more(built, audience):
    html = built / "html" / f"{audience}.html"
    sizes = placed_chart_text(laid_out(html), html.parent)
    assert sizes, "no charts found"
    small = {name: round(pt, 2) for name, pt in sizes.items() if pt < 9.0}
    assert small == {}, f"{audience}: chart text under 9 pt as printed"
