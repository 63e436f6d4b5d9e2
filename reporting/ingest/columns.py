"""Column names: a file's header, the contract's names and aliases, the config's
`[columns.<source>]` mapping, and the sentence for a missing column."""
from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq

from ..core.contracts import Spec
from ..core.errors import SourceError
from .csvrepair import LONG_LINE
from .files import Inflation, open_decompressed, unreadable_parquet

ALIASES = {"created_date": "created_at", "resolved_date": "resolved_at",
           # Core Web Vitals as RUM tools and the Chrome UX Report name them (ms; CLS
           # unitless): web-vitals' and DebugBear's ids, CrUX's metric names
           "lcp": "lcp_ms", "inp": "inp_ms", "largest_contentful_paint": "lcp_ms",
           "interaction_to_next_paint": "inp_ms", "cumulative_layout_shift": "cls"}


def file_header(path: Path) -> list[str]:
    """The column names as written in the file (BOM removed)."""
    if path.suffix == ".parquet":
        try:
            return list(pq.read_schema(path).names)
        except Exception as exc:  # pyarrow raises several types for a corrupt file
            raise unreadable_parquet(path, exc) from None
    # A 200 KB column name is odd but harmless (it is ignored); the csv module's own
    # limit of 128 KiB would otherwise fail the source.
    csv.field_size_limit(max(csv.field_size_limit(), HEADER_FIELD_LIMIT))
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
            return next(csv.reader(fh), [])
    except csv.Error:    # a field beyond the csv module's 128 KiB limit
        raise SourceError(f"{path}: the first line has a field longer than "
                          f"{csv.field_size_limit() // 1024} KiB; the first line must hold "
                          "the column names.") from None


HEADER_FIELD_LIMIT = 16 << 20


def mapping_note(mapping: dict[str, str], spec: Spec, found: list[str]) -> str:
    """What is wrong with the config's [columns.<source>] mapping, when something is."""
    present = {c.strip().lower() for c in found}
    notes = [f"columns.{spec.name} maps {src!r} to {dst!r}, which is not a column of "
             f"{spec.name} (known: {', '.join(spec.columns)})"
             for src, dst in mapping.items() if dst not in spec.columns]
    notes += [f"columns.{spec.name} maps {src!r}, which is not in the file"
              for src in mapping if src not in present]
    return (" Check the config: " + "; ".join(notes) + ".") if notes else ""


def column_map(found: list[str], spec: Spec, mapping: dict[str, str]) -> dict[str, str]:
    """File column -> contract column, for the contract columns present (first wins)."""
    result: dict[str, str] = {}
    for raw in found:
        key = raw.strip().lower()
        key = mapping.get(key, ALIASES.get(key, key))
        if key in spec.columns and key not in result.values():
            result[raw] = key
    return result


# --- hostile input (issue 18): what a file may not do to a build ------------------------

MESSAGE_NAMES = 12        # column names quoted in an error, at most
MESSAGE_NAME_CHARS = 40   # characters of each, at most


def describe_columns(found: list[str]) -> str:
    """A bounded, printable list of column names for an error message: never a file's
    raw content (a secret read as a 'header' stays out of logs, kpis.json and mail)."""
    if not found:
        return "none"
    shown = []
    for name in found[:MESSAGE_NAMES]:
        clean = re.sub(r"[^\w .:/()-]", "?", name.strip())
        shown.append(repr(clean if len(clean) <= MESSAGE_NAME_CHARS
                          else clean[:MESSAGE_NAME_CHARS - 1] + "…"))
    more = len(found) - MESSAGE_NAMES
    return ", ".join(shown) + (f" and {more:,} more" if more > 0 else "")


def missing_column_error(where: str, spec: Spec, rename: dict[str, str],
                         found: Iterable[str], mapping: dict[str, str] | None = None
                         ) -> SourceError | None:
    """The one missing-column sentence, for a file or a query alike (`mapping`: the
    config's names for a CSV file's columns, for `other_separator`)."""
    missing = [c for c in spec.required if c not in rename.values()]
    if not missing:
        return None

    found = list(found)
    hint = other_separator(found, spec, where, mapping or {}) or \
        (no_header(found, where) if not rename else "")
    return SourceError(
        f"{where} has no column {', '.join(repr(c) for c in missing)} "
        f"(required: {', '.join(spec.required)}); columns found: "
        f"{describe_columns(found)}{hint}.")


VALUE_LIKE = re.compile(r"-?\d+(?:[.,]\d+)?|\d{4}-\d\d-\d\d.*|\d{1,2}/\d{1,2}/\d{2,4}.*")


def no_header(found: list[str], where: str) -> str:
    """The end of the missing-column sentence for a CSV file whose first line holds
    values, not names (MySQL's INTO OUTFILE, bcp and SSMS write none by default)."""
    if not _csv_file(where) or not found:
        return ""
    values = sum(bool(VALUE_LIKE.fullmatch(name.strip())) for name in found)
    if values * 2 < len(found):
        return ""
    return (", which are values, not names: the first line must name the columns "
            "(export with a header line)")


# A cell holding one of these is no value: empty, as most tools write it; \N, as MySQL's
# INTO OUTFILE and mysqldump write NULL; NULL, as SQL Server's and psql's exports do.
NULL_MARKERS = ["", "\\N", "NULL"]


SEPARATORS = {";": "semicolons (as Excel writes CSV where a comma is the decimal mark)",
              "\t": "tabs", "|": "vertical bars"}


def other_separator(found: list[str], spec: Spec, where: str, mapping: dict[str, str]
                    ) -> str:
    """The end of the missing-column sentence naming the separator a header read as one
    name is cut by, when `where` is a CSV file and cutting it there gives two of the
    source's columns or more, by their names, aliases or the config's `mapping` (only
    comma-separated files are read)."""
    if len(found) != 1 or not _csv_file(where):
        return ""                   # a Parquet file or a query is no CSV to export again
    for sep, what in SEPARATORS.items():
        names = [n.strip().strip('"') for n in found[0].split(sep)]
        if len(column_map(names, spec, mapping)) >= 2:
            return (f", separated by {what}, not commas: export it as comma-separated "
                    "CSV (UTF-8)")
    return ""


def _csv_file(where: str) -> bool:
    """Whether the missing-column sentence is about a CSV file (not Parquet or a query)."""
    return where.lower().endswith((".csv", ".csv.gz"))


def csv_header(path: Path, bound: Inflation | None = None) -> list[str]:
    """The first line's names of a .csv or .csv.gz (decompressed within `bound`)."""
    try:    # the first line alone: bytes further on that are not UTF-8 are a row's
        with open_decompressed(path, bound) as fh:
            first = fh.readline(LONG_LINE + 1)
    except (OSError, EOFError) as exc:
        raise SourceError(f"{path} could not be read ({exc}).") from None
    return header_names(first, path)


def header_names(data: bytes, path: object) -> list[str]:
    """The names of a CSV file's first line, `data` being the file's bytes or their
    start (at most LONG_LINE + 1 bytes of a line are read, as `csv_header` reads)."""
    end = data.find(b"\n", 0, LONG_LINE + 1)
    try:
        first = data[:end + 1 if end >= 0 else LONG_LINE + 1].decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SourceError(f"{path} is not UTF-8 text; export it as UTF-8 CSV.") from None
    return next(csv.reader([first.rstrip("\r\n")]), [])
