"""Row-by-row validation against the data contract: each row passes or is set aside with
a reason (the first failing rule wins), typed columns come out."""
from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa

from ..core.contracts import Spec


KEY_CHARS = 2048                 # a text key (endpoint, page, service) longer is cut
KEY_CUT = "… (cut at 2 KiB)"     # what a cut key ends with


def categorical(s: pd.Series) -> pd.Series:
    """Dictionary-encode text in pyarrow (several times faster than astype('category')),
    values longer than KEY_CHARS cut with KEY_CUT: a 50 MB request path is no key."""
    arr = arrow_data(s)
    if arr is None or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        out = s.astype("str").astype("category") if not isinstance(
            s.dtype, pd.CategoricalDtype) else s
    else:
        out = pd.Series(arr.dictionary_encode().to_pandas(), index=s.index, name=s.name)
    return cut_keys(out)


def cut_keys(s: pd.Series) -> pd.Series:
    """A categorical column with categories longer than KEY_CHARS cut (those now equal
    merged); only the categories are looked at, not the rows."""
    cats = s.cat.categories
    if cats.dtype != object and not pd.api.types.is_string_dtype(cats.dtype):
        return s
    long = np.asarray(cats.str.len() > KEY_CHARS, dtype=bool)
    if not long.any():
        return s
    values = np.asarray(cats, dtype=object)
    values[long] = [v[:KEY_CHARS - len(KEY_CUT)] + KEY_CUT for v in values[long]]
    codes = s.cat.codes.to_numpy()
    cut = np.where(codes >= 0, values[np.maximum(codes, 0)], None)
    return pd.Series(cut, index=s.index, name=s.name).astype("category")


