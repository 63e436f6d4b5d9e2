"""What every command shares: consoles, logging, one sentence per user mistake (the
exit codes) and the common options."""
from __future__ import annotations

import errno
import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

from ..core.config import Config
from ..core.errors import ReportError
from ..core.secrets import ScrubFilter, scrub


def _console(stderr: bool) -> Console:
    """A terminal gets rich output at its width; a pipe (cron, the journal) gets lines that
    are never wrapped."""
    # markup off: text we print (warnings, table cells) may hold "[alerts]" or "[sources]"
    console = Console(stderr=stderr, highlight=False, markup=False)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, highlight=False, markup=False, width=10_000, soft_wrap=True)


err = _console(stderr=True)


out = _console(stderr=False)

_said: set[str] = set()          # the warnings this command printed: each once


def warn(text: str) -> None:
    """One "warning: ..." line on stderr, printed as written and only once per command."""
    text = scrub(text)
    if text not in _said:
        _said.add(text)
        err.print(Text.assemble(("warning:", "yellow"), " ", text), soft_wrap=True)


def error(text: str) -> None:
    """One "error: ..." line on stderr, printed as written (scrubbed of secrets)."""
    text = scrub(text)
    err.print(Text.assemble(("error:", "bold red"), " ", text), soft_wrap=True)


log = logging.getLogger("reporting")


class _PlainFormatter(logging.Formatter):
    """One line per record: "warning: ...", as the CLI's own messages read."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + scrub(self.formatException(record.exc_info))
        return line


def _setup_logging(verbose: bool) -> None:
    if err.is_terminal:
        handler: logging.Handler = RichHandler(console=err, show_path=False,
                                               show_time=verbose, markup=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_PlainFormatter())
    handler.addFilter(ScrubFilter())        # no secret reaches the log, whoever logs it
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
                        handlers=[handler], force=True)
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    logging.getLogger("weasyprint").setLevel(logging.ERROR if not verbose else logging.WARNING)


def entry_point(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Every command's wrapper: sets up logging (--verbose), then turns user mistakes into
    one sentence on stderr and the error's exit code (2, or 1 for delivery and a held
    lock); bugs are one sentence too unless --verbose asks for the traceback."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verbose = kwargs.get("verbose", False)
        _setup_logging(verbose)
        _said.clear()
        try:
            return fn(*args, **kwargs)
        except ReportError as exc:
            error(str(exc))
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            err.print("interrupted")
            sys.exit(1)
        except Exception as exc:  # a bug: one line, or the traceback with --verbose
            problem = _file_problem(exc) if isinstance(exc, OSError) else None
            if problem:          # a path the user gave that cannot be used
                error(problem)
                sys.exit(2)
            if verbose:
                raise
            error(f"unexpected failure: {type(exc).__name__}: {exc} (run again with "
                  "--verbose for the traceback)")
            sys.exit(1)
    return wrapper


FILE_PROBLEMS = {errno.EACCES: "permission denied", errno.EPERM: "not permitted",
                 errno.EROFS: "the file system is read-only",
                 errno.ENOTDIR: "a part of the path is a file, not a folder",
                 errno.EEXIST: "a file is in the way", errno.EISDIR: "it is a folder",
                 errno.ENOENT: "no such file or folder",
                 errno.ENOSPC: "no space left on the device"}


def _file_problem(exc: OSError) -> str | None:
    """An output or input path the user gave that cannot be used, as one sentence."""
    if exc.errno not in FILE_PROBLEMS or not exc.filename:
        return None
    return (f"Cannot use {exc.filename}: {FILE_PROBLEMS[exc.errno]}; choose another path "
            "or fix its permissions.")


def load_config(path: Path | None, data: Path | None = None) -> Config:
    config = Config.load(path)
    return config


common = [
    click.option("--config", "config_path", type=click.Path(path_type=Path),
                 help="TOML config file (default: ./report.toml when present)."),
    click.option("--verbose", "-v", is_flag=True, help="Log every stage; show tracebacks."),
]


def with_common(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(common):
        fn = option(fn)
    return fn


build_options = [
    click.option("--period", "-p", default="latest", show_default=True,
                 help="latest, last-week, 2026-W46, 2026-11-01..2026-11-30 or all."),
    click.option("--audience", "-a", "audiences", multiple=True,
                 help="Audience to build (repeatable; default: all configured)."),
    click.option("--data", "data_dir", type=click.Path(path_type=Path),
                 help="Folder of input files (default: data_dir from the config, or data/)."),
    click.option("--output", "output_dir", type=click.Path(path_type=Path),
                 help="Output folder (default: output_dir from the config, or output/)."),
    click.option("--format", "fmt", type=click.Choice(["pdf", "html", "both"]), default="both",
                 show_default=True, help="What to write for each audience."),
    click.option("--strict", is_flag=True,
                 help="Stop with exit code 2 when any source cannot be loaded."),
    click.option("--email", is_flag=True,
                 help="Mail each audience its PDF (to the outbox without an SMTP host)."),
    click.option("--deliver", is_flag=True,
                 help="Send every delivery an audience configures: mail and its notify "
                      "channels."),
]


def with_build_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(build_options):
        fn = option(fn)
    return with_common(fn)


def send(config: Config, output_dir: Path, period_id: str, audiences: list[str],
         force: bool, channels: bool = False) -> None:
    """Deliver an archived period and say what happened; exit 1 with one sentence when
    anything was not delivered (build-report --email/--deliver, send, backfill)."""
    # lazy: start-up time (a command imports what it runs)
    from ..deliver.reports import deliver, raise_if_failed

    with err.status("sending…", spinner="dots"):
        outcome = deliver(config, output_dir, period_id, audiences, force=force,
                          channels=channels)
    if outcome.channel_sent or outcome.channel_skipped or outcome.channel_failed:
        out.print(f"channels: {len(outcome.channel_sent)} delivered, "
                  f"{len(outcome.channel_skipped)} not sent again, "
                  f"{len(outcome.channel_failed)} failed", highlight=False)
    for warning in outcome.warnings:
        warn(warning)
    for name, where, problem in outcome.channel_failed[:-1]:    # the last: in the error
        warn(f"the {name} report to {where} was not delivered: {problem}")
    for path in outcome.written:
        out.print(f"wrote {path}")
    if config.smtp.host:
        out.print(f"mail: {len(outcome.sent)} delivered, {len(outcome.skipped)} not sent "
                  f"again (delivered, unknown or in progress earlier), {len(outcome.failed)} "
                  f"failed" + (f", {len(outcome.unknown)} unknown" if outcome.unknown else ""))
    elif outcome.skipped and not outcome.written:
        out.print("mail: already written to the outbox (use --force to write again)")
    raise_if_failed(config.smtp, outcome)


STAGE_TEXT = {"load": "loading and validating inputs",
              "context": "reading previous KPIs and history from the archive",
              "sections": "computing KPIs, incidents and trends", "charts": "drawing charts",
              "html": "rendering HTML", "pdf": "rendering PDFs",
              "write": "writing kpis.json and manifest",
              "archive": "recording the build in the archive and rewriting index.html"}
