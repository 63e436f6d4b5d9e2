"""The builder: load → validate → KPIs → charts → HTML → PDF → files on disk."""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__, archive, charts, coverage, incidents, kpis, periods, render
from .kpis.base import Chart
from .config import Config
from .errors import ReportError, SourceError
from .sources import SPECS, Loaded, load_all

log = logging.getLogger(__name__)
FORMATS = ("pdf", "html", "both")


@dataclass
class BuildResult:
    period: periods.Period
    folder: Path
    files: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)


def data_span(frames: Mapping[str, pd.DataFrame]) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """First and last event over the sources' period columns (a ticket's later
    resolution time does not stretch the data's span)."""
    lows, highs = [], []
    for name, frame in frames.items():
        col = SPECS[name].time
        if len(frame) and frame[col].notna().any():
            lows.append(frame[col].min())
            highs.append(frame[col].max())
    return (min(lows), max(highs)) if lows else None


def build(config: Config, *, period: str = "latest", audiences: Iterable[str] | None = None,
          fmt: str = "both", strict: bool = False, data_dir: Path | None = None,
          output_dir: Path | None = None, now: datetime | None = None,
          on_stage: Callable[[str], None] | None = None) -> BuildResult:
    """Build every requested audience's report for `period`; returns what was written."""
    stage = _Stages(on_stage)
    names = list(audiences or config.audiences)
    unknown = [a for a in names if a not in config.audiences]
    if unknown:
        raise ReportError(f"Unknown audience {', '.join(unknown)}; configured: "
                          f"{', '.join(config.audiences)}.")
    if fmt not in FORMATS:
        raise ReportError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    data_dir = Path(data_dir or config.data_dir)
    output_dir = Path(output_dir or config.output_dir)
    tz = config.tz
    if fmt != "html" and _pdf_worker_count(len(names)) > 1:
        _pdf_workers()
    with archive.build_lock(output_dir, config.lock_timeout_s), \
            archive.Archive(output_dir) as store:
        _sweep_temporary_files(output_dir / "reports")
        with stage("load"):
            loaded = load_all(data_dir, tz, config.columns)
        if strict and loaded.errors:
            raise SourceError(loaded.errors[0])
        span = data_span(loaded.frames)
        with stage("kpis"):
            p = periods.resolve(period, tz, span, now,
                                coverage.last_complete_day(loaded.frames, tz, now))
            covered = coverage.compute(loaded.frames, p)
            coverage.require_some(covered, span)
            sections = kpis.compute_all(loaded.frames, p, config.thresholds, loaded.quality,
                                        {"sessions": {"steps": config.funnel},
                                         "cart": {"currency": config.currency}})
            if p.previous:   # where the inputs did not cover it, the archive may
                sections = kpis.with_previous(sections, store.kpi_values(p.previous.id))
            sections = coverage.untrusted(sections, kpis.SOURCES, covered)
            sections = kpis.with_currency(sections, config.currency)
        with stage("incidents"):
            history = store.signal_history(p.start - pd.Timedelta(weeks=4), p.start)
            sections["incidents"], found, hourly = incidents.compute(
                loaded.frames, p, config.thresholds, history)
        with stage("kpis"):
            insights = kpis.ranked_insights(sections)
            document = kpis.document(sections, p, loaded.quality, insights, found)
            document["period"]["label"] = p.label
            document["coverage"] = covered.as_dict()
            document["coverage_notes"] = covered.notes()
            document["headline"] = {name: kpis.headline_keys(sections,
                                                             config.audiences[name].sections)
                                    for name in names}
        folder = output_dir / "reports" / p.id
        html_dir = folder / "html"
        result = BuildResult(p, folder, warnings=list(loaded.errors), document=document)
        with stage("charts"):
            drawn = charts.draw_all(sections, html_dir / "charts", covered.days(),
                                    covered.missing_days(kpis.SOURCES))
            trends = {name: _trend_chart(store, sections, p, config.audiences[name],
                                         html_dir / "charts") for name in names}
        built_at = datetime.now(tz)
        jobs, archived = [], {}
        with stage("html"):
            for name in names:
                ctx = render.context(
                    audience=config.audiences[name], sections=sections, charts=drawn,
                    insights=insights, quality=loaded.quality, period_label=p.label,
                    period_id=p.id, previous_label=p.previous.label if p.previous else None,
                    generated_at=f"{built_at:%a %-d %b %Y %H:%M} {tz.key}",
                    data_span=_span_text(span, tz),
                    extra={"trends": trends[name], "coverage": covered.notes()},
                    thresholds=config.thresholds)
                html = render.render_html(ctx)
                if fmt in ("html", "both"):
                    archived[name] = render.atomic_write(html_dir / f"{name}.html", html)
                    result.files.append(archived[name])
                if fmt in ("pdf", "both"):
                    archived[name] = folder / f"{name}.pdf"
                    jobs.append((html, html_dir, archived[name],
                                 [html_dir, render.template_dir()]))
        with stage("pdf"):
            result.files.extend(_render_pdfs(jobs))
        with stage("write"):
            result.files.extend(_write_side_files(folder, loaded, document))
            result.files.append(_manifest(folder, config, loaded, p, names, built_at, result,
                                          stage.timings))
        with stage("archive"):
            store.record_build(
                period=p.as_dict(), folder=folder, files=archived, kpis=document["kpis"],
                version=__version__, config_hash=config.digest(),
                inputs={n: q.sha256 for n, q in loaded.quality.items() if q.sha256},
                seconds=round(sum(stage.timings.values()), 3),
                built_at=built_at.isoformat(timespec="seconds"), signals=hourly)
    result.timings = stage.timings
    return result


