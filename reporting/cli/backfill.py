"""`reporting backfill`: history on day one. Builds the N ISO weeks ending with the week
of `--until`, oldest first, through the same `build()` as build-report, so Trends, the
previous-period comparison and the incident baselines have archived weeks from the first
day. Weeks already archived are kept (unless --force); weeks the data does not reach are
listed and skipped; nothing is sent unless --deliver."""
from __future__ import annotations

import time
from typing import Any
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from ..core.errors import NoDataError
from .common import STAGE_TEXT, entry_point, err, load_config, out, send, with_common


@dataclass
class Week:
    """What backfill did with one week."""

    id: str
    result: str = ""          # built, archived already, no data
    note: str = ""
    seconds: float = 0.0


@click.command("backfill")
@click.option("--weeks", "n", type=click.IntRange(1, 104), required=True,
              help="How many ISO weeks to build, ending with the week of --until.")
@click.option("--until", default="latest", show_default=True,
              help="The newest week's period: latest, last-week, 2026-W46, a date range.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path),
              help="Folder of input files (default: data_dir from the config, or data/).")
@click.option("--output", "output_dir", type=click.Path(path_type=Path),
              help="Output folder (default: output_dir from the config, or output/).")
@click.option("--force", is_flag=True, help="Build again the weeks already archived.")
@click.option("--deliver", is_flag=True,
              help="Send every delivery an audience configures for each week built.")
@with_common
@entry_point
def backfill_cmd(n: int, until: str, data_dir: Path | None, output_dir: Path | None,
                 force: bool, deliver: bool, config_path: Path | None, verbose: bool) -> None:
    """Build the past N weeks at once (oldest first) so Trends have history on day one."""
    # lazy: start-up time (a command imports what it runs)
    from ..build import build, period_of
    from ..core.periods import weeks_ending

    config = load_config(config_path)
    data = Path(data_dir or config.data_dir)
    output = Path(output_dir or config.output_dir)
    with err.status(f"finding the week of {until}…", spinner="dots"):
        last = period_of(config, data, until)
    weeks = weeks_ending((last.end - timedelta(microseconds=1)).date(), n, config.tz)
    archived = set() if force else _archived(config, output)
    done: list[Week] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("backfill", total=len(weeks))
        for p in weeks:
            week = Week(p.id)
            done.append(week)
            if p.id in archived:
                week.result = "archived already"
                bar.advance(task)
                continue
            started = time.perf_counter()

            def on_stage(stage: str, week_id: str = p.id) -> None:
                bar.update(task, description=f"{week_id}: {STAGE_TEXT.get(stage, stage)}")
            try:
                build(config, period=p.id, data_dir=data, output_dir=output, on_stage=on_stage)
                week.result = "built"
            except NoDataError as exc:        # a week the data does not reach
                week.result, week.note = "no data", str(exc)
            week.seconds = time.perf_counter() - started
            bar.advance(task)
    _summary(done, until, last.id)
    for week in done if deliver else ():
        if week.result == "built":
            send(config, output, week.id, list(config.audiences), force=False, channels=True)


def _archived(config: Any, output: Path) -> set[str]:
    """Period ids the archive holds (none when there is no archive yet: none is made)."""
    if not config.archive_url and not (output / "archive.sqlite").exists():
        return set()
    # lazy: start-up time (a command imports what it runs)
    from ..store.archive import Archive
    with Archive.of(config, output) as store:
        return {r.period_id for r in store.periods()}


def _summary(done: list[Week], until: str, last: str) -> None:
    table = Table(title=f"Backfill: {len(done)} week(s) ending with the week of {until} "
                  f"({last})", title_justify="left")
    for col in ("week", "result", "seconds"):
        table.add_column(col, justify="right" if col == "seconds" else "left",
                         overflow="fold")
    for w in done:
        table.add_row(w.id, w.result + (f": {w.note}" if w.note else ""),
                      f"{w.seconds:.1f}" if w.result == "built" else "")
    out.print(table)
    built = sum(w.result == "built" for w in done)
    skipped = [w.id for w in done if w.result == "no data"]
    out.print(f"{built} built, {sum(w.result == 'archived already' for w in done)} archived "
              f"already (--force builds them again), {len(skipped)} without data"
              + (f": {', '.join(skipped)}" if skipped else ""), soft_wrap=True)
    if not built and not any(w.result == "archived already" for w in done):
        raise NoDataError(f"The data reaches none of the {len(done)} week(s) ending with "
                          f"{last}; nothing was built.")

