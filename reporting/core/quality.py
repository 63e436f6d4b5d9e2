"""What happened to each source in a load: its quality record, its rejected rows and
where its rows came from."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass
class Quality:
    """What happened to one source: shown in the appendix and in kpis.json."""

    source: str
    status: str = "absent"              # loaded | absent | error
    file: str | None = None
    sha256: str | None = None
    rows: int = 0
    valid: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    message: str | None = None
    seconds: float = 0.0
    origin: str | None = None           # a configured source: its path, pattern or database
    unit: str = "file"                  # what it reads: files or queries
    read: int = 0
    skipped: int = 0                    # dated files outside the build's window

    def as_dict(self) -> dict[str, Any]:
        d = {"status": self.status, "file": self.file, "sha256": self.sha256,
             "rows": self.rows, "valid": self.valid, "rejected": dict(self.rejected),
             "message": self.message}
        if self.origin is not None:
            d.update(origin=self.origin, unit=self.unit, read=self.read, skipped=self.skipped)
        return d


def rejected_rows(quality: Any) -> int:
    """How many rows a source set aside, from its quality record or its kpis.json entry."""
    d = quality.as_dict() if hasattr(quality, "as_dict") else quality
    return sum((d.get("rejected") or {}).values())


@dataclass
class Loaded:
    """Validated frames by source, rejected rows by source, and the quality records."""

    frames: dict[str, pd.DataFrame]
    rejected: dict[str, pd.DataFrame]
    quality: dict[str, Quality]
    warnings: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [q.message for q in self.quality.values() if q.status == "error" and q.message]

    @property
    def messages(self) -> list[str]:
        """What the user is told: the errors, then the warnings (near-miss file names)."""
        return self.errors + self.warnings


def origin_text(q: dict) -> str:
    """Where a source came from, for the appendix and `validate`: its file, or the
    configured path, pattern or database with how many files or queries were read and
    skipped."""
    if q.get("origin") is None:
        return Path(q["file"]).name if q.get("file") else "–"
    if q["status"] != "loaded":
        return q["origin"]
    read = f"{q['read']:,} {q['unit']}{'s' if q['read'] != 1 else ''} read"
    return f"{q['origin']} ({read}, {q['skipped']:,} skipped)" if q["skipped"] else \
        f"{q['origin']} ({read})"
