"""The one way every writer puts a file (or a whole folder) in place: atomically."""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


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


def swap_in(staging: Path, final: Path) -> Path | None:
    """Put `staging` in the place of `final`; returns where the old folder went."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
    os.rename(staging, final)
    return old


def swap_back(staging: Path, final: Path, old: Path | None) -> None:
    os.rename(final, staging)
    if old is not None:
        os.rename(old, final)
