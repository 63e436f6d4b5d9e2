"""The archive's BI tables as a Power BI feed (`reporting archive export --format powerbi`).

One Parquet folder per table (`kpi_history/`, `incidents/` ...) partitioned by period
(hive style, `period_id=2026-W45/`), the same tables as CSV, and `.pbids` files, the
JSON connection files Power BI Desktop opens (version "0.1", one connection each, no
credentials: Power BI asks for them): one for the folder and, when the archive is on
PostgreSQL, one for the database. Push datasets are being retired by Microsoft, so
nothing is pushed: Power BI reads files or the database it is pointed at.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from ..core.safecsv import neutralise
from ..store.bi import INSTANTS
from ..store.files import atomic_write

PBIDS_VERSION = "0.1"


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Instants as UTC timestamps (BI tools then see dates, not text)."""
    out = frame.copy()
    for col in INSTANTS:
        if col in out.columns:
            out[col] = pd.to_datetime(out[col], utc=True, errors="coerce", format="ISO8601")
    return out


def write_parquet(frame: pd.DataFrame, folder: Path) -> None:
    """`folder/` as a Parquet dataset partitioned by period (`period_id=<id>/`); a table
    without a period column (none today) is one file."""
    shutil.rmtree(folder, ignore_errors=True)
    table = pa.Table.from_pandas(typed(frame), preserve_index=False)
    parts = ["period_id"] if "period_id" in frame.columns and len(frame) else None
    ds.write_dataset(table, folder, format="parquet", partitioning=parts,
                     partitioning_flavor="hive" if parts else None,
                     basename_template="part-{i}.parquet",
                     existing_data_behavior="overwrite_or_ignore")
    folder.mkdir(parents=True, exist_ok=True)


def folder_pbids(folder: Path) -> dict[str, Any]:
    """Power BI's Folder connector on the export folder."""
    return {"version": PBIDS_VERSION, "connections": [{
        "details": {"protocol": "folder", "address": {"path": str(Path(folder).resolve())}},
        "options": {}, "mode": "Import"}]}


def postgresql_pbids(server: str, database: str) -> dict[str, Any]:
    """Power BI's PostgreSQL connector on the archive database (no user, no password)."""
    return {"version": PBIDS_VERSION, "connections": [{
        "details": {"protocol": "postgresql",
                    "address": {"server": server, "database": database}},
        "options": {}, "mode": "DirectQuery"}]}


def write_powerbi(tables: Mapping[str, pd.DataFrame], out_dir: Path,
                  database: tuple[str, str] | None = None) -> list[Path]:
    """Every table as `<name>/` (Parquet) and `<name>.csv`, and the `.pbids` files;
    `database`: (server "host:port", database name) of a PostgreSQL archive."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in tables.items():
        write_parquet(frame, out_dir / name)
        written.append(out_dir / name)
        written.append(atomic_write(out_dir / f"{name}.csv",
                                    neutralise(frame).to_csv(index=False)))
    written.append(atomic_write(out_dir / "reports-folder.pbids",
                                json.dumps(folder_pbids(out_dir), indent=2) + "\n"))
    if database is not None:
        written.append(atomic_write(out_dir / "reports-postgresql.pbids",
                                    json.dumps(postgresql_pbids(*database), indent=2) + "\n"))
    return written
