"""The shipped sample with and without its optional sources (issue 31): orders give
revenue, conversion and an incident's cost against its day's revenue; deploys tie the
outage to the release before it; without them each section says what is missing, no
key is written for what the data cannot give, and nothing is judged good for it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reporting.build import build
from reporting.core.config import Config

ROOT = Path(__file__).resolve().parent.parent
OPTIONAL = ("orders", "deployments")


def sample_without(folder: Path, *left_out: str) -> Path:
    folder.mkdir()
    for f in (ROOT / "data").glob("*.parquet"):
        if f.stem not in left_out:
            shutil.copy(f, folder / f.name)
    return folder


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[tuple[str, ...], tuple[dict, Path]]:
    """kpis.json and the report folder of W46, built from the sample without each set of
    optional sources (HTML only: the pages are what is checked)."""
    out = {}
    for left_out in ((), OPTIONAL, ("deployments",), ("orders",)):
        tmp = tmp_path_factory.mktemp("sample")
        result = build(Config(), period="2026-W46", audiences=["executive", "it"], fmt="html",
                       data_dir=sample_without(tmp / "data", *left_out),
                       output_dir=tmp / "out")
        out[left_out] = json.loads((result.folder / "kpis.json").read_text()), result.folder
    return out


def test_with_both_the_sample_shows_revenue_conversion_and_the_deploy(builds):
    doc, folder = builds[()]
    kpis = doc["kpis"]
    assert kpis["orders.revenue"]["value"] > 0 and 0 < kpis["orders.conversion_rate"]["value"] < 1
    assert 0 < kpis["cart.abandoned_share"]["value"] < 1
    [incident] = doc["incidents"]
    assert incident["deploy"] == {"service": "payment-api", "version": "2.16.7",
                                  "deployed_at": "2026-11-11T09:40:00+00:00"}
    assert incident["revenue_share"] > 0
    assert "It began 20 minutes after payment-api 2.16.7 was deployed" in incident["text"]
    executive = (folder / "html" / "executive.html").read_text()
    assert executive.index("Revenue") < executive.index("What stands out")
    assert "Conversion (orders / sessions)" in executive and "of Wed 11 Nov&#39;s revenue" \
        in executive
    it = (folder / "html" / "it.html").read_text()
    assert "Deploys" in it and "2.16.7" in it


def test_without_the_optional_sources_each_section_says_what_is_missing(builds):
    doc, folder = builds[OPTIONAL]
    assert not [k for k in doc["kpis"] if k.startswith("orders.")]
    assert "cart.abandoned_share" not in doc["kpis"]
    assert doc["sections"]["orders"] == {"status": "no data",
                                        "message": "No data was supplied for this source."}
    assert doc["data_quality"]["orders"]["status"] == "absent"
    [incident] = doc["incidents"]
    assert "deploy" not in incident and "revenue_share" not in incident
    assert "deployed" not in incident["text"] and "revenue" not in incident["text"]
    executive = (folder / "html" / "executive.html").read_text()
    section = executive[executive.index('id="orders"'):]
    assert "No data was supplied for this source." in section[:section.index("</section>")]
    assert "Deploys" not in (folder / "html" / "it.html").read_text()
    # everything else is what the full sample gives
    full = builds[()][0]["kpis"]
    assert {k: v for k, v in doc["kpis"].items()} == {
        k: v for k, v in full.items() if not k.startswith("orders.")
        and k != "cart.abandoned_share"}


def test_each_optional_source_alone(builds):
    no_deploys, _ = builds[("deployments",)]
    [incident] = no_deploys["incidents"]
    assert "revenue_share" in incident and "deploy" not in incident
    no_orders, _ = builds[("orders",)]
    [incident] = no_orders["incidents"]
    assert "deploy" in incident and "revenue_share" not in incident
    assert "orders.revenue" not in no_orders["kpis"]
