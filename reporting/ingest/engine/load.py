"""The one loader: every source, without holding the rows of the high-volume ones.

`load` is what build, alerts and `reporting validate` read through. The small sources
(carts, feedback, tickets) are read whole (`folder.read_folder_file`, `configured.load`);
each high-volume source is cut into tasks (`plan`: a few Parquet row groups, or one CSV
file), each read in batches of `chunk_rows`, and each batch goes through the same step
anywhere (`tasks.step`): read -> validate (`validate.validate_rows`, `reject_out_of_range`,
`flag_replaced`) -> `rollups.reduce` -> (rollup, rejected rows with file, row and reason,
counts by reason). Results merge as they arrive, per time bucket (`rollups.Pile`), so
memory is bounded by the batch size times the workers plus the merged rollups, not by
the length of the period or the size of a row group.

Engines (`runners`): "local" runs the tasks in a process pool on this machine's cores;
"dask" runs them on a Dask cluster (an existing scheduler, or a `LocalCluster`) as one
graph: each task's rollup is cut into its tables, each table's pieces are the partitions
of a `dask.dataframe` that Dask's own groupby aggregation (or drop_duplicates) reduces on
the cluster, and each reduced partition comes back as soon as it is done: only rollup
tables, rejected rows and counts travel to the client.

A file in the data folder keeps each rejected row exactly as written (every column, as
text) with its row number; a configured source's rejected rows name their file and row.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from ...core import rollups
from ...core.config import Config
from ...core.sourceconfig import LOG_FORMATS, SourceConfig
from ...core.contracts import EVENT_SOURCES, HIGH_VOLUME, SPECS
from ...core.errors import SourceError
from ...core.periods import Window, latest_window
from ...core.quality import Loaded, Quality
from .. import configured
from ..configured import latest
from ..files import (
    READ_ERRORS,
    Inflation,
    NoData,
    file_sha256,
    files_digest,
    unreadable,
)
from ..csvrepair import KEEP_REJECTED, unkept_note
from ..folder import near_misses, read_folder_file
from ..validate import default_time_range
from .plan import Plan, folder_plan, query_plan, source_plan
from .remote import open_bytes
from .runners import EngineSettings, Meter, Progress, run_dask, run_local
from .tasks import Job, Part

log = logging.getLogger(__name__)


def load(config: Config, data_dir: Path, window: Window = Window(), *, now: Any = None,
         settings: EngineSettings | None = None, progress: Progress | None = None
         ) -> Loaded:
    """Every source, through the configured engine: the small ones (carts, feedback,
    tickets) as validated rows, the high-volume ones as rollups (no rows of theirs held),
    with each source's quality record and rejected rows. Configured sources are read only
    for `window` (a `latest` build's is bounded here, once the sources' newest time is
    known); a file in the data folder is read whole. What `build`, `alerts` and
    `reporting validate` read."""
    settings = settings or EngineSettings.of(config)
    tz, configured = config.tz, dict(config.sources)
    mappings = config.columns or {}
    time_range = default_time_range(now, config.earliest_timestamp,
                                    config.future_margin_hours)
    data_dir = Path(data_dir)
    if not data_dir.is_dir() and not configured:
        raise SourceError(f"Data folder {data_dir} does not exist or is not a folder.")
    loaded = Loaded({}, {}, {}, near_misses(data_dir, configured)
                    if data_dir.is_dir() else [])
    minutes = rollups.slot_minutes(tz)
    bound = Inflation(config.max_decompressed_mb, config.max_decompression_ratio)

    def job(name: str, folder: bool) -> Job:
        return Job(name, tz.key, minutes, time_range,
                   tuple(mappings.get(name, {}).items()), folder, bound=bound)

    plans: list[Plan] = []
    for name, spec in SPECS.items():
        q = loaded.quality[name] = Quality(name)
        if name in configured:
            continue
        if name not in HIGH_VOLUME:
            keep_source(loaded, name, lambda: read_folder_file(
                data_dir, spec, tz, mappings.get(name, {}), q, time_range=time_range,
                bound=bound))
            continue
        _plan(loaded, plans, name, lambda: folder_plan(
            job(name, True), data_dir, q, mappings.get(name, {}), settings.chunk_rows,
            configured))
    run = run_dask if settings.engine == "dask" else run_local
    meter = Meter(progress)
    if configured and window.newest:
        if plans:
            _run(loaded, plans, run, settings, meter)    # their newest time bounds it
            plans = []
        window = newest_window(configured, tz, loaded, mappings,
                               config.thresholds.slo_window_days)
    for name, src in configured.items():
        _configured(loaded, plans, job(name, False), src, window, settings.chunk_rows)
    _run(loaded, plans, run, settings, meter)
    return _ordered(loaded, configured)


def _configured(loaded: Loaded, plans: list[Plan], job: Job, src: SourceConfig,
                window: Window, chunk_rows: int) -> None:
    """A `[sources.NAME]` source: planned in chunks, or (small sources, access logs) read
    as today and reduced."""
    name, q, tz = job.source, loaded.quality[job.source], job.zone
    if name in HIGH_VOLUME and src.url:
        _plan(loaded, plans, name, lambda: query_plan(
            dataclasses.replace(job, unit="query"), src, window.for_source(name), q,
            chunk_rows))
    elif name not in HIGH_VOLUME or src.format in LOG_FORMATS:
        keep_source(loaded, name, lambda: configured.load(
            src, SPECS[name], tz, dict(job.mapping), window, q, job.time_range, job.bound))
        if name in loaded.frames and name in HIGH_VOLUME:
            rows = loaded.frames[name]
            loaded.frames[name] = dataclasses.replace(rollups.reduce(
                rows, name, tz, job.minutes), holes=rows.attrs.get("holes", ()))
    else:
        _plan(loaded, plans, name, lambda: source_plan(
            job, src, window.for_source(name), q, dict(job.mapping), chunk_rows))


def _run(loaded: Loaded, plans: list[Plan], run: Callable[..., dict[str, Part]],
         settings: EngineSettings, meter: Meter) -> None:
    parts = run([t for p in plans for t in p.tasks], settings, meter)
    for plan in plans:
        _finish(loaded, plan, parts.get(plan.name))


def _plan(loaded: Loaded, plans: list[Plan], name: str, make: Callable[[], Any]) -> None:
    """One source's plan; a SourceError marks that source, the others go on."""
    q = loaded.quality[name]
    try:
        try:
            plan = make()
        except READ_ERRORS as exc:    # a damaged file: it fails alone, in one sentence
            raise unreadable(q.file or q.origin or name, exc) from None
    except SourceError as exc:
        q.status, q.message = "error", str(exc)
        log.info("%s", exc)
        return
    except NoData as exc:
        q.status, q.message = "absent", f"no data: {exc}"
        return
    if plan is not None:
        plans.append(plan)


