"""Archived rollups: each build's tables cut to its period as Parquet under
`output/rollups/<period id>/`, read back to fill days the inputs no longer hold."""
from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from ..core.rollups import TABLES, Rollup
from . import files as outputs
from .paths import rollup_folder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchivedRollups:
    """One archived period's rollup tables: local days [first, end) as day numbers."""

    period_id: str
    first: int
    end: int
    folder: Path
    sources: Mapping[str, tuple[str, ...]]
    built_at: pd.Timestamp

    def read(self, source: str) -> dict[str, pd.DataFrame] | None:
        """The source's tables; None when they are not today's tables (an archive written
        before a table or a value column was added cannot fill its days)."""
        if not set(TABLES[source]) <= set(self.sources.get(source, ())):
            return None
        try:
            tables = {name: pd.read_parquet(self.folder / source / f"{name}.parquet")
                      for name in TABLES[source]}
        except (OSError, ValueError, pa.ArrowException) as exc:
            log.warning("the archived rollups of %s (%s) are not readable and were not "
                        "used: %s", self.period_id, source, exc)
            return None
        if any(not {*spec.keys, *spec.merge} <= set(tables[name].columns)
               for name, spec in TABLES[source].items()):
            return None
        return tables


def stage_rollups(output_dir: Path, period: Mapping[str, Any],
                  rollups: Mapping[str, Rollup], built_at: str) -> Path:
    """The rollups' tables cut to the period, one Parquet file per source and table, and
    meta.json (period, zone, slot length, the build's built_at: nothing of the config)
    in a staging folder beside `output/rollups/<id>`. Staging folders of a killed build
    go first (safe: the build lock is held)."""
    final = rollup_folder(output_dir, period["id"])
    for tmp in [*final.parent.glob(".staging-*"), *final.parent.glob(".*.old-*")]:
        shutil.rmtree(tmp, ignore_errors=True)
    staging = final.parent / f".staging-{period['id']}-{os.getpid()}"
    staging.mkdir(parents=True)
    try:
        write_rollups(staging, period, rollups, built_at)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def write_rollups(staging: Path, period: Mapping[str, Any], rollups: Mapping[str, Rollup],
                  built_at: str) -> None:
    """Each source's tables cut to the period, then meta.json."""
    start, end = pd.Timestamp(period["start"]), pd.Timestamp(period["end"])
    meta: dict[str, Any] = {"period": period["id"], "start": period["start"],
                            "end": period["end"], "built_at": built_at, "tz": None,
                            "minutes": None, "sources": {}}
    for source, rollup in rollups.items():
        for name in rollup.tables:
            with outputs.atomic_path(staging / source / f"{name}.parquet") as tmp:
                rollup.table(name, start, end).to_parquet(tmp, index=False)
        meta["sources"][source] = sorted(rollup.tables)
        meta["tz"], meta["minutes"] = rollup.tz.key, rollup.minutes
    outputs.atomic_write(staging / "meta.json", json.dumps(meta, indent=2) + "\n")
