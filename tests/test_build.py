"""The builder: each stage entered once, the archive read only before computing."""
from __future__ import annotations

import inspect
from pathlib import Path

from reporting import build
from reporting.core.config import Config
from reporting.store import archive

DATA = Path(__file__).resolve().parent.parent / "data"
STAGES = ["load", "context", "sections", "charts", "html", "pdf", "write", "archive"]


def test_each_stage_once_and_the_archive_read_only_in_the_context_stage(monkeypatch, tmp_path):
    entered, reads = [], []
    for name in ("kpi_values", "signal_history", "history"):
        original = getattr(archive.Archive, name)

        def spy(self, *args, _name=name, _original=original, **kwargs):
            reads.append((_name, entered[-1]))
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(archive.Archive, name, spy)
    result = build.build(Config(), period="2026-W46", audiences=["support"], fmt="html",
                         data_dir=DATA, output_dir=tmp_path, on_stage=entered.append)
    assert entered == STAGES
    assert list(result.timings) == STAGES
    assert sorted(reads) == [("history", "context"), ("kpi_values", "context"),
                             ("signal_history", "context")]


def test_build_fits_one_screen_and_its_docstring_names_every_stage():
    source = inspect.getsource(build.build)
    assert len(source.splitlines()) <= 60
    doc = inspect.getdoc(build.build)
    assert all(stage in doc for stage in STAGES)