def _finish(loaded: Loaded, plan: Plan, part: Part | None) -> None:
    """The source's quality record, rollup and rejected rows from its merged part."""
    q = loaded.quality[plan.name]
    if part is not None and part.error:
        q.status, q.message = "error", part.error
        if q.origin is not None:      # as `configured.load` leaves it: nothing was read
            q.file, q.read, q.skipped = None, 0, 0
        log.info("%s", part.error)
        return
    job = plan.tasks[0].job if plan.tasks else plan.job
    part = part or Part(rollups.empty(plan.name, job.zone, job.minutes) if job else None)
    if plan.hashed:
        q.sha256 = file_sha256(plan.files[0]) if q.origin is None and plan.files \
            else files_digest([str(f) for f in plan.files], open_bytes, part.digests)
    q.status, q.rows, q.valid, q.rejected = "loaded", part.rows, part.valid, part.counts
    if part.note:
        q.message = part.note
    _note_unkept(q, part.unkept)
    if part.note or part.unkept:
        log.warning("%s: %s", plan.name, q.message)
    loaded.frames[plan.name] = part.rollup
    if part.rejected:
        loaded.rejected[plan.name] = pd.concat(part.rejected, ignore_index=True)
    q.seconds = time.perf_counter() - plan.started
    log.info("loaded %s from %s: %d rows, %d valid, %d rejected in %.2f s", plan.name,
             plan.file, q.rows, q.valid, q.rows - q.valid, q.seconds)


def _ordered(loaded: Loaded, configured: dict[str, Any]) -> Loaded:
    """Frames and rejected rows in the contract's order: data-folder sources, then
    configured ones."""
    order = [n for n in SPECS if n not in configured] + list(configured)
    for attr in ("frames", "rejected"):
        d = getattr(loaded, attr)
        setattr(loaded, attr, {n: d[n] for n in order if n in d})
    return loaded


def keep_source(loaded: Loaded, name: str, load: Any) -> None:
    """Run one source's load; a SourceError marks that source, the others go on."""
    q = loaded.quality[name]
    try:
        try:
            result = load()
        except READ_ERRORS as exc:    # a damaged file: it fails alone, in one sentence
            raise unreadable(q.file or q.origin or name, exc) from None
    except SourceError as exc:
        q.status, q.message = "error", str(exc)
        q.file = q.file if q.origin is None else None    # nothing was read
        log.info("%s", exc)      # the caller shows it to the user, once
        return
    if result is None:
        return
    frame, bad = result
    if q.status == "loaded":
        loaded.frames[name] = frame
    if len(bad) > KEEP_REJECTED:      # as a high-volume source's parts keep them
        _note_unkept(q, len(bad) - KEEP_REJECTED)
        bad = bad.iloc[:KEEP_REJECTED]
    if len(bad):
        loaded.rejected[name] = bad


def _note_unkept(q: Quality, unkept: int) -> None:
    """The warning for a source's rejected rows past the KEEP_REJECTED kept, after its
    own message."""
    if unkept:
        note = unkept_note(unkept, "rows")
        q.message = f"{q.message} {note}" if q.message else note


def newest_window(configured: dict[str, Any], tz: ZoneInfo, loaded: Loaded,
                  mappings: dict[str, dict[str, str]], reach_days: int = 0) -> Window:
    """A `latest` build's window, from the newest time of what is loaded (a rollup's span)
    and of each configured source (asked cheaply: file names, Parquet statistics, a
    query's MAX); unbounded when a source cannot tell without being read."""
    newest = [f.span[1] if isinstance(f, rollups.Rollup) else f[SPECS[n].time].max()
              for n, f in loaded.frames.items() if n not in EVENT_SOURCES
              and (f.span if isinstance(f, rollups.Rollup) else len(f))]
    for name, src in configured.items():
        if name in EVENT_SOURCES:        # a deploy does not say how far the data reaches
            continue
        t = latest(src, SPECS[name], mappings.get(name, {}), tz)
        if t is None:      # a source that cannot tell cheaply: read all of it
            return Window()
        newest.append(t)
    newest = [t for t in newest if pd.notna(t)]
    return latest_window(max(newest), tz, reach_days) if newest else Window()
