"""Jinja2 (autoescaped) to HTML, WeasyPrint to PDF, fetching only our own files.

External text (feedback, page names, endpoints) reaches templates only as values,
never as template source; the URL fetcher serves files under the run's own folder
and the templates folder, and refuses everything else (network, other paths).
"""
from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup
from matplotlib.ft2font import FT2Font

from ..core import formatting, i18n, registry
from ..core.config import Audience, Thresholds
from ..core.periods import Period
from ..core.quality import origin_text, rejected_rows
from ..core.values import KPI, Section, Table
from . import glossary
from .audience import audience_view

TEXT_UNITS = {"text", "", None}


def template_dir() -> Path:
    """Templates inside the installed wheel (`reporting/templates`), else the repository's
    `templates/`."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "templates"
    return packaged if packaged.is_dir() else package.parent / "templates"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()),
        autoescape=True,                      # every value is escaped, HTML or not
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.filters.update({
        "fmt": formatting.value, "ms": formatting.ms, "pct": formatting.pct,
        "count": formatting.count, "money": formatting.money, "change": formatting.change,
        "em": em_width,
    })
    return env


@functools.lru_cache(maxsize=4096)
def em_width(text: str, bold: bool = False) -> str:
    """How wide `text` is set in our DejaVu Sans, in em (font sizes), for the CSS that
    shrinks a tile's label or value to fit its tile instead of wrapping it (a German label
    is ~30 % longer than the English one; the CSS divides the tile's width by this).
    Markup is read as its text; at least 1 em, to three decimals."""
    plain = Markup(text).striptags() if isinstance(text, Markup) else " ".join(str(text).split())
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    font = _font(str(template_dir() / "fonts" / name))
    font.set_size(100, 72)               # 100 pt at 72 dpi: widths come out in pt
    font.set_text(plain)
    return f"{max(1.0, font.get_width_height()[0] / 64 / 100):.3f}"


@functools.lru_cache(maxsize=2)
def _font(path: str) -> FT2Font:
    return FT2Font(path)


# --- views: plain dicts and lists for the templates ---------------------------------------

def kpi_view(k: KPI) -> dict[str, Any]:
    return {"key": k.key, "label": i18n.gettext(k.label), "value": k.value,
            "previous": k.previous,
            "unit": k.unit, "status": k.status,
            **formatting.change_view(k.value, k.previous, k.unit, k.better)}


def table_view(t: Table, headers: Mapping[str, str], max_rows: int = 15) -> dict[str, Any]:
    frame = t.frame.head(max_rows)
    cols = list(frame.columns)
    units = [t.units.get(c, "text") for c in cols]
    rows = []
    for rec in frame.itertuples(index=False, name=None):   # at most `max_rows` rows
        rows.append([{"v": _cell(v), "u": u} for v, u in zip(rec, units)])
    long = [any(_long_word(row[i]["v"]) for row in rows) for i in range(len(cols))]
    return {"name": t.name, "title": i18n.gettext(t.title), "note": i18n.gettext(t.note),
            "more": max(0, len(t.frame) - max_rows),
            "columns": [{"name": i18n.gettext(headers.get(c, c.replace("_", " ").capitalize())),
                         "numeric": u not in TEXT_UNITS and u not in ("datetime", "date"),
                         "wide": c in ("comment", "endpoint", "page_url", "theme"),
                         "long_words": lw}
                        for c, u, lw in zip(cols, units, long)],
            "rows": rows}


DISPLAY_CHARS = 300   # a table cell's text is cut here (the full text stays in kpis.json

                      # and the rejected files): a 5,000-character comment stalled the PDF


def cut(text: str, limit: int = DISPLAY_CHARS) -> str:
    """`text` shortened to `limit` characters with "…", at a space when one is near."""
    if len(text) <= limit:
        return text
    head = text[:limit - 1]
    space = head.rfind(" ")
    return (head[:space] if space > limit * 0.8 else head).rstrip() + "…"


LONG_WORD = 20   # characters: a column holding a longer word may break it anywhere


def _long_word(v: Any) -> bool:
    """Whether a cell's text holds a word longer than LONG_WORD (a URL path, a file name,
    an id): its column breaks anywhere (`td.long-words`), the others between words only,
    which WeasyPrint measures per word, not per letter (a third of the PDF's time)."""
    return isinstance(v, str) and any(len(w) > LONG_WORD for w in v.split())


def _cell(v: Any) -> Any:
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NaT:
        return None
    if isinstance(v, str):
        return cut(v)
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    return v.item() if hasattr(v, "item") and not isinstance(v, str) else v


def section_view(s: Section, charts: Mapping[str, str], words: Mapping[str, str]
                 ) -> dict[str, Any]:
    headers = registry.headers(s.name, words)
    return {"name": s.name, "title": i18n.gettext(s.title), "status": s.status,
            "message": i18n.gettext(s.message),
            "kpis": [kpi_view(k) for k in s.kpis],
            "headline": [kpi_view(k) for k in s.kpis if k.key in s.headline],
            "tables": [table_view(t, headers) for t in s.tables],
            "charts": [{"name": c.name, "src": f"charts/{charts[c.name]}", "title": c.title,
                        "alt": c.options.get("alt") or c.alt,
                        "narrow": (f"charts/{charts[c.name + ':narrow']}"
                                   if c.name + ":narrow" in charts else None)}
                       for c in s.charts if c.name in charts],
            "insights": [i.as_dict() for i in s.insights], "rule": s.breakdowns.get("rule")}


def _shown_kpis(audience: Audience, computed: Mapping[str, Section],
                tiles: list[dict[str, Any]]) -> list[KPI]:
    """The KPIs a page shows, once each: the overview tiles, then each section's table
    (a compact page: its headline tiles)."""
    every = {k.key: k for s in computed.values() for k in s.kpis}
    shown = [every[t["key"]] for t in tiles] + [
        k for n in audience.sections if n in computed and computed[n].status == "ok"
        for k in (computed[n].kpis if not audience.compact else
                  [x for x in computed[n].kpis if x.key in computed[n].headline])]
    return list({k.key: k for k in shown}.values())


def flagged_insights(shown: Iterable[KPI], insights: list[dict[str, Any]],
                     titles: Mapping[str, str]) -> list[dict[str, Any]]:
    """A plain sentence for each KPI shown as warn or bad that no insight speaks of (an
    insight of its domain that quotes its value), so no table row is left unexplained."""
    out = []
    for k in shown:
        if k.status not in ("warn", "bad"):
            continue
        domain = k.key.split(".")[0]
        shown_value = formatting.value(k.value, k.unit)
        with i18n.speaking(None):        # the insights' sentences quote values in English
            quoted = formatting.value(k.value, k.unit)
        if any(i["domain"] == domain and quoted in i["text"] for i in insights):
            continue
        sentence = i18n.gettext("%(kpi)s was %(value)s, just outside its target (see "
                                "%(section)s).") if k.status == "warn" else \
            i18n.gettext("%(kpi)s was %(value)s, well outside its target (see %(section)s).")
        section = i18n.gettext(titles.get(domain, domain))
        out.append({"severity": "medium" if k.status == "warn" else "high", "domain": domain,
                    "text": sentence % {"kpi": i18n.gettext(k.label), "value": shown_value,
                                        "section": section},
                    "kpi": k.key})
    return out


@dataclass(frozen=True)
class Page:
    """What every audience's page of one build shares besides the sections (the build's
    clock and data span also as times, for an audience of another language or zone)."""

    period: Period
    generated_at: str
    data_span: str
    thresholds: Thresholds
    built_at: Any = None
    span: tuple[Any, Any] | None = None


def localised(page: Page) -> tuple[str, str, str]:
    """The period, build time and data span in the active voice and the audience's zone:
    the build's own text for an English page in the build's zone, else the locale's dates
    and (not English) the CLDR ISO-week label."""
    voice, p = i18n.current(), page.period
    if voice is None or page.built_at is None or (
            voice.english and voice.zone.key == getattr(page.built_at.tzinfo, "key", "")):
        return p.label, page.generated_at, page.data_span
    label = p.label
    if not voice.english:
        label = i18n.span(p.start, p.end - pd.Timedelta(microseconds=1), voice.locale)
        if p.id[:4].isdigit() and "-W" in p.id:
            year, week = p.id.split("-W")
            label += f" ({i18n.week(int(year), int(week[:2]), voice.locale)})"
    built = formatting.when(page.built_at, "date") + " " + \
        formatting.when(page.built_at, "time") + f" {voice.zone.key}"
    if page.span is None:
        return label, built, i18n.gettext("no timestamped data")
    a, b = (formatting.when(t, "dmy") + " " + formatting.when(t, "time") for t in page.span)
    return label, built, f"{a} – {b}"


def context(audience: Audience, computed: Mapping[str, Section], charts: Mapping[str, str],
            document: Mapping[str, Any], quality: Mapping[str, Any], page: Page
            ) -> dict[str, Any]:
    """Everything one audience's page needs, as plain values."""
    words = formatting.threshold_words(page.thresholds)
    views = {name: section_view(s, charts, words) for name, s in computed.items()}
    view = audience_view(document, audience)
    by_key = {t["key"]: t for v in views.values() for t in v["headline"]}
    keys = view.headline_keys
    tiles = [by_key[k] for k in keys if k in by_key]
    if audience.compact:   # each number once: a short report's sections skip the overview's tiles
        for v in views.values():
            v["headline"] = [t for t in v["headline"] if t["key"] not in keys]
    shown = _shown_kpis(audience, computed, tiles)
    chosen = list(view.insights)
    extra_insights = flagged_insights(shown, chosen, {n: s.title for n, s in computed.items()})
    order = {"high": 0, "medium": 1, "low": 2}
    chosen = sorted(chosen + extra_insights, key=lambda i: order.get(i["severity"], 9))
    p = page.period
    label, generated_at, data_span = localised(page)
    voice = i18n.active()
    return {
        "lang": voice.locale.language if voice else "en", "english": voice is None,
        "audience": {"name": audience.name, "title": i18n.gettext(audience.title),
                     "sections": list(audience.sections), "template": audience.template},
        "compact": audience.compact, "insight_limit": view.insight_limit,
        "assets": template_dir().resolve().as_uri(),
        "period": {"id": p.id, "label": label,
                   "previous": localised(dataclasses.replace(page, period=p.previous))[0]
                   if p.previous else None},
        "generated_at": generated_at, "data_span": data_span,
        "slice": document.get("slice"),
        "sections": views, "tiles_list": tiles,
        # An audience reads the insights of its own sections (incidents span them all),
        # and a sentence for every KPI it shows as warn or bad.
        "insights": chosen,
        "flagged": len([k for k in shown if k.status in ("warn", "bad")]),
        "glossary": glossary.entries(shown, page.thresholds, audience.compact),
        "coverage": list(document.get("coverage_notes") or []),
        "not_loaded": not_loaded(audience, document),
        "quality": [_quality_view(name, q) for name, q in quality.items()],
        "templates": {name: spec.templates for name, spec in registry.registry().items()},
    }


def mail_words(values: Mapping[str, Any]) -> dict[str, Any]:
    """What an audience's mail quotes from its page, in the page's voice (called while it
    is active): the period, the headline tiles as text and the first five findings. The
    build keeps it beside the PDF (`mail/<audience>.json`) for an audience of another
    language than English, as kpis.json holds the English sentences only."""
    def change(t: Mapping[str, Any]) -> str:
        return f"{t['arrow']} {t['change']}".strip() if t.get("change") else ""
    return {"locale": i18n.current().name if i18n.current() else i18n.DEFAULT,
            "period_label": values["period"]["label"],
            "headline": [{"label": t["label"], "value": formatting.value(t["value"], t["unit"]),
                          "change": change(t), "tone": t["tone"], "status": t["status"]}
                         for t in values["tiles_list"]],
            "insights": [{"text": i18n.gettext(i["text"])} for i in values["insights"][:5]]}


def not_loaded(audience: Audience, document: Mapping[str, Any]) -> list[str]:
    """A sentence for each source the audience shows (by its sections; the incidents
    section shows every source it judges from) that did not load or was not supplied:
    page 1 says so, so that no all-clear stands over it."""
    missing = document.get("not_loaded") or {}
    by_section = registry.sources()
    shown = {by_section[s] for s in audience.sections if s in by_section}
    if "incidents" in audience.sections:
        shown |= set(document.get("incidents_not_judged") or ())
    return [text for source, text in missing.items() if source in shown]


def _quality_view(name: str, q: Any) -> dict[str, Any]:
    d = q.as_dict() if hasattr(q, "as_dict") else dict(q)
    d["source"] = name
    d["rejected_total"] = rejected_rows(d)
    d["file_name"] = Path(d["file"]).name if d.get("file") else None
    if d.get("origin"):
        d["file_name"] = origin_text(d)
    return d


def spoken_environment() -> jinja2.Environment:
    """The templates' environment whose `_()` and `ngettext()` speak the active voice."""
    env = environment()
    voice = i18n.active()
    env.install_gettext_translations(voice.translations if voice else i18n.translations("en"),
                                     newstyle=True)
    return env


def render_html(ctx: Mapping[str, Any]) -> str:
    env = spoken_environment()
    name = ctx["audience"]["name"]
    chosen = ctx["audience"].get("template") or f"audiences/{name}.html"
    try:
        template = env.get_template(chosen)
    except jinja2.TemplateNotFound:
        template = env.get_template("audiences/generic.html")
    return template.render(**ctx)
