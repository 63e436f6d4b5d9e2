"""Jinja2 (autoescaped) to HTML, WeasyPrint to PDF, fetching only our own files.

External text (feedback, page names, endpoints) reaches templates only as values,
never as template source; the URL fetcher serves files under the run's own folder
and the templates folder, and refuses everything else (network, other paths).
"""
from __future__ import annotations

import logging
import mimetypes
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jinja2
import pandas as pd

from . import formatting, glossary
from .config import Audience, Thresholds
from .kpis import headline_keys as kpis_headline
from .kpis.base import KPI, Insight, Section, Table

log = logging.getLogger(__name__)

HEADERS = {
    "service_name": "Service", "endpoint": "Endpoint", "page_url": "Page", "device": "Device",
    "requests": "Requests", "server_error_rate": "5xx rate", "client_error_rate": "4xx rate",
    "availability": "Availability", "mean_ms": "Mean", "p50_ms": "p50", "p75_ms": "p75",
    "p95_ms": "p95", "p99_ms": "p99", "apdex": "Apdex", "views": "Views",
    "good_share": "≤ 2.5 s", "poor_share": "> 4 s", "band": "Band",
    "element_clicked": "Element", "page": "Page", "clicks": "Clicks", "users": "Users",
    "cart_id": "Cart", "user_id": "User", "abandonment_time": "Abandoned at",
    "items_in_cart": "Items", "total_value": "Value", "day": "Day", "carts": "Carts",
    "value": "Value", "step": "Step", "sessions": "Sessions",
    "step_conversion": "Step conversion", "share": "Share", "theme": "Theme",
    "mentions": "Mentions", "avg_rating": "Avg rating", "negative_share": "Negative",
    "timestamp": "When", "rating": "Stars", "polarity": "Polarity", "comment": "Comment",
    "issue_type": "Issue type", "tickets": "Tickets", "resolved": "Resolved",
    "channel": "Channel", "samples": "Samples", "cpu_p95": "CPU p95",
    "memory_p95": "Memory p95", "uptime": "Uptime", "failed_probes": "Failed probes",
}
TEXT_UNITS = {"text", "", None}
PDF_VARIANT = "pdf/a-2a"


def template_dir() -> Path:
    """Templates inside the installed wheel, else the repository's `templates/`."""
    packaged = Path(__file__).parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "templates"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()),
        autoescape=True,                      # every value is escaped, HTML or not
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update({
        "fmt": formatting.value, "ms": formatting.ms, "pct": formatting.pct,
        "count": formatting.count, "money": formatting.money, "change": formatting.change,
    })
    return env


# --- views: plain dicts and lists for the templates ---------------------------------------

def kpi_view(k: KPI) -> dict[str, Any]:
    d = formatting.delta(k.value, k.previous, k.unit, k.better)
    return {"key": k.key, "label": k.label, "value": k.value, "previous": k.previous,
            "unit": k.unit, "status": k.status, "change": d.text if d else None,
            "arrow": d.arrow if d else "", "tone": d.tone if d else None}


def table_view(t: Table, max_rows: int = 15) -> dict[str, Any]:
    frame = t.frame.head(max_rows)
    cols = list(frame.columns)
    units = [t.units.get(c, "text") for c in cols]
    rows = []
    for rec in frame.itertuples(index=False, name=None):   # at most `max_rows` rows
        rows.append([{"v": _cell(v), "u": u} for v, u in zip(rec, units)])
    return {"title": t.title, "note": t.note,
            "columns": [{"name": HEADERS.get(c, c.replace("_", " ").capitalize()),
                         "numeric": u not in TEXT_UNITS and u not in ("datetime", "date"),
                         "wide": c in ("comment", "endpoint", "page_url", "theme")}
                        for c, u in zip(cols, units)],
            "rows": rows}


def _cell(v: Any) -> Any:
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    return v.item() if hasattr(v, "item") and not isinstance(v, str) else v


def section_view(s: Section, charts: Mapping[str, str]) -> dict[str, Any]:
    return {"name": s.name, "title": s.title, "status": s.status, "message": s.message,
            "kpis": [kpi_view(k) for k in s.kpis],
            "headline": [kpi_view(k) for k in s.kpis if k.key in s.headline],
            "tables": [table_view(t) for t in s.tables],
            "charts": [{"src": f"charts/{charts[c.name]}", "title": c.title, "alt": c.alt}
                       for c in s.charts if c.name in charts],
            "insights": [i.as_dict() for i in s.insights], "rule": s.extra.get("rule")}


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
        if any(i["domain"] == domain and shown_value in i["text"] for i in insights):
            continue
        how = "just outside" if k.status == "warn" else "well outside"
        out.append({"severity": "medium" if k.status == "warn" else "high", "domain": domain,
                    "text": f"{k.label} was {shown_value}, {how} its target "
                            f"(see {titles.get(domain, domain)}).",
                    "kpi": k.key})
    return out


