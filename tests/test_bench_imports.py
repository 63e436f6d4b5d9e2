"""The benchmarks run on demand, not in CI, so a module that moves can leave one behind:
bench_load's child script imported `reporting.sources` for months after the package's
layers moved it. Every `from reporting... import ...` in tests/benchmarks, in code or in
a script held as text for a child process, must name a module and names that exist."""
from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent / "benchmarks"
FROM = re.compile(r"^\s*from (reporting[\w.]*) import ([\w, ]+)$", re.M)
PLAIN = re.compile(r"^\s*import (reporting[\w.]*)$", re.M)


def _submodule(package: object, name: str) -> bool:
    """Whether `name` is a module of `package` (`from reporting.core import config`)."""
    if not hasattr(package, "__path__"):
        return False
    return importlib.util.find_spec(f"{package.__name__}.{name}") is not None


def missing_imports(root: Path = BENCHMARKS) -> list[str]:
    out = []
    for path in sorted(root.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        wanted = [(m[1], [n.strip() for n in m[2].split(",") if n.strip()])
                  for m in FROM.finditer(text)] + [(m[1], []) for m in PLAIN.finditer(text)]
        for module, names in wanted:
            try:
                found = importlib.import_module(module)
            except ImportError:
                out.append(f"{path.name}: no module {module}")
                continue
            out += [f"{path.name}: no {name} in {module}" for name in names
                    if not hasattr(found, name) and not _submodule(found, name)]
    return out


def test_every_benchmark_imports_what_exists():
    assert missing_imports() == []


def test_the_check_sees_a_moved_module_in_a_child_script(tmp_path):
    (tmp_path / "bench_x.py").write_text(
        'CHILD = """\nfrom reporting.sources import SPECS\n"""\n'
        "from reporting.core.contracts import SPECS, NOT_THERE\n")
    assert missing_imports(tmp_path) == [
        "bench_x.py: no module reporting.sources",
        "bench_x.py: no NOT_THERE in reporting.core.contracts"]
