"""One place for every number's look: 1,234.5 ms, 12.3 %, 1,213.20 (also the Jinja2 filters)."""
from __future__ import annotations

import math
import numbers
from typing import Any

DASH = "–"


def _ok(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def count(v: Any) -> str:
    return f"{v:,.0f}" if _ok(v) else DASH


def ms(v: Any) -> str:
    return f"{v:,.1f} ms" if _ok(v) else DASH


def pct(v: Any) -> str:
    """A ratio (0-1) as a percentage; more digits near 0 % and 100 % where they matter."""
    if not _ok(v):
        return DASH
    p = v * 100
    digits = 2 if (0 < abs(p) < 1 or 99 < abs(p) < 100) else 1
    return f"{p:,.{digits}f} %"


def pct_points(v: Any) -> str:
    """A value already in percent (CPU 0-100)."""
    return f"{v:,.1f} %" if _ok(v) else DASH


def money(v: Any) -> str:
    return f"{v:,.2f}" if _ok(v) else DASH


def number(v: Any, digits: int = 1) -> str:
    return f"{v:,.{digits}f}" if _ok(v) else DASH


def change(v: Any) -> str:
    """Relative change with sign: +12.3 %, −4.0 %."""
    if not _ok(v):
        return DASH
    sign = "+" if v > 0 else "−" if v < 0 else "±"
    return f"{sign}{abs(v) * 100:,.1f} %"


FORMATS = {
    "count": count,
    "ms": ms,
    "ratio": pct,
    "pct": pct_points,
    "money": money,
    "min": lambda v: f"{v:,.1f} min" if _ok(v) else DASH,
    "h": lambda v: f"{v:,.1f} h" if _ok(v) else DASH,
    "items": lambda v: number(v, 1),
    "per_user": lambda v: number(v, 2),
    "score": lambda v: number(v, 2),
    "rating": lambda v: f"{v:,.2f} / 5" if _ok(v) else DASH,
    "x": lambda v: f"{v:,.1f}x" if _ok(v) else DASH,
    "polarity": lambda v: f"{v:+.2f}" if _ok(v) else DASH,
    "date": lambda v: v.strftime("%a %-d %b %Y") if hasattr(v, "strftime") else DASH,
    "datetime": lambda v: v.strftime("%a %-d %b %H:%M") if hasattr(v, "strftime") else DASH,
}


def value(v: Any, unit: str) -> str:
    """Format `v` for its unit; text passes through; missing values are a dash."""
    if v is None or (isinstance(v, numbers.Real) and not math.isfinite(v)):
        return DASH
    fmt = FORMATS.get(unit)
    if fmt is None:
        return str(v)
    return fmt(v)


def seconds(v_ms: Any) -> str:
    """A threshold in ms as people say it: 2500 -> "2.5 s", 4000 -> "4 s"."""
    return f"{v_ms / 1000:g} s" if _ok(v_ms) else DASH


def threshold_words(t: Any) -> dict[str, str]:
    """Every threshold as text, for labels and sentences: {"page_p75_ms": "2.5 s", ...}.
    Milliseconds read as seconds, ratios as percentages, hours with "h"."""
    out = {}
    for name, v in vars(t).items():
        if name.endswith("_ms"):
            out[name] = seconds(v)
        elif name.endswith("_hours"):
            out[name] = f"{v:g} h"
        elif name.endswith("_pct"):
            out[name] = f"{v:g} %"
        elif isinstance(v, float) and 0 < v < 1:
            out[name] = f"{v * 100:g} %"
        else:
            out[name] = f"{v:g}"
    return out
