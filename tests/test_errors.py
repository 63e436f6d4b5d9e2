"""errors.py draws the whole exception tree, and every user error class lives there."""
from __future__ import annotations

import importlib
import pkgutil

import reporting
from reporting.core import errors


def _subclasses(cls: type) -> set[type]:
    return {c for s in cls.__subclasses__() for c in (s, *_subclasses(s))}


def test_the_docstring_draws_every_report_error_and_they_live_in_errors_py():
    for info in pkgutil.walk_packages(reporting.__path__, "reporting."):
        importlib.import_module(info.name)
    found = _subclasses(errors.ReportError)
    assert {c.__module__ for c in found} == {"reporting.core.errors"}
    tree = errors.__doc__
    for cls in found | {errors.ReportError}:
        assert f" {cls.__name__} " in tree, cls.__name__
        line = next(li for li in tree.splitlines() if f" {cls.__name__} " in li)
        assert f"exit {cls.exit_code}" in line or cls.exit_code == 2, line
