"""Issue 33 acceptance: random bytes, random valid-looking rows and random truncations
written into each CSV source kind (plain and .csv.gz) never stop the load the build reads
through: the dirty source is loaded (its bad rows set aside) or not loaded with one
sentence naming its file; every good row of every other source is still counted. And
hostile cells in a SQLite table read as a SQL source: always loaded. (The log kinds are in
test_fuzz_logs.py; whole builds in test_fuzz_build.py.)

Loader-level (`ingest.engine.load`, one worker: in this process), so a few hundred
examples run in well under a minute; the end-to-end builds of the same failures are in
test_source_failures.py."""
from __future__ import annotations

import codecs
import gzip
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reporting.core.config import Config
from reporting.core.contracts import OPTIONAL_SOURCES, SPECS
from reporting.ingest.engine.load import load

ROOT = Path(__file__).resolve().parent.parent
KINDS = [name for name in SPECS if name not in OPTIONAL_SOURCES]
ROWS = 40           # good rows per source
CONFIG = Config.from_dict({"workers": 1})
# pyarrow decodes a malformed line as UTF-8 before it calls the reader's handler; a line
# that is not UTF-8 raises there, pyarrow reports it as unraisable and fails the read,
# which the reader then repairs (bytes replaced): noise, not a failure
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    """Each source's first rows of the shipped sample as CSV, and each one's valid count
    when the folder is clean."""
    folder = tmp_path_factory.mktemp("clean")
    for name in KINDS:
        pd.read_parquet(ROOT / "data" / f"{name}.parquet").head(ROWS).to_csv(
            folder / f"{name}.csv", index=False)
    loaded = load(CONFIG, folder)
    valid = {name: loaded.quality[name].valid for name in KINDS}
    assert all(v > 0 for v in valid.values()) and not loaded.errors
    return folder, valid


def _check(folder: Path, dirty: str, valid: dict[str, int], file: Path,
           must_load: bool = False) -> None:
    """The load returns; the dirty source is loaded (`must_load`: always) or one sentence
    naming its file; the others are exactly as when clean."""
    loaded = load(CONFIG, folder)
    q = loaded.quality[dirty]
    assert q.status == "loaded" or not must_load, q.message
    if q.status == "loaded":
        assert 0 <= q.valid <= q.rows
        assert sum(q.rejected.values()) == q.rows - q.valid
    else:
        assert q.status == "error", q
        message = q.message
        assert "\n" not in message and message.endswith(".") and len(message) < 1200
        assert str(file) in message or f"source {dirty}" in message, message
        assert "Traceback" not in message
    for name in KINDS:
        if name != dirty:
            other = loaded.quality[name]
            assert (other.status, other.valid) == ("loaded", valid[name]), other


def _dirty(clean: Path, tmp: Path, name: str, data: bytes, zipped: bool) -> Path:
    """The clean folder with `name`'s file replaced by `data` (as .csv.gz: `zipped`)."""
    folder = tmp / "data"
    if not folder.exists():
        shutil.copytree(clean, folder)
    for other in KINDS:           # undo the previous example's damage
        for stale in folder.glob(f"{other}.csv*"):
            stale.unlink()
        if other != name:
            shutil.copy(clean / f"{other}.csv", folder)
    path = folder / (f"{name}.csv.gz" if zipped else f"{name}.csv")
    path.write_bytes(data)
    return path


FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@FUZZ
@given(name=st.sampled_from(KINDS), data=st.binary(max_size=3000), zipped=st.booleans())
def test_random_bytes(name, data, zipped, clean, tmp_path):
    folder, valid = clean
    path = _dirty(folder, tmp_path, name, data, zipped)
    _check(path.parent, name, valid, path)


# one field of a real row replaced by a hostile value, an extra or missing comma, quotes
HOSTILE = st.sampled_from(["", "abc", "-1", "1e309", "nan", "NULL", "\"", "\"a,b\"", "x" * 3000,
                           "2026-13-45T99:00:00Z", "9999-12-31T23:59:59Z", "=cmd|' /C calc'!A0",
                           "\u2028", "caf\xe9", "\x00", ",", ",,", "0x1F", "  7  "])


