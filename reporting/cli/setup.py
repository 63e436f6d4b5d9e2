"""`reporting init [DIR]` and `reporting config check`: a newcomer's first config, written
from the key declarations for the data it finds, and the config as it is read."""
from __future__ import annotations

from pathlib import Path

import click

from ..core.configtext import resolved, template
from ..core.contracts import SOURCE_NAMES
from ..core.errors import ReportError, SourceError
from .common import entry_point, load_config, out, warn, with_common

LOGS = "logs"


@click.command("init")
@click.argument("folder", type=click.Path(path_type=Path), default=".")
@click.option("--data", "data_dir", type=click.Path(path_type=Path),
              help="The data folder (default: FOLDER/data when it exists, else FOLDER).")
@click.option("--force", is_flag=True, help="Replace an existing report.toml.")
@click.option("--verbose", "-v", is_flag=True)
@entry_point
def init_cmd(folder: Path, data_dir: Path | None, force: bool, verbose: bool) -> None:
    """Write FOLDER/report.toml: every key commented with its default, data_dir and the
    sources found (one file per source, access logs in a logs/ folder) set."""
    # lazy: start-up time (a command imports what it runs)
    from ..ingest.folder import find_file, near_misses

    target = folder / "report.toml"
    if target.exists() and not force:
        raise ReportError(f"{target} exists; pass --force to replace it (or edit it: "
                          "`reporting config check` shows how it is read).")
    data = data_dir or (folder / "data" if (folder / "data").is_dir() else folder)
    found = {n: f for n in SOURCE_NAMES if data.is_dir() and (f := find_file(data, n))}
    notes = [f"Sources found in {_rel(data, folder)}/: "
             + (", ".join(f.name for f in found.values()) or "none") + "."]
    lines = [f"data_dir = {_toml_path(data, folder)}"]
    logs = _logs(folder, data)
    if logs is not None and "api_logs" not in found:
        pattern, note = logs
        notes.append(note)
        lines += ["", "[sources.api_logs]                # web-server access logs",
                  f"path = {_toml_path(pattern, folder)}", 'format = "access_log"']
    notes += near_misses(data) if data.is_dir() else []
    missing = [n for n in SOURCE_NAMES if n not in found and not (n == "api_logs" and logs)]
    if missing:
        notes.append(f"Not found (their sections will say \"no data\"): {', '.join(missing)}.")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(template(notes, lines), encoding="utf-8")
    out.print(f"wrote {target}", soft_wrap=True)
    for note in notes:
        out.print(f"  {note}", soft_wrap=True)
    if not found and logs is None:
        warn(f"no data found in {data}: put one file per source there ({SOURCE_NAMES[0]}.csv, "
             "...), or point [sources] at where the data is kept.")
    out.print(f"next: reporting validate{_config_arg(target)}, then "
              f"build-report{_config_arg(target)}", soft_wrap=True)


def _logs(folder: Path, data: Path) -> tuple[Path, str] | None:
    """A logs/ folder beside the config or in the data folder: the access logs' pattern
    (access.log, access.log.1, access.log.2.gz ...) and a note on their format."""
    for logs in dict.fromkeys((folder / LOGS, data / LOGS)):
        files = sorted(p for p in logs.iterdir() if p.is_file()) if logs.is_dir() else []
        if not files:
            continue
        access = [p for p in files if "access" in p.name.lower()]
        pattern = logs / ("*access*" if access else "*")
        return pattern, f"Access logs in {_rel(logs, folder)}/: " + _format_note(
            (access or files)[0])
    return None


def _format_note(path: Path) -> str:
    """Which layout the first lines read as (combined, with or without a response time,
    common, ingress-nginx); otherwise the config needs the site's log_format."""
    # lazy: start-up time (a command imports what it runs)
    from ..ingest.accesslog import detect
    from ..ingest.logfiles import first_lines

    try:
        _, lines = first_lines([path], 20)
    except SourceError as exc:
        return str(exc)
    layout = detect(lines)[0] if lines else None
    if layout is not None:
        return f"{path.name} reads as the {layout}."
    return (f"the first lines of {path.name} are no access log layout the report knows: "
            "add its nginx log_format (or Apache LogFormat) under [sources.api_logs].")


def _rel(path: Path, folder: Path) -> str:
    try:
        return str(path.resolve().relative_to(folder.resolve())) or "."
    except ValueError:
        return str(path)


def _toml_path(path: Path, folder: Path) -> str:
    """A path as the config writes it: relative to the config file when inside its folder."""
    text = _rel(path, folder)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _config_arg(target: Path) -> str:
    return "" if target == Path("report.toml") else f" --config {target}"


@click.group("config")
def config_group() -> None:
    """The config file: check it."""


@config_group.command("check")
@with_common
@entry_point
def config_check(config_path: Path | None, verbose: bool) -> None:
    """Read the config, check every key, and print it as it is read (defaults included,
    secrets as ***)."""
    config = load_config(config_path)
    source = config.source or "no report.toml here: the defaults"
    out.print(f"# {source}", soft_wrap=True)
    out.print(resolved(config), soft_wrap=True, end="")
    out.print(f"# ok: {len(config.audiences)} audiences, {len(config.sources)} configured "
              "source(s)", soft_wrap=True)
