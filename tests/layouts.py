"""The same simulated data laid out as teams keep it: daily .csv.gz, Hive-partitioned
Parquet by day, database tables."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from reporting.core.contracts import SPECS

# Database tables use the team's own names; the configured query maps them back.
TICKETS_SQL = ("select id as ticket_id, opened as created_at, closed as resolved_at, "
               "state as status, via as channel, topic as issue_type, user_id, "
               "first_response_at, priority, csat from tickets")


def flat_frame(flat: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(flat / f"{name}.csv", dtype=str, keep_default_na=False)


def days(flat: Path, name: str):
    df = flat_frame(flat, name)
    t = pd.to_datetime(df[SPECS[name].time], format="ISO8601", utc=True)
    return df.groupby(t.dt.date)


def daily_csv_gz(flat: Path, out: Path) -> Path:
    """`out/<source>/<YYYY-MM-DD>.csv.gz`, one file per day."""
    for name in SPECS:
        (out / name).mkdir(parents=True, exist_ok=True)
        for day, part in days(flat, name):
            part.to_csv(out / name / f"{day}.csv.gz", index=False)
    return out


def hive_parquet(flat: Path, out: Path) -> Path:
    """`out/<source>/date=<YYYY-MM-DD>/part-0.parquet`, the time column as a timestamp."""
    for name in SPECS:
        spec = SPECS[name]
        for day, part in days(flat, name):
            folder = out / name / f"date={day}"
            folder.mkdir(parents=True, exist_ok=True)
            part = part.replace("", None)       # Parquet keeps gaps as nulls
            part[spec.time] = pd.to_datetime(part[spec.time], format="ISO8601", utc=True)
            part.to_parquet(folder / "part-0.parquet", index=False)
    return out


def typed(flat: Path, name: str) -> pd.DataFrame:
    """A source as a database holds it: times as timestamps, numbers as numbers, NULLs."""
    spec = SPECS[name]
    df = pd.read_csv(flat / f"{name}.csv", dtype=str, keep_default_na=False).replace("", None)
    for col in spec.timestamps:
        if col in df:
            df[col] = pd.to_datetime(df[col], format="ISO8601", utc=True)
    for col in spec.numbers:
        if col in df:
            df[col] = pd.to_numeric(df[col])
    return df


def to_database(flat: Path, engine) -> dict[str, str]:
    """Every source as a table (tickets under the team's own column names); returns
    the query per source."""
    queries = {}
    for name in SPECS:
        df = typed(flat, name)
        if name == "support_tickets":
            df = df.rename(columns={"ticket_id": "id", "created_at": "opened",
                                    "resolved_at": "closed", "status": "state",
                                    "channel": "via", "issue_type": "topic"})
            df.to_sql("tickets", engine, index=False, if_exists="replace")
            queries[name] = TICKETS_SQL
        else:
            df.to_sql(name, engine, index=False, if_exists="replace")
            queries[name] = f"select * from {name}"
    return queries
