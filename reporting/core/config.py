"""The one validated configuration object, built once from `report.toml` and passed down."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .checks import (
    address,
    attach,
    check_name,
    check_smtp,
    check_thresholds,
    currency,
    moment,
    no_unknown,
    notify_urls,
    number,
    public_url,
)
from .contracts import FILTER_KEYS, SOURCE_NAMES
from .errors import ConfigError
from .registry import names


@dataclass(frozen=True)
class Thresholds:
    """Targets the KPIs are judged against; sources noted where they are borrowed."""

    availability_slo: float = 0.999
    api_p95_ms: float = 800.0
    apdex_t_ms: float = 500.0          # Apdex T; tolerating up to 4T
    page_p75_ms: float = 2500.0        # web.dev LCP "good" band, borrowed for load time
    page_poor_ms: float = 4000.0       # web.dev LCP "poor" band
    support_sla_hours: float = 24.0    # resolution target of a priority not named below
    # resolution target per ticket priority (names matched in any case)
    support_sla_hours_by_priority: tuple[tuple[str, float], ...] = (
        ("urgent", 4.0), ("high", 8.0), ("normal", 24.0), ("low", 72.0))
    support_first_response_hours: float = 4.0
    cpu_p95_pct: float = 80.0
    memory_p95_pct: float = 85.0
    uptime: float = 0.99
    csat: float = 0.7
    burn_rate_page: float = 14.4       # SRE workbook: page at 14.4x burn over 1 h
    incident_false_alarms: float = 0.01  # chance a quiet period shows any false finding
    incident_min_events: int = 30
    slo_window_days: int = 28          # the rolling error budget's window (SRE practice)
    deploy_link_minutes: float = 60.0  # a finding this soon after a deploy of its service
    # Core Web Vitals at p75: web.dev's good and poor bands
    lcp_good_ms: float = 2500.0
    lcp_poor_ms: float = 4000.0
    inp_good_ms: float = 200.0
    inp_poor_ms: float = 500.0
    cls_good: float = 0.1
    cls_poor: float = 0.25

    def sla_hours(self, priority: str | None) -> float:
        """The resolution target of a ticket of `priority` (any case; none or a priority
        not named: `support_sla_hours`)."""
        key = str(priority).strip().lower() if priority is not None else ""
        return dict(self.support_sla_hours_by_priority).get(key, self.support_sla_hours)


@dataclass(frozen=True)
class Maintenance:
    """A planned maintenance window (`[maintenance.NAME]`): its hours are not judged as
    anomalies and are marked on charts. Times are naive in the config's zone or carry an
    offset; `repeat` = "daily" or "weekly" repeats it; no `services` = every service."""

    name: str
    start: datetime
    end: datetime
    services: tuple[str, ...] = ()
    repeat: str = ""


@dataclass(frozen=True)
class ServiceLinks:
    """What users see of one back-end service: shell patterns for pages and ticket issue
    types, words in feedback, and whether abandoned carts are its doing."""

    pages: tuple[str, ...] = ()
    issue_types: tuple[str, ...] = ()
    feedback_words: tuple[str, ...] = ()
    carts: bool = False


@dataclass(frozen=True)
class SmtpConfig:
    host: str = ""
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password_env: str = ""
    sender: str = "Diagnostics reports <reports@localhost>"
    timeout: float = 30.0              # each wait for the server
    deadline_s: float = 0.0            # one whole conversation; 0 = 4 x timeout
    allow_plaintext_auth: bool = False  # security = "none" with a login off loopback
    retries: int = 3
    retry_base_s: float = 2.0          # backoff: 2 s, 4 s, 8 s ...
    ca_file: str = ""                  # CA bundle to trust (e.g. a self-signed server)
    max_attachment_mb: float = 10.0


@dataclass(frozen=True)
class Audience:
    name: str
    title: str
    sections: tuple[str, ...]
    recipients: tuple[str, ...] = ()
    schedule: str = "0 7 * * mon"
    period: str = "last-week"
    template: str = ""   # "" = audiences/<name>.html if it exists, else the generic page
    compact: bool = False  # domain sections as tiles and one chart, top 5 insights only
    notify: tuple[str, ...] = ()         # Apprise URLs; {VAR} placeholders from the environment
    attach: tuple[str, ...] = ("pdf",)   # what mail and chat carry: pdf and/or csv
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()   # a slice: (key, patterns) pairs


DEFAULT_AUDIENCES: dict[str, Audience] = {
    "executive": Audience(
        "executive", "Executive summary",
        ("overview", "insights", "incidents", "orders", "api", "pages", "cart", "feedback",
         "support", "trends", "data_quality"), compact=True),
    "ux": Audience(
        "ux", "UX weekly",
        ("overview", "insights", "clicks", "sessions", "pages", "cart", "feedback",
         "trends", "data_quality")),
    "it": Audience(
        "it", "IT & operations weekly",
        ("overview", "insights", "incidents", "api", "system", "trends", "data_quality")),
    "support": Audience(
        "support", "Support weekly",
        ("overview", "insights", "support", "feedback", "incidents", "trends",
         "data_quality")),
}

# Funnel steps: a name and the page patterns (shell-style, any case) that count as it. A
# session reaches a step when its path shows pages of every step so far in this order;
# "finished" (drop_off_page = none after the last step) is always the funnel's end.
DEFAULT_FUNNEL: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("landing", ("*",)),
    ("product", ("product*", "*/product*")),
    ("cart", ("cart*", "*/cart*")),
    ("checkout", ("checkout*", "*/checkout*")),
)


@dataclass(frozen=True)
class SourceConfig:
    """Where one source's rows come from (`[sources.NAME]`, design.md "Sources")."""

    name: str
    path: str = ""               # a file, a folder or a glob; relative to the config file
    format: str = ""             # csv | parquet | access_log; "" = from the file names
    url: str = ""                # SQLAlchemy URL, without the password
    sql: str = ""
    password_env: str = ""       # the environment variable holding the password
    log_format: str = ""         # an nginx log_format line, for format = "access_log"
    services: dict[str, str] = field(default_factory=dict)   # path prefix -> service


