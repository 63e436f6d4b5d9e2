"""The archive on PostgreSQL (issue 29): the same schema and migrations as SQLite, on a
real server started here; a build's kpi_history rows equal its kpis.json on both
databases; the password is read from the environment and never written or logged."""
from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from reporting.core.config import Config
from reporting.core.errors import ConfigError, ReportError
from reporting.store import bi
from reporting.store.archive import Archive
from reporting.store.db import Db, archive_url
from reporting.store.schema import MIGRATIONS, SCHEMA_VERSION, statements

from .pgarchive import PASSWORD, pg, pg_config, two_builds  # noqa: F401 - fixtures

WEEK = "2026-W45"


def kpi_rows(config: Config, folder: Path) -> pd.DataFrame:
    with Archive.of(config, folder) as store:
        assert store.db.dialect == ("sqlite" if not config.archive_url else "postgresql")
        return bi.read(store.db, "kpi_history")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_kpi_history_rows_equal_the_builds_kpis_json(two_builds, kind):
    config, folder, doc, _ = two_builds[kind]
    rows = kpi_rows(config, folder)
    mine = rows[(rows["audience"] == "all") & (rows["period_id"] == WEEK)].set_index("kpi")
    assert sorted(mine.index) == sorted(doc["kpis"])
    for key, k in doc["kpis"].items():
        row = mine.loc[key]
        value = row["text"] if isinstance(k["value"], str) else row["value"]
        if k["value"] is None:
            assert pd.isna(row["value"]) and pd.isna(row["text"]), key
        else:
            assert value == k["value"], key
        assert (row["status"] if isinstance(row["status"], str) else None) == k["status"], key
        assert row["unit"] == k["unit"] and row["label"] == doc["labels"][key], key
        assert row["period_id"] == WEEK and row["period_start"] == doc["period"]["start"]
        for bound in ("threshold", "threshold_bad"):    # the config's, as judged
            assert (None if pd.isna(row[bound]) else row[bound]) == k.get(bound), key
    # worked by hand from the default thresholds: p95 good up to 800 ms, bad over 1.25 x
    assert mine.loc["api.p95_ms", ["threshold", "threshold_bad"]].tolist() == [800.0, 1000.0]
    assert mine.loc["api.availability", ["threshold", "threshold_bad"]].tolist() == [
        0.999, 0.998]
    # slices: every sliced audience's kpis-<audience>.json is its own rows
    sliced = sorted(p.stem[len("kpis-"):] for p in (folder / "reports" / WEEK).glob("kpis-*"))
    assert sorted(set(rows["audience"]) - {"all"}) == sliced


def test_both_databases_hold_the_same_names_and_values(two_builds):
    frames = {}
    for kind, (config, folder, _, _) in two_builds.items():
        with Archive.of(config, folder) as store:
            frames[kind] = {t: bi.read(store.db, t).drop(columns=["built_at"], errors="ignore")
                            for t in bi.TABLES}
    for table in bi.TABLES:
        a, b = frames["sqlite"][table], frames["postgresql"][table]
        assert list(a.columns) == list(b.columns) == [
            c for c in bi.COLUMNS[table] if c != "built_at"]
        pd.testing.assert_frame_equal(a.astype(object).where(a.notna(), None),
                                      b.astype(object).where(b.notna(), None), check_dtype=False)
    quality = frames["postgresql"]["data_quality"]
    assert len(quality) > 0 and set(quality["reason"]) == {""}   # the sample has no bad rows


def test_change_is_in_the_unit_people_think_in(two_builds):
    config, folder, doc, _ = two_builds["postgresql"]
    rows = kpi_rows(config, folder)
    rows = rows[(rows["audience"] == "all") & (rows["period_id"] == WEEK)].set_index("kpi")
    # worked by hand from the sample's kpis.json: requests 49,970 vs 49,948 is +0.0 %
    # (22 / 49,948 = 0.044 %), server errors 29 vs 38 is -23.7 %
    assert rows.loc["api.requests", ["change", "change_unit"]].tolist() == [0.0, "%"]
    assert doc["kpis"]["api.server_errors"]["value"] == 29
    assert rows.loc["api.server_errors", "change"] == round((29 - 38) / 38 * 100, 1) == -23.7
    k = doc["kpis"]["api.server_error_rate"]           # 0.0006 vs 0.0008: -0.02 pp
    assert rows.loc["api.server_error_rate", "change_unit"] == "pp"
    assert math.isclose(rows.loc["api.server_error_rate", "change"],
                        round((k["value"] - k["previous"]) * 100, 2))


def test_the_password_is_never_written_or_logged(two_builds, caplog):
    config, folder, _, _ = two_builds["postgresql"]
    with caplog.at_level(logging.DEBUG):
        with Archive.of(config, folder) as store:
            assert PASSWORD not in str(store.path) and "***" in str(store.path)
    assert PASSWORD not in caplog.text
    assert not (folder / "archive.sqlite").exists()     # the archive is the database
    for f in folder.rglob("*"):
        if f.is_file():
            assert PASSWORD.encode() not in f.read_bytes(), f


