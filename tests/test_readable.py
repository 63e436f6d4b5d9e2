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
from reporting.core import formatting
from reporting.core.config import Config
from reporting.present import html as render
from reporting.present import pdf

ROOT = Path(__file__).resolve().parent.parent
AUDIENCES = ("executive", "ux", "it", "support")
PT_PER_PX = 0.75                     # CSS: 96 px = 72 pt
FONT = re.compile(r"font(?:-size)?:[^;\"]*?([\d.]+)px")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The sample's latest week, HTML and PDF, for every audience: its report folder (the
    week before as HTML, so the index draws its KPI history)."""
    out = tmp_path_factory.mktemp("readable")
    build(Config(), period="2026-W45", fmt="html", data_dir=ROOT / "data", output_dir=out)
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


# --- tiles: each line on one line ---------------------------------------------------------

# The executive's tiles as a German page would label them (~30-50 % longer than English),
# with money in EUR: "Open backlog at period end" wrapped even in English before.
GERMAN = [
    ("Umsatz", 163172.06, 138637.92, "EUR", "good"),
    ("Konversion (Bestellungen / Sitzungen)", 0.137, 0.138, "ratio", None),
    ("Verbrauchtes Fehlerbudget", 1.10, 0.58, "ratio", "bad"),
    ("Wert abgebrochener Warenkörbe", 163172.06, 138637.92, "EUR", "warn"),
    ("Offener Rückstand zum Periodenende", 13, 16, "count", None),
    ("Durchschnittliche Bearbeitungszeit", 1234567.8, 1034567.8, "ms", "bad"),
    ("Feedback-CSAT (4–5 Sterne)", 0.375, 0.427, "ratio", "bad"),
    ("Open backlog at period end", 13, 16, "count", None),
]


def tile_page(css: str, kpis: list[tuple]) -> str:
    """The tiles macro with `kpis` (label, value, previous, unit, status) on a page with
    the report's own style sheet."""
    env = render.environment()
    env.install_null_translations(newstyle=True)      # the tiles' words in English
    views = [{"label": label, "value": value, "previous": previous, "unit": unit,
              "status": status, **formatting.change_view(value, previous, unit, "higher")}
             for label, value, previous, unit, status in kpis]
    tiles = env.get_template("sections/_macros.html").module.tiles(views)
    return f"<html><head><style>{css}</style></head><body>{tiles}</body></html>"


def most_lines(box: Any) -> int:
    """The most lines any block inside `box` is set on (a flex value and its status are
    two blocks of one line each)."""
    lines = sum(type(c).__name__ == "LineBox" for c in getattr(box, "children", ()) or ())
    return max([lines] + [most_lines(c) for c in getattr(box, "children", ()) or ()])


def tile_lines(doc: Any) -> list[tuple[str, str, int, float]]:
    """Per tile line (label, value, comparison): its text, the most lines a block of it is
    set on, and how far its text reaches past the tile's inside (pt; <= 0: it fits)."""
    out = []
    for box in (b for page in doc.pages for b in boxes(page._page_box)):
        if box.element_tag != "div" or "tile" not in box.element.get("class", "").split():
            continue
        right = box.content_box_x() + box.width
        for part in box.children:
            lines = most_lines(part)
            texts = [b for b in boxes(part) if type(b).__name__ == "TextBox"]
            reach = max(t.position_x + t.width for t in texts) - right
            out.append((part.element.get("class").split()[0],
                        " ".join(t.text for t in texts), lines, reach * PT_PER_PX))
    return out


def report_css(built: Path) -> str:
    html = (built / "html" / "executive.html").read_text()
    return html[html.index("<style>") + 7:html.index("</style>")]


def test_the_executive_tiles_hold_each_line_on_one_line(built):
    found = tile_lines(laid_out(built / "html" / "executive.html"))
    assert len(found) == 3 * 16                  # 12 headline tiles and 4 support tiles
    assert [f for f in found if f[2] != 1 or f[3] > 0.5] == []