SOURCE_FORMATS = ("csv", "parquet", "access_log")


@dataclass(frozen=True)
class SchedulerConfig:
    misfire_grace_hours: float = 6.0
    allow_partial: bool = True         # mail a report whose period the data covers in part
    notify_on_failure: str = ""
    stop_grace_s: float = 8.0          # a running job's time to finish after SIGTERM


@dataclass(frozen=True)
class AlertsConfig:
    schedule: str = ""                   # cron in `timezone`; "" = only when run by hand
    lookback_hours: float = 6.0          # the newest hours of data that are searched
    notify: tuple[str, ...] = ()         # Apprise URLs, as for audiences
    recipients: tuple[str, ...] = ()     # email


@dataclass(frozen=True)
class Config:
    timezone: str = "UTC"
    data_dir: Path = Path("data")
    output_dir: Path = Path("output")
    lock_timeout_s: float = 600.0
    top_n: int = 100                   # entities kept per breakdown, incident and archive
    earliest_timestamp: str = "2000-01-01"
    future_margin_hours: float = 24.0  # later timestamps than the clock + this: rejected
    pdf_timeout_s: float = 300.0       # one audience's PDF; then the build stops
    thresholds: Thresholds = field(default_factory=Thresholds)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    audiences: dict[str, Audience] = field(default_factory=lambda: dict(DEFAULT_AUDIENCES))
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    currency: str = ""                 # ISO 4217 code shown with money; "" = none
    funnel: tuple[tuple[str, tuple[str, ...]], ...] = DEFAULT_FUNNEL
    public_url: str = ""     # where output/ is published: mail links to the HTML reports
    service_map: dict[str, ServiceLinks] = field(default_factory=dict)  # others inferred
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    maintenance: tuple[Maintenance, ...] = ()   # planned windows, not judged as anomalies
    engine: str = "local"              # local | dask (design.md, "Engines")
    workers: int = 0                   # local engine's processes; 0 = every core
    chunk_rows: int = 250_000          # rows per chunk (a CSV block, a Parquet batch)
    dask_scheduler: str = "local"      # tcp://host:8786, or "local": a LocalCluster here
    dask_workers: int = 2              # a LocalCluster's workers
    dask_memory_limit: str = "2GB"     # each LocalCluster worker's memory
    source: Path | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def load(cls, path: Path | str | None = None, *, must_exist: bool = False) -> Config:
        """Read `path` (or ./report.toml when present); every key is optional."""
        if path is None:
            path = Path("report.toml")
            if not path.exists():
                return cls()
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"Config file {path} does not exist.")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Config file {path} is not valid TOML: {exc}.") from None
        return cls.from_dict(raw, base=path.resolve().parent, source=path)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, base: Path | None = None,
                  source: Path | None = None) -> Config:
        """Validate a parsed TOML document; unknown keys are an error that names them."""
        where = str(source or "config")
        top = {"timezone", "data_dir", "output_dir", "lock_timeout_s", "thresholds",
               "columns", "smtp", "audiences", "scheduler", "top_n", "earliest_timestamp",
               "future_margin_hours", "pdf_timeout_s",
               "service_map", "public_url", "alerts", "sources", "currency", "funnel",
               "maintenance", *ENGINE_KEYS}
        no_unknown(raw, top, where, "")
        base = base or Path.cwd()
        kwargs: dict[str, Any] = {"source": source}
        if "timezone" in raw:
            tz = raw["timezone"]
            try:
                ZoneInfo(str(tz))
            except (ZoneInfoNotFoundError, ValueError):
                raise ConfigError(f"{where}: timezone {tz!r} is not an IANA time zone "
                                  "such as 'UTC' or 'Europe/Warsaw'.") from None
            kwargs["timezone"] = str(tz)
        for key in ("data_dir", "output_dir"):
            if key in raw:
                p = Path(str(raw[key]))
                kwargs[key] = p if p.is_absolute() else base / p
        if "currency" in raw:
            kwargs["currency"] = currency(raw["currency"], where)
        if "funnel" in raw:
            kwargs["funnel"] = _funnel(raw["funnel"], where)
        if "lock_timeout_s" in raw:
            kwargs["lock_timeout_s"] = number(raw["lock_timeout_s"], where, "lock_timeout_s")
        kwargs.update(_limits(raw, where))
        kwargs["thresholds"] = _sub(Thresholds, raw.get("thresholds", {}), where, "thresholds")
        kwargs["smtp"] = _smtp(raw.get("smtp", {}), where, base)
        if kwargs.get("lock_timeout_s", 0) < 0:
            raise ConfigError(f"{where}: lock_timeout_s must be 0 or more.")
        kwargs["scheduler"] = _sub(SchedulerConfig, raw.get("scheduler", {}), where, "scheduler")
        for key in ("misfire_grace_hours", "stop_grace_s"):
            if getattr(kwargs["scheduler"], key) < 0:
                raise ConfigError(f"{where}: scheduler.{key} must be 0 or more.")
        columns = raw.get("columns", {})
        no_unknown(columns, set(SOURCE_NAMES), where, "columns.")
        kwargs["columns"] = {src: {str(k).strip().lower(): str(v).strip().lower()
                                   for k, v in mapping.items()}
                             for src, mapping in columns.items()}
        kwargs["audiences"] = _audiences(raw.get("audiences", {}), where)
        kwargs["service_map"] = _service_map(raw.get("service_map", {}), where)
        if "public_url" in raw:
            kwargs["public_url"] = public_url(raw["public_url"], where)
        if "alerts" in raw:
            kwargs["alerts"] = _alerts(raw["alerts"], where)
        kwargs["sources"] = _sources(raw.get("sources", {}), where, base)
        kwargs["maintenance"] = _maintenance(raw.get("maintenance", {}), where,
                                             ZoneInfo(kwargs.get("timezone", "UTC")))
        kwargs.update(_engine(raw, where))
        return cls(**kwargs)

    def digest(self) -> str:
        """A short hash of the effective settings, recorded in each manifest."""
        data = dataclasses.asdict(self)
        data.pop("source", None)
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _smtp(raw: dict[str, Any], where: str, base: Path) -> SmtpConfig:
    """The [smtp] table: a CA file relative to the config, a known security, settings that
    would hang or leak a password refused."""
    smtp = _sub(SmtpConfig, raw, where, "smtp")
    if smtp.ca_file and not Path(smtp.ca_file).is_absolute():
        smtp = dataclasses.replace(smtp, ca_file=str(base / smtp.ca_file))
    if smtp.security not in ("none", "starttls", "ssl"):
        raise ConfigError(f"{where}: smtp.security must be none, starttls or ssl, "
                          f"not {smtp.security!r}.")
    check_smtp(smtp, where)
    return smtp


