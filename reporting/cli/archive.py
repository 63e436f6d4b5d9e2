"""`reporting archive ...`: the archive of built reports and KPI history."""
from __future__ import annotations

import dataclasses
import io
import json
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from ..core.errors import ReportError
from .common import entry_point, load_config, out, warn, with_common


def open_archive(output_dir: Path | None, config_path: Path | None) -> Any:
    # lazy: start-up time (a command imports what it runs)
    from ..store.archive import Archive

    config = load_config(config_path)
    folder = Path(output_dir or config.output_dir)
    if not config.archive_url and not (folder / "archive.sqlite").exists():
        raise ReportError(f"No archive in {folder}: build a report first "
                          "(build-report --output {folder}).".replace("{folder}", str(folder)))
    return Archive.of(config, folder)


archive_options = [
    click.option("--output", "output_dir", type=click.Path(path_type=Path),
                 help="Output folder holding archive.sqlite (default: from the config)."),
]


def with_archive_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(archive_options):
        fn = option(fn)
    return with_common(fn)


@click.group("archive")
def archive_group() -> None:
    """The archive of built reports and KPI history."""


@archive_group.command("alerts")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@with_archive_options
@entry_point
def archive_alerts(as_json: bool, output_dir: Path | None, config_path: Path | None,
                   verbose: bool) -> None:
    """Every incident alert `reporting alert` sent, newest first, and where it went."""
    with open_archive(output_dir, config_path) as store:
        rows = store.alerts()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"Alerts ({len(rows)})", title_justify="left")
    for col in ("alert", "from", "to", "services", "sent", "incident"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["id"], r["start"][:16], r["end"][:16], r["services"],
                      ", ".join(f"{k.split('://')[0] + '://' if '://' in k else k}: {v}"
                                for k, v in r["deliveries"].items()), r["text"])
    out.print(table)


@archive_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@with_archive_options
@entry_point
def archive_list(as_json: bool, output_dir: Path | None, config_path: Path | None,
                 verbose: bool) -> None:
    """Every archived period: audiences, built at, size."""
    with open_archive(output_dir, config_path) as store:
        rows = store.periods()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return
    table = Table(title=f"Archive ({len(rows)} periods)", title_justify="left")
    for col in ("period", "from", "to", "audiences", "built at", "size"):
        table.add_column(col, justify="right" if col == "size" else "left")
    for r in rows:
        last_day = (datetime.fromisoformat(r.end) - timedelta(seconds=1)).date()
        table.add_row(r.period_id, r.start[:10], str(last_day), ", ".join(r.audiences),
                      r.built_at.replace("T", " ")[:16], f"{r.size / 1024:,.0f} KiB")
    out.print(table)


def period_arg(store: Any, text: str) -> str:
    """A period id typed by a user: `latest` (the archive's newest period, as `archive list`
    shows first) or an id in any letter case (2026-w46)."""
    # lazy: start-up time (a command imports what it runs)
    from ..store.paths import check_period_id

    if text.strip().lower() == "latest":
        rows = store.periods()
        if not rows:
            raise ReportError(f"The archive in {store.output_dir} holds no period yet.")
        return rows[0].period_id
    return check_period_id(text)


@archive_group.command("show")
@click.argument("period")
@with_archive_options
@entry_point
def archive_show(period: str, output_dir: Path | None, config_path: Path | None,
                 verbose: bool) -> None:
    """KPIs, files and checksums of one period (an id, or latest); flags missing or changed
    files."""
    # lazy: start-up time (a command imports what it runs)
    from ..core import formatting

    with open_archive(output_dir, config_path) as store:
        period = period_arg(store, period)
        info = store.show(period)
    builds = info["builds"]
    files = Table(title=f"Files of {period} ({builds} build{'' if builds == 1 else 's'} "
                  "recorded)",
                  title_justify="left")
    for col in ("audience", "file", "sha256", "size", "built at", "state"):
        files.add_column(col, overflow="fold")
    problems = 0
    for f in info["files"]:
        state = f["state"]
        problems += state != "ok"
        files.add_row(f["audience"], f["path"], f["sha256"][:16] + "…",
                      f"{f['size'] / 1024:,.0f} KiB", f["built_at"].replace("T", " ")[:16],
                      state if state == "ok" else Text(state, style="bold red"))
    out.print(files)
    kpis = Table(title="KPIs", title_justify="left")
    for col in ("kpi", "value", "status"):
        kpis.add_column(col, justify="right" if col == "value" else "left")
    for k in info["kpis"]:
        value = k["text"] if k["text"] is not None else k["value"]
        kpis.add_row(k["key"], formatting.value(value, k["unit"]), k["status"] or "")
    out.print(kpis)
    if problems:
        for f in info["files"]:
            if f["state"] != "ok":
                warn(f"{f['path']}: {f['state']}")
        warn(f"{problems} file(s) of {period} are missing or no longer match their recorded "
             "checksum.")
        sys.exit(1)


