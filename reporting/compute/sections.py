"""The built-in sections: one entry each in SECTIONS, read by `core.registry`.

Adding a section is one entry here and one compute function; config, build, render and
kpis.json follow (the registry's names list it too, so configs know it unimported).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

import pandas as pd

from ..core import memory, registry
from ..core.config import Config
from ..core.registry import SectionSpec
from ..core.values import Section
from . import trends
from .context import BuildContext
from .document import with_previous
from .incidents import section as incidents
from .kpis import api, cart, clicks, feedback, orders, pages, sessions, support, system
from .kpis.base import absent


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
    section, _, signal_rows = incidents.compute(
        frames, ctx.period, ctx.thresholds, ctx.signal_history, ctx.config.service_map,
        top_n=ctx.config.top_n, currency=ctx.config.currency,
        maintenance=ctx.config.maintenance)
    return dataclasses.replace(section, signals=signal_rows)


# The built-in sections in page order; a new one is one more entry (datasette-style hook list).
SECTIONS: list[SectionSpec] = [
    domain(api, {"endpoint": "Endpoint", "server_error_rate": "5xx rate",
                 "client_error_rate": "4xx rate", "availability": "Availability",
                 "apdex": "Apdex", "status_code": "Status", "class": "Class",
                 "errors": "Errors", "share": "Share of class", "server_errors": "5xx",
                 "server_share": "Share of 5xx", "client_errors": "4xx",
                 "client_share": "Share of 4xx"}),
    domain(pages, {"page_url": "Page", "device": "Device", "views": "Views",
                   "good_share": "≤ {page_p75_ms}", "poor_share": "> {page_poor_ms}",
                   "band": "Band", "loads": "Loads", "lcp_p75_ms": "LCP p75",
                   "inp_p75_ms": "INP p75", "cls_p75": "CLS p75"}),
    domain(clicks, {"element_clicked": "Element", "clicks": "Clicks", "users": "Users"}),
    domain(cart, {"cart_id": "Cart", "abandonment_time": "Abandoned at",
                  "items_in_cart": "Items", "total_value": "Value", "day": "Day",
                  "carts": "Carts"}, lambda c: {"currency": c.currency}),
    domain(orders, {"day": "Day", "orders": "Orders", "revenue": "Revenue",
                    "avg_order_value": "Average order"}, lambda c: {"currency": c.currency}),
    domain(sessions, {"step": "Step", "sessions": "Sessions",
                      "step_conversion": "Step conversion"}, lambda c: {"steps": c.funnel}),
    domain(feedback, {"theme": "Theme", "mentions": "Mentions", "avg_rating": "Avg rating",
                      "negative_share": "Negative", "rating": "Stars", "polarity": "Polarity",
                      "comment": "Comment"}),
    domain(support, {"issue_type": "Issue type", "resolved": "Resolved",
                     "channel": "Channel", "priority": "Priority", "sla_hours": "Target",
                     "breached": "Over target", "breach_rate": "Breach rate",
                     "median_h": "Median"}),
    domain(system, {"samples": "Samples", "cpu_p95": "CPU p95", "memory_p95": "Memory p95",
                    "uptime": "Uptime", "failed_probes": "Failed probes"}),
    SectionSpec(incidents.NAME, incidents.TITLE, (), _incidents),
    SectionSpec(trends.NAME, trends.TITLE, (), trends.compute),
]


def compute_all(frames: Mapping[str, pd.DataFrame], ctx: BuildContext,
                specs: Iterable[SectionSpec] | None = None) -> dict[str, Section]:
    """Every registered section in order, each seeing those before it; `previous` filled
    from the archive where the inputs did not cover the previous period."""
    done: dict[str, Section] = {}
    for spec in registry.sections() if specs is None else specs:
        missing = [s for s in spec.sources if s not in frames]
        if missing:
            done[spec.name] = absent(spec.name, spec.title, ctx.quality.get(missing[0]))
        else:
            done[spec.name] = spec.compute(frames, ctx, done)
        memory.trim()      # each section's scratch arrays freed before the next one's
    return with_previous(done, ctx.previous)
