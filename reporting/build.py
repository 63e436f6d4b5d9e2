"""The builder: load → context → sections → charts → HTML → PDF → files → archive."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__
from .compute import changes, coverage, sections, sentiment, slices
from .compute import document as kpis
from .compute.context import BuildContext, with_archived_rollups
from .compute.coverage import data_span
from .core import i18n, memory, periods, rollups
from .core.config import Audience, Config
from .core.errors import ReportError, SourceError
from .core.quality import Loaded
from .core.registry import sources
from .core.values import Section
from .ingest.engine.load import load
from .ingest.folder import find_file, no_rows
from .present import chartplan, site, workers
from .present import html as render
from .present.audience import check_audiences
from .present.export import tables_csv
from .present.pdf import PdfJob, render_pdfs
from .store import archive, files, owner
from .store.paths import report_folder
from .store.publish import (
    stage_copy,
    staging_folder,
    undo_on_failure,
    write_manifest,
    write_side_files,
)

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
    with undo_on_failure(output_dir, staging), \
            archive.build_lock(output_dir, config.lock_timeout_s), ExitStack() as opened:
        files.sweep_temporary_files(output_dir / "reports")
        build_id = owner.take_over(output_dir)    # a killed build's PDF workers lose the folder
        helper = opened.enter_context(sentiment.helping(_feedback_expected(config, data_dir)))
        with stage("load"):
            loaded, p, span, covered = _load(config, data_dir, period, now, strict,
                                             on_progress, helper)
        # Opened once there is something to build: a run that finds no data leaves no index.
        store = opened.enter_context(archive.Archive.of(config, output_dir))
        workers.start(fmt, len(names))    # after the load's workers: not beside them
        with stage("context"):
            loaded.frames = with_archived_rollups(store, loaded.frames, p,
                                                  config.thresholds.slo_window_days)
            ctx, sliced = _contexts(store, config, p, names, loaded.quality)
        warnings = _warnings(loaded)
        with stage("sections"):
            computed, document = _sections(loaded.frames, loaded.quality, ctx, covered)
            slice_builds = [_compute_slice(a, c, loaded, warnings, covered) for a, c in sliced]
        final = report_folder(output_dir, p.id)
        staging.append(stage_copy(final, staging_folder(output_dir, p.id)))
        result = BuildResult(p, staging[0], warnings=warnings, document=document)
        with stage("charts"):
            drawn = _draw(computed, slice_builds, result.folder / "html/charts", covered, ctx, fmt)
        built_at, page = _page(p, config, span)
        with stage("html"):
            jobs, archived = _render_html(ctx, computed, drawn, document, page, fmt, result,
                                          (output_dir, build_id), slice_builds)
        with stage("pdf"):
            result.files.extend(render_pdfs(jobs))
        with stage("write"):
            result.files.extend(_side_files(result.folder, config, loaded, document,
                                            slice_builds))
            result.files.append(write_manifest(result.folder, config, loaded, p, names,
                                               built_at, document, result.files,
                                               stage.timings))
        with stage("archive"):
            _record(store, config, loaded, result, archived, computed, built_at, stage.timings,
                    final, {sb.audience.name: sb.document["kpis"] for sb in slice_builds})
    result.timings = stage.timings
    return result


def _feedback_expected(config: Config, data_dir: Path) -> bool:
    """Whether a sentiment helper pays: a second core, feedback to score, and the first
    build of this process (`sentiment.once_here`)."""
    if workers.cores() < 2:
        return False
    try:
        feedback = "user_feedback" in config.sources or (
            data_dir.is_dir() and find_file(data_dir, "user_feedback") is not None)
    except (OSError, SourceError):
        return False       # the load says what is wrong with the folder
    return feedback and sentiment.once_here()


def _side_files(folder: Path, config: Config, loaded: Loaded, document: dict[str, Any],
                slice_builds: list[SliceBuild]) -> list[Path]:
    """kpis.json and the files beside it; the index's words in the top-level locale."""
    return site.write_words(folder, i18n.voice(config.locale, config.tz), document) + \
        write_side_files(folder, loaded, document,
                         {sb.audience.name: sb.document for sb in slice_builds})


