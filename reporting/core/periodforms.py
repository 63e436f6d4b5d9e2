"""The forms a period is written in (`--period`, an audience's `period`, a period id),
read without pandas so that checking a config stays quick."""
from __future__ import annotations

import re
from datetime import date

FORMS = "latest, last-week, YYYY-Www (e.g. 2026-W46), YYYY-MM-DD..YYYY-MM-DD or all"
WEEK_RE = re.compile(r"^(\d{4})-[Ww](\d{2})$")          # 2026-W46 (2026-w46 too)
RANGE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\.\.|_)(\d{4}-\d{2}-\d{2})$")


def is_period(text: str) -> bool:
    """Whether `text` names a period in one of FORMS (a real ISO week, real dates in order)."""
    if text in ("latest", "last-week", "all"):
        return True
    try:
        if m := WEEK_RE.match(text):
            return bool(date.fromisocalendar(int(m[1]), int(m[2]), 1))
        if m := RANGE_RE.match(text):
            return date.fromisoformat(m[1]) <= date.fromisoformat(m[2])
    except ValueError:
        return False
    return False
