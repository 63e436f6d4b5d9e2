"""The charts' house theme: colours, text sizes, the figure's width being drawn."""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import matplotlib

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000"]
SENTIMENT = {"negative": "#D55E00", "neutral": "#BBBBBB", "positive": "#009E73"}
INK = "#333333"
# The least text size in a chart, in points of the figure: a figure WIDTH wide fills the
# page's text width (510 pt, a scale of 1.01), so every label prints at 9 pt or more.
SMALL = 9.0
THEME = {
    "font.family": "DejaVu Sans", "font.size": SMALL, "axes.titlesize": 10.5,
    "axes.titleweight": "bold", "axes.titlelocation": "left", "axes.titlepad": 8,
    "axes.edgecolor": "#999999", "axes.labelcolor": INK, "axes.labelsize": SMALL,
    "xtick.color": INK, "ytick.color": INK, "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.color": "#E5E5E5",
    "grid.linewidth": 0.6, "axes.axisbelow": True, "axes.prop_cycle":
    matplotlib.cycler(color=PALETTE), "svg.fonttype": "none", "legend.frameon": False,
    "legend.fontsize": SMALL, "figure.dpi": 100, "svg.hashsalt": "reporting",
    "text.parse_math": False,   # page names and endpoints are data: "$" is not mathtext
    # laid_out's own tight_layout only (a matplotlibrc's autolayout would lay out again)
    "figure.autolayout": False, "figure.constrained_layout.use": False,
}
WIDTH = 7.0          # inches: the A4 text width at our margins
# inches: a phone's ~370 px column shows a figure this wide at ~its own size, so its 9 pt
# text is ~11.5 CSS px (a WIDTH one shrank to 6 px); the site's pages pick it by media query
NARROW = 3.9
_WIDTH = contextvars.ContextVar("chart_width", default=WIDTH)


def width() -> float:
    """The width of the figure being drawn: WIDTH, or NARROW for a phone's variant."""
    return _WIDTH.get()


def is_narrow() -> bool:
    return width() < WIDTH


@contextlib.contextmanager
def drawn_at(inches: float) -> Iterator[None]:
    """Figures made inside are `inches` wide (`width()` says it)."""
    token = _WIDTH.set(inches)
    try:
        yield
    finally:
        _WIDTH.reset(token)


MAX_LABEL = 38      # characters of a bar's or a mark's label; half that on a narrow figure


def short(label: object) -> str:
    text = str(label)
    most = MAX_LABEL if not is_narrow() else MAX_LABEL // 2
    return text if len(text) <= most else text[:most - 1] + "…"
