"""Errors a user can cause; each carries one sentence written for that user."""
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