def test_german_length_labels_and_euro_values_stay_on_one_line(built, tmp_path):
    from weasyprint import HTML

    doc = HTML(string=tile_page(report_css(built), GERMAN), base_url=str(tmp_path)).render()
    found = tile_lines(doc)
    assert len(found) == 3 * len(GERMAN)
    assert [f for f in found if f[2] != 1 or f[3] > 0.5] == []
    sizes = {b.element.text: b.style["font_size"] * PT_PER_PX for b in boxes(
        doc.pages[0]._page_box) if b.element_tag == "div" and b.element.get("class") == "label"}
    # the longest (19.1 em) shrinks to the tile's 108 pt; a short one keeps its 7 pt
    assert round(sizes["Konversion (Bestellungen / Sitzungen)"], 2) == round(108 / 19.12, 2)
    assert round(sizes["Umsatz"], 6) == 7.0


def test_a_label_too_long_to_shrink_wraps_inside_its_tile(built, tmp_path):
    from weasyprint import HTML

    label = "Offener Rückstand am Ende des Zeitraums"      # 21.6 em: 5.0 pt, under 5.4
    doc = HTML(string=tile_page(report_css(built), [(label, 13, 16, "count", None)]),
               base_url=str(tmp_path)).render()
    (_, text, lines, reach), *rest = tile_lines(doc)
    assert (text, lines) == (label, 2) and reach <= 0.5
    assert all(r[2] == 1 for r in rest)


# --- the glossary: one table, not a spill of a few rows --------------------------------------

def glossary_pages(doc: Any) -> dict[int, int]:
    """Page number -> glossary rows (not its heading row) laid out on it."""
    out: dict[int, int] = {}
    rows: set[int] = set()
    for number, page in enumerate(doc.pages, 1):
        for box in boxes(page._page_box):
            if box.element_tag == "section" and box.element.get("class") == "glossary":
                body = box.element.find(".//tbody")
                rows = {id(tr) for tr in body.iter("tr")}
            if box.element_tag == "tr" and id(box.element) in rows:
                out[number] = out.get(number, 0) + 1
    return out


@pytest.mark.parametrize("audience", AUDIENCES)
def test_the_glossary_is_laid_out_on_one_page(built, audience):
    # UX page 8 and executive page 5 held one glossary row each (issue 32); the sample's
    # glossaries (up to 31 rows) each fit a page, so each is on one page whole.
    doc = laid_out(built / "html" / f"{audience}.html")
    pages = glossary_pages(doc)
    assert len(pages) == 1 and sum(pages.values()) >= 8, pages


# --- on a screen: chart text at least 11 CSS px, a phone's too ------------------------------

@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from .browser import chromium

    with chromium(tmp_path_factory.mktemp("chromium")) as driver:
        yield driver


def shown_chart_text(driver: Any, url: str, width: int, folder: Path) -> dict[str, float]:
    """Each chart's smallest text in CSS px as the page shows it at `width` px: its size
    in the SVG chosen (a phone gets the narrow variant) times shown / natural width."""
    from .browser import open_page, set_width

    set_width(driver, width)
    assert open_page(driver, url) == []
    shown = driver.execute_script(
        "return [...document.images].filter(i => i.currentSrc.endsWith('.svg'))"
        ".map(i => [i.currentSrc, i.getBoundingClientRect().width, i.naturalWidth])")
    out = {}
    for src, on_page, natural in shown:
        svg = folder / src[len(folder.as_uri()) + 1:]
        own, sizes = svg_text_sizes(svg)
        # an SVG's own unit is a pt: 4/3 CSS px at its natural size
        out[svg.relative_to(folder).as_posix()] = min(sizes) * 4 / 3 * on_page / natural
    return out


@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("page", ["reports/2026-W46/html/it.html",
                                  "reports/2026-W46/html/executive.html", "index.html"])
def test_chart_text_on_screen_is_at_least_11_px(built, browser, page, width):
    root = built.parents[1]
    sizes = shown_chart_text(browser, (root / page).as_uri(), width, root)
    assert sizes, "no charts found"
    if width == 390 and page != "index.html":
        assert [n for n in sizes if "/narrow/" not in n] == []       # the phone variant
    small = {name: round(px, 1) for name, px in sizes.items() if px < 11}
    assert small == {}
