"""The section registry: one entry names everything about a section.

An entry gives the section's name (as audiences list it), title, the sources it needs
(a missing one gives a "no data" section), its compute function, its table headers,
and its template: `templates/sections/<name>.html` when that exists, else the generic
`sections/_section.html` (Jinja's template-list include picks). Page parts
(`overview`, `insights`, `data_quality`) are drawn from the whole document and have a
template only.

The built-in sections are the entries of `reporting.compute.sections` (BUILT_IN): the
registry imports that module by its dotted name on the first read of the entries, as
datasette loads its own plugins, so reading a config (which checks section names)
imports no feature module. Another module adds a section with `register`.
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# (frames, build context, sections computed before) -> Section
Compute = Callable[[Mapping[str, Any], Any, Mapping[str, Any]], Any]
GENERIC_TEMPLATE = "sections/_section.html"
BUILT_IN = "reporting.compute.sections"      # its SECTIONS: the built-in sections
# Their names in page order, known without importing them (a test holds the two equal).
BUILT_IN_NAMES = ("api", "pages", "clicks", "cart", "orders", "sessions", "feedback",
                  "support", "system", "incidents", "trends")


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


# Headers every section shares; an entry's own headers win.
COMMON_HEADERS = {
    "service_name": "Service", "page": "Page", "share": "Share", "requests": "Requests",
    "mean_ms": "Mean", "p50_ms": "p50", "p75_ms": "p75", "p95_ms": "p95", "p99_ms": "p99",
    "tickets": "Tickets", "value": "Value", "timestamp": "When", "user_id": "User",
}

PARTS: tuple[SectionSpec, ...] = (
    SectionSpec("overview", "Headline KPIs", (), None),
    SectionSpec("insights", "What stands out", (), None),
    SectionSpec("data_quality", "Appendix: data quality", (), None),
)
_added: list[SectionSpec] = []        # sections registered besides the built-in ones


def register(spec: SectionSpec) -> SectionSpec:
    """Add a section after the built-in ones (a later entry of the same name replaces it)."""
    _added[:] = [s for s in _added if s.name != spec.name] + [spec]
    return spec


def sections() -> list[SectionSpec]:
    """Every section that computes, in page order: the built-in ones, then those added."""
    built_in = importlib.import_module(BUILT_IN).SECTIONS
    return [*built_in, *(s for s in _added if s.name not in {b.name for b in built_in})]


def registry() -> dict[str, SectionSpec]:
    """Every name an audience may list, page parts included, in page order."""
    return {s.name: s for s in (*PARTS[:2], *sections(), *PARTS[2:])}


def names() -> tuple[str, ...]:
    """The names an audience may list, in page order; before the built-in sections are
    imported, from BUILT_IN_NAMES (reading a config imports no section)."""
    if BUILT_IN not in sys.modules:
        return (*(p.name for p in PARTS[:2]), *BUILT_IN_NAMES,
                *(s.name for s in _added if s.name not in BUILT_IN_NAMES),
                *(p.name for p in PARTS[2:]))
    return tuple(registry())


def sources() -> dict[str, str]:
    """Section -> the source it reads (sections of one source: the KPI domains)."""
    return {s.name: s.sources[0] for s in sections() if len(s.sources) == 1}


def headers(name: str, words: Mapping[str, Any]) -> dict[str, str]:
    """Table headers of a section, thresholds filled in from `words` (formatted config)."""
    spec = registry().get(name)
    own = spec.headers if spec else {}
    return {col: text.format(**words) for col, text in {**COMMON_HEADERS, **own}.items()}
