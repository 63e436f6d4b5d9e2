"""The benchmarks run on demand, not in CI, so a module that moves can leave one behind:
bench_load's child script imported `reporting.sources` after the package's
layers moved it. Every `from reporting... import ...` in tests/benchmarks, in code or in
a script held as text for a child process, must name a module and names that exist."""
from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent / "benchmarks"


def _submodule(package: object, name: str) -> bool:
    """Whether `name` is a module of `package` (`from reporting.core import config`)."""
    if not hasattr(package, "__path__"):
        return False
    return importlib.util.find_spec(f"{package.__name__}.{name}") is not None


def _trees(text: str) -> list[ast.AST]:
    """The module's tree and the tree of each string in it that parses as Python (a
    child process's script)."""
    tree = ast.parse(text)
    out = [tree]
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and "import" in node.value:
            try:
                out.append(ast.parse(node.value))
            except SyntaxError:
                continue
    return out


def _wanted(text: str) -> list[tuple[str, list[str]]]:
    """(module, names) of every import of reporting in the text."""
    out = []
    for tree in _trees(text):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 \
                    and (node.module or "").split(".")[0] == "reporting":
                out.append((node.module, [a.name for a in node.names if a.name != "*"]))
            elif isinstance(node, ast.Import):
                out += [(a.name, []) for a in node.names if a.name.split(".")[0] == "reporting"]
    return out


def missing_imports(root: Path = BENCHMARKS) -> list[str]:
    out = []
    for path in sorted(root.glob("*.py")):
        for module, names in _wanted(path.read_text(encoding="utf-8")):
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
        "ONE_LINE = 'import sys; import reporting.gone as g'\n"
        "from reporting.core.contracts import (SPECS as S,\n    NOT_THERE)  # a comment\n"
        "from reporting.core import config, nothing_here\n")
    assert missing_imports(tmp_path) == [
        "bench_x.py: no NOT_THERE in reporting.core.contracts",
        "bench_x.py: no nothing_here in reporting.core",
        "bench_x.py: no module reporting.sources",
        "bench_x.py: no module reporting.gone"]
