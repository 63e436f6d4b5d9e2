"""The archive index's schema: each migration upgrades it by one version (SQLite's
`user_version`, PostgreSQL's `schema_version` table); a released entry is never edited.
The statements are SQLite's; `db.Db.ddl` spells the few differing words for PostgreSQL."""
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
    # 7: one archive for several hosts (issue 29): a build row names its output folder,
    #    a delivery attempt and a run the host whose process made them, and a recipient's
    #    claim key is one row that a sender locks (PostgreSQL: SELECT ... FOR UPDATE)
    """
    ALTER TABLE builds ADD COLUMN output TEXT;
    ALTER TABLE deliveries ADD COLUMN host TEXT;
    ALTER TABLE runs ADD COLUMN host TEXT;
    CREATE TABLE delivery_keys (
        period_id TEXT NOT NULL, audience TEXT NOT NULL, recipient TEXT NOT NULL,
        PRIMARY KEY (period_id, audience, recipient)
    );
    """,
    # 8: tidy tables for BI tools (docs/dashboards.md documents every column): a KPI row
    #    keeps what kpis.json says of it; a period's incidents, anomalies and data quality
    #    are rows of their own (the period's latest build wins); kpi_history is a view
    """
    ALTER TABLE kpis ADD COLUMN label TEXT;
    ALTER TABLE kpis ADD COLUMN previous REAL;
    ALTER TABLE kpis ADD COLUMN change REAL;
    ALTER TABLE kpis ADD COLUMN change_unit TEXT;
    ALTER TABLE kpis ADD COLUMN better TEXT;
    ALTER TABLE kpis ADD COLUMN threshold REAL;
    ALTER TABLE kpis ADD COLUMN threshold_bad REAL;
    CREATE TABLE incidents (
        period_id TEXT NOT NULL, number INTEGER NOT NULL, started_at TEXT NOT NULL,
        ended_at TEXT NOT NULL, services TEXT NOT NULL, pages TEXT NOT NULL,
        signals TEXT NOT NULL, abandoned_carts REAL, abandoned_value REAL, tickets REAL,
        deploy TEXT, text TEXT NOT NULL, built_at TEXT NOT NULL,
        PRIMARY KEY (period_id, number)
    );
    CREATE TABLE anomalies (
        period_id TEXT NOT NULL, number INTEGER NOT NULL, side TEXT NOT NULL,
        started_at TEXT NOT NULL, ended_at TEXT NOT NULL, entity TEXT NOT NULL,
        signals TEXT NOT NULL, text TEXT NOT NULL, built_at TEXT NOT NULL,
        PRIMARY KEY (period_id, number)
    );
    CREATE TABLE data_quality (
        period_id TEXT NOT NULL, source TEXT NOT NULL, reason TEXT NOT NULL,
        status TEXT NOT NULL, row_count INTEGER NOT NULL, valid_rows INTEGER, message TEXT,
        built_at TEXT NOT NULL,
        PRIMARY KEY (period_id, source, reason)
    );
    CREATE VIEW kpi_history AS
        SELECT k.period_id, p.period_start, p.period_end,
               CASE WHEN k.slice = '' THEN 'all' ELSE k.slice END AS audience,
               k.key AS kpi, k.label, k.unit, k.value, k.text, k.previous, k.change,
               k.change_unit, k.status, k.better, k.threshold, k.threshold_bad, k.built_at
        FROM kpis k JOIN periods p ON p.period_id = k.period_id;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
