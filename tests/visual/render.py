"""Page 1 of each audience's PDF and the site's index at a desktop and a phone width, as
PNGs, for the visual regression check (tests/test_visual.py).

`python -m tests.visual.render` (or `make visual-baseline`) rewrites the stored PNGs
beside this file; do that only for an intended change of layout, and look at them first.
"""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from unittest import mock

import numpy as np
from PIL import Image

from reporting.build import build
from reporting.core.config import Config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
AUDIENCES = ("executive", "ux", "it", "support")
WIDTHS = (1280, 390)             # CSS px: a laptop and a phone
DPI = 40                         # page 1 of A4 at 40 dpi: 331 x 468 px, enough for layout
NOW = datetime(2026, 11, 16, 6, 0, tzinfo=timezone.utc)   # "Generated" stays the same
TOLERANCE = 0.01                 # share of pixels that may differ (anti-aliasing, fonts)
CHANNEL = 48                     # a pixel differs when a channel moves more than this


def names() -> list[str]:
    """The stored pictures' names, one per audience and one per site width."""
    return [f"{a}.png" for a in AUDIENCES] + [f"site-{w}.png" for w in WIDTHS]


class _Frozen(datetime):
    """The build's clock stopped at NOW: "Generated" and the site's "updated" stay put."""

    @classmethod
    def now(cls, tz=None):   # noqa: D102 - datetime.now's own signature
        return NOW.astimezone(tz) if tz else NOW


def render(out: Path) -> dict[str, Path]:
    """Build the sample's latest week once into `out` and picture it: name -> PNG."""
    with mock.patch("reporting.build.datetime", _Frozen), \
            mock.patch("reporting.present.site.datetime", _Frozen):
        result = build(Config(), period="latest", data_dir=ROOT / "data",
                       output_dir=out / "build", now=NOW)
    pdfs = {p.stem: p for p in result.files if p.suffix == ".pdf"}
    shots = {}
    for audience in AUDIENCES:
        stem = out / audience
        subprocess.run(["pdftoppm", "-png", "-r", str(DPI), "-f", "1", "-l", "1",
                        "-singlefile", str(pdfs[audience]), str(stem)], check=True)
        shots[f"{audience}.png"] = stem.with_suffix(".png")
        shots[f"{audience}.pdf"] = pdfs[audience]
    index = (out / "build" / "index.html").resolve()
    for width in WIDTHS:
        shot = out / f"site-{width}.png"
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", "--force-device-scale-factor=1",
                        f"--user-data-dir={out / 'profile'}", f"--screenshot={shot}",
                        f"--window-size={width},1600", index.as_uri()],
                       check=True, capture_output=True, timeout=120)
        shots[shot.name] = shot
    return shots


_RENDERED: dict[Path, dict[str, Path]] = {}


def render_once(out: Path) -> dict[str, Path]:
    """render(out), once per folder."""
    if out not in _RENDERED:
        _RENDERED[out] = render(out)
    return _RENDERED[out]


def difference(a: Path, b: Path) -> float:
    """The share of pixels that differ between two PNGs (1.0 when the sizes differ)."""
    one = np.asarray(Image.open(a).convert("RGB"), dtype=np.int16)
    two = np.asarray(Image.open(b).convert("RGB"), dtype=np.int16)
    if one.shape != two.shape:
        return 1.0
    return float((np.abs(one - two).max(axis=2) > CHANNEL).mean())


def main() -> int:
    """Rewrite the stored PNGs from a fresh build."""
    import shutil   # lazy: only the rewrite copies files
    import tempfile  # lazy: only the rewrite needs a scratch folder
    with tempfile.TemporaryDirectory() as tmp:
        for name in names():
            path = render_once(Path(tmp))[name]
            shutil.copyfile(path, HERE / name)
            print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
