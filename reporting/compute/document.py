"""What the sections' results add up to: previous values, headline keys, ranked insights
and the kpis.json document. The sections themselves are registered in
`reporting.sections`; each domain's compute lives in `reporting/kpis/<domain>.py`."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..core.formatting import rounded
from ..core.periods import Period
from ..core.values import KPI, SEVERITY_ORDER, Insight, Section, plain
from . import coverage
from .kpis.base import top_entries


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


def with_rounded(sections: Mapping[str, Section]) -> dict[str, Section]:
    """KPI values and previous values rounded with their unit's digits, as kpis.json and the
    archive keep them: a tile's change, a trend chart's newest point and kpis.json then
    agree (an unrounded point beside rounded archived ones drew a fall a tile called "no
    change"). Statuses were judged on the exact values before."""
    return {name: dataclasses.replace(s, kpis=tuple(
        dataclasses.replace(k, value=rounded(plain(k.value), k.unit),
                            previous=rounded(plain(k.previous), k.unit)) for k in s.kpis))
            for name, s in sections.items()}


def headline_keys(sections: Mapping[str, Section], names: list[str] | tuple[str, ...]
                  ) -> list[str]:
    """The headline KPI keys of the named sections, in order (the overview tiles); a key
    the section does not carry (a Core Web Vital the data lacks) takes no place."""
    return [k for n in names if n in sections for k in sections[n].headline
            if sections[n].kpi(k)][:12]


def all_kpis(sections: Mapping[str, Section]) -> dict[str, KPI]:
    return {k.key: k for s in sections.values() for k in s.kpis}


def ranked_insights(sections: Mapping[str, Section]) -> list[Insight]:
    """All insights, most severe first, then by impact; ties keep the sections' order."""
    found = [i for s in sections.values() for i in s.insights]
    return sorted(found, key=lambda i: (SEVERITY_ORDER.get(i.severity, 9), -i.impact))


def document(sections: Mapping[str, Section], period: Period,
             quality: Mapping[str, Any], headline: Mapping[str, list[str]] | None = None,
             top_n: int | None = None) -> dict[str, Any]:
    """The kpis.json content (README, "kpis.json"): KPIs, breakdowns, ranked insights,
    what sections add at the top level (incidents), data quality and the headline keys
    of each audience. With `top_n`, each breakdown and the insights keep their first
    `top_n` entries and count the rest (`<key>_more`, `insights_more`)."""
    every = all_kpis(sections)
    insights = [i.as_dict() for i in ranked_insights(sections)]
    more = {}
    if top_n is not None and len(insights) > top_n:     # ranked: the first matter most
        insights, more = insights[:top_n], {"insights_more": len(insights) - top_n}
    return {
        "period": {**period.as_dict(), "label": period.label},
        "kpis": {key: k.as_dict() for key, k in every.items()},
        "labels": {key: k.label for key, k in every.items()},
        "sections": {name: {"status": s.status, "message": s.message}
                     for name, s in sections.items()},
        "breakdowns": {name: top_entries(dict(s.breakdowns), top_n) if top_n
                       else dict(s.breakdowns) for name, s in sections.items() if s.breakdowns},
        "insights": insights,
        **more,
        "incidents": [],
        **{key: value for s in sections.values() for key, value in s.document.items()},
        "data_quality": {name: q.as_dict() if hasattr(q, "as_dict") else q
                         for name, q in quality.items()},
        "not_loaded": coverage.not_loaded(quality),
        "headline": dict(headline or {}),
    }
