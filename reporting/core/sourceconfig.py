"""`[sources.NAME]`: where one source's rows come from (files, logs or a database query),
declared and checked as the rest of the config (design.md "Sources")."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .contracts import SOURCE_NAMES
from .errors import ConfigError
from .settings import read_table, setting, unknown_keys

LOG_FORMATS = ("access_log", "json_log", "w3c_log")
SOURCE_FORMATS = ("csv", "parquet", *LOG_FORMATS)


@dataclass(frozen=True)
class SourceConfig:
    """Where one source's rows come from (`[sources.NAME]`, design.md "Sources")."""

    name: str
    path: str = setting("", "a file, a folder or a glob; relative to the config file",
                        kind="path", example="/var/log/nginx/access.log*")
    format: str = setting("", "\"\" = from the file names; needed for logs", kind="choice",
                          choices=SOURCE_FORMATS, example="access_log")
    url: str = setting("", "SQLAlchemy URL of a database, without the password", kind="url",
                       example="postgresql://reports@db.internal:5432/helpdesk")
    sql: str = setting("", "the query; its columns are matched like a file's",
                       example="select * from tickets")
    password_env: str = setting("", "environment variable holding the database password",
                                kind="env", example="HELPDESK_DB_PASSWORD")
    log_format: str = setting("", "access logs: the nginx log_format or Apache LogFormat; "
                              "\"\" = detected on the first lines",
                              example="$remote_addr - $remote_user [$time_local] \"$request\" "
                              "$status $body_bytes_sent $request_time")
    services: dict[str, str] = setting(None, "access logs: path prefix = service name",
                                       factory=dict, kind="table",
                                       example={"/v2/pay": "payments-gw"})
    fields: dict[str, str] = setting(None, "JSON logs: time, status, method, path or request, "
                                     "duration, host = the log's key (a.b: nested)",
                                     factory=dict, kind="table",
                                     example={"time": "ts", "status": "status",
                                              "method": "request.method",
                                              "path": "request.uri", "duration": "duration",
                                              "host": "request.host"})
    duration_unit: str = setting("s", "JSON logs: the unit of the duration field",
                                 kind="choice", choices=("s", "ms", "us", "ns"), example="ms")
    query_timeout_s: float = setting(600.0, "a query running longer is stopped and its "
                                     "source marked not loaded", low=0, above=True, unit="s")



def read_sources(raw: Any, where: str, base: Path) -> dict[str, SourceConfig]:
    """`[sources.NAME]` tables: a path (file, folder, glob) or a SQL query, checked here."""
    unknown_keys(raw, SOURCE_NAMES, where, "sources.")
    result = {}
    for name, table in raw.items():
        key = f"sources.{name}"
        values = read_table(SourceConfig, table, where, key + ".", skip=("services", "fields"))
        services, fields = table.get("services", {}), table.get("fields", {})
        if not isinstance(services, dict):
            raise ConfigError(f"{where}: {key}.services must be a table of path prefix = "
                              "service name.")
        if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
            raise ConfigError(f"{where}: {key}.fields must be a table of report field = the "
                              'log\'s key, such as { time = "ts", status = "status" }.')
        src = SourceConfig(name, services={str(k): str(v) for k, v in services.items()},
                           fields={str(k): v for k, v in fields.items()},
                           **{k: v.strip() if isinstance(v, str) else v
                              for k, v in values.items()})
        _check_source(src, where, key)
        if src.path and not Path(src.path).expanduser().is_absolute():
            src = dataclasses.replace(src, path=str(base / src.path))
        if src.url.startswith("sqlite:///") and not src.url.startswith("sqlite:////"):
            file, _, query = src.url[len("sqlite:///"):].partition("?")
            if file and file != ":memory:":   # a relative SQLite file: beside the config
                src = dataclasses.replace(
                    src, url=f"sqlite:///{base / file}" + (f"?{query}" if query else ""))
        result[name] = src
    return result


def _check_source(src: SourceConfig, where: str, key: str) -> None:
    """A source reads either files or a query, and log settings only for logs."""
    if bool(src.path) == bool(src.url or src.sql):
        raise ConfigError(f"{where}: {key} needs either path (a file, folder or glob) "
                          "or url and sql (a database query), not both.")
    if (src.url or src.sql) and not (src.url and src.sql):
        raise ConfigError(f"{where}: {key} needs both url and sql to read a database.")
    if src.format in LOG_FORMATS and src.name != "api_logs":
        raise ConfigError(f"{where}: {key}.format = \"{src.format}\" is only for api_logs.")
    if (src.log_format or src.services) and src.format not in LOG_FORMATS:
        raise ConfigError(f"{where}: {key}.log_format and services need format = "
                          "\"access_log\", \"json_log\" or \"w3c_log\".")
    if src.log_format and src.format != "access_log":
        raise ConfigError(f"{where}: {key}.log_format is for format = \"access_log\".")
    if src.format == "json_log":
        _check_fields(src, where, key)
    elif src.fields:
        raise ConfigError(f"{where}: {key}.fields is for format = \"json_log\".")


JSON_FIELDS = ("time", "status", "method", "path", "request", "duration", "host")


def _check_fields(src: SourceConfig, where: str, key: str) -> None:
    """A JSON log's field map names a time, a status and a path (or request line)."""
    unknown = sorted(set(src.fields) - set(JSON_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: {key}.fields.{unknown[0]} is not a field the report "
                          f"reads; use {', '.join(JSON_FIELDS)}.")
    lacking = [k for k in ("time", "status") if k not in src.fields]
    if "path" not in src.fields and "request" not in src.fields:
        lacking.append("path (or request)")
    if lacking:
        raise ConfigError(f"{where}: {key}.fields needs {', '.join(lacking)}: the log's "
                          'keys for them, such as fields = { time = "ts", status = '
                          '"status", path = "request.uri" }.')
