"""PDFs that only their own build may put in place (issue 18): a build takes the output
folder over under a lock, and a PDF worker that outlived its build (killed, or replaced
by a newer one) finds the folder no longer its own and writes nothing."""
from __future__ import annotations

import uuid
from pathlib import Path

import filelock

from ..core.errors import NotOwner
from .files import atomic_write

OWNER_FILE = ".build-owner"
OWNER_LOCK = ".build-owner.lock"


def take_over(output_dir: Path) -> str:
    """Mark the output folder as being written by a new build (call under the build lock);
    returns the build's id, which its PDF workers check before each rename."""
    build_id = uuid.uuid4().hex
    with filelock.FileLock(str(Path(output_dir) / OWNER_LOCK)):
        (Path(output_dir) / OWNER_FILE).write_text(build_id + "\n")
    return build_id


def write_if_owner(target: Path, data: bytes, output_dir: Path, build_id: str) -> Path:
    """Write `data` to `target` atomically, only if the folder still belongs to `build_id`
    (checked under the lock a new build claims it with); a stale worker's file is dropped."""
    with filelock.FileLock(str(Path(output_dir) / OWNER_LOCK)):
        owner_file = Path(output_dir) / OWNER_FILE
        owner = owner_file.read_text().strip() if owner_file.exists() else ""
        if owner != build_id:
            raise NotOwner(f"{target.name} was rendered for a build that has ended; "
                           "a newer build owns the folder, so the file was not written.")
        return atomic_write(target, data)
