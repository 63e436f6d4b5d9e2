"""The section registry: one entry names everything about a section.

An entry gives the section's name (as audiences list it), title, the sources it needs
(a missing one gives a "no data" section), its compute function, its table headers,
and its template: `templates/sections/<name>.html` when that exists, else the generic
`sections/_section.html` (Jinja's template-list include picks). Adding a section is one
entry here and one compute function; config, build, render and kpis.json follow.
Page parts (`overview`, `insights`, `data_quality`) are drawn from the whole document
and have a template only.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pandas as pd

from . import incidents, memory, trends
from .config import Config
from .context import BuildContext
from .kpis import api, cart, clicks, feedback, pages, sessions, support, system, with_previous
from .kpis.base import Section, absent

Compute = Callable[[Mapping[str, pd.DataFrame], BuildContext, Mapping[str, Section]], Section]
GENERIC_TEMPLATE = "sections/_section.html"


@dataclass(frozen=True)
class SectionSpec:
    name: str
    title: str
    sources: tuple[str, ...]          # all must be loaded, else the section says "no data"
    compute: Compute | None           # (frames, context, sections computed before) -> Section
    headers: Mapping[str, str] = field(default_factory=dict)   # table column -> header
    template: str | None = None       # None: sections/<name>.html, else the generic partial

    @property
    def templates(self) -> list[str]:
        """The partials to try, first found wins (Jinja's `include [list]`)."""
        own = self.template or f"sections/{self.name}.html"
        return [own] if self.compute is None else [own, GENERIC_TEMPLATE]


def domain(module: ModuleType, headers: Mapping[str, str] | None = None,
           options: Callable[[Config], dict[str, Any]] | None = None) -> SectionSpec:
    """The entry of a KPI module: `compute(frames, period, thresholds, **options) -> Section`,
    `options` taken from the config (the funnel's steps, the currency)."""
    def compute(frames: Mapping[str, pd.DataFrame], ctx: BuildContext,
                earlier: Mapping[str, Section]) -> Section:
        return module.compute(frames, ctx.period, ctx.thresholds,
                              **(options(ctx.config) if options else {}))
    compute.__qualname__ = f"{module.__name__}.compute"
    return SectionSpec(module.NAME, module.TITLE, (module.SOURCE,), compute, headers or {})


def _incidents(frames: Mapping[str, pd.DataFrame], ctx: BuildContext,
               earlier: Mapping[str, Section]) -> Section:
    section, found, signal_rows = incidents.compute(
        frames, ctx.period, ctx.thresholds, ctx.signal_history, ctx.config.service_map,
        top_n=ctx.config.top_n, currency=ctx.config.currency)
    return dataclasses.replace(section, document={"incidents": [i.as_dict() for i in found]},
                               signals=signal_rows)


# Headers every section shares; an entry's own headers win.
COMMON_HEADERS = {
    "service_name": "Service", "page": "Page", "share": "Share", "requests": "Requests",
    "mean_ms": "Mean", "p50_ms": "p50", "p75_ms": "p75", "p95_ms": "p95", "p99_ms": "p99",
    "tickets": "Tickets", "value": "Value", "timestamp": "When", "user_id": "User",
}

# The registry, in page order; a new section is one more entry (datasette-style hook list).
SECTIONS: list[SectionSpec] = [
    domain(api, {"endpoint": "Endpoint", "server_error_rate": "5xx rate",
                 "client_error_rate": "4xx rate", "availability": "Availability",
                 "apdex": "Apdex"}),
    domain(pages, {"page_url": "Page", "device": "Device", "views": "Views",
                   "good_share": "≤ {page_p75_ms}", "poor_share": "> {page_poor_ms}",
                   "band": "Band"}),
    domain(clicks, {"element_clicked": "Element", "clicks": "Clicks", "users": "Users"}),
    domain(cart, {"cart_id": "Cart", "abandonment_time": "Abandoned at",
                  "items_in_cart": "Items", "total_value": "Value", "day": "Day",
                  "carts": "Carts"}, lambda c: {"currency": c.currency}),
    domain(sessions, {"step": "Step", "sessions": "Sessions",
                      "step_conversion": "Step conversion"}, lambda c: {"steps": c.funnel}),
    domain(feedback, {"theme": "Theme", "mentions": "Mentions", "avg_rating": "Avg rating",
                      "negative_share": "Negative", "rating": "Stars", "polarity": "Polarity",
                      "comment": "Comment"}),
    domain(support, {"issue_type": "Issue type", "resolved": "Resolved",
                     "channel": "Channel"}),
    domain(system, {"samples": "Samples", "cpu_p95": "CPU p95", "memory_p95": "Memory p95",
                    "uptime": "Uptime", "failed_probes": "Failed probes"}),
    SectionSpec(incidents.NAME, incidents.TITLE, (), _incidents),
    SectionSpec(trends.NAME, trends.TITLE, (), trends.compute),
]
PARTS: tuple[SectionSpec, ...] = (
    SectionSpec("overview", "Headline KPIs", (), None),
    SectionSpec("insights", "What stands out", (), None),
    SectionSpec("data_quality", "Appendix: data quality", (), None),
)


def registry() -> dict[str, SectionSpec]:
    """Every name an audience may list, page parts included, in page order."""
    return {s.name: s for s in (*PARTS[:2], *SECTIONS, *PARTS[2:])}


def sources() -> dict[str, str]:
    """Section -> the source it reads (sections of one source: the KPI domains)."""
    return {s.name: s.sources[0] for s in SECTIONS if len(s.sources) == 1}


def names() -> tuple[str, ...]:
    return tuple(registry())


def compute_all(frames: Mapping[str, pd.DataFrame], ctx: BuildContext,
                specs: Iterable[SectionSpec] | None = None) -> dict[str, Section]:
    """Every registered section in order, each seeing those before it; `previous` filled
    from the archive where the inputs did not cover the previous period."""
    done: dict[str, Section] = {}
    for spec in SECTIONS if specs is None else specs:
        missing = [s for s in spec.sources if s not in frames]
        if missing:
            done[spec.name] = absent(spec.name, spec.title, ctx.quality.get(missing[0]))
        else:
            done[spec.name] = spec.compute(frames, ctx, done)
        memory.trim()      # each section's scratch arrays freed before the next one's
    return with_previous(done, ctx.previous)


def headers(name: str, words: Mapping[str, Any]) -> dict[str, str]:
    """Table headers of a section, thresholds filled in from `words` (formatted config)."""
    spec = registry().get(name)
    own = spec.headers if spec else {}
    return {col: text.format(**words) for col, text in {**COMMON_HEADERS, **own}.items()}