def _trend_chart(store: archive.Archive, sections: Mapping[str, Any], p: periods.Period,
                 audience: Any, folder: Path) -> dict[str, Any] | None:
    """Small multiples of the audience's headline KPIs over up to 8 archived periods."""
    keys = kpis.headline_keys(sections, audience.sections)
    history = store.history(keys, p.start.isoformat(), p.end.isoformat())
    if history.empty:
        return None
    every = kpis.all_kpis(sections)
    current = {k: every[k].value for k in keys if isinstance(every[k].value, (int, float))}
    table = pd.concat([history, pd.DataFrame([current], index=[p.id])])
    table = table.loc[:, table.notna().any()]
    chart = Chart(f"trends_{audience.name}", "trends",
                  f"Headline KPIs over the last {len(table)} periods (this one in orange)",
                  table, {"labels": {k: every[k].label for k in table.columns},
                          "units": {k: every[k].unit for k in table.columns},
                          "current": p.id, "columns": 6 if audience.compact else 4})
    name = charts.draw(chart, folder / f"{chart.name}.svg").name
    return {"chart": f"charts/{name}", "periods": list(table.index)}


def _sweep_temporary_files(folder: Path) -> None:
    """Temporary files of a build that was killed; safe while we hold the build lock."""
    for tmp in folder.glob("**/.*.tmp") if folder.is_dir() else ():
        log.info("removing %s, left by an interrupted build", tmp)
        tmp.unlink(missing_ok=True)
    for tmp in folder.glob("**/*.svg.tmp") if folder.is_dir() else ():
        tmp.unlink(missing_ok=True)


class _Stages:
    """Times each stage, logs it, and tells the caller (progress display) when one starts."""

    def __init__(self, on_stage: Callable[[str], None] | None) -> None:
        self.on_stage, self.timings = on_stage, {}

    def __call__(self, name: str) -> _Stages:
        self.current = name
        return self

    def __enter__(self) -> None:
        if self.on_stage:
            self.on_stage(self.current)
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        seconds = time.perf_counter() - self.started
        # a stage entered twice (kpis before and after incidents) adds up
        self.timings[self.current] = round(self.timings.get(self.current, 0.0) + seconds, 3)
        log.info("%s done in %.2f s", self.current, seconds)


