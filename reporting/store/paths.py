"""Where a build's files go: report and rollup folders by period id, and paths that stay
inside the output folder (a tampered archive index cannot point elsewhere)."""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..core.errors import ReportError

# 2026-W46, 2026-11-01_2026-11-30, all (periods.py makes no other ids)
PERIOD_ID = re.compile(r"\d{4}-W\d{2}|\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}|all")


def check_period_id(text: str) -> str:
    """A period id as archived (2026-W46, 2026-11-01_2026-11-30 or all), in any letter case
    (2026-w46 is 2026-W46), else one sentence."""
    canonical = text.strip().upper().replace("ALL", "all") if isinstance(text, str) else ""
    if not PERIOD_ID.fullmatch(canonical):
        raise ReportError(f"{str(text)[:80]!r} is not a period id; ids look like 2026-W46, "
                          "2026-11-01_2026-11-30 or all (`reporting archive list` shows them).")
    return canonical


def inside(root: Path, path: Path) -> Path:
    """`path` when it stays inside `root` once `..` and links are resolved (both relative
    to the working folder, as given); otherwise one sentence, nothing touched."""
    root_real = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    if real != root_real and not real.is_relative_to(root_real):
        raise ReportError(f"{str(path)[:200]} is outside the output folder {root}; "
                          "refusing to read or write it.")
    return Path(path)


def report_folder(output_dir: Path, period_id: str) -> Path:
    """`<output>/reports/<period id>`: one period's PDFs, HTML, kpis.json and manifest; a
    period id that is not one (`../../x`) is one sentence, never a path."""
    return inside(output_dir, Path(output_dir) / "reports" / check_period_id(period_id))


def rollup_folder(output_dir: Path, period_id: str) -> Path:
    """`<output>/rollups/<period id>`: the period's archived rollup tables (not published:
    `reporting serve` serves only reports/, site/ and assets/)."""
    return inside(output_dir, Path(output_dir) / "rollups" / check_period_id(period_id))