def _warnings(loaded: Loaded) -> list[str]:
    """What the CLI and the scheduler's log say: the load's errors and warnings, and one
    sentence per source a report needs that is missing or whose every row was set aside
    (the build goes on; page 1 of each audience showing it says so)."""
    return list(loaded.messages) + [
        text for name, text in coverage.not_loaded(loaded.quality).items()
        if loaded.quality[name].status != "error"]       # errors are among the messages


def _load(config: Config, data_dir: Path, period: str, now: datetime | None, strict: bool,
          progress: Callable[[str], None] | None, helper: sentiment.Helper | None = None
          ) -> tuple[Loaded, periods.Period, tuple[pd.Timestamp, pd.Timestamp] | None,
                     coverage.Coverage]:
    """The sources, read for `period`, which is resolved once: a week or a range before the
    load (its window bounds what configured sources read), latest and all after it (they
    end where the data does); stops when no source has a row in the period. The feedback's
    texts go to the sentiment `helper` as soon as they are read."""
    p = periods.named(period, config.tz, now)
    loaded = load(config, data_dir,
                  periods.window_of(period, p, config.thresholds.slo_window_days),
                  now=now, progress=progress)
    if helper is not None and "user_feedback" in loaded.frames:
        helper.ask(loaded.frames["user_feedback"]["feedback_text"])
    if strict and loaded.errors:
        raise SourceError(loaded.errors[0])
    span = data_span(loaded.frames)
    if span is None and p is not None and not any(q.status == "loaded"
                                                  for q in loaded.quality.values()):
        raise SourceError(no_rows(loaded.quality, data_dir))   # an empty or wrong folder
    p = p or _from_data(period, config, loaded, span, data_dir, now)
    covered = coverage.compute(loaded.frames, p)
    if not any(c.first is not None for c in covered.sources.values()):
        # nothing in the window read: each source's own span, from all its data, names
        # the side and the date (a log read only for the window would seem empty)
        whole = load(config, data_dir, periods.Window(), now=now)
        coverage.require_some(covered, span, coverage.source_spans(whole.frames))
    if (period or "latest").strip() == "latest" and \
            (note := coverage.sparse_latest(covered, span)) is not None:
        loaded.warnings.append(note)
    return loaded, p, span, covered


def _from_data(spec: str, config: Config, loaded: Loaded,
               span: tuple[pd.Timestamp, pd.Timestamp] | None, data_dir: Path,
               now: datetime | None) -> periods.Period:
    """`latest` or `all`: where the loaded data ends (an empty folder is one sentence
    naming the files expected)."""
    if span is None:
        raise SourceError(no_rows(loaded.quality, data_dir))
    return periods.resolve(spec, config.tz, span, now,
                           coverage.last_complete_day(loaded.frames, config.tz))


def latest_of(config: Config, loaded: Loaded, now: datetime | None = None
              ) -> periods.Period | None:
    """What `--period latest` builds from data already loaded (`validate` says it); None
    when no source has a timestamped row."""
    span = data_span(loaded.frames)
    if span is None:
        return None
    return periods.resolve("latest", config.tz, span, now,
                           coverage.last_complete_day(loaded.frames, config.tz))


def period_of(config: Config, data_dir: Path, spec: str, now: datetime | None = None
              ) -> periods.Period:
    """The period `spec` names, without building it: `latest` and `all` read the data to
    find where it ends (what `reporting backfill --until` counts back from)."""
    p = periods.named(spec, config.tz, now)
    if p is not None:
        return p
    loaded = load(config, Path(data_dir), periods.window_of(spec, None), now=now)
    return _from_data(spec, config, loaded, data_span(loaded.frames), Path(data_dir), now)