def arrow_data(s: pd.Series) -> pa.Array | pa.ChunkedArray | None:
    """The pyarrow data behind an Arrow-backed column; None for a numpy-backed one."""
    if isinstance(s.dtype, pd.ArrowDtype) or (
            isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow"):
        return pa.array(s.array)   # __arrow_array__: no copy
    return None


REASON_TIME = "unparseable {col}"
REASON_MISSING = "missing value in {col}"


class _Reasons:
    """A reason code per row (0 = valid) and the reasons' texts; the first failing rule wins."""

    def __init__(self, n: int) -> None:
        self.codes = np.zeros(n, dtype=np.uint8)
        self.labels: list[str] = []

    def reject(self, mask: Any, reason: str) -> None:
        _reject(self.codes, self.labels, np.asarray(mask, dtype=bool), reason)


def _reject(codes: np.ndarray, labels: list[str], mask: np.ndarray, reason: str) -> None:
    """Give `reason` to the rows of `mask` that no earlier rule rejected."""
    if mask.any():
        if reason not in labels:
            labels.append(reason)
        codes[mask & (codes == 0)] = labels.index(reason) + 1


def validate_rows(raw: pd.DataFrame, spec: Spec, tz: ZoneInfo
              ) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """Typed frame, a reason code per row (0 = valid) and the reasons' texts.

    The first failing rule wins; codes index `labels` from 1.
    """
    reasons = _Reasons(len(raw))
    out: dict[str, pd.Series] = {}
    for col in raw.columns:
        required = col in spec.required and col not in spec.may_be_empty
        if col in spec.timestamps:
            out[col] = _timestamp_column(raw[col], col, required, tz, reasons)
        elif col in spec.numbers:
            out[col] = _number_column(raw[col], col, spec.numbers[col], required, reasons)
        else:
            out[col] = _text_column(raw[col], col, col in spec.categories, required, reasons)
    for start, end in spec.order:
        if start in out and end in out:
            with np.errstate(invalid="ignore"):
                reasons.reject((out[end] < out[start]).to_numpy(dtype=bool, na_value=False),
                               f"{end} before {start}" if end != "end_time"
                               else "end before start")
    for col in spec.columns:     # absent optional columns exist, empty, downstream
        if col not in out:
            out[col] = _empty_column(col, spec, raw.index, tz)
    frame = pd.DataFrame({col: out[col] for col in spec.columns}, index=raw.index, copy=False)
    return frame, reasons.codes, reasons.labels


def _timestamp_column(s: pd.Series, col: str, required: bool, tz: ZoneInfo,
                      reasons: _Reasons) -> pd.Series:
    empty = s.isna().to_numpy()
    parsed = parse_timestamps(s, tz)
    if required:
        reasons.reject(empty, REASON_MISSING.format(col=col))
    reasons.reject(parsed.isna().to_numpy() & ~empty,
                   "unparseable timestamp" if col == "timestamp" else REASON_TIME.format(col=col))
    return parsed


def _number_column(s: pd.Series, col: str, rule: tuple[float | None, float | None, bool],
                   required: bool, reasons: _Reasons) -> pd.Series:
    lo, hi, whole = rule
    empty = s.isna().to_numpy()
    num = _numbers(s)
    v = num.to_numpy(dtype="float64", na_value=np.nan)
    if required:
        reasons.reject(empty, REASON_MISSING.format(col=col))
    reasons.reject(~np.isfinite(v) & ~empty, f"non-numeric {col}")
    with np.errstate(invalid="ignore"):
        if lo == 0 and hi is None:
            reasons.reject(v < 0, f"negative {col}")
        else:
            reasons.reject((v < (-np.inf if lo is None else lo))
                           | (v > (np.inf if hi is None else hi)), f"{col} out of range")
        if whole and not pd.api.types.is_integer_dtype(num):
            reasons.reject(np.isfinite(v) & (v != np.round(v)), f"{col} not a whole number")
    if whole and required and not pd.api.types.is_integer_dtype(num):
        return pd.Series(np.where(reasons.codes == 0, v, 0).astype("int64"), index=s.index)
    if not whole or not pd.api.types.is_integer_dtype(num):
        return pd.Series(v, index=s.index)
    return num


def _text_column(s: pd.Series, col: str, category: bool, required: bool,
                 reasons: _Reasons) -> pd.Series:
    stripped = _strip_text(s, category)
    if required:
        blank = (stripped == "").to_numpy(dtype=bool, na_value=True)
        reasons.reject(s.isna().to_numpy() | blank, REASON_MISSING.format(col=col))
    return stripped


def _empty_column(col: str, spec: Spec, index: pd.Index, tz: ZoneInfo) -> pd.Series:
    """An absent optional column, empty and of its type."""
    if col in spec.timestamps:
        return pd.Series(pd.NaT, index=index, dtype=f"datetime64[ns, {tz.key}]")
    if col in spec.numbers:
        return pd.Series(np.nan, index=index)
    return pd.Series(pd.NA, index=index, dtype="str")


def _numbers(s: pd.Series) -> pd.Series:
    """A numeric column as numpy int64 (whole, no gaps) or float64; text is parsed; a
    boolean (a health probe written true/false, by pandas, Spark or DuckDB, or as text
    in a CSV file; t/f as PostgreSQL writes it) is 1/0."""
    arr = arrow_data(s)
    if (arr is not None and pa.types.is_boolean(arr.type)) or pd.api.types.is_bool_dtype(s):
        return pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index)
    if arr is not None and pa.types.is_integer(arr.type) and arr.null_count == 0:
        return pd.Series(arr.to_numpy(), index=s.index).astype("int64")
    if arr is not None and (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        return pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index)
    if pd.api.types.is_numeric_dtype(s) and arr is None:     # booleans returned above
        return s
    text = s.astype("str").str.strip()
    word = text.str.lower()
    text = text.mask(word.isin(["true", "t"]), "1").mask(word.isin(["false", "f"]), "0")
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _strip_text(s: pd.Series, category: bool = False) -> pd.Series:
    """Text with surrounding spaces removed; low-cardinality columns as categoricals."""
    if category and not isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype("str").str.strip().astype("category")
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories.astype("str")
        stripped = cats.str.strip()
        if stripped.equals(cats):
            return s
        return s.astype("str").str.strip().astype("category")
    return s.astype("str").str.strip()


def epoch_utc(num: pd.Series) -> pd.Series:
    """UTC times from epoch numbers, the unit told by the size: seconds below 1e11 (until
    the year 5138), else milliseconds below 1e14, microseconds below 1e17, nanoseconds
    above (Unix time, JavaScript's Date.now(), zap's and Vector's encoders)."""
    seconds = num / np.select([num < 1e11, num < 1e14, num < 1e17], [1, 1e3, 1e6], 1e9)
    return pd.to_datetime(seconds, unit="s", utc=True, errors="coerce")


EPOCH_FROM = 1e8      # an epoch number is at least this (1973); 20261110 is a date


