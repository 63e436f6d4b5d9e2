"""The KPI modules, one per domain; registering a module is one line in MODULES."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..config import Thresholds
from ..periods import Period
from . import api, cart, clicks, feedback, pages, sessions, support, system
from .base import SEVERITY_ORDER, KPI, Insight, Section, absent

log = logging.getLogger(__name__)

MODULES = [api, pages, clicks, cart, sessions, feedback, support, system]
SOURCES = {m.NAME: m.SOURCE for m in MODULES}     # section -> the source it reads


def compute_all(frames: Mapping[str, pd.DataFrame], period: Period, thresholds: Thresholds,
                quality: Mapping[str, Any] | None = None,
                options: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Section]:
    """Every domain's Section; a source that is absent or broken gets a 'no data' section.
    `options` holds a module's configured keywords by section name (the funnel's steps)."""
    sections: dict[str, Section] = {}
    for module in MODULES:
        started = time.perf_counter()
        if module.SOURCE in frames:
            sections[module.NAME] = module.compute(frames, period, thresholds,
                                                   **(options or {}).get(module.NAME, {}))
        else:
            sections[module.NAME] = absent(module.NAME, module.TITLE,
                                           (quality or {}).get(module.SOURCE))
        log.debug("kpis %s in %.2f s", module.NAME, time.perf_counter() - started)
    return sections


def with_previous(sections: Mapping[str, Section], archived: Mapping[str, Any]
                  ) -> dict[str, Section]:
    """Fill `previous` from archived values where the inputs did not cover that period."""
    if not archived:
        return dict(sections)
    out = {}
    for name, s in sections.items():
        kpis = tuple(dataclasses.replace(k, previous=archived[k.key])
                     if k.previous is None and archived.get(k.key) is not None else k
                     for k in s.kpis)
        out[name] = dataclasses.replace(s, kpis=kpis)
    return out


def with_currency(sections: Mapping[str, Section], code: str) -> dict[str, Section]:
    """Money KPIs and table columns carry the configured ISO currency code as their unit."""
    if not code:
        return dict(sections)

    def unit(u: str) -> str:
        return code if u == "money" else u

    out = {}
    for name, s in sections.items():
        out[name] = dataclasses.replace(
            s, kpis=tuple(dataclasses.replace(k, unit=unit(k.unit)) for k in s.kpis),
            tables=tuple(dataclasses.replace(t, units={c: unit(u) for c, u in t.units.items()})
                         for t in s.tables),
            charts=tuple(dataclasses.replace(c, options={**c.options,
                                                         "currency": code})
                         for c in s.charts))
    return out


def headline_keys(sections: Mapping[str, Section], names: list[str] | tuple[str, ...]
                  ) -> list[str]:
    """The headline KPI keys of the named sections, in order (the overview tiles)."""
    return [k for n in names if n in sections for k in sections[n].headline][:12]


def all_kpis(sections: Mapping[str, Section]) -> dict[str, KPI]:
    return {k.key: k for s in sections.values() for k in s.kpis}


def ranked_insights(sections: Mapping[str, Section],
                    extra: list[Insight] | None = None) -> list[Insight]:
    """All insights, most severe first, then by impact."""
    found = list(extra or []) + [i for s in sections.values() for i in s.insights]
    return sorted(found, key=lambda i: (SEVERITY_ORDER.get(i.severity, 9), -i.impact))


def digest(doc: Mapping[str, Any]) -> str:
    """Names the KPI values of a kpis.json: files of builds with the same digest agree."""
    text = json.dumps(doc.get("kpis", {}), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def document(sections: Mapping[str, Section], period: Period,
             quality: Mapping[str, Any], insights: list[Insight],
             incidents: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The kpis.json content (design.md, "KPI catalogue")."""
    breakdowns = {name: dict(s.extra) for name, s in sections.items() if s.extra}
    return {
        "period": period.as_dict(),
        "kpis": {key: k.as_dict() for key, k in all_kpis(sections).items()},
        "labels": {key: k.label for key, k in all_kpis(sections).items()},
        "sections": {name: {"status": s.status, "message": s.message}
                     for name, s in sections.items()},
        "breakdowns": breakdowns,
        "insights": [i.as_dict() for i in insights],
        "incidents": incidents or [],
        "data_quality": {name: q.as_dict() if hasattr(q, "as_dict") else q
                         for name, q in quality.items()},
    }
