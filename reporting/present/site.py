"""The archive as a static site: `output/index.html`, its history charts, shared assets.

Every link is relative, so `output/` works opened from disk (file://), served by
`reporting serve`, or copied to any static web server; no page needs a script.
The index is rewritten after every build and every prune, from the archive index
and the periods' own `kpis.json`.
"""
from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from ..core import formatting, i18n
from ..core.i18n import gettext as _
from ..core.quality import rejected_rows
from ..core.values import Chart
from ..core.safecsv import neutralise
from ..store import bi
from ..store.archive import Archive
from ..store.files import atomic_write
from . import workers
from .chartplan import Drawing
from .html import spoken_environment, template_dir

log = logging.getLogger(__name__)


ASSETS = "assets"                 # output/assets/fonts/*.ttf, shared by every page
SITE = "site"                     # output/site/charts/*.svg, the index's own charts
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "LICENSE_DEJAVU")

# From reports/<period>/html/<audience>.html up to output/.
REPORT_TO_ROOT = "../../.."
STATUS_ORDER = {"bad": 0, "warn": 1, "good": 2}


def ensure_assets(output_dir: Path, fonts: bool = True) -> Path:
    """Copy our icon, and with `fonts` our fonts (1.4 MB, once per output folder), to
    `output/assets/` unless the same bytes are there."""
    target = Path(output_dir) / ASSETS
    pairs = [(template_dir() / "site" / "favicon.svg", target / "favicon.svg")]
    pairs += [(template_dir() / "fonts" / name, target / "fonts" / name)
              for name in FONTS if fonts]
    for source, dest in pairs:
        data = source.read_bytes()
        if not dest.is_file() or dest.read_bytes() != data:
            atomic_write(dest, data)
    return target


