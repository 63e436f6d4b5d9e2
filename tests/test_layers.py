"""The house's floors (../shared/layout.md, README "Architecture"): every module's imports,
read from its source (top level and inside functions), keep to the layer rules; no two
modules import each other, directly or through others; an import inside a function says
why it is kept lazy; no module uses another's private names."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "reporting"

# What each floor may import besides itself (layout.md, "Rules").
MAY_IMPORT = {
    "core": set(),
    "ingest": {"core"},
    "store": {"core"},
    "compute": {"core", "store"},
    "present": {"core", "store"},
    "deliver": {"core", "store", "present"},
}
FLOORS = set(MAY_IMPORT)
# Entry points (top-level modules) may import any floor; among themselves only downwards:
# __main__ -> cli -> scheduler -> {build, alerts}; serve and simulate are commands cli runs.
ENTRY_IMPORTS = {
    "__main__": {"cli"},
    "cli": {"scheduler", "build", "alerts", "serve", "simulate"},
    "scheduler": {"build", "alerts"},
}
LAZY = "# lazy:"   # the comment that keeps an import inside a function, with its reason


@dataclass(frozen=True)
class Edge:
    source: str        # importing module, dotted (reporting.core.config)
    target: str        # imported module, dotted
    names: tuple[str, ...]
    line: int
    lazy: bool         # inside a function
    marked: bool       # ... with a `# lazy:` comment


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _target(name: str, node: ast.ImportFrom, is_package: bool) -> str | None:
    if node.level == 0:
        return node.module
    base = name.split(".") if is_package else name.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _marked(lines: list[str], node: ast.stmt, block_start: int) -> bool:
    """A `# lazy:` comment on the import's lines, or above the run of imports it is in."""
    own = lines[node.lineno - 1:node.end_lineno]
    above = lines[block_start - 2] if block_start >= 2 else ""
    return any(LAZY in line for line in own) or above.strip().startswith(LAZY)


def edges(root: Path = PACKAGE) -> list[Edge]:
    """Every import of the package by a module of it, top level and inside functions."""
    known = modules(root)
    top = root.name
    out = []
    for name, path in known.items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text)
        in_function: dict[int, int] = {}       # id(import) -> first line of its run
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for holder in ast.walk(fn):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    run_start = None
                    stmts = getattr(holder, field, None)
                    for stmt in stmts if isinstance(stmts, list) else []:
                        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                            run_start = run_start or stmt.lineno
                            in_function[id(stmt)] = run_start
                        else:
                            run_start = None
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [(a.name, ()) for a in node.names
                           if a.name == top or a.name.startswith(top + ".")]
            elif isinstance(node, ast.ImportFrom):
                base = _target(name, node, path.name == "__init__.py")
                if base != top and not (base or "").startswith(top + "."):
                    targets = []
                else:      # a submodule imported by name is an edge to that module
                    subs = [a.name for a in node.names if f"{base}.{a.name}" in known]
                    rest = tuple(a.name for a in node.names if a.name not in subs)
                    targets = [(f"{base}.{s}", ()) for s in subs] + ([(base, rest)] if rest
                                                                     else [])
            else:
                continue
            lazy = id(node) in in_function
            marked = lazy and _marked(lines, node, in_function[id(node)])
            out += [Edge(name, t, names, node.lineno, lazy, marked) for t, names in targets]
    return out


def floor(module: str) -> str:
    """core, ingest, ... for a module of a floor; the module's own name for an entry point;
    "" for the package itself."""
    parts = module.split(".")
    if len(parts) == 1:
        return ""
    return parts[1] if parts[1] in FLOORS else parts[1]


def layer_problems(all_edges: list[Edge]) -> list[str]:
    out = []
    for e in all_edges:
        src, dst = floor(e.source), floor(e.target)
        if dst == "" and set(e.names) <= {"__version__"}:
            continue                      # the package's face: its version only
        if src == dst:
            continue
        if src in FLOORS:
            ok = dst in MAY_IMPORT[src]
        elif src == "":
            ok = False                    # the package's face imports nothing
        else:                             # an entry point
            ok = dst in FLOORS or dst in ENTRY_IMPORTS.get(src, set())
        if not ok:
            out.append(f"{e.source}:{e.line} imports {e.target} ({src or 'package'} may not "
                       f"import {dst or 'the package'})")
    return out


def circles(all_edges: list[Edge]) -> list[list[str]]:
    """Every set of modules that import each other, directly or through others (the
    strongly connected components of more than one module, or a module importing itself)."""
    graph: dict[str, set[str]] = {}
    for e in all_edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:      # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1 or v in graph[v]:
                found.append(sorted(part))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def unmarked_lazy(all_edges: list[Edge]) -> list[str]:
    return [f"{e.source}:{e.line} imports {e.target} inside a function without a "
            f"'{LAZY} <why>' comment" for e in all_edges if e.lazy and not e.marked]


