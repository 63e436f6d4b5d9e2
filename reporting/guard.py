"""Paths and files a build may touch (issue 18): names that stay names, paths that stay
inside the output folder, and PDFs that only their own build may put in place.

What the product trusts: the config file and the output folder. What it does not: every
input file, and anything read back from the archive index (a tampered `archive.sqlite`
must not make `archive prune` delete outside the output folder).
"""
from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import filelock

from .errors import NotOwner, ReportError
from .files import atomic_write

# 2026-W46, 2026-11-01_2026-11-30, all (periods.py makes no other ids)
PERIOD_ID = re.compile(r"\d{4}-W\d{2}|\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}|all")
OWNER_FILE = ".build-owner"
OWNER_LOCK = ".build-owner.lock"


def check_period_id(text: str) -> str:
    """A period id as archived (2026-W46, 2026-11-01_2026-11-30 or all), else one sentence."""
    if not isinstance(text, str) or not PERIOD_ID.fullmatch(text):
        raise ReportError(f"{str(text)[:80]!r} is not a period id; ids look like 2026-W46, "
                          "2026-11-01_2026-11-30 or all (`reporting archive list` shows them).")
    return text


def inside(root: Path, path: Path) -> Path:
    """`path` when it stays inside `root` once `..` and links are resolved (both relative
    to the working folder, as given); otherwise one sentence, nothing touched."""
    root_real = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    if real != root_real and not real.is_relative_to(root_real):
        raise ReportError(f"{str(path)[:200]} is outside the output folder {root}; "
                          "refusing to read or write it.")
    return Path(path)


def claim(output_dir: Path) -> str:
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