def page_values(audience: str, fmt: str, document: Mapping[str, Any],
                siblings: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    """What a report page adds for the screen: relative asset URLs and its links."""
    quality = document.get("data_quality") or {}
    rejected = {name: rejected_rows(q) for name, q in quality.items()}
    values = {"assets": f"{REPORT_TO_ROOT}/{ASSETS}"} if fmt != "pdf" else {}
    return {**values,
            "site": report_links(audience, fmt, {k: n for k, n in rejected.items() if n},
                                 siblings)}


def report_links(audience: str, fmt: str, rejected: Mapping[str, int],
                 siblings: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    """The screen-only links of one report's HTML page, relative to `html/<audience>.html`:
    the index, this report's PDF (when built), kpis.json, rejected rows (source -> rows),
    the other audiences' pages."""
    return {
        "index": f"{REPORT_TO_ROOT}/index.html",
        "pdf": f"../{quote(audience)}.pdf" if fmt in ("pdf", "both") else None,
        "kpis": "../kpis.json",
        "rejected": [{"source": name, "href": f"../rejected/{quote(name)}.csv", "rows": rows}
                     for name, rows in rejected.items()],
        "siblings": [{"title": _(title), "href": f"{quote(name)}.html"}
                     for name, title in siblings if name != audience],
    }


def report_url(public_url: str, period_id: str, audience: str) -> str:
    """Where one audience's HTML report is published under `public_url`."""
    return (f"{public_url.rstrip('/')}/reports/{quote(period_id)}/html/"
            f"{quote(audience)}.html")


def index_url(public_url: str) -> str:
    return f"{public_url.rstrip('/')}/index.html"


def public_links(public_url: str, period_id: str, audience: str) -> list[tuple[str, str]]:
    """(text, URL) pairs for mail and chat: this report online, and every report (the
    texts in the active voice: the audience's)."""
    return [(_("Read this report online"), report_url(public_url, period_id, audience)),
            (_("All reports and KPI history"), index_url(public_url))]


# --- the index ----------------------------------------------------------------------------

def rewrite_index(config: Any, output_dir: Path) -> list[str]:
    """Rewrite output/index.html after a build or a prune; a failure is a warning (the
    reports are archived already), returned as one sentence."""
    try:
        write_index(output_dir, {n: a.title for n, a in config.audiences.items()},
                    {n: a.sections for n, a in config.audiences.items()},
                    now=datetime.now(config.tz),
                    archive=(config.archive_url, config.archive_password_env),
                    voice=i18n.voice(config.locale, config.tz))
    except Exception as exc:
        log.info("index.html not updated", exc_info=True)
        return [f"{Path(output_dir) / 'index.html'} was not updated: "
                f"{type(exc).__name__}: {exc}."]
    return []


@dataclass(frozen=True)
class _Period:
    id: str
    start: pd.Timestamp
    end: pd.Timestamp
    folder: Path
    built_at: str
    audiences: tuple[str, ...]
    document: dict[str, Any] | None


def write_index(output_dir: Path, titles: Mapping[str, str] | None = None,
                sections: Mapping[str, Iterable[str]] | None = None,
                now: datetime | None = None, archive: tuple[str, str] = ("", ""),
                voice: i18n.Voice | None = None) -> Path:
    """Rewrite `output/index.html` (and its charts) from the archive in `output_dir`.

    `titles` and `sections` are the configured audiences' titles and section names
    (an audience no longer configured keeps its name as title); `archive`: the
    configured archive_url and archive_password_env; `voice`: the config's top-level
    locale and zone, in which the index speaks (None: English in each time's own zone);
    a period's labels and incident sentences as its build said them (`site-words.json`),
    else kpis.json's English."""
    with i18n.speaking(voice):
        return _write_index(Path(output_dir), dict(titles or {}),
                            {k: tuple(v) for k, v in (sections or {}).items()}, now, archive)


def _write_index(output_dir: Path, titles: dict[str, str], sections: dict[str, tuple[str, ...]],
                 now: datetime | None, archive: tuple[str, str]) -> Path:
    titles = {name: _(title) for name, title in titles.items()}   # the default titles
    ensure_assets(output_dir, fonts=False)   # the fonts come with the first HTML build
    with Archive(output_dir, *archive) as store:
        rows = store.periods()
        history = store.export()
        tables = {t: bi.read(store.db, t) for t in ROW_TABLES}
    links = write_rows(output_dir, tables, [r.period_id for r in rows])
    found = []
    for r in rows:
        folder = output_dir / r.folder if r.folder else output_dir / "reports" / r.period_id
        found.append(_Period(r.period_id, pd.Timestamp(r.start), pd.Timestamp(r.end), folder,
                             r.built_at, r.audiences, _document(folder)))
    # newest first, in the archive's order (as `archive list` shows them)
    chart_dir = output_dir / SITE / "charts"
    charts = _history_charts(found, history, titles, chart_dir)
    current = {c["src"].rsplit("/", 1)[1] for h in charts for c in h["charts"]}
    for stale in chart_dir.glob("*.svg") if chart_dir.is_dir() else ():
        if quote(stale.name) not in current:
            stale.unlink(missing_ok=True)
    context = {
        "periods": [{**_period_view(p, output_dir, titles), "rows": links.get(p.id, {})}
                    for p in found],
        "history": charts,
        "incidents": _incidents(found, output_dir, titles, sections),
        "updated": _when(now or datetime.now().astimezone()),
        "assets": ASSETS,
        "fonts": all((output_dir / ASSETS / "fonts" / name).is_file() for name in FONTS[:2]),
    }
    voice = i18n.active()
    context["lang"] = voice.locale.language if voice else "en"
    html = spoken_environment().get_template("site/index.html").render(**context)
    return atomic_write(output_dir / "index.html", html)


ROW_TABLES = ("kpi_history", "incidents", "anomalies", "data_quality")


def write_rows(output_dir: Path, tables: Mapping[str, pd.DataFrame], periods: list[str]
               ) -> dict[str, dict[str, str]]:
    """Each period's rows of the BI tables (docs/dashboards.md) as CSV under
    `site/rows/<period>/`: `kpi_history-<audience>.csv` per slice (`all` = the whole
    report) and `<table>.csv` for the others; returns period -> name -> link. A pruned
    period's folder goes."""
    root = output_dir / SITE / "rows"
    links: dict[str, dict[str, str]] = {}
    for period in periods:
        folder = root / period
        for table, frame in tables.items():
            mine = frame[frame["period_id"] == period]
            parts = ({f"kpi_history-{a}": g for a, g in mine.groupby("audience")}
                     if table == "kpi_history" else {table: mine})
            for name, part in parts.items():
                path = atomic_write(folder / f"{name}.csv", neutralise(part).to_csv(index=False))
                links.setdefault(period, {})[name] = _href(path, output_dir)
    for stale in root.iterdir() if root.is_dir() else ():
        if stale.name not in periods:
            shutil.rmtree(stale, ignore_errors=True)
    return links


def _stamp(t: datetime) -> str:
    """A day and time: "Wed 11 Nov 2026 10:00", in the active voice's words and zone."""
    if i18n.active():
        return f"{formatting.when(t, 'date')} {formatting.when(t, 'time')}"
    return f"{t:%a %-d %b %Y %H:%M}"


def _when(t: datetime) -> str:
    zone = getattr(t.tzinfo, "key", None) or t.strftime("%Z")
    return f"{_stamp(t)} {zone}".strip()


def _document(folder: Path) -> dict[str, Any] | None:
    """A period's kpis.json, or None when it is missing or unreadable (the index still
    lists the period and its files); its KPI labels and incident sentences as the build
    said them in the index's voice (`site-words.json`), where it did."""
    try:
        doc = json.loads((folder / "kpis.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("index: %s/kpis.json is not readable (%s)", folder, exc)
        return None
    voice = i18n.active()
    try:
        words = json.loads((folder / WORDS).read_text(encoding="utf-8")) if voice else {}
    except (OSError, ValueError):
        words = {}
    incidents = doc.get("incidents") or []
    if voice is not None and words.get("locale") == voice.name and len(
            words.get("incidents") or []) == len(incidents):
        doc["labels"] = {**(doc.get("labels") or {}), **(words.get("labels") or {})}
        doc["incidents"] = [{**i, "text": text, "said": True}
                            for i, text in zip(incidents, words["incidents"])]
    return doc


WORDS = "site-words.json"     # a period's words in the top-level locale, when not English


def write_words(folder: Path, voice: i18n.Voice, document: Mapping[str, Any]) -> list[Path]:
    """The KPI labels ("Loads > 4 s" names its threshold) and incident sentences of a
    build's kpis.json said in `voice`, the top-level locale's, for the index; none for
    English (kpis.json's own words). Called while the build's Phrases are alive."""
    if voice.english:
        return []
    with i18n.speaking(voice):
        words = {"locale": voice.name,
                 "labels": {k: _(v) for k, v in (document.get("labels") or {}).items()},
                 "incidents": [_(i.get("text") or "") for i in document.get("incidents") or []]}
    return [atomic_write(folder / WORDS, json.dumps(words, ensure_ascii=False))]


def _href(path: Path, output_dir: Path) -> str:
    return "/".join(quote(part) for part in path.relative_to(output_dir).parts)


def _span(p: _Period) -> str:
    last = p.end - timedelta(seconds=1)
    voice = i18n.active()
    if voice:     # the period's own days (its bounds' zone), as the English form prints
        return i18n.span(p.start, last, voice.locale, None, "yMMMd")
    if p.id == "all":
        return f"{p.start:%-d %b %Y} – {last:%-d %b %Y}"
    return (f"{p.start:%-d %b} – {last:%-d %b %Y}" if p.start.year == last.year
            else f"{p.start:%-d %b %Y} – {last:%-d %b %Y}")


def _period_view(p: _Period, output_dir: Path, titles: Mapping[str, str]) -> dict[str, Any]:
    doc = p.document or {}
    audiences = []
    for name in p.audiences:
        html = p.folder / "html" / f"{name}.html"
        pdf = p.folder / f"{name}.pdf"
        keys = (doc.get("headline") or {}).get(name) or []
        numbers = []
        for key in keys:
            k = (doc.get("kpis") or {}).get(key)
            if not k:
                continue
            numbers.append({"label": _((doc.get("labels") or {}).get(key, key)),
                            "value": formatting.value(k.get("value"), k.get("unit", "")),
                            "status": k.get("status") or ""})
        statuses = [n["status"] for n in numbers if n["status"]]
        worst = min(statuses, key=STATUS_ORDER.__getitem__) if statuses else ""
        audiences.append({
            "name": name, "title": titles.get(name, name),
            "html": _href(html, output_dir) if html.is_file() else None,
            "pdf": _href(pdf, output_dir) if pdf.is_file() else None,
            "numbers": numbers, "worst": worst,
        })
    order = list(titles)
    audiences.sort(key=lambda a: (order.index(a["name"]) if a["name"] in order else len(order),
                                  a["name"]))
    quality = doc.get("data_quality") or {}
    rejected = []
    for source, q in quality.items():
        n = rejected_rows(q)
        path = p.folder / "rejected" / f"{source}.csv"
        if n and path.is_file():
            rejected.append({"source": source, "rows": n, "href": _href(path, output_dir)})
    kpis = p.folder / "kpis.json"
    return {"id": p.id, "span": _span(p), "label": (doc.get("period") or {}).get("label"),
            "built_at": p.built_at.replace("T", " ")[:16], "audiences": audiences,
            "kpis": _href(kpis, output_dir) if kpis.is_file() else None,
            "rejected": rejected, "incidents": len(doc.get("incidents") or [])}


def _incidents(found: list[_Period], output_dir: Path, titles: Mapping[str, str],
               sections: Mapping[str, tuple[str, ...]]) -> list[dict[str, Any]]:
    """Every incident once, newest first, linking into a report that shows it (the IT
    report where it exists). An outage lies in every archived period that holds it (its
    week, a date range, all): it is listed from the first period that has it (the newest,
    shortest), and an incident of a later period that overlaps it on a shared service is
    the same one."""
    out: list[dict[str, Any]] = []
    for p in found:
        items = (p.document or {}).get("incidents") or []
        if not items:
            continue
        showing = [a for a in p.audiences if "incidents" in sections.get(a, ("incidents",))
                   and (p.folder / "html" / f"{a}.html").is_file()]
        showing.sort(key=lambda a: (a != "it", a))
        target = (_href(p.folder / "html" / f"{showing[0]}.html", output_dir) + "#incidents"
                  if showing else None)
        for item in items:
            start, end = pd.Timestamp(item["start"]), pd.Timestamp(item["end"])
            if any(start < o["end"] and o["sort"] < end
                   and set(o["services"]) & set(item.get("services") or []) for o in out):
                continue                       # listed already, from another period
            impact = item.get("impact") or {}
            out.append({
                "period": p.id, "href": target,
                "report": titles.get(showing[0], showing[0]) if showing else None,
                "when": _window(start, end),
                "sort": start, "end": end, "services": item.get("services") or [],
                "pages": item.get("pages") or [], "text": item.get("text") or "",
                "said": bool(item.get("said")),
                "abandoned_value": impact.get("abandoned_value"),
                "tickets": impact.get("tickets"),
            })
    out.sort(key=lambda i: i["sort"], reverse=True)
    return out


def _window(start: pd.Timestamp, end: pd.Timestamp) -> str:
    """An incident's hours: "Wed 11 Nov 2026 10:00 – 12:00"."""
    if i18n.active():
        form = "time" if start.date() == end.date() else "datetime"
        return f"{_stamp(start)} – {formatting.when(end, form)}"
    return f"{_stamp(start)} – {end:%H:%M}" if start.date() == end.date() else \
        f"{_stamp(start)} – {end:%a %-d %b %H:%M}"


def _days(p: _Period) -> int:
    """A period's length in calendar days: a week across a change of summer time, 167 or
    169 hours, is as long as the others."""
    return round((p.end - p.start) / pd.Timedelta(days=1))


def _history_charts(found: list[_Period], history: pd.DataFrame, titles: Mapping[str, str],
                    folder: Path) -> list[dict[str, Any]]:
    """Per audience, its headline KPIs over every archived period as long as the newest
    one (a week beside a whole year would mislead), one small SVG per KPI drawn by our
    chart code (on every core), so a narrow screen shows them one under the other at a
    readable size."""
    newest = next((p for p in found if p.document), None)
    if newest is None or history.empty:
        return []
    length = _days(newest)
    ids = [p.id for p in found if _days(p) == length][::-1]                 # oldest first
    others = [p.id for p in found if _days(p) != length]
    numeric = history[history["period"].isin(ids) & history["value"].notna()]
    table = numeric.pivot_table(index="period", columns="kpi", values="value", aggfunc="last")
    table = table.reindex(index=[i for i in ids if i in table.index])
    units = dict(zip(history["kpi"], history["unit"]))
    headlines: dict[str, list[str]] = {}   # each audience's keys from its newest period
    labels: dict[str, str] = {}
    for p in found:
        doc = p.document or {}
        for name, keys in (doc.get("headline") or {}).items():
            headlines.setdefault(name, list(keys))
        labels = {**(doc.get("labels") or {}), **labels}
    order = list(titles)
    drawn: dict[str, str] = {}
    out, todo = [], []
    for name in sorted(headlines, key=lambda n: (order.index(n) if n in order else len(order),
                                                 n)):
        entry = {"audience": name, "title": titles.get(name, name), "periods": len(table),
                 "others": others, "charts": []}
        keys = [k for k in headlines[name] if k in table.columns and table[k].notna().any()]
        for key in keys if len(table) >= 2 else ():
            if key not in drawn:
                chart = Chart(f"history_{key}", "trends", "", table[[key]],
                              {"labels": {key: labels.get(key, key)},
                               "units": {key: units.get(key, "")}, "current": newest.id,
                               "columns": 1, "width": 2.8})   # ~ its column at 1280 px
                todo.append(Drawing(chart, folder / f"{key}.svg"))
                drawn[key] = todo[-1].path.name
            entry["charts"].append({"src": f"{SITE}/charts/{quote(drawn[key])}",
                                    "label": _(labels.get(key, key))})
        out.append(entry)
    workers.draw_charts([(i18n.current(), todo)])        # in the index's own voice
    return out
