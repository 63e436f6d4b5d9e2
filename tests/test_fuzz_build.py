"""Issue 33 acceptance, end to end: random bytes, random valid-looking rows and random
truncations written into one source (a CSV, a .csv.gz, a Parquet file or an nginx access
log) never stop `build-report`: it exits 0 with the dirty source loaded (its bad rows set
aside) or named in one warning sentence, never a traceback; every audience's report is
written, and every good row of every other source is in its `kpis.json`.

The loader-level fuzz (hundreds of examples) is test_fuzz_sources.py; here each example is
a whole build (about 5 s in this process), so a few examples on a thinned week of the
shipped sample keep it fit for CI.
"""
from __future__ import annotations

import gzip
import io
import itertools
import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reporting.cli import build_report
from reporting.core.contracts import OPTIONAL_SOURCES, SPECS

from .test_fuzz_sources import rows as valid_looking

ROOT = Path(__file__).resolve().parent.parent
PERIOD = "2026-W46"
KINDS = [name for name in SPECS if name not in OPTIONAL_SOURCES]
ROWS = 400                 # rows of each source, spread over the week
AUDIENCES = {"executive", "ux", "it", "support"}
FILE_KINDS = ["csv", "csv.gz", "parquet", "access_log"]
# nginx `combined` + `$request_time` (ngx_http_log_module's documented format)
LINE = ('192.0.2.{ip} - - [{t:%d/%b/%Y:%H:%M:%S} +0000] "GET {ep} HTTP/1.1" {st} 512 '
        '"-" "Mozilla/5.0 (X11; Linux x86_64)" {s:.3f}\n')
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
_runs = itertools.count()


def _build(data: Path, out: Path, config: Path | None = None) -> tuple[int, str]:
    args = ["--data", str(data), "--output", str(out), "--period", PERIOD,
            "--format", "html", *(["--config", str(config)] if config else [])]
    result = CliRunner().invoke(build_report, args)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    """Each source's rows of the sample's week, thinned to about ROWS, as CSV; and each
    one's valid count in a clean build."""
    folder = tmp_path_factory.mktemp("clean")
    for name in KINDS:
        spec = SPECS[name]
        frame = pd.read_parquet(ROOT / "data" / f"{name}.parquet")
        t = pd.to_datetime(frame[spec.time], utc=True)
        frame = frame[(t >= "2026-11-09") & (t < "2026-11-16")]
        frame.iloc[::max(1, len(frame) // ROWS)].to_csv(folder / f"{name}.csv", index=False)
    code, output = _build(folder, folder.parent / "clean-out")
    assert code == 0, output
    quality = json.loads(next((folder.parent / "clean-out").glob("reports/*/kpis.json"))
                         .read_text())["data_quality"]
    assert all(quality[name]["status"] == "loaded" for name in KINDS), quality
    return folder, {name: quality[name]["valid"] for name in KINDS}


def access_log(csv: Path) -> bytes:
    """The api_logs rows of `csv` as the access log nginx would have written."""
    frame = pd.read_csv(csv)
    t = pd.to_datetime(frame["timestamp"], utc=True)
    return "".join(LINE.format(ip=i % 250, t=when, ep=ep, st=status, s=ms / 1000)
                   for i, (when, ep, status, ms) in enumerate(zip(
                       t, frame["endpoint"], frame["status_code"],
                       frame["response_time_ms"]))).encode()


def clean_bytes(folder: Path, name: str, kind: str) -> bytes:
    """The clean file of `name` as a file of `kind` would hold it."""
    csv = folder / f"{name}.csv"
    if kind == "access_log":
        return access_log(csv)
    if kind == "parquet":
        sink = io.BytesIO()
        pq.write_table(pacsv.read_csv(csv), sink)
        return sink.getvalue()
    whole = csv.read_bytes()
    return gzip.compress(whole) if kind == "csv.gz" else whole


@st.composite
def damage(draw, folder: Path, how: str) -> tuple[str, str, bytes]:
    """(source, file kind, the bytes the file holds) damaged `how`: random bytes, the
    clean file cut anywhere past its first rows (mid-row, mid-character, mid-gzip), or
    the clean rows followed by valid-looking rows with hostile fields (text files)."""
    kinds = [k for k in FILE_KINDS if how != "rows" or k != "parquet"]
    kind = draw(st.sampled_from(kinds))
    name = "api_logs" if kind == "access_log" else draw(st.sampled_from(KINDS))
    if how == "bytes":
        return name, kind, draw(st.binary(max_size=3000))
    if how == "cut":
        whole = clean_bytes(folder, name, kind)
        return name, kind, whole[:int(len(whole) * draw(st.floats(0.05, 1)))]
    if kind == "access_log":
        good = access_log(folder / f"{name}.csv").decode().splitlines(True)
        hostile = draw(valid_looking(name, [""] + [line.replace(" ", ",") for line in good]))
        bad = hostile.decode("utf-8", errors="replace").replace(",", " ").encode()
        return name, kind, "".join(good).encode() + bad
    lines = (folder / f"{name}.csv").read_text().splitlines(True)
    text = "".join(lines).encode() + draw(valid_looking(name, lines)).split(b"\n", 1)[1]
    return name, kind, gzip.compress(text) if kind == "csv.gz" else text


def _dirty(clean: Path, root: Path, name: str, kind: str, data: bytes
           ) -> tuple[Path, Path, Path | None]:
    """A copy of the clean folder with `name`'s file replaced by `data`; the file, and the
    config that points api_logs at an access log."""
    folder = root / "data"
    shutil.copytree(clean, folder)
    (folder / f"{name}.csv").unlink()
    if kind == "access_log":
        (folder / "logs").mkdir()
        path = folder / "logs" / "access.log"
        config = root / "report.toml"
        config.write_text(f'[sources.api_logs]\npath = "{folder / "logs"}/access.log*"\n'
                          'format = "access_log"\n')
    else:
        path, config = folder / f"{name}.{kind}", None
    path.write_bytes(data)
    return folder, path, config


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@pytest.mark.parametrize("how", ["bytes", "cut", "rows"])
@given(data=st.data())
def test_one_damaged_source_never_stops_the_build(how, data, clean, tmp_path):
    folder, valid = clean
    name, kind, content = data.draw(damage(folder, how))
    root = tmp_path / f"run{next(_runs)}"
    dirty, path, config = _dirty(folder, root, name, kind, content)
    code, output = _build(dirty, root / "out", config)
    text = " ".join(output.split())
    assert code == 0, output
    assert "Traceback" not in output and "unexpected failure" not in output, output
    week = root / "out" / "reports" / PERIOD
    assert {p.stem for p in (week / "html").glob("*.html")} >= AUDIENCES
    quality = json.loads((week / "kpis.json").read_text())["data_quality"]
    q = quality[name]
    # after good rows (an intact header): rejected rows, never a failure; but a cut gzip
    # of a CSV is a failed source (issue 33), and a Parquet file cut or random is
    must_load = how == "rows" or how == "cut" and kind in ("csv", "access_log")
    assert q["status"] == "loaded" or not must_load, q["message"]
    if q["status"] == "loaded":
        assert 0 <= q["valid"] <= q["rows"]
        assert sum(q["rejected"].values()) == q["rows"] - q["valid"], q
    else:
        message = q["message"]
        assert q["status"] == "error", q
        assert "\n" not in message and message.endswith("."), message
        assert str(path) in message or str(path.parent) in message, message
        assert " ".join(message.split()) in text           # said once, as a warning
    for other in KINDS:
        if other != name:
            assert (quality[other]["status"], quality[other]["valid"]) == (
                "loaded", valid[other]), (other, quality[other])
