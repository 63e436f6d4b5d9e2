"""One atomic-write module for every writer."""
from __future__ import annotations

import ast
from pathlib import Path

from reporting.store import files
from reporting.store.paths import report_folder

PACKAGE = Path(__file__).resolve().parent.parent / "reporting"


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    target = files.atomic_write(tmp_path / "x" / "a.json", "{}")
    assert target.read_text() == "{}" and [p.name for p in target.parent.iterdir()] == ["a.json"]
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    files.atomic_write(target, b"[1]")
    assert target.read_bytes() == b"[1]" and len(list(target.parent.iterdir())) == 1


def test_sweep_removes_what_a_killed_build_left(tmp_path):
    (tmp_path / "2026-W46" / "html").mkdir(parents=True)
    left = tmp_path / "2026-W46" / "html" / ".it.html.abc123.tmp"
    left.write_text("half")
    kept = tmp_path / "2026-W46" / "it.pdf"
    kept.write_text("pdf")
    files.sweep_temporary_files(tmp_path)
    assert not left.exists() and kept.exists()


def test_report_folder():
    assert report_folder(Path("out"), "2026-W46") == Path("out/reports/2026-W46")


def test_no_other_module_writes_through_its_own_temporary_file():
    """mkstemp/os.replace appear only in store/files.py; delivery, scheduler and cli do
    not import the page renderers for writing."""
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if path.relative_to(PACKAGE).as_posix() != "store/files.py":
            assert "mkstemp" not in text and "os.replace" not in text, path.name
        if path.parent.name in ("deliver", "cli") or path.name == "scheduler.py":
            imported = {a.name for n in ast.walk(ast.parse(text))
                        if isinstance(n, ast.ImportFrom)
                        and (n.module or "").split(".")[-1] in ("html", "pdf")
                        for a in n.names}
            assert not imported, path.name