def unmarked_lazy_libraries(root: Path = PACKAGE) -> list[str]:
    """Imports of other packages (standard library, WeasyPrint, Dask ...) inside a function
    without a `# lazy:` comment: they too are kept lazy only for start-up time."""
    out = []
    for name, path in modules(root).items():
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for holder in ast.walk(fn):
                stmts = getattr(holder, "body", None)
                run_start = None
                for stmt in stmts if isinstance(stmts, list) else []:
                    if not isinstance(stmt, (ast.Import, ast.ImportFrom)):
                        run_start = None
                        continue
                    run_start = run_start or stmt.lineno
                    if isinstance(stmt, ast.ImportFrom) and stmt.level:
                        continue              # the package's own: `edges` judges them
                    if not _marked(lines, stmt, run_start):
                        out.append(f"{name}:{stmt.lineno} {ast.unparse(stmt)} without a "
                                   f"'{LAZY} <why>' comment")
    return sorted(set(out))


def private_names(root: Path = PACKAGE) -> list[str]:
    """A module's private names (`_x`) used by another module of the package."""
    out = []
    for e in edges(root):
        out += [f"{e.source}:{e.line} imports {e.target}.{n}" for n in e.names
                if n.startswith("_") and not n.startswith("__")]
    known = modules(root)
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = _target(name, node, path.name == "__init__.py")
                aliases.update({a.asname or a.name: f"{base}.{a.name}" for a in node.names
                                if f"{base}.{a.name}" in known})
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in aliases and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                out.append(f"{name}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    return out


def problems(root: Path = PACKAGE) -> list[str]:
    """Everything that breaks the house's rules, one line each."""
    all_edges = edges(root)
    return (layer_problems(all_edges)
            + [f"import circle: {' <-> '.join(c)}" for c in circles(all_edges)]
            + unmarked_lazy(all_edges) + unmarked_lazy_libraries(root) + private_names(root))


# --- the tests -----------------------------------------------------------------------------

def test_every_module_keeps_to_its_floor():
    assert layer_problems(edges()) == []


def test_no_two_modules_import_each_other():
    assert circles(edges()) == []


def test_every_import_inside_a_function_says_why_it_is_lazy():
    assert unmarked_lazy(edges()) == []


def test_every_library_import_inside_a_function_says_why_it_is_lazy():
    assert unmarked_lazy_libraries() == []


def test_no_module_uses_another_modules_private_names():
    assert private_names() == []


def test_reading_the_config_imports_nothing_outside_core():
    code = ("import sys, reporting.core.config; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('reporting'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)})
    assert [m for m in loaded.stdout.split() if not m.startswith("reporting.core")
            and m != "reporting"] == []


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "reporting" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in [p for p in (root / "reporting").rglob("*") if p.is_dir()]:
        (folder / "__init__.py").touch()
    (root / "reporting" / "__init__.py").touch()
    return root / "reporting"


@pytest.mark.parametrize("files, expected", [
    ({"core/a.py": "from ..compute import b\n", "compute/b.py": ""},
     "reporting.core.a:1 imports reporting.compute.b (core may not import compute)"),
    ({"ingest/a.py": "from ..store.b import x\n", "store/b.py": "x = 1\n"},
     "reporting.ingest.a:1 imports reporting.store.b (ingest may not import store)"),
    ({"present/a.py": "from ..compute import b\n", "compute/b.py": ""},
     "reporting.present.a:1 imports reporting.compute.b (present may not import compute)"),
    ({"build.py": "from . import cli\n", "cli.py": ""},
     "reporting.build:1 imports reporting.cli (build may not import cli)"),
    ({"core/a.py": "def f():\n    from . import b\n", "core/b.py": ""},
     "reporting.core.a:2 imports reporting.core.b inside a function without a "
     "'# lazy: <why>' comment"),
    ({"core/a.py": "def f():\n    import json\n"},
     "reporting.core.a:2 import json without a '# lazy: <why>' comment"),
    ({"core/a.py": "from .b import _hidden\n", "core/b.py": "_hidden = 1\n"},
     "reporting.core.a:1 imports reporting.core.b._hidden"),
    ({"core/a.py": "from . import b\n", "core/b.py": "from . import c\n",
      "core/c.py": "from . import a\n"},
     "import circle: reporting.core.a <-> reporting.core.b <-> reporting.core.c"),
])
def test_the_check_sees_each_kind_of_break(tmp_path, files, expected):
    assert problems(write(tmp_path, files)) == [expected]


def test_a_lazy_import_with_its_reason_and_a_layered_tree_pass(tmp_path):
    root = write(tmp_path, {
        "core/a.py": "x = 1\n", "store/b.py": "from ..core.a import x\n",
        "compute/c.py": "from ..store import b\n\n\ndef f():\n"
                        "    # lazy: start-up time\n    from ..core import a\n    return a\n",
        "cli.py": "from .compute import c\nfrom . import __version__\n"})
    assert problems(root) == []
