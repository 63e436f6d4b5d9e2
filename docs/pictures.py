"""The README's pictures, from `make report`'s output: page 1 of the executive report and
the IT report's incident timeline, as PNGs (pdftoppm), with `pictures.json` saying which
pages were taken and which incident page 1 names (tests/test_pictures.py rebuilds the
report and compares that, not pixels).

    python docs/pictures.py --output output --docs docs     (what `make pictures` runs)
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from pypdf import PdfReader

DPI = 60
TIMELINE = re.compile(r"API errors, abandoned carts and negative feedback per (hour|day)")
PICTURES = {"executive": "executive-page1.png", "it": "it-incident-timeline.png"}


def flat(text: str) -> str:
    """A page's text with every run of white space as one space (pypdf breaks lines)."""
    return " ".join(text.split())


def newest_build(output: Path) -> Path:
    """The report folder `make report` wrote last (its manifest is written last)."""
    manifests = sorted((output / "reports").glob("*/manifest.json"),
                       key=lambda p: p.stat().st_mtime)
    if not manifests:
        sys.exit(f"No report in {output}/reports: run `make report` first.")
    return manifests[-1].parent


def describe(folder: Path) -> dict[str, Any]:
    """Which page of which PDF each picture shows, and the incident page 1 names."""
    incidents = json.loads((folder / "kpis.json").read_text())["incidents"]
    if not incidents:
        sys.exit(f"{folder} holds no incident: the pictures are meant to show one.")
    sentence = incidents[0]["text"]
    executive = [flat(p.extract_text()) for p in PdfReader(folder / "executive.pdf").pages]
    if sentence not in executive[0]:
        sys.exit(f"Page 1 of {folder}/executive.pdf does not name the incident {sentence!r}.")
    it = [flat(p.extract_text()) for p in PdfReader(folder / "it.pdf").pages]
    timeline = [n for n, text in enumerate(it, 1) if TIMELINE.search(text)]
    if not timeline:
        sys.exit(f"No page of {folder}/it.pdf holds the incident timeline.")
    return {"period": folder.name, "incident": sentence,
            "executive": {"page": 1, "pages": len(executive), "png": PICTURES["executive"]},
            "it": {"page": timeline[0], "pages": len(it), "png": PICTURES["it"]}}


def render(folder: Path, docs: Path, described: dict[str, Any]) -> None:
    """One PNG per picture, through pdftoppm."""
    if shutil.which("pdftoppm") is None:
        sys.exit("pdftoppm not found: install Debian's poppler-utils "
                 "(apt-get install poppler-utils).")
    for audience in PICTURES:
        page = described[audience]["page"]
        stem = docs / Path(described[audience]["png"]).stem
        subprocess.run(["pdftoppm", "-png", "-r", str(DPI), "-f", str(page), "-l", str(page),
                        "-singlefile", str(folder / f"{audience}.pdf"), str(stem)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("output"))
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    args = parser.parse_args()
    folder = newest_build(args.output)
    described = describe(folder)
    args.docs.mkdir(parents=True, exist_ok=True)
    render(folder, args.docs, described)
    (args.docs / "pictures.json").write_text(json.dumps(described, indent=1,
                                                        ensure_ascii=False) + "\n")
    print(f"{args.docs}: {', '.join(PICTURES.values())} from {folder} "
          f"(IT page {described['it']['page']})")


if __name__ == "__main__":
    main()
