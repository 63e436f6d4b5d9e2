"""Errors a user can cause; each carries one sentence written for that user.

The CLI prints the sentence and exits with the error's `exit_code`; anything else is a
bug and stays a traceback (shown with --verbose). The whole tree:

    ReportError              exit 2: the user's input, config or environment
    ├── SourceError          an input (file, query, log) is not usable as the contract says
    ├── ConfigError          the config file is unreadable or has wrong keys or values
    ├── PeriodError          a --period value of none of the accepted forms
    ├── DeliveryError        exit 1: mail not delivered (the reports themselves exist)
    ├── NoDataError          exit 1: the data does not reach the period; nothing was built
    ├── LockTimeout          exit 1: another build held the output folder too long
    ├── PdfTimeout           exit 1: a PDF took longer than pdf_timeout_s to render
    └── NotOwner             exit 1: a PDF outlived its build; a newer build owns the folder

Errors of libraries (SQLite, SMTP, WeasyPrint, SQLAlchemy and the database drivers in
ingest/sql.py) become one of these where they are called, with a sentence that says what
to do.
"""
from __future__ import annotations


class ReportError(Exception):
    """A problem with the user's input, config or environment (exit code 2)."""

    exit_code = 2


class SourceError(ReportError):
    """An input file cannot be used as the data contract describes."""


class ConfigError(ReportError):
    """The config file is unreadable or has wrong keys or values."""


class PeriodError(ReportError):
    """A `--period` value that is not one of the accepted forms."""


class DeliveryError(ReportError):
    """Mail could not be delivered (exit code 1: the reports themselves exist)."""

    exit_code = 1


class NoDataError(ReportError):
    """The data does not reach the period asked for (exit code 1: nothing was built)."""

    exit_code = 1


class LockTimeout(ReportError):
    """Another build kept the output folder locked longer than `lock_timeout_s`
    (exit code 1: nothing is wrong with the input; try again later)."""

    exit_code = 1


class PdfTimeout(ReportError):
    """A PDF took longer than `pdf_timeout_s` to render (exit code 1)."""

    exit_code = 1


class NotOwner(ReportError):
    """A PDF worker outlived its build: the file it made is not put in place (exit 1)."""

    exit_code = 1
