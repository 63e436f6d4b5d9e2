"""CSV/XLSX cells that a spreadsheet would run as a formula, made inert (issue 18).

OWASP's rule for CSV injection: a text cell that starts with `=`, `+`, `-`, `@`, a tab
or a carriage return gets a leading `'`, so Excel, LibreOffice and Sheets show it as
text. Numbers (and text that is a plain number such as "-12.5") are left as they are.
"""
from __future__ import annotations

import re

import pandas as pd

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def cell(value: object) -> object:
    """One cell made safe; anything but text passes unchanged."""
    if isinstance(value, str) and value.startswith(TRIGGERS) and not NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells (and text column names) cannot run as formulas."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = out[col] = s.astype(object)
        if pd.api.types.is_string_dtype(s) or s.dtype == object:
            out[col] = s.map(cell, na_action="ignore")
    out.columns = [cell(c) for c in out.columns]
    return out