def context(*, audience: Audience, sections: Mapping[str, Section], charts: Mapping[str, str],
            insights: Iterable[Insight], quality: Mapping[str, Any], period_label: str,
            period_id: str, previous_label: str | None, generated_at: str, data_span: str,
            extra: Mapping[str, Any] | None = None,
            thresholds: Thresholds | None = None) -> dict[str, Any]:
    """Everything one audience's page needs, as plain values."""
    views = {name: section_view(s, charts) for name, s in sections.items()}
    keys = kpis_headline(sections, audience.sections)
    by_key = {t["key"]: t for v in views.values() for t in v["headline"]}
    tiles = [by_key[k] for k in keys if k in by_key]
    if audience.compact:   # each number once: a short report's sections skip the overview's tiles
        for v in views.values():
            v["headline"] = [t for t in v["headline"] if t["key"] not in keys]
    chosen = [i.as_dict() for i in insights
              if i.domain in audience.sections or i.domain == "incidents"]
    every = {k.key: k for s in sections.values() for k in s.kpis}
    shown = [every[t["key"]] for t in tiles] + [
        k for n in audience.sections if n in sections and sections[n].status == "ok"
        for k in (sections[n].kpis if not audience.compact else
                  [x for x in sections[n].kpis if x.key in sections[n].headline])]
    unique = list({k.key: k for k in shown}.values())
    extra_insights = flagged_insights(unique, chosen, {n: s.title for n, s in sections.items()})
    order = {"high": 0, "medium": 1, "low": 2}
    chosen = sorted(chosen + extra_insights, key=lambda i: order.get(i["severity"], 9))
    return {
        "audience": {"name": audience.name, "title": audience.title,
                     "sections": list(audience.sections), "template": audience.template},
        "compact": audience.compact, "insight_limit": 5 if audience.compact else 12,
        "assets": template_dir().resolve().as_uri(),
        "period": {"id": period_id, "label": period_label, "previous": previous_label},
        "generated_at": generated_at, "data_span": data_span,
        "sections": views, "tiles_list": tiles,
        # An audience reads the insights of its own sections (incidents span them all),
        # and a sentence for every KPI it shows as warn or bad.
        "insights": chosen,
        "flagged": len([k for k in unique if k.status in ("warn", "bad")]),
        "glossary": glossary.entries(unique, thresholds or Thresholds()),
        "quality": [_quality_view(name, q) for name, q in quality.items()],
        **(extra or {}),
    }


def _quality_view(name: str, q: Any) -> dict[str, Any]:
    d = q.as_dict() if hasattr(q, "as_dict") else dict(q)
    d["source"] = name
    d["rejected_total"] = sum(d.get("rejected", {}).values())
    d["file_name"] = Path(d["file"]).name if d.get("file") else None
    return d


def render_html(ctx: Mapping[str, Any]) -> str:
    env = environment()
    name = ctx["audience"]["name"]
    chosen = ctx["audience"].get("template") or f"audiences/{name}.html"
    try:
        template = env.get_template(chosen)
    except jinja2.TemplateNotFound:
        template = env.get_template("audiences/generic.html")
    return template.render(**ctx)


# --- PDF -------------------------------------------------------------------------------

def _fetcher_class():
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class LocalOnlyFetcher(URLFetcher):
        """Serves files under the allowed folders; refuses every other URL."""

        def __init__(self, roots: Iterable[Path]) -> None:
            super().__init__(allowed_protocols={"file", "data"})
            self.roots = [Path(r).resolve() for r in roots]

        def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
            if url.startswith("data:"):   # inline bytes, e.g. a raster inside a chart SVG
                return super().fetch(url, headers)
            path = allowed_path(url, self.roots)
            if path is None:
                log.warning("refused to fetch %s", url[:200])
                raise ValueError(f"refused: {url[:200]}")
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(path.as_uri(), body=path.read_bytes(),
                                      headers={"Content-Type": mime})

    return LocalOnlyFetcher


def allowed_path(url: str, roots: Iterable[Path]) -> Path | None:
    """The local file `url` names when it is a file: URL inside one of `roots`, else None."""
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        return None
    path = Path(unquote(parts.path)).resolve()
    for root in roots:
        root = Path(root).resolve()
        if path.is_relative_to(root) and path.is_file():
            return path
    return None


def fetcher(roots: Iterable[Path]) -> Any:
    return _fetcher_class()(roots)


def write_pdf(html: str, base_dir: Path, target: Path, roots: Iterable[Path]) -> Path:
    """Render `html` to `target`, resolving relative URLs against `base_dir`."""
    from weasyprint import HTML

    doc = HTML(string=html, base_url=base_dir.resolve().as_uri() + "/",
               url_fetcher=fetcher(roots))
    # Tagged and archival: structure tree, /Lang from <html lang>, title and XMP metadata,
    # each <img alt> as the figure's /Alt.
    atomic_write(target, doc.write_pdf(attachments=[], pdf_variant=PDF_VARIANT))
    return target


def atomic_write(target: Path, data: bytes | str) -> Path:
    """Write to a temporary file beside `target`, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.chmod(tmp, 0o644)   # mkstemp makes 0600; reports are meant to be shared
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