@st.composite
def rows(draw, name: str, lines: list[str]) -> bytes:
    header, body = lines[0], lines[1:]
    out = []
    for _ in range(draw(st.integers(0, 30))):
        fields = draw(st.sampled_from(body)).rstrip("\n").split(",")
        for _ in range(draw(st.integers(0, 2))):
            fields[draw(st.integers(0, len(fields) - 1))] = draw(HOSTILE)
        if draw(st.booleans()):
            fields = fields[:draw(st.integers(0, len(fields) + 2))] + [draw(HOSTILE)]
        out.append(",".join(fields) + "\n")
    text = header + "".join(out)
    encoding = draw(st.sampled_from(["utf-8", "latin-1", "utf-16"]))
    return text.encode(encoding, errors="replace")


@FUZZ
@given(name=st.sampled_from(KINDS), data=st.data(), zipped=st.booleans())
def test_valid_looking_rows(name, data, zipped, clean, tmp_path):
    folder, valid = clean
    lines = (folder / f"{name}.csv").read_text().splitlines(True)
    text = data.draw(rows(name, lines))
    path = _dirty(folder, tmp_path, name, gzip.compress(text) if zipped else text, zipped)
    # its header intact (not UTF-16, which starts with a byte-order mark), the file is a
    # source with rejected rows, never a failed one, whatever its rows hold
    _check(path.parent, name, valid, path, must_load=not text.startswith(codecs.BOM_UTF16))


@FUZZ
@given(name=st.sampled_from(KINDS), cut=st.floats(0, 1), zipped=st.booleans())
def test_truncations(name, cut, zipped, clean, tmp_path):
    """The file (or its gzip stream) cut anywhere: mid-row, mid-header, mid-character."""
    folder, valid = clean
    whole = (folder / f"{name}.csv").read_bytes()
    data = gzip.compress(whole) if zipped else whole
    path = _dirty(folder, tmp_path, name, data[:int(len(data) * cut)], zipped)
    _check(path.parent, name, valid, path)


# SQLite keeps any value in any column: what a hand-edited or loosely fed table holds
CELLS = st.one_of(st.none(), st.integers(-2 ** 63, 2 ** 63 - 1),
                  st.floats(allow_nan=False), st.text(max_size=20), st.binary(max_size=10),
                  st.sampled_from(["", "2026-13-45", "9999-12-31 23:59:59", "NaN", "fast",
                                   "2026-11-10 10:00:00+01:00", "2026/11/10 10:00"]))


@FUZZ
@given(name=st.sampled_from(KINDS), data=st.data())
def test_hostile_cells_of_a_sqlite_table(name, data, clean, tmp_path):
    """A SQL source whose table holds the clean rows with up to four cells replaced by
    hostile values (text, huge integers, blobs that are not UTF-8): always loaded, each
    bad cell its row's rejection (before: a blob failed the whole source)."""
    folder, valid = clean
    frame = pd.read_csv(folder / f"{name}.csv", dtype=str)
    cells = frame.astype(object).where(frame.notna(), None).to_numpy()    # NULL, not ""
    for _ in range(data.draw(st.integers(1, 4))):
        cells[data.draw(st.integers(0, len(cells) - 1)),
              data.draw(st.integers(0, cells.shape[1] - 1))] = data.draw(CELLS)
    db = tmp_path / f"{name}.sqlite"
    db.unlink(missing_ok=True)
    with sqlite3.connect(db) as con:
        con.execute(f"create table t ({', '.join(frame.columns)})")
        con.executemany(f"insert into t values ({', '.join('?' * cells.shape[1])})",
                        [tuple(row) for row in cells])
    con.close()
    (tmp_path / "empty").mkdir(exist_ok=True)
    config = Config.from_dict({"workers": 1, "sources": {name: {
        "url": f"sqlite:///{db}", "sql": "select * from t"}}})
    q = load(config, tmp_path / "empty").quality[name]
    assert q.status == "loaded", q.message
    assert valid[name] - 4 <= q.valid <= q.rows == valid[name]
    assert sum(q.rejected.values()) == q.rows - q.valid
