"""Where a build's files go, and the one way every writer puts a file there."""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def report_folder(output_dir: Path, period_id: str) -> Path:
    """`<output>/reports/<period id>`: one period's PDFs, HTML, kpis.json and manifest; a
    period id that is not one (`../../x`) is one sentence, never a path."""
    from .guard import check_period_id, inside   # guard writes through this module
    return inside(output_dir, Path(output_dir) / "reports" / check_period_id(period_id))


def rollup_folder(output_dir: Path, period_id: str) -> Path:
    """`<output>/rollups/<period id>`: the period's archived rollup tables (not published:
    `reporting serve` serves only reports/, site/ and assets/)."""
    from .guard import check_period_id, inside
    return inside(output_dir, Path(output_dir) / "rollups" / check_period_id(period_id))


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` for writers that want a path (pyarrow); renamed
    into place when the block ends without error, removed otherwise."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o644)   # mkstemp makes 0600; reports are meant to be shared
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write(target: Path, data: bytes | str) -> Path:
    """Write `data` to `target` atomically: a reader sees the old file or the new one,
    never half of one."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return target


def sweep_temporary_files(folder: Path) -> None:
    """Temporary files of a build that was killed; safe while we hold the build lock."""
    for tmp in folder.glob("**/.*.tmp") if folder.is_dir() else ():
        log.info("removing %s, left by an interrupted build", tmp)
        tmp.unlink(missing_ok=True)
