"""A build's folder becomes visible whole: it is written in a staging copy (hard links of
the published one), its side files (kpis.json, rejected rows) and manifest are written
there, and the archive swaps it in with the build's rows (`Archive.record_build`)."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.config import Config
from ..core.periods import Period
from ..core.quality import Loaded
from ..core.safecsv import neutralise
from . import archive, files

log = logging.getLogger(__name__)


def staging_folder(output_dir: Path, period_id: str) -> Path:
    """Where a build writes before its files and index rows become visible together."""
    return output_dir / "reports" / f".staging-{period_id}-{os.getpid()}"


@contextmanager
def undo_on_failure(output_dir: Path, staging: list[Path]) -> Iterator[None]:
    """A failed build leaves nothing of itself; a full disk is one sentence."""
    try:
        yield
    except Exception as exc:
        for folder in staging:
            shutil.rmtree(folder, ignore_errors=True)
        if archive.is_disk_full(exc):
            raise archive.no_space(output_dir) from None
        raise


def stage_copy(final: Path, staging: Path) -> Path:
    """The staging folder starts as the published one, in hard links (other audiences'
    files stay); this build's files then replace their links. Staging folders of a
    killed build go first (safe: we hold the build lock)."""
    _sweep_staging(staging.parent)
    if final.is_dir():
        def link(src: str, dst: str) -> None:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
        shutil.copytree(final, staging, copy_function=link)
    staging.mkdir(parents=True, exist_ok=True)
    return staging


def _sweep_staging(folder: Path) -> None:
    """Staging folders of a build that was killed; safe while we hold the build lock."""
    for tmp in [*folder.glob(".staging-*"), *folder.glob(".*.old-*")] if folder.is_dir() else ():
        log.info("removing %s, left by an interrupted build", tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def write_side_files(folder: Path, loaded: Loaded, document: dict[str, Any],
                     slices: Mapping[str, dict[str, Any]] | None = None) -> list[Path]:
    """kpis.json, each sliced audience's kpis-<audience>.json and the rejected rows of each
    source (cells a spreadsheet would run made inert)."""
    written = [files.atomic_write(folder / "kpis.json",
                                  json.dumps(document, indent=2, default=str) + "\n")]
    written += [files.atomic_write(folder / f"kpis-{name}.json",
                                   json.dumps(doc, indent=2, default=str) + "\n")
                for name, doc in (slices or {}).items()]
    for source, frame in loaded.rejected.items():
        written.append(files.atomic_write(folder / "rejected" / f"{source}.csv",
                                          neutralise(frame).to_csv(index=False)))
    return written


def write_manifest(folder: Path, config: Config, loaded: Loaded, p: Period,
                   names: list[str], built_at: datetime, document: Mapping[str, Any],
                   written: list[Path], timings: Mapping[str, float]) -> Path:
    """manifest.json: every file in the period's folder with the build that wrote it. A file
    an earlier build wrote from other KPI values, and this build did not rewrite, disagrees
    with the new kpis.json: it is removed (the files table and `send` never meet it)."""
    build_id = built_at.isoformat(timespec="seconds")
    digest = kpis_digest(document)
    outputs = {}
    for f in written:
        data = f.read_bytes()
        outputs[str(f.relative_to(folder))] = {"sha256": hashlib.sha256(data).hexdigest(),
                                               "size": len(data), "build": build_id,
                                               "kpis": digest}
    earlier = _earlier_outputs(folder / "manifest.json")
    for f in sorted(x for x in folder.rglob("*") if x.is_file()):
        rel = str(f.relative_to(folder))
        if rel in outputs or rel == "manifest.json" or "charts" in Path(rel).parts[:-1]:
            continue
        old = earlier.get(rel)
        if old and old.get("kpis") == digest:
            outputs[rel] = old            # an earlier build from the same KPI values
        elif old is not None or f.suffix in (".pdf", ".html", ".csv"):
            log.info("removing %s: an earlier build of %s wrote it from other data", f, p.id)
            f.unlink()
        else:
            outputs[rel] = {"sha256": None, "size": f.stat().st_size, "build": None,
                            "kpis": None}
    manifest = {
        "version": __version__, "built_at": build_id, "kpis": digest,
        "seconds": round(sum(timings.values()), 3), "timings": dict(timings),
        "config_hash": config.digest(), "period": p.as_dict(), "audiences": names,
        "inputs": {name: {"path": q.file, "sha256": q.sha256, "rows": q.rows, "valid": q.valid,
                          "rejected": q.rows - q.valid, "status": q.status}
                   for name, q in loaded.quality.items()},
        "outputs": dict(sorted(outputs.items())),
    }
    return files.atomic_write(folder / "manifest.json", json.dumps(manifest, indent=2) + "\n")


def _earlier_outputs(path: Path) -> dict[str, dict[str, Any]]:
    try:
        return dict(json.loads(path.read_text()).get("outputs", {}))
    except (OSError, ValueError, AttributeError):
        return {}


def kpis_digest(doc: Mapping[str, Any]) -> str:
    """Names the KPI values of a kpis.json: files of builds with the same digest agree."""
    text = json.dumps(doc.get("kpis", {}), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
