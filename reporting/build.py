"""The builder: load → context → sections → charts → HTML → PDF → files → archive."""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from . import (__version__, archive, charts, coverage, engines, files, guard, kpis, memory,
               periods, render, rollups, sections, site, slices)
from .audience import check_audiences
from .config import Audience, Config
from .context import BuildContext, with_archived_rollups
from .errors import PdfTimeout, ReportError, SourceError
from .kpis.base import Section
from .safecsv import neutralise
from .sources import SPECS, Loaded

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


def data_span(frames: Mapping[str, pd.DataFrame | rollups.Rollup]
              ) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """First and last event over the sources' period columns (a ticket's later
    resolution time does not stretch the data's span; a rollup's from its times table)."""
    lows, highs = [], []
    for name, frame in frames.items():
        if isinstance(frame, rollups.Rollup):
            if frame.span is not None:
                lows.append(frame.span[0].tz_convert(frame.tz))
                highs.append(frame.span[1].tz_convert(frame.tz))
            continue
        col = SPECS[name].time
        if len(frame) and frame[col].notna().any():
            lows.append(frame[col].min())
            highs.append(frame[col].max())
    return (min(lows), max(highs)) if lows else None


def build(config: Config, *, period: str = "latest", audiences: Iterable[str] | None = None,
          fmt: str = "both", strict: bool = False, data_dir: Path | None = None,
          output_dir: Path | None = None, now: datetime | None = None,
          on_stage: Callable[[str], None] | None = None,
          on_progress: Callable[[str], None] | None = None) -> BuildResult:
    """Build every requested audience's report for `period`; returns what was written.

    Stages, each entered once: load (read and validate the sources), context (the
    archive's previous KPIs, signal and trend history, read once, and the archived
    rollups of the days before the period that the inputs do not hold), sections (every
    registered section: KPIs, incidents, trends), charts, html, pdf, write (kpis.json,
    rejected rows, manifest) and archive (record the build, its KPIs, signals and
    rollups, then rewrite output/index.html from the whole archive)."""
    stage = _Stages(on_stage)
    names = check_audiences(audiences or config.audiences, config.audiences)
    if fmt not in FORMATS:
        raise ReportError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    data_dir, output_dir = Path(data_dir or config.data_dir), Path(output_dir or config.output_dir)
    staging: list[Path] = []
    with _undo_on_failure(output_dir, staging), \
            archive.build_lock(output_dir, config.lock_timeout_s), \
            archive.Archive(output_dir) as store:
        files.sweep_temporary_files(output_dir / "reports")
        build_id = guard.claim(output_dir)    # a killed build's PDF workers lose the folder
        with stage("load"):
            loaded = engines.load(config, data_dir, period=period, now=now, progress=on_progress)
            if strict and loaded.errors:
                raise SourceError(loaded.errors[0])
            span = data_span(loaded.frames)
            p = periods.resolve(period, config.tz, span, now,
                                coverage.last_complete_day(loaded.frames, config.tz))
            covered = coverage.require_some(coverage.compute(loaded.frames, p), span)
        _start_pdf_workers(fmt, len(names))    # after the load's workers: not beside them
        with stage("context"):
            loaded.frames = with_archived_rollups(store, loaded.frames, p)
            ctx, sliced = _contexts(store, config, p, names, loaded.quality)
        warnings = list(loaded.messages)
        with stage("sections"):
            computed, document = _sections(loaded.frames, loaded.quality, ctx, covered)
            slice_builds = [_compute_slice(a, c, loaded, warnings, covered) for a, c in sliced]
        final = files.report_folder(output_dir, p.id)
        staging.append(_stage_copy(final, staging_folder(output_dir, p.id)))
        result = BuildResult(p, staging[0], warnings=warnings, document=document)
        with stage("charts"):
            drawn = _draw(computed, slice_builds, result.folder / "html" / "charts", covered)
        built_at, page = _page(p, config, span)
        with stage("html"):
            jobs, archived = _render_html(ctx, computed, drawn, document, page, fmt, result,
                                          (output_dir, build_id), slice_builds)
        with stage("pdf"):
            result.files.extend(_render_pdfs(jobs))
        with stage("write"):
            result.files.extend(_write_side_files(result.folder, loaded, document, slice_builds))
            result.files.append(_manifest(result.folder, config, loaded, p, names, built_at,
                                          result, stage.timings))
        with stage("archive"):
            _record(store, config, loaded, result, archived, computed, built_at, stage.timings,
                    final, {sb.audience.name: sb.document["kpis"] for sb in slice_builds})
    result.timings = stage.timings
    return result