@archive_group.command("prune")
@click.option("--keep", type=click.IntRange(0), required=True,
              help="How many of the newest periods of each kind (weeks, date ranges, all) "
                   "to keep.")
@with_archive_options
@entry_point
def archive_prune(keep: int, output_dir: Path | None, config_path: Path | None,
                  verbose: bool) -> None:
    """Remove the oldest periods' files and index rows together."""
    # lazy: start-up time (a command imports what it runs)
    from ..present.site import rewrite_index
    from ..store.archive import build_lock

    config = load_config(config_path)
    folder = Path(output_dir or config.output_dir)
    with build_lock(folder, config.lock_timeout_s), open_archive(folder, config_path) as store:
        removed = store.prune(keep)
        warnings = rewrite_index(config, folder)   # under the build lock, like a build's
    for warning in warnings:
        warn(warning)
    if removed:
        out.print(f"removed {len(removed)} period(s): {', '.join(removed)}")
    else:
        out.print("nothing to remove")


@archive_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "powerbi", "grafana"]),
              default="csv", show_default=True,
              help="csv/parquet: the KPI history as one file; powerbi: the BI tables as "
                   "Parquet folders, CSV and .pbids files; grafana: a provisioning bundle.")
@click.option("--out", "out_file", type=click.Path(path_type=Path),
              help="File (csv, parquet) or folder (powerbi, grafana) to write (default: "
                   "<output>/kpi_history.<format> or <output>/<format>/).")
@with_archive_options
@entry_point
def archive_export(fmt: str, out_file: Path | None, output_dir: Path | None,
                   config_path: Path | None, verbose: bool) -> None:
    """The KPI history as one tidy table (period, kpi, value, unit, status), or the BI
    tables for Power BI or Grafana (docs/dashboards.md)."""
    # lazy: start-up time (a command imports what it runs)
    from ..core.safecsv import neutralise
    from ..store.files import atomic_write

    if fmt in ("powerbi", "grafana"):
        target = dashboards_export(fmt, out_file, output_dir, config_path)
        out.print(f"wrote the {fmt} export to {target}")
        return
    with open_archive(output_dir, config_path) as store:
        table = neutralise(store.export())
        target = out_file or store.output_dir / f"kpi_history.{fmt}"
    if fmt == "csv":
        atomic_write(target, table.to_csv(index=False))
    else:
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        atomic_write(target, buffer.getvalue())
    out.print(f"wrote {len(table):,} rows to {target}")


def dashboards_export(fmt: str, out_dir: Path | None, output_dir: Path | None,
                      config_path: Path | None) -> Path:
    """`archive export --format powerbi|grafana`: the BI tables as files Power BI opens,
    or a Grafana bundle whose panels query the archive itself."""
    # lazy: start-up time (a command imports what it runs)
    from ..present import grafana, powerbi
    from ..store import bi

    config = load_config(config_path)
    with open_archive(output_dir, config_path) as store:
        target = Path(out_dir or store.output_dir / fmt)
        url, dialect = store.url, store.db.dialect
        server = f"{url.host}:{url.port or 5432}" if dialect == "postgresql" else ""
        if fmt == "powerbi":
            powerbi.write_powerbi({t: bi.read(store.db, t) for t in bi.TABLES}, target,
                                  (server, url.database or "") if server else None)
            return target
        rows = headline_rows(config, store)
    where = ({"server": server, "user": url.username or "", "database": url.database or "",
              "password_env": config.archive_password_env} if server
             else {"path": str(Path(url.database or "").resolve())})
    grafana.write_grafana(target, dialect, where, rows)
    return target


def headline_rows(config: Any, store: Any) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """Per configured audience: its name, its kpi_history slice ('all' unless its filters
    make a slice of its own) and its headline KPIs in the newest period's kpis.json."""
    # lazy: start-up time (a command imports what it runs)
    from ..present.audience import audience_view

    periods = store.periods()
    if not periods:
        raise ReportError("The archive holds no period yet: build a report first.")
    folder = Path(periods[0].folder)
    folder = folder if folder.is_absolute() else store.output_dir / folder
    rows = []
    for name, audience in config.audiences.items():
        sliced = bool(audience.filters)
        path = folder / (f"kpis-{name}.json" if sliced else "kpis.json")
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError):
            continue        # an audience the newest period was not built for
        view = audience_view(document, audience)
        rows.append((name, name if sliced else "all", list(view.headline)))
    return rows