def _sections(frames: Mapping[str, pd.DataFrame], quality: Mapping[str, Any],
              ctx: BuildContext, covered: coverage.Coverage
              ) -> tuple[dict[str, Section], dict[str, Any]]:
    """Every section computed (for the whole data or one slice's rows); a partial source's
    KPIs are never good nor compared; money carries the currency; timelines mark deploys
    and maintenance; then the kpis.json document, with the coverage."""
    computed = sections.compute_all(frames, ctx)
    computed = coverage.untrusted(computed, sources(), covered)
    computed = kpis.with_rounded(kpis.with_currency(computed, ctx.config.currency))
    computed = changes.with_marks(computed, frames, ctx.config.maintenance, ctx.period)
    document = kpis.document(computed, ctx.period, quality, {
        a.name: kpis.headline_keys(computed, a.sections) for a in ctx.audiences},
        top_n=ctx.config.top_n)
    document["coverage"] = covered.as_dict()
    document["coverage_notes"] = covered.notes() + [
        n for s in computed.values() for n in s.notes]
    return computed, document


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
          covered: coverage.Coverage, ctx: BuildContext, fmt: str = "pdf"
          ) -> dict[str, dict[str, str]]:
    """The charts, gaps where a source has no data, by locale ("" English, the others'
    in `charts/<locale>/`: each language other than English among the whole data's
    audiences, their ticks' numbers and dates in it); a slice's in a folder of its own
    (`charts/<audience>/`), in its own language; when an HTML page is written (`fmt`),
    each chart's phone variant too. Drawn on every core (`workers.draw_charts`)."""
    days, missing = covered.days(), covered.missing_days(sources())
    narrow = fmt != "pdf"
    batches: list[workers.Batch] = []

    def planned(voice: i18n.Voice | None, sections: Mapping[str, Section], where: str
                ) -> dict[str, str]:
        with i18n.speaking(voice):       # a chart's words are picked as it is planned
            names, todo = chartplan.drawings(sections, folder / where, days, missing, narrow)
        batches.append((voice, todo))
        return {k: f"{where}/{v}" if where else v for k, v in names.items()}

    for sb in slice_builds:
        voice = i18n.of(sb.audience, ctx.config)
        sb.drawn = planned(None if voice.english else voice, sb.computed, sb.audience.name)
    out = {"": planned(None, computed, "")}
    for audience in ctx.audiences:
        voice = i18n.of(audience, ctx.config)
        if not voice.english and voice.name not in out:
            out[voice.name] = planned(voice, computed, voice.name)
    workers.draw_charts(batches)
    return out


def _render_html(ctx: BuildContext, computed: Mapping[str, Section],
                 drawn_in: Mapping[str, Mapping[str, str]],
                 document: dict[str, Any], page: render.Page, fmt: str, result: BuildResult,
                 owner: tuple[Path, str], slice_builds: list[SliceBuild] = ()
                 ) -> tuple[list[PdfJob], dict[str, Path]]:
    """Each audience's page; written when HTML is asked for, queued as a PDF job when
    PDFs are (`owner`: the output folder and this build's id, checked before each PDF's
    rename); a sliced audience's page from its own sections; `drawn_in`: the charts by
    locale ("" English). Returns the PDF jobs and the file archived per audience; writes
    `<audience>.csv` where `attach` asks for it."""
    html_dir = result.folder / "html"
    # output/assets: the HTML pages' fonts (a PDF-only build writes no page needing them)
    assets = site.ensure_assets(result.folder.parents[1], fonts=fmt != "pdf")
    jobs, archived = [], {}
    drawn = drawn_in[""]
    pages = [(a, computed, drawn_in.get(i18n.of(a, ctx.config).name, drawn), document)
             for a in ctx.audiences] + [
        (sb.audience, sb.computed, sb.drawn, sb.document) for sb in slice_builds]
    siblings = [(a.name, a.title) for a, *_ in pages] if fmt != "pdf" else []
    for audience, computed, drawn, document in pages:
        with i18n.speaking(i18n.of(audience, ctx.config)):   # its language, numbers, zone
            values = render.context(audience, computed, drawn, document, ctx.quality, page)
            values.update(site.page_values(audience.name, fmt, document, siblings))
            html = render.render_html(values)
            if not i18n.of(audience, ctx.config).english:     # the mail's words, said
                files.atomic_write(result.folder / "mail" / f"{audience.name}.json",
                                   json.dumps(render.mail_words(values), ensure_ascii=False))
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
        document=result.document,
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


def _page(p: periods.Period, config: Config, span: tuple[pd.Timestamp, pd.Timestamp] | None
          ) -> tuple[datetime, render.Page]:
    """The build's clock and what every audience's page shares."""
    built_at = datetime.now(config.tz)
    return built_at, render.Page(p, f"{built_at:%a %-d %b %Y %H:%M} {config.tz.key}",
                                 _span_text(span, config.tz), config.thresholds, built_at,
                                 span)


def _span_text(span: tuple[pd.Timestamp, pd.Timestamp] | None, tz: Any) -> str:
    if span is None:
        return "no timestamped data"
    a, b = (t.tz_convert(tz) for t in span)
    return f"{a:%-d %b %Y %H:%M} – {b:%-d %b %Y %H:%M}"