def parse_timestamps(s: pd.Series, tz: ZoneInfo) -> pd.Series:
    """ISO 8601 (T or space, optional Z/offset) or bare dates, mixed; naive = `tz`; a
    column of numbers (a Parquet int64 of epoch milliseconds) as epoch times (`epoch_utc`)."""
    zone = tz.key
    arr = arrow_data(s)
    if arr is not None and pa.types.is_date(arr.type):
        arr = arr.cast(pa.timestamp("s"))
    numeric = (arr is not None and (pa.types.is_integer(arr.type) or
                                    pa.types.is_floating(arr.type))) or \
        (arr is None and pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s))
    if numeric:
        num = pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index)
        epoch = num >= EPOCH_FROM
        if epoch.any():
            out = epoch_utc(num.where(epoch)).dt.tz_convert(zone)
            if not epoch.all():     # smaller whole numbers as texts (20261110: a date)
                whole = num.where(~epoch & (num % 1 == 0)).astype("Int64").astype("string")
                out = out.where(epoch, parse_timestamps(whole, tz).astype(out.dtype))
            return out
    if arr is not None and pa.types.is_timestamp(arr.type):
        s = pd.Series(arr.to_pandas(), index=s.index)
    if pd.api.types.is_datetime64_any_dtype(s):
        if getattr(s.dt, "tz", None) is None:
            return _localize(s, zone)
        return s.dt.tz_convert(zone)
    text = s.astype("str") if not pd.api.types.is_string_dtype(s) else s
    if s.dtype == object:   # e.g. datetime.date objects from pyarrow's date32
        text = s.map(lambda v: v.isoformat() if hasattr(v, "isoformat") else v).astype("str")
    text = _offset_joined(text.str.strip())
    if zone == "UTC":
        return pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    # an offset after a time: Z, +01:00, +0100 or +01 (PostgreSQL's text); not a date's -02
    aware = text.str.contains(r"(?:Z|\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?[+-]\d\d(?::?\d\d)?)$",
                              regex=True, na=False).to_numpy()
    result = pd.Series(pd.NaT, index=s.index, dtype=f"datetime64[us, {zone}]")
    if aware.any():
        result[aware] = pd.to_datetime(text[aware], format="ISO8601", errors="coerce",
                                       utc=True).dt.tz_convert(zone)
    if (~aware).any():
        try:
            naive = pd.to_datetime(text[~aware], format="ISO8601", errors="coerce")
        except (ValueError, TypeError):   # offsets of some other shape among them: those
            sub = text[~aware]               # rejected, not guessed; plain times still read
            plain = sub.str.fullmatch(r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?)?",
                                      na=False)
            naive = pd.to_datetime(sub.where(plain), format="ISO8601", errors="coerce")
        result[~aware] = _localize(naive, zone) if getattr(naive.dt, "tz", None) is None \
            else naive.dt.tz_convert(zone)
    return result


def _offset_joined(text: pd.Series) -> pd.Series:
    """Times whose zone follows a space, as ISO 8601 writes it: Snowflake's and SQL
    Server's `2026-11-10 11:00:00.000 +0100`, BigQuery's `2026-11-10 10:00:00 UTC`."""
    text = text.str.replace(r"(\d) (?:UTC|GMT)$", r"\1Z", regex=True)
    return text.str.replace(r"(\d:\d\d(?:[.,]\d+)?) ([+-]\d\d(?::?\d\d)?)$", r"\1\2",
                            regex=True)


def _localize(s: pd.Series, zone: str) -> pd.Series:
    # DST: an hour that does not exist moves forward; a repeated hour is read as the
    # first (summer-time) one, so no row is rejected for the clock change.
    return s.dt.tz_localize(zone, nonexistent="shift_forward",
                            ambiguous=np.ones(len(s), dtype=bool))


REASON_REPLACED = "not UTF-8 (bytes replaced with �)"


def flag_replaced(raw: pd.DataFrame, codes: np.ndarray, labels: list[str]) -> None:
    """Reject (with a reason) the rows where undecodable bytes were replaced."""
    hit = np.zeros(len(raw), dtype=bool)
    for col in raw.columns:
        s = raw[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            bad = s.cat.categories.astype("str").str.contains("\ufffd", regex=False)
            hit |= np.asarray(bad, dtype=bool)[s.cat.codes.to_numpy()] & (
                s.cat.codes.to_numpy() >= 0)
        elif pd.api.types.is_string_dtype(s) or s.dtype == object:
            hit |= s.astype("str").str.contains("\ufffd", regex=False).to_numpy(
                dtype=bool, na_value=False)
    _reject(codes, labels, hit, REASON_REPLACED)


def default_time_range(now: pd.Timestamp | None = None, earliest: str = "2000-01-01",
                       future_margin_hours: float = 24.0) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Timestamps a build accepts: from `earliest` to the build's clock plus the margin."""
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    if now.tzinfo is None:
        now = now.tz_localize("UTC")
    return (pd.Timestamp(earliest, tz="UTC"), now + pd.Timedelta(hours=future_margin_hours))


def reject_out_of_range(frame: pd.DataFrame, spec: Spec, codes: np.ndarray,
                        labels: list[str], bounds: tuple[pd.Timestamp, pd.Timestamp]) -> None:
    """Reject rows with a timestamp before the range or after the clock's margin (year 1,
    9999 or 2262 would break periods, charts and memory); the first failing rule wins."""
    lo, hi = bounds
    for col in spec.timestamps:
        if col not in frame or not len(frame):
            continue
        t = frame[col]
        for mask, text in (((t < lo), f"{col} before {lo:%Y-%m-%d}"),
                           ((t > hi), f"{col} in the future")):
            _reject(codes, labels, mask.to_numpy(dtype=bool, na_value=False), text)
