"""The README and the documentation site (issue 30): the README fits a few screens, the
site builds with `mkdocs build --strict`, every config key is declared and documented,
every TOML example in the README, the docs and examples/ loads, and every file of the
repository the docs name exists."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from reporting.core.config import Config
from reporting.core.configtext import REFERENCE, reference
from reporting.core.settings import declared

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))


def toml_blocks(path: Path) -> list[str]:
    return re.findall(r"^```toml\n(.*?)^```", path.read_text(encoding="utf-8"), re.M | re.S)


def test_the_readme_fits_a_few_screens():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < 250


def test_the_site_builds_strictly(tmp_path):
    """A broken link, anchor or snippet, or a page left out of the nav, fails the build."""
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--site-dir", str(tmp_path / "site")], cwd=ROOT, text=True,
                          capture_output=True, env={"NO_MKDOCS_2_WARNING": "1",
                                                    "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "site" / "config" / "index.html").is_file()


def test_the_config_reference_is_generated_from_the_declarations():
    """Stale after a key is added or changed: run `make config-docs`."""
    assert (ROOT / REFERENCE).read_text(encoding="utf-8") == reference()


def test_every_declared_key_is_documented_under_its_table():
    text = (ROOT / REFERENCE).read_text(encoding="utf-8")
    tables = dict(re.findall(r"^### (.+?)\n\n(.*?)(?=^### |\Z)", text, re.M | re.S))
    missing = []
    for key in declared(Config):
        table, _, name = key.name.rpartition(".")
        heading = f"`[{table}]`" if table else "Top level"
        row = re.search(rf"^\| `{re.escape(name)}` \| .+\| {re.escape(key.setting.help)} \|",
                        tables.get(heading, ""), re.M)
        if row is None:
            missing.append(key.name)
    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_toml_example_in_the_docs_loads(page, tmp_path):
    """A key used in an example but not declared, or a value its declaration refuses,
    fails here (each block as a config of its own, beside a throwaway folder)."""
    for block in toml_blocks(page):
        Config.from_dict(tomllib.loads(block), base=tmp_path, source=page)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_config_loads(example):
    config = Config.load(example)
    assert config.source == example


def test_the_examples_are_the_ones_the_readme_links():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert sorted(re.findall(r"\]\((examples/[^)]+)\)", readme)) == sorted(
        str(p.relative_to(ROOT)) for p in EXAMPLES)
    assert len(EXAMPLES) == 4


REPO_PATH = re.compile(r"(?<![\w./-])((?:reporting|templates|tests|docs|examples|data|\.ci)"
                       r"/[\w./-]*\w)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_repository_file_the_docs_name_exists(page):
    """A path of the repository a page names (`reporting/core/config.py`,
    `data/README.md`) exists; names with a placeholder (`<name>`) or a glob are patterns."""
    text = page.read_text(encoding="utf-8")
    named = {m for m in REPO_PATH.findall(text) if not re.search(r"[<>*{}]", m)
             and not re.fullmatch(r"data/\w+\.csv", m)}     # a user's export in an example
    base = [ROOT, ROOT / "docs"] if page.parent.name == "docs" else [ROOT]
    missing = sorted(m for m in named if not any((b / m).exists() for b in base))
    assert missing == []