def _sections(frames: Mapping[str, pd.DataFrame], quality: Mapping[str, Any],
              ctx: BuildContext, covered: coverage.Coverage
              ) -> tuple[dict[str, Section], dict[str, Any]]:
    """Every section computed (for the whole data or one slice's rows); a partial source's
    KPIs are never good nor compared; money carries the currency; then the kpis.json
    document, with the coverage."""
    computed = sections.compute_all(frames, ctx)
    computed = coverage.untrusted(computed, sections.sources(), covered)
    computed = kpis.with_currency(computed, ctx.config.currency)
    document = kpis.document(computed, ctx.period, quality, {
        a.name: kpis.headline_keys(computed, a.sections) for a in ctx.audiences},
        top_n=ctx.config.top_n)
    document["coverage"] = covered.as_dict()
    document["coverage_notes"] = covered.notes()
    return computed, document


def staging_folder(output_dir: Path, period_id: str) -> Path:
    """Where a build writes before its files and index rows become visible together."""
    return output_dir / "reports" / f".staging-{period_id}-{os.getpid()}"


@contextmanager
def _undo_on_failure(output_dir: Path, staging: list[Path]) -> Iterator[None]:
    """A failed build leaves nothing of itself; a full disk is one sentence."""
    try:
        yield
    except Exception as exc:
        for folder in staging:
            shutil.rmtree(folder, ignore_errors=True)
        if archive.is_disk_full(exc):
            raise archive.no_space(output_dir) from None
        raise


def _stage_copy(final: Path, staging: Path) -> Path:
    """The staging folder starts as the published one, in hard links (other audiences'
    files stay); this build's files then replace their links. Staging folders of a
    killed build go first (safe: we hold the build lock)."""
    _sweep_staging(staging.parent)
    if final.is_dir():
        def link(src: str, dst: str) -> None:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
        shutil.copytree(final, staging, copy_function=link)
    staging.mkdir(parents=True, exist_ok=True)
    return staging


