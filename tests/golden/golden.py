"""Build the golden cases and reduce them to what must not change in a refactor.

`python -m tests.golden.golden` rewrites the stored files; do that only for an
intended change of behaviour, and say why in the commit.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from reporting.build import build
from reporting.core.config import Config
from reporting.simulate import simulate

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SEED = ROOT.parent / "shared" / "seed-data"
# name -> (data folder, period)
CASES = {"sample_latest": (ROOT / "data", "latest"),
         "sample_2026-W45": (ROOT / "data", "2026-W45"),
         "seed_all": (SEED, "all"),
         # simulated (seed 11, small scale, 2 weeks, an outage in week 2): latencies with a
         # decimal, so percentiles over 999.9 ms test the histogram's 0.1 % bound (issue 15)
         "sim_small_latest": (None, "latest")}
GENERATED = re.compile(r"Generated:? [A-Z][a-z]{2} \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2} \S+")


def reduce(document: dict[str, Any]) -> dict[str, Any]:
    """The parts of kpis.json a refactor must keep: values, previous, status,
    insights and incidents."""
    return {"period": document["period"],
            "kpis": {k: [v["value"], v["previous"], v["status"]]
                     for k, v in document["kpis"].items()},
            "insights": document["insights"],
            "incidents": document["incidents"]}


def pdf_text(path: Path) -> str:
    """The PDF's text without the generated-at lines (they hold the build's clock)."""
    text = "\n".join(page.extract_text() for page in PdfReader(path).pages)
    return GENERATED.sub("Generated: <time>", text)


def simulated(folder: Path) -> Path:
    """The simulated golden case's data, written into `folder`."""
    simulate(folder, weeks=2, scale="small", seed=11, incident_weeks=[2])
    return folder


def run(case: str, output: Path) -> tuple[dict[str, Any], dict[str, str]]:
    data, period = CASES[case]
    if data is None:
        data = simulated(output / "data")
    result = build(Config(), period=period, data_dir=data, output_dir=output, fmt="pdf")
    texts = {p.stem: pdf_text(p) for p in sorted(result.files) if p.suffix == ".pdf"}
    return reduce(json.loads((result.folder / "kpis.json").read_text())), texts


def stored(case: str) -> tuple[dict[str, Any], dict[str, str]]:
    doc = json.loads((HERE / f"{case}.json").read_text())
    return doc["kpis.json"], doc["pdf_text"]


def write(case: str, output: Path) -> None:
    document, texts = run(case, output)
    (HERE / f"{case}.json").write_text(
        json.dumps({"kpis.json": document, "pdf_text": texts}, indent=1, ensure_ascii=False,
                   default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    import tempfile
    for name in sys.argv[1:] or CASES:
        with tempfile.TemporaryDirectory() as tmp:
            write(name, Path(tmp))