def _limits(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """top_n, the accepted timestamp range and the PDF timeout, checked."""
    out: dict[str, Any] = {}
    if "top_n" in raw:
        n = number(raw["top_n"], where, "top_n")
        if n != int(n) or not 1 <= n <= 100_000:
            raise ConfigError(f"{where}: top_n must be a whole number from 1 to 100000, "
                              f"not {raw['top_n']!r}.")
        out["top_n"] = int(n)
    for key in ("future_margin_hours", "pdf_timeout_s"):
        if key in raw:
            out[key] = number(raw[key], where, key)
            lowest_ok = out[key] > 0 if key == "pdf_timeout_s" else out[key] >= 0
            if not lowest_ok:
                raise ConfigError(f"{where}: {key} must be "
                                  f"{'more than' if key == 'pdf_timeout_s' else 'at least'} 0, "
                                  f"not {raw[key]!r}.")
    if "earliest_timestamp" in raw:
        text = str(raw["earliest_timestamp"])
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) or not "1900" <= text <= "2200":
            raise ConfigError(f"{where}: earliest_timestamp must be a date such as "
                              f"2000-01-01, not {raw['earliest_timestamp']!r}.")
        out["earliest_timestamp"] = text
    return out


ENGINE_KEYS = ("engine", "workers", "chunk_rows", "dask_scheduler", "dask_workers",
               "dask_memory_limit")