def _pdf_workers() -> multiprocessing.context.BaseContext:
    """The fork server the PDF workers start from; starting it early lets it import
    WeasyPrint while the data loads."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["reporting.render", "weasyprint"])
    multiprocessing.forkserver.ensure_running()
    return ctx


def _pdf_worker_count(pdfs: int) -> int:
    return min(pdfs, os.cpu_count() or 1)


def _render_pdfs(jobs: list[tuple[str, Path, Path, list[Path]]]) -> list[Path]:
    """One PDF per audience, in worker processes when there is more than one core."""
    workers = _pdf_worker_count(len(jobs))
    if workers <= 1:
        return [render.write_pdf(*job) for job in jobs]
    ctx = _pdf_workers()
    # Longest documents first, so the two workers finish close together.
    ordered = sorted(jobs, key=lambda job: len(job[0]), reverse=True)
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        done = dict(zip([job[2] for job in ordered], pool.map(_pdf_job, ordered)))
    return [done[job[2]] for job in jobs]


def _pdf_job(job: tuple[str, Path, Path, list[Path]]) -> Path:
    return render.write_pdf(*job)


def _write_side_files(folder: Path, loaded: Loaded, document: dict[str, Any]) -> list[Path]:
    files = [render.atomic_write(folder / "kpis.json",
                                 json.dumps(document, indent=2, default=str) + "\n")]
    for source, frame in loaded.rejected.items():
        files.append(render.atomic_write(folder / "rejected" / f"{source}.csv",
                                         frame.to_csv(index=False)))
    return files


def _manifest(folder: Path, config: Config, loaded: Loaded, p: periods.Period,
              names: list[str], built_at: datetime, result: BuildResult,
              timings: Mapping[str, float]) -> Path:
    """manifest.json: every file in the period's folder with the build that wrote it. A file
    an earlier build wrote from other KPI values, and this build did not rewrite, disagrees
    with the new kpis.json: it is removed (the files table and `send` never meet it)."""
    build_id = built_at.isoformat(timespec="seconds")
    digest = kpis.digest(result.document)
    outputs = {}
    for f in result.files:
        data = f.read_bytes()
        outputs[str(f.relative_to(folder))] = {"sha256": hashlib.sha256(data).hexdigest(),
                                               "size": len(data), "build": build_id,
                                               "kpis": digest}
    earlier = _earlier_outputs(folder / "manifest.json")
    for f in sorted(x for x in folder.rglob("*") if x.is_file()):
        rel = str(f.relative_to(folder))
        if rel in outputs or rel == "manifest.json" or f.parent.name == "charts":
            continue
        old = earlier.get(rel)
        if old and old.get("kpis") == digest:
            outputs[rel] = old            # an earlier build from the same KPI values
        elif old is not None or f.suffix in (".pdf", ".html", ".csv"):
            log.info("removing %s: an earlier build of %s wrote it from other data", f, p.id)
            f.unlink()
        else:
            outputs[rel] = {"sha256": None, "size": f.stat().st_size, "build": None,
                            "kpis": None}
    manifest = {
        "version": __version__, "built_at": build_id, "kpis": digest,
        "seconds": round(sum(timings.values()), 3), "timings": dict(timings),
        "config_hash": config.digest(), "period": p.as_dict(), "audiences": names,
        "inputs": {name: {"path": q.file, "sha256": q.sha256, "rows": q.rows, "valid": q.valid,
                          "rejected": q.rows - q.valid, "status": q.status}
                   for name, q in loaded.quality.items()},
        "outputs": dict(sorted(outputs.items())),
    }
    return render.atomic_write(folder / "manifest.json", json.dumps(manifest, indent=2) + "\n")


def _earlier_outputs(path: Path) -> dict[str, dict[str, Any]]:
    try:
        return dict(json.loads(path.read_text()).get("outputs", {}))
    except (OSError, ValueError, AttributeError):
        return {}


def _span_text(span: tuple[pd.Timestamp, pd.Timestamp] | None, tz: Any) -> str:
    if span is None:
        return "no timestamped data"
    a, b = (t.tz_convert(tz) for t in span)
    return f"{a:%-d %b %Y %H:%M} – {b:%-d %b %Y %H:%M}"