def _sweep_staging(folder: Path) -> None:
    """Staging folders of a build that was killed; safe while we hold the build lock."""
    for tmp in [*folder.glob(".staging-*"), *folder.glob(".*.old-*")] if folder.is_dir() else ():
        log.info("removing %s, left by an interrupted build", tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def _contexts(store: archive.Archive, config: Config, p: periods.Period, names: list[str],
              quality: Mapping[str, Any]) -> tuple[BuildContext, list[tuple[Audience,
                                                                          BuildContext]]]:
    """The whole data's context (audiences without filters), and each sliced audience's
    own (its slice's archived KPIs and trends)."""
    whole = [n for n in names if not config.audiences[n].filters]
    return BuildContext.read(store, config, p, whole, quality), [
        (config.audiences[n], BuildContext.read(store, config, p, [n], quality, slice_name=n))
        for n in names if config.audiences[n].filters]


def _draw(computed: Mapping[str, Section], slice_builds: list[SliceBuild], folder: Path,
          covered: coverage.Coverage) -> dict[str, str]:
    """The charts, gaps where a source has no data; a slice's in a folder of its own
    (`charts/<audience>/`)."""
    days, missing = covered.days(), covered.missing_days(sections.sources())
    for sb in slice_builds:
        sb.drawn = {k: f"{sb.audience.name}/{v}" for k, v in
                    charts.draw_all(sb.computed, folder / sb.audience.name, days,
                                    missing).items()}
    return charts.draw_all(computed, folder, days, missing)


def _render_html(ctx: BuildContext, computed: Mapping[str, Section], drawn: Mapping[str, str],
                 document: dict[str, Any], page: render.Page, fmt: str, result: BuildResult,
                 owner: tuple[Path, str], slice_builds: list[SliceBuild] = ()
                 ) -> tuple[list[PdfJob], dict[str, Path]]:
    """Each audience's page; written when HTML is asked for, queued as a PDF job when
    PDFs are (`owner`: the output folder and this build's id, checked before each PDF's
    rename); a sliced audience's page from its own sections. Returns the PDF jobs and
    the file archived per audience; writes `<audience>.csv` where `attach` asks for it."""
    html_dir = result.folder / "html"
    # output/assets: the HTML pages' fonts (a PDF-only build writes no page needing them)
    assets = site.ensure_assets(result.folder.parents[1], fonts=fmt != "pdf")
    jobs, archived = [], {}
    pages = [(a, computed, drawn, document) for a in ctx.audiences] + [
        (sb.audience, sb.computed, sb.drawn, sb.document) for sb in slice_builds]
    siblings = [(a.name, a.title) for a, *_ in pages] if fmt != "pdf" else []
    for audience, computed, drawn, document in pages:
        values = render.context(audience, computed, drawn, document, ctx.quality, page)
        values.update(site.page_values(audience.name, fmt, document, siblings))
        html = render.render_html(values)
        if fmt in ("html", "both"):
            archived[audience.name] = files.atomic_write(html_dir / f"{audience.name}.html",
                                                         html)
            result.files.append(archived[audience.name])
        if "csv" in audience.attach:
            result.files.append(files.atomic_write(result.folder / f"{audience.name}.csv",
                                                   tables_csv(audience, computed)))
        if fmt in ("pdf", "both"):
            archived[audience.name] = result.folder / f"{audience.name}.pdf"
            jobs.append((html, html_dir, archived[audience.name],
                         [html_dir, render.template_dir(), assets], owner,
                         ctx.config.pdf_timeout_s))
    return jobs, archived


def tables_csv(audience: Audience, computed: Mapping[str, Section]) -> str:
    """Every table of the audience's sections as one CSV for pivoting: `section` and
    `table` columns first, then the union of the tables' columns, raw values (not the
    page's formatting); cells that a spreadsheet would run are made inert."""
    parts = [t.frame.reset_index(drop=True).assign(section=name, table=t.name)
             for name in audience.sections if name in computed
             for t in computed[name].tables if len(t.frame)]
    if not parts:
        return "section,table\n"
    frame = pd.concat(parts, ignore_index=True)
    frame = frame[["section", "table", *[c for c in frame.columns
                                         if c not in ("section", "table")]]]
    return neutralise(frame).to_csv(index=False)


def _record(store: archive.Archive, config: Config, loaded: Loaded, result: BuildResult,
            archived: Mapping[str, Path], computed: Mapping[str, Section], built_at: datetime,
            timings: Mapping[str, float], final: Path,
            slice_kpis: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """The build, its KPIs and the sections' hourly signals, into the archive index; the
    staging folder replaces `final` in the same transaction, and `result` names the
    published files. Then output/index.html is rewritten (a failure there is a warning)."""
    signals = [s.signals for s in computed.values() if s.signals is not None]
    store.record_build(
        period=result.period.as_dict(), folder=result.folder, files=dict(archived),
        kpis=result.document["kpis"], version=__version__, config_hash=config.digest(),
        inputs={n: q.sha256 for n, q in loaded.quality.items() if q.sha256},
        seconds=round(sum(timings.values()), 3),
        built_at=built_at.isoformat(timespec="seconds"),
        signals=pd.concat(signals, ignore_index=True) if len(signals) > 1
        else signals[0] if signals else None, final=final, slices=slice_kpis,
        rollups={n: f for n, f in loaded.frames.items() if isinstance(f, rollups.Rollup)})
    result.files = [final / f.relative_to(result.folder) for f in result.files]
    result.folder = final
    result.warnings.extend(site.rewrite_index(config, final.parents[1]))


@dataclass
class SliceBuild:
    """One sliced audience's own computation: its context, sections and document."""

    audience: Audience
    ctx: BuildContext
    computed: dict[str, Section]
    document: dict[str, Any]
    drawn: dict[str, str] = field(default_factory=dict)


def _compute_slice(audience: Audience, ctx: BuildContext, loaded: Loaded,
                   warnings: list[str], covered: coverage.Coverage) -> SliceBuild:
    """The audience's sections over its filtered rows; a slice with no row in the period
    is a warning and a "no data in this slice" report, never an all-clear."""
    filters = dict(audience.filters)
    frames = slices.restrict(loaded.frames, filters)
    restricted = slices.restricted_sources(filters)
    text = slices.describe(filters)
    info = {"audience": audience.name, "filters": {k: list(v) for k, v in filters.items()},
            "text": text, "whole": [s for s in loaded.frames if s not in restricted],
            "empty": False}
    p = ctx.period
    if slices.rows_in_period(frames, filters, p) == 0:
        message = (f"No data in this slice: the {audience.name} audience's filters "
                   f"({text}) match no rows in {p.label}.")
        warnings.append(message)
        computed = {spec.name: Section(spec.name, spec.title, "no data", message)
                    for spec in sections.SECTIONS}
        document = kpis.document(computed, p, loaded.quality, {audience.name: []},
                                 top_n=ctx.config.top_n)
        document["insights"] = [{"severity": "high", "domain": "slice", "text": message}]
        info["empty"] = True
    else:
        computed, document = _sections(frames, loaded.quality, ctx, covered)
    document["slice"] = info
    return SliceBuild(audience, ctx, computed, document)


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
        memory.trim()                  # what the stage freed goes back to the system
        seconds = time.perf_counter() - self.started
        self.timings[self.current] = round(seconds, 3)
        log.info("%s done in %.2f s", self.current, seconds)


def _start_pdf_workers(fmt: str, pdfs: int) -> None:
    if fmt != "html" and (_pdf_worker_count(pdfs) > 1 or not _main_thread()):
        _pdf_workers()


def _page(p: periods.Period, config: Config, span: tuple[pd.Timestamp, pd.Timestamp] | None
          ) -> tuple[datetime, render.Page]:
    """The build's clock and what every audience's page shares."""
    built_at = datetime.now(config.tz)
    return built_at, render.Page(p, f"{built_at:%a %-d %b %Y %H:%M} {config.tz.key}",
                                 _span_text(span, config.tz), config.thresholds)


def _pdf_workers() -> multiprocessing.context.BaseContext:
    """The fork server the PDF workers start from; starting it once the data is loaded
    lets it import WeasyPrint while the sections compute (not during the load, where its
    memory would add to the load's workers')."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["reporting._forkserver", "reporting.render", "weasyprint"])
    multiprocessing.forkserver.ensure_running()
    return ctx


def _pdf_worker_count(pdfs: int) -> int:
    return min(pdfs, os.cpu_count() or 1)


PdfJob = tuple[str, Path, Path, list[Path], tuple[Path, str] | None, float | None]


def _render_pdfs(jobs: list[PdfJob]) -> list[Path]:
    """One PDF per audience, in worker processes when there is more than one core."""
    workers = _pdf_worker_count(len(jobs))
    if not jobs:
        return []
    if workers <= 1 and _main_thread():
        return [_pdf_job(job) for job in jobs]
    # Off the main thread (the scheduler) a PDF renders in a worker process even alone:
    # only a process's main thread can have the alarm that enforces pdf_timeout_s.
    ctx = _pdf_workers()
    # Longest documents first, so the two workers finish close together.
    ordered = sorted(jobs, key=lambda job: len(job[0]), reverse=True)
    # The workers die with the build (see _die_with_parent): a build killed during this
    # stage leaves no worker behind to replace a later build's PDFs.
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        done = dict(zip([job[2] for job in ordered], pool.map(_pdf_job, ordered)))
    return [done[job[2]] for job in jobs]


def _pdf_job(job: PdfJob) -> Path:
    html, base_dir, target, roots, owner, timeout = job
    if not timeout or not _main_thread():
        return render.write_pdf(html, base_dir, target, roots, owner=owner)

    late = PdfTimeout(f"The {target.stem} PDF took longer than {timeout:g} s to render "
                      f"and was stopped (pdf_timeout_s in the config); its HTML version "
                      f"is {base_dir / (target.stem + '.html')}.")
    fired: list[bool] = []

    def expired(*_: object) -> None:
        fired.append(True)
        raise late

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        written = render.write_pdf(html, base_dir, target, roots, owner=owner)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if fired:    # the alarm's exception was caught inside WeasyPrint: still too late
        raise late
    return written


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _die_with_parent(build_pid: int) -> None:
    """Worker initializer: SIGKILL when the fork server (the worker's parent) dies, and the
    fork server dies with the build (PR_SET_PDEATHSIG, Linux; elsewhere a no-op)."""
    from ._forkserver import die_with_parent

    if die_with_parent() and not os.path.exists(f"/proc/{build_pid}"):
        os._exit(1)                              # the build died before prctl ran


def _write_side_files(folder: Path, loaded: Loaded, document: dict[str, Any],
                      slice_builds: list[SliceBuild] = ()) -> list[Path]:
    written = [files.atomic_write(folder / "kpis.json",
                                  json.dumps(document, indent=2, default=str) + "\n")]
    written += [files.atomic_write(folder / f"kpis-{sb.audience.name}.json",
                                   json.dumps(sb.document, indent=2, default=str) + "\n")
                for sb in slice_builds]
    for source, frame in loaded.rejected.items():
        written.append(files.atomic_write(folder / "rejected" / f"{source}.csv",
                                          neutralise(frame).to_csv(index=False)))
    return written


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
    return files.atomic_write(folder / "manifest.json", json.dumps(manifest, indent=2) + "\n")


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