def test_a_wrong_password_or_a_missing_variable_is_one_sentence(pg, monkeypatch, tmp_path):  # noqa: F811
    url = pg.database("wrong")
    monkeypatch.setenv("REPORTS_ARCHIVE_PW", "not-" + PASSWORD)
    config = Config.from_dict({"archive_url": url, "archive_password_env": "REPORTS_ARCHIVE_PW"})
    with pytest.raises(ReportError, match=r"The archive database postgresql\+psycopg://"
                       r"postgres:\*\*\*@127.0.0.1:\d+/wrong_\d+ \(archive_url\) cannot be"
                       r" used: .*password authentication failed") as e:
        Archive.of(config, tmp_path)
    assert "not-" + PASSWORD not in str(e.value)
    monkeypatch.delenv("REPORTS_ARCHIVE_PW")
    with pytest.raises(ReportError, match="REPORTS_ARCHIVE_PW .archive_password_env., which "
                       "is not set"):
        Archive.of(config, tmp_path)


def test_a_password_in_archive_url_is_refused_by_the_config_check():
    with pytest.raises(ConfigError, match="archive_url holds a password; remove it") as e:
        Config.from_dict({"archive_url": "postgresql://reports:hunter2@db/reports"})
    assert "hunter2" not in str(e.value)
    with pytest.raises(ConfigError, match="archive_url must be a PostgreSQL URL"):
        Config.from_dict({"archive_url": "mysql://reports@db/reports"})


def test_the_same_migrations_upgrade_an_older_postgresql_archive(pg, monkeypatch, tmp_path):  # noqa: F811
    """A database left at schema 5 (by an older version) is upgraded in place, its rows
    kept; a second opening changes nothing."""
    config = pg_config(pg.database("old"), monkeypatch)
    db = Db(archive_url(config.archive_url, tmp_path, config.archive_password_env))
    with db.transaction():
        for script in MIGRATIONS[:5]:
            for statement in statements(script):
                db.execute(db.ddl(statement))
        db.set_version(5)
        db.execute("INSERT INTO periods VALUES ('2026-W01', '2026-01-05T00:00:00+00:00',"
                   " '2026-01-12T00:00:00+00:00', 'reports/2026-W01', '2026-01-12T07:00:00')")
        db.execute("INSERT INTO kpis (period_id, slice, key, value, unit, status, built_at)"
                   " VALUES ('2026-W01', '', 'api.requests', 1200, 'count', NULL,"
                   " '2026-01-12T07:00:00')")
    db.close()
    for _ in range(2):
        with Archive.of(config, tmp_path) as store:
            assert store.version == SCHEMA_VERSION == 8
            assert store.kpi_values("2026-W01") == {"api.requests": 1200}
            history = bi.read(store.db, "kpi_history")
            assert history[["audience", "kpi", "value"]].values.tolist() == [
                ["all", "api.requests", 1200.0]]
            assert store.db.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 1


def test_a_claim_waits_for_another_hosts_open_claim_of_the_same_recipient(
        pg, monkeypatch, tmp_path):   # noqa: F811
    """Host A holds the recipient's claim key (its transaction is still open); host B's
    claim waits for it, then reads A's committed row and sends nothing. Without the row
    lock B would read no row and claim the recipient a second time."""
    config = pg_config(pg.database("claims"), monkeypatch)
    key = ("2026-W45", "it", "ops@example.com")
    with Archive.of(config, tmp_path / "a") as a, Archive.of(config, tmp_path / "b") as b:
        result: dict[str, object] = {}
        waiter = threading.Thread(target=lambda: result.update(
            zip(("claimed", "skipped"), b.claim(*key[:2], [key[2]]))))
        with a.transaction() as db:
            db.execute("INSERT INTO delivery_keys VALUES (?,?,?) ON CONFLICT DO NOTHING", key)
            db.execute("SELECT 1 FROM delivery_keys WHERE period_id = ? AND audience = ? AND"
                       " recipient = ? FOR UPDATE", key)
            waiter.start()
            time.sleep(0.5)
            assert waiter.is_alive()            # B waits on A's lock
            db.execute("INSERT INTO deliveries (period_id, audience, recipient, status,"
                       " attempts, updated_at) VALUES (?,?,?,'delivered',1,'now')", key)
        waiter.join(10)
        assert result == {"claimed": {}, "skipped": {"ops@example.com": "delivered"}}


def test_a_host_that_waited_for_another_hosts_first_migration_sees_it_done(
        pg, monkeypatch, tmp_path):   # noqa: F811
    """Two hosts open a new archive at once: the second waits for the migration lock while
    the first creates every table, then finds the schema current instead of creating the
    tables again ("relation builds already exists", seen once in CI). Its earlier look for
    `schema_version` must not be answered from the session's stale catalog cache."""
    config = pg_config(pg.database("race"), monkeypatch)
    first = Db(archive_url(config.archive_url, tmp_path, config.archive_password_env))
    opened: list[object] = []
    with first.transaction():
        first.lock_schema()
        second = threading.Thread(target=lambda: opened.append(_open(config, tmp_path)))
        second.start()
        waiting = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        deadline = time.monotonic() + 30
        while first.execute(waiting).fetchone()[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert first.execute(waiting).fetchone()[0] == 1    # the second host waits
        for script in MIGRATIONS:
            for statement in statements(script):
                first.execute(first.ddl(statement))
        first.set_version(SCHEMA_VERSION)
    second.join(30)
    first.close()
    assert opened == [SCHEMA_VERSION]


def _open(config: Config, folder: Path) -> object:
    try:
        with Archive.of(config, folder) as store:
            return store.version
    except ReportError as exc:
        return str(exc)
