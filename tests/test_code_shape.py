"""Shape rules a reader relies on: no function in reporting/ over 60 lines and no module
over 600 (simulate.py, a data generator, excepted)."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "reporting"
LIMIT = 60
MODULE_LIMIT = 600


def long_functions(root: Path = PACKAGE) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "simulate.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > LIMIT:
                    out.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({lines})")
    return out


def test_no_function_in_reporting_is_over_60_lines():
    assert long_functions() == []


def test_the_check_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    (tmp_path / "m.py").write_text(f"def long():\n{body}\n")
    assert long_functions(tmp_path) == [f"m.py:1 long ({LIMIT + 1})"]


def long_modules(root: Path = PACKAGE) -> list[str]:
    return [f"{p.relative_to(root)} ({n})" for p in sorted(root.rglob("*.py"))
            if p.name != "simulate.py" and (n := len(p.read_text(encoding="utf-8").splitlines()))
            > MODULE_LIMIT]


def test_no_module_in_reporting_is_over_600_lines():
    assert long_modules() == []


def test_the_check_sees_a_long_module(tmp_path):
    (tmp_path / "m.py").write_text("x = 1\n" * (MODULE_LIMIT + 1))
    assert long_modules(tmp_path) == [f"m.py ({MODULE_LIMIT + 1})"]
