"""Issue 33, bounded everywhere (the files' side): a line over 1 MiB is rejected unread,
the rejected rows keep its first KiB and its length; a text key longer than 2 KiB is cut
before it is a key."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa

from reporting.core.config import Config
from reporting.ingest.engine.load import load
from reporting.ingest.files import Inflation
from reporting.ingest.validate import KEY_CHARS, KEY_CUT, categorical

ROOT = Path(__file__).resolve().parent.parent
HEADER = "timestamp,endpoint,status_code,response_time_ms,service_name,method\n"


def _api(folder: Path, long: dict[int, str]) -> Path:
    """3,000 rows (endpoints /e0../e2, response time 100 + i ms); `long`: rows replaced."""
    rows = [f"2026-11-02T10:{i % 60:02d}:00Z,/e{i % 3},200,{100 + i},svc,GET\n"
            for i in range(3000)]
    for i, endpoint in long.items():
        rows[i] = f"2026-11-02T10:00:00Z,{endpoint},200,5,svc,GET\n"
    path = folder / "api_logs.csv"
    path.write_text(HEADER + "".join(rows))
    return path


def test_lines_over_1_mib_are_rejected_unread_keeping_their_first_kib(tmp_path):
    """A line of 1.5 MiB fitted the streaming reader's 25 MB block and became a row (its
    endpoint a 1.5 MB key); it is now rejected unread like the 3 MiB one."""
    _api(tmp_path, {1000: "/" + "x" * 1_500_000, 2000: "/" + "y" * 3_000_000})
    loaded = load(Config(), tmp_path)
    q = loaded.quality["api_logs"]
    assert (q.rows, q.valid) == (3000, 2998)
    assert q.rejected == {"line longer than 1 MiB (not read)": 2}
    bad = loaded.rejected["api_logs"]
    assert bad["row"].tolist() == [1002, 2002]           # the header is row 1
    first = bad.loc[0, "endpoint"]
    assert first == "/" + "x" * (1024 - 22) + "… [1500037 bytes; first 1024 kept]"
    assert bad.loc[1, "endpoint"].endswith("… [3000037 bytes; first 1024 kept]")
    assert bad.loc[0, "timestamp"] == "2026-11-02T10:00:00Z"
    total = loaded.frames["api_logs"].tables["requests"]["n"].sum()
    assert total == 2998


def test_endpoints_longer_than_2_kib_are_cut_before_they_are_keys(tmp_path):
    """Two 5,000-character endpoints that differ only past 2 KiB are one key."""
    _api(tmp_path, {10: "/" + "z" * 5000 + "1", 20: "/" + "z" * 5000 + "2"})
    loaded = load(Config(), tmp_path)
    table = loaded.frames["api_logs"].tables["requests"]
    keys = sorted(set(table["endpoint"].astype(str)), key=lambda k: (len(k), k))
    cut = "/" + "z" * (KEY_CHARS - len(KEY_CUT) - 1) + KEY_CUT
    assert keys == ["/e0", "/e1", "/e2", cut] and len(cut) == 2048
    assert table.loc[table["endpoint"] == cut, "n"].sum() == 2


def test_categorical_cuts_arrow_and_numpy_text_alike():
    arrow = pd.Series(pd.array(["/a", "q" * 3000, None], dtype=pd.ArrowDtype(pa.string())))
    plain = pd.Series(["/a", "q" * 3000, "/a"])
    for s in (arrow, plain):
        out = categorical(s)
        assert [len(c) for c in out.cat.categories] == [2, 2048]
        assert out.iloc[1].endswith(KEY_CUT) and out.iloc[0] == "/a"
    assert categorical(arrow).isna().tolist() == [False, False, True]


def test_a_decompression_bomb_stops_at_its_bound_and_fails_alone(tmp_path):
    """76 MB of one repeated row gzip to 221 KB (ratio about 345): past 200 times its size
    and past the 64 MiB always allowed, so both the streamed (api_logs) and the whole-file
    (user_feedback) readers stop it; cart_abandonment still loads. Raising the ratio reads
    it all."""
    row = b"2026-11-02T10:00:00Z,/a,200,5,svc,GET\n"
    (tmp_path / "api_logs.csv.gz").write_bytes(gzip.compress(HEADER.encode() + row * 2_000_000))
    (tmp_path / "user_feedback.csv.gz").write_bytes(gzip.compress(
        b"user_id,timestamp,feedback_text,rating\n" + b"U1,2026-11-02T10:00:00Z,ok,4\n" * 3_000_000))
    shutil.copy(ROOT / "data" / "cart_abandonment.parquet", tmp_path)
    loaded = load(Config.from_dict({"workers": 1}), tmp_path)
    for name in ("api_logs", "user_feedback"):
        q = loaded.quality[name]
        assert q.status == "error" and q.message == (
            f"{tmp_path / name}.csv.gz expands past 64 MiB when decompressed (at most 200 "
            "times its compressed size and 16,384 MiB: max_decompression_ratio, "
            "max_decompressed_mb); expected an export, not a decompression bomb: check the "
            "file, or raise the limits.")
    assert loaded.quality["cart_abandonment"].valid == 4449
    loaded = load(Config.from_dict({"workers": 1, "max_decompression_ratio": 1000}), tmp_path)
    assert loaded.quality["api_logs"].valid == 2_000_000
    assert loaded.quality["user_feedback"].valid == 3_000_000


def test_the_absolute_cap_holds_whatever_the_ratio():
    bound = Inflation(max_mb=100, ratio=1000)
    assert bound.limit(1 << 20) == 100 << 20          # 1,000 MiB by ratio, capped at 100
    assert bound.limit(1000) == 64 << 20               # a small file: the floor
    assert Inflation(max_mb=10).limit(1000) == 10 << 20
