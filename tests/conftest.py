"""Shared fixtures: the seed data, small frames loaded through the real loader, periods."""
from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from reporting.core.config import Thresholds
from reporting.core.contracts import SPECS
from reporting.core.periods import Period, date_range
from reporting.ingest.folder import load_source

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT.parent / "shared" / "seed-data"
UTC = ZoneInfo("UTC")


def require_seed() -> Path:
    """The shared seed data; its absence skips a test locally and fails it in CI."""
    if not SEED.is_dir():
        message = f"shared/seed-data is not beside the repository (looked for {SEED})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI must have it.")
        pytest.skip(message)
    return SEED


@pytest.fixture
def seed_dir() -> Path:
    return require_seed()


@pytest.fixture
def thresholds() -> Thresholds:
    return Thresholds()


def write_csv(folder: Path, source: str, text: str) -> Path:
    path = folder / f"{source}.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def frame(tmp_path: Path):
    """frame(source, csv_text) -> validated DataFrame, through the production loader."""
    def make(source: str, text: str, tz: ZoneInfo = UTC) -> pd.DataFrame:
        good, bad = load_source(write_csv(tmp_path, source, text), SPECS[source], tz)
        assert bad.empty, f"test data has rejected rows: {bad.to_dict('records')}"
        return good
    return make


def week_of(first: str) -> Period:
    """The 7-day period starting on `first` (with its previous week)."""
    d = pd.Timestamp(first).date()
    return date_range(d, d + pd.Timedelta(days=6), UTC)


def pdf_text(path: Path) -> str:
    """A PDF's text, page by page (pypdf), for content checks."""
    from pypdf import PdfReader
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)
