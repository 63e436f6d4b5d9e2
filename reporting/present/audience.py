"""What one audience sees of a build: its headline KPIs and the insights of its sections.

One view for the page (`present.html`), the email (`deliver.compose`) and anything that later sends
a summary, computed from the kpis.json document alone.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..core.config import Audience
from ..core.errors import ReportError
from ..core.formatting import change_view

COMPACT_INSIGHTS, FULL_INSIGHTS = 5, 12
SPANNING = ("incidents", "slice")   # insights every audience reads: incidents span the

                                    # stack; "slice": its filters matched no rows


@dataclass(frozen=True)
class AudienceView:
    name: str
    title: str
    headline: tuple[dict[str, Any], ...]    # key label value previous unit status change arrow tone
    insights: tuple[dict[str, str], ...]    # its sections' and the spanning ones, ranked
    insight_limit: int                      # how many the page shows

    @property
    def headline_keys(self) -> list[str]:
        return [k["key"] for k in self.headline]


def audience_view(document: Mapping[str, Any], audience: Audience) -> AudienceView:
    """The audience's part of `document` (kpis.json), in the order it is shown."""
    headline = []
    for key in document.get("headline", {}).get(audience.name) or []:
        k = document["kpis"].get(key)
        if k:   # the change in the unit people think in (pp for rates), as on the page
            headline.append({"key": key, "label": document.get("labels", {}).get(key, key),
                             **k, **change_view(k["value"], k["previous"], k["unit"],
                                                k.get("better"))})
    insights = tuple(i for i in document.get("insights", [])
                     if i["domain"] in audience.sections or i["domain"] in SPANNING)
    return AudienceView(audience.name, audience.title, tuple(headline), insights,
                        COMPACT_INSIGHTS if audience.compact else FULL_INSIGHTS)


def check_audiences(names: Iterable[str], configured: Mapping[str, Audience]) -> list[str]:
    """`names` as a list; an audience the config does not know is the user's mistake."""
    names = list(names)
    unknown = [a for a in names if a not in configured]
    if unknown:
        raise ReportError(f"Unknown audience {', '.join(unknown)}; configured: "
                          f"{', '.join(configured)}.")
    return names