def _engine(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """The engine keys, checked: a known engine, whole numbers, a scheduler address."""
    out: dict[str, Any] = {}
    if "engine" in raw:
        if raw["engine"] not in ("local", "dask"):
            raise ConfigError(f"{where}: engine must be \"local\" or \"dask\", not "
                              f"{str(raw['engine'])[:40]!r}.")
        out["engine"] = raw["engine"]
    for key, lowest in (("workers", 0), ("chunk_rows", 1000), ("dask_workers", 1)):
        if key in raw:
            n = number(raw[key], where, key)
            if n != int(n) or n < lowest:
                raise ConfigError(f"{where}: {key} must be a whole number of at least "
                                  f"{lowest:,}, not {raw[key]!r}.")
            out[key] = int(n)
    if "dask_scheduler" in raw:
        text = str(raw["dask_scheduler"]).strip()
        if text != "local" and not re.fullmatch(r"(tcp|tls|ucx|inproc)://[^\s/]+", text):
            raise ConfigError(f"{where}: dask_scheduler must be \"local\" or an address such "
                              f"as \"tcp://scheduler:8786\", not {text[:60]!r}.")
        out["dask_scheduler"] = text
    if "dask_memory_limit" in raw:
        text = str(raw["dask_memory_limit"]).strip()
        if not re.fullmatch(r"\d+(\.\d+)?\s*([KMGT]i?B)?|auto", text, re.IGNORECASE):
            raise ConfigError(f"{where}: dask_memory_limit must be a size such as \"2GB\" "
                              f"or \"auto\", not {text[:40]!r}.")
        out["dask_memory_limit"] = text
    return out


def _sub(kind: type, raw: dict[str, Any], where: str, prefix: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(kind)}
    no_unknown(raw, set(fields), where, prefix + ".")
    values = {}
    for key, value in raw.items():
        default = fields[key].default
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            value = number(value, where, f"{prefix}.{key}")
            if isinstance(default, int):
                value = int(value)
        elif isinstance(default, str) and not isinstance(value, str):
            raise ConfigError(f"{where}: {prefix}.{key} must be a string, not {value!r}.")
        elif isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{where}: {prefix}.{key} must be true or false.")
        elif isinstance(default, tuple):      # a table of name = number (hours by priority)
            no_unknown(value, set(value) if isinstance(value, dict) else set(), where,
                       f"{prefix}.{key}.")
            value = tuple((str(k).strip().lower(), number(v, where, f"{prefix}.{key}.{k}"))
                          for k, v in value.items())
            if any(v <= 0 for _, v in value):
                raise ConfigError(f"{where}: every {prefix}.{key} value must be more than 0 "
                                  "hours.")
        values[key] = value
    out = kind(**values)
    if kind is Thresholds:
        check_thresholds(out, where)
    return out


def _maintenance(raw: Any, where: str, tz: ZoneInfo) -> tuple[Maintenance, ...]:
    """`[maintenance.NAME]` tables: start and end (TOML or ISO 8601 times; naive ones in
    `timezone`), optional services and repeat ("daily" or "weekly")."""
    no_unknown(raw, set(raw) if isinstance(raw, dict) else set(), where, "maintenance.")
    out = []
    for name, table in raw.items():
        key = f"maintenance.{name}"
        no_unknown(table, {"start", "end", "services", "repeat"}, where, key + ".")
        start, end = (moment(table.get(k), where, f"{key}.{k}", tz) for k in ("start", "end"))
        if end <= start:
            raise ConfigError(f"{where}: {key} ends before it starts ({end} <= {start}).")
        services = table.get("services", [])
        if not isinstance(services, list) or not all(isinstance(v, str) for v in services):
            raise ConfigError(f"{where}: {key}.services must be a list of service names.")
        repeat = table.get("repeat", "")
        if repeat not in ("", "daily", "weekly"):
            raise ConfigError(f"{where}: {key}.repeat must be \"daily\" or \"weekly\", not "
                              f"{str(repeat)[:40]!r}.")
        if repeat and end - start >= timedelta(days=1 if repeat == "daily" else 7):
            raise ConfigError(f"{where}: {key} lasts longer than it repeats ({repeat}).")
        out.append(Maintenance(str(name), start, end,
                               tuple(s.strip() for s in services if s.strip()), repeat))
    return tuple(out)


def _funnel(raw: Any, where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """[funnel] name = ["pattern", ...], in the order the steps are taken."""
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{where}: [funnel] must list steps, such as "
                          'product = ["product*", "*/product*"].')
    steps = []
    for name, patterns in raw.items():
        patterns = [patterns] if isinstance(patterns, str) else patterns
        if not isinstance(patterns, list) or not patterns or \
                not all(isinstance(p, str) and p.strip() for p in patterns):
            raise ConfigError(f"{where}: funnel.{name} must be a list of page patterns, "
                              f"not {patterns!r}.")
        steps.append((str(name), tuple(p.strip() for p in patterns)))
    return tuple(steps)


def _audiences(raw: dict[str, Any], where: str) -> dict[str, Audience]:
    no_unknown(raw, set(raw), where, "audiences.")
    result = dict(DEFAULT_AUDIENCES)
    allowed = {"title", "sections", "recipients", "schedule", "period", "template", "compact",
               "notify", "attach", "filters"}
    for name, table in raw.items():
        check_name(name, f"{where}: audience")
        no_unknown(table, allowed, where, f"audiences.{name}.")
        base = result.get(name) or Audience(name, name.replace("_", " ").title(),
                                            ("overview", "insights", "data_quality"))
        sections = tuple(table.get("sections", base.sections))
        known = names()
        bad = [s for s in sections if s not in known]
        if bad:
            raise ConfigError(f"{where}: audiences.{name}.sections has unknown section(s) "
                              f"{', '.join(bad)}; known: {', '.join(known)}.")
        recipients = tuple(address(str(r), where, name)
                           for r in table.get("recipients", base.recipients))
        result[name] = dataclasses.replace(
            base, title=str(table.get("title", base.title)), sections=sections,
            recipients=recipients, schedule=str(table.get("schedule", base.schedule)),
            period=str(table.get("period", base.period)),
            template=str(table.get("template", base.template)),
            compact=bool(table.get("compact", base.compact)),
            notify=notify_urls(table.get("notify", base.notify), f"audiences.{name}.notify",
                                where),
            attach=attach(table.get("attach", base.attach), name, where),
            filters=_filters(table["filters"], name, where) if "filters" in table
            else base.filters)
    return result


def _filters(raw: Any, name: str, where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """An audience's slice: each key a list of shell-style patterns."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: audiences.{name}.filters must be a table such as "
                          '{ services = ["payments-*"], pages = ["/checkout*"] }.')
    no_unknown(raw, set(FILTER_KEYS), where, f"audiences.{name}.filters.")
    out = []
    for key, patterns in raw.items():
        if isinstance(patterns, str):
            patterns = [patterns]
        if not isinstance(patterns, list) or not patterns \
                or not all(isinstance(p, str) and p for p in patterns):
            raise ConfigError(f"{where}: audiences.{name}.filters.{key} must be a list of "
                              f"patterns such as [\"payments-*\"], not {patterns!r}.")
        out.append((key, tuple(patterns)))
    return tuple(out)


def _alerts(raw: Any, where: str) -> AlertsConfig:
    """The [alerts] table: schedule, lookback_hours, notify, recipients."""
    no_unknown(raw, {f.name for f in dataclasses.fields(AlertsConfig)}, where, "alerts.")
    hours = number(raw.get("lookback_hours", 6.0), where, "alerts.lookback_hours")
    if not 1 <= hours <= 24 * 7:
        raise ConfigError(f"{where}: alerts.lookback_hours must be from 1 to 168, not "
                          f"{raw['lookback_hours']!r}.")
    schedule = raw.get("schedule", "")
    if not isinstance(schedule, str):
        raise ConfigError(f"{where}: alerts.schedule must be a cron string such as "
                          '"0 * * * *", or "" for none.')
    recipients = raw.get("recipients", [])
    if isinstance(recipients, str) or not isinstance(recipients, list):
        raise ConfigError(f"{where}: alerts.recipients must be a list of email addresses.")
    return AlertsConfig(schedule, hours, notify_urls(raw.get("notify", []), "alerts.notify",
                                                      where),
                        tuple(address(str(r), where, "alerts", "alerts.recipients")
                              for r in recipients))


def _sources(raw: dict[str, Any], where: str, base: Path) -> dict[str, SourceConfig]:
    """`[sources.NAME]` tables: a path (file, folder, glob) or a SQL query, checked here."""
    no_unknown(raw, set(SOURCE_NAMES), where, "sources.")
    result = {}
    for name, table in raw.items():
        key = f"sources.{name}"
        no_unknown(table, {f.name for f in dataclasses.fields(SourceConfig)} - {"name"},
                    where, key + ".")
        services = table.get("services", {})
        if not isinstance(services, dict):
            raise ConfigError(f"{where}: {key}.services must be a table of path prefix = "
                              "service name.")
        text = {k: table[k] for k in table if k != "services"}
        for k, v in text.items():
            if not isinstance(v, str):
                raise ConfigError(f"{where}: {key}.{k} must be a string, not {v!r}.")
        src = SourceConfig(name, services={str(k): str(v) for k, v in services.items()},
                           **{k: v.strip() for k, v in text.items()})
        if bool(src.path) == bool(src.url or src.sql):
            raise ConfigError(f"{where}: {key} needs either path (a file, folder or glob) "
                              "or url and sql (a database query), not both.")
        if (src.url or src.sql) and not (src.url and src.sql):
            raise ConfigError(f"{where}: {key} needs both url and sql to read a database.")
        if src.format and src.format not in SOURCE_FORMATS:
            raise ConfigError(f"{where}: {key}.format must be one of "
                              f"{', '.join(SOURCE_FORMATS)}, not {src.format!r}.")
        if src.format == "access_log" and name != "api_logs":
            raise ConfigError(f"{where}: {key}.format = \"access_log\" is only for api_logs.")
        if (src.log_format or src.services) and src.format != "access_log":
            raise ConfigError(f"{where}: {key}.log_format and services need "
                              "format = \"access_log\".")
        if src.path and not Path(src.path).expanduser().is_absolute():
            src = dataclasses.replace(src, path=str(base / src.path))
        if src.url.startswith("sqlite:///") and not src.url.startswith("sqlite:////"):
            file, _, query = src.url[len("sqlite:///"):].partition("?")
            if file and file != ":memory:":   # a relative SQLite file: beside the config
                src = dataclasses.replace(
                    src, url=f"sqlite:///{base / file}" + (f"?{query}" if query else ""))
        result[name] = src
    return result


def _service_map(raw: dict[str, Any], where: str) -> dict[str, ServiceLinks]:
    """`[service_map.NAME]` tables: lists of strings, and `carts` true or false."""
    no_unknown(raw, set(raw), where, "service_map.")
    out = {}
    for name, table in raw.items():
        no_unknown(table, {f.name for f in dataclasses.fields(ServiceLinks)}, where,
                    f"service_map.{name}.")
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key == "carts":
                if not isinstance(value, bool):
                    raise ConfigError(f"{where}: service_map.{name}.carts must be true or "
                                      f"false, not {value!r}.")
                values[key] = value
            elif not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise ConfigError(f"{where}: service_map.{name}.{key} must be a list of "
                                  f"strings, not {value!r}.")
            else:
                values[key] = tuple(v.strip().lower() for v in value if v.strip())
        out[str(name)] = ServiceLinks(**values)
    return out
