"""The archive index's schema: each migration upgrades it by one version (SQLite's
`user_version`); a released entry is never edited."""
from __future__ import annotations

# Each entry upgrades the schema by one version; never edit a released entry.
MIGRATIONS: list[str] = [
    # 1: builds and KPI values
    """
    CREATE TABLE builds (
        id INTEGER PRIMARY KEY,
        period_id TEXT NOT NULL, period_start TEXT NOT NULL, period_end TEXT NOT NULL,
        audience TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL,
        size INTEGER NOT NULL, built_at TEXT NOT NULL, version TEXT NOT NULL
    );
    CREATE INDEX builds_period ON builds (period_id);
    CREATE TABLE kpis (
        period_id TEXT NOT NULL, key TEXT NOT NULL, value REAL, text TEXT,
        unit TEXT NOT NULL, status TEXT, built_at TEXT NOT NULL,
        PRIMARY KEY (period_id, key)
    );
    """,
    # 2: what a build was made from and how long it took; deliveries; scheduled runs
    """
    ALTER TABLE builds ADD COLUMN config_hash TEXT;
    ALTER TABLE builds ADD COLUMN inputs TEXT;
    ALTER TABLE builds ADD COLUMN seconds REAL;
    CREATE TABLE periods (
        period_id TEXT PRIMARY KEY, period_start TEXT NOT NULL, period_end TEXT NOT NULL,
        folder TEXT NOT NULL, built_at TEXT NOT NULL
    );
    INSERT OR IGNORE INTO periods
        SELECT period_id, MIN(period_start), MAX(period_end), '', MAX(built_at)
        FROM builds GROUP BY period_id;
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        period_id TEXT NOT NULL, audience TEXT NOT NULL, recipient TEXT NOT NULL,
        message_id TEXT, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT, updated_at TEXT NOT NULL,
        UNIQUE (period_id, audience, recipient)
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY, job_id TEXT NOT NULL, audience TEXT NOT NULL,
        scheduled_for TEXT, started_at TEXT NOT NULL, finished_at TEXT,
        status TEXT NOT NULL, error TEXT
    );
    """,
    # 3: hourly signal values, the baselines of later incident detection
    """
    CREATE TABLE signal_hours (
        signal TEXT NOT NULL, entity TEXT NOT NULL, hour INTEGER NOT NULL,
        value REAL NOT NULL, events REAL NOT NULL, period_id TEXT NOT NULL,
        PRIMARY KEY (signal, entity, hour)
    );
    CREATE INDEX signal_hours_hour ON signal_hours (hour);
    CREATE INDEX signal_hours_period ON signal_hours (period_id);
    """,
    # 4: every delivery attempt is a row of its own (history, and the claim a sender makes
    #    before talking to the server); a run knows the process that runs it
    """
    CREATE TABLE delivery_attempts (
        id INTEGER PRIMARY KEY,
        period_id TEXT NOT NULL, audience TEXT NOT NULL, recipient TEXT NOT NULL,
        message_id TEXT, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT, updated_at TEXT NOT NULL, pid INTEGER
    );
    INSERT INTO delivery_attempts (period_id, audience, recipient, message_id, status,
        attempts, last_error, updated_at)
        SELECT period_id, audience, recipient, message_id, status, attempts, last_error,
        updated_at FROM deliveries ORDER BY id;
    DROP TABLE deliveries;
    ALTER TABLE delivery_attempts RENAME TO deliveries;
    CREATE INDEX deliveries_key ON deliveries (period_id, audience, recipient);
    ALTER TABLE runs ADD COLUMN pid INTEGER;
    """,
    # 5: KPI values per audience slice ('' = the whole data), so trends never mix slices
    """
    CREATE TABLE kpis_sliced (
        period_id TEXT NOT NULL, slice TEXT NOT NULL DEFAULT '', key TEXT NOT NULL,
        value REAL, text TEXT, unit TEXT NOT NULL, status TEXT, built_at TEXT NOT NULL,
        PRIMARY KEY (period_id, slice, key)
    );
    INSERT INTO kpis_sliced (period_id, slice, key, value, text, unit, status, built_at)
        SELECT period_id, '', key, value, text, unit, status, built_at FROM kpis;
    DROP TABLE kpis;
    ALTER TABLE kpis_sliced RENAME TO kpis;
    """,
    # 6: incident alerts sent between reports (`reporting alert`)
    """
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY, start TEXT NOT NULL, end TEXT NOT NULL,
        services TEXT NOT NULL, text TEXT NOT NULL, first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
