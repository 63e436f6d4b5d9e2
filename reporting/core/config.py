"""The one validated configuration object, built once from `report.toml` and passed down.

Every key is declared once, here, as a field made by `settings.setting(default, help, ...)`:
its name, kind, default, allowed range or values, one-line help and an example. Reading a
file checks each value against its declaration (`settings.read_table`); `reporting init`,
`reporting config check` and the docs' config reference are generated from the same
declarations. A new key is one field with its `setting(...)`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .checks import (ALERT_KINDS, ATTACHMENTS, check_name, currency, database_url, moment,
                     number, public_url)
from .contracts import FILTER_KEYS, SOURCE_NAMES
from .errors import ConfigError
from .registry import names
from .secrets import remember_config
from .settings import read_table, setting, unknown_keys
from .sourceconfig import SourceConfig, read_sources


@dataclass(frozen=True)
class Thresholds:
    """Targets the KPIs are judged against; sources noted where they are borrowed."""

    availability_slo: float = setting(
        0.999, "API availability objective (1 - server-error rate); sets the error budget",
        kind="ratio", low=0, high=1, above=True, example=0.995)
    api_p95_ms: float = setting(800.0, "API p95 latency target", low=0, above=True, unit="ms")
    apdex_t_ms: float = setting(500.0, "Apdex T: satisfied at or under T, tolerating up to 4T",
                                low=0, above=True, unit="ms")
    page_p75_ms: float = setting(2500.0, "page p75 load time good up to this (web.dev's LCP "
                                 "\"good\" band, borrowed)", low=0, above=True, unit="ms")
    page_poor_ms: float = setting(4000.0, "page load time poor above this (web.dev's LCP "
                                  "\"poor\" band)", low=0, above=True, unit="ms")
    support_sla_hours: float = setting(24.0, "ticket resolution target of a priority not "
                                       "named in support_sla_hours_by_priority", low=0,
                                       above=True, unit="h")
    support_sla_hours_by_priority: tuple[tuple[str, float], ...] = setting(
        (("urgent", 4.0), ("high", 8.0), ("normal", 24.0), ("low", 72.0)),
        "resolution target per ticket priority (names in any case), in hours", kind="table",
        example={"urgent": 4, "high": 8, "normal": 24, "low": 72})
    support_first_response_hours: float = setting(
        4.0, "first-response target: a ticket unanswered this long breaches it", low=0,
        unit="h")
    cpu_p95_pct: float = setting(80.0, "CPU p95 target per service", low=0, high=100, unit="%")
    memory_p95_pct: float = setting(85.0, "memory p95 target per service", low=0, high=100,
                                    unit="%")
    uptime: float = setting(0.99, "share of healthy probes that is good", kind="ratio")
    csat: float = setting(0.7, "share of 4-5 ratings that is good", kind="ratio")
    burn_rate_page: float = setting(14.4, "worst 1-hour burn rate judged bad above this (the "
                                    "SRE workbook pages at 14.4x)", low=0, above=True, unit="x")
    incident_false_alarms: float = setting(
        0.01, "chance that a quiet week shows any false incident", kind="ratio", low=0,
        above=True)
    incident_min_events: int = setting(30, "events an hour needs before its ratios are judged",
                                       low=1)
    slo_window_days: int = setting(28, "the rolling error budget's window (SRE practice)",
                                   low=1, high=366, unit="days")
    deploy_link_minutes: float = setting(60.0, "a finding this soon after a deploy of its "
                                         "service says so", low=0, unit="min")
    lcp_good_ms: float = setting(2500.0, "LCP p75 good up to this (web.dev)", low=0,
                                 above=True, unit="ms")
    lcp_poor_ms: float = setting(4000.0, "LCP p75 poor above this (web.dev)", low=0,
                                 above=True, unit="ms")
    inp_good_ms: float = setting(200.0, "INP p75 good up to this (web.dev)", low=0,
                                 above=True, unit="ms")
    inp_poor_ms: float = setting(500.0, "INP p75 poor above this (web.dev)", low=0,
                                 above=True, unit="ms")
    cls_good: float = setting(0.1, "CLS p75 good up to this (web.dev)", low=0)
    cls_poor: float = setting(0.25, "CLS p75 poor above this (web.dev)", low=0)

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
    start: datetime = setting(None, "when it starts (naive: in `timezone`)", kind="text",
                              example="2026-11-08 02:00")
    end: datetime = setting(None, "when it ends", kind="text", example="2026-11-08 04:00")
    services: tuple[str, ...] = setting((), "the services it takes down; none = every "
                                        "service", kind="list", example=["inventory-service"])
    repeat: str = setting("", "\"daily\" or \"weekly\" repeats it; \"\" = once",
                          kind="choice", choices=("", "daily", "weekly"))


@dataclass(frozen=True)
class ServiceLinks:
    """What users see of one back-end service: shell patterns for pages and ticket issue
    types, words in feedback, and whether abandoned carts are its doing."""

    pages: tuple[str, ...] = setting((), "pages its users see (shell patterns, any case)",
                                     kind="list", example=["/checkout*", "/pay/*"])
    issue_types: tuple[str, ...] = setting((), "ticket issue types it causes (shell patterns)",
                                           kind="list", example=["Payment*", "Refund*"])
    feedback_words: tuple[str, ...] = setting((), "words of feedback about it", kind="list",
                                              example=["pay", "card", "checkout"])
    carts: bool = setting(False, "abandoned carts and checkout drop-offs are its doing")


@dataclass(frozen=True)
class SmtpConfig:
    host: str = setting("", "SMTP server; \"\" writes mail to output/outbox/*.eml",
                        example="smtp.example.com")
    port: int = setting(587, "SMTP port", low=1, high=65535)
    security: str = setting("starttls", "how the connection is encrypted", kind="choice",
                            choices=("none", "starttls", "ssl"))
    username: str = setting("", "login name; \"\" = no login", example="reports")
    password_env: str = setting("", "environment variable holding the SMTP password",
                                kind="env", example="REPORT_SMTP_PASSWORD")
    sender: str = setting("Diagnostics reports <reports@localhost>", "the From address",
                          example="Diagnostics <reports@example.com>")
    timeout: float = setting(30.0, "each wait for the server", low=0, above=True, unit="s")
    deadline_s: float = setting(0.0, "one whole SMTP conversation; 0 = 4 x timeout", low=0,
                                unit="s")
    allow_plaintext_auth: bool = setting(False, "allow security = \"none\" with a login off "
                                         "loopback")
    retries: int = setting(3, "retries of a temporary failure (exponential backoff)", low=0)
    retry_base_s: float = setting(2.0, "first backoff: 2 s, 4 s, 8 s ...", low=0, unit="s")
    ca_file: str = setting("", "CA bundle to trust (a private or self-signed server)",
                           kind="path", example="certs/mail-ca.pem")
    max_attachment_mb: float = setting(10.0, "a larger PDF is linked, not attached", low=0,
                                       above=True, unit="MB")
    max_reply_lines: int = setting(100, "a server reply of more lines ends the conversation",
                                   low=1)
    max_reply_kb: float = setting(64.0, "a server reply of more bytes ends the conversation",
                                  low=1, unit="KB")


@dataclass(frozen=True)
class Audience:
    name: str
    title: str = setting("", "the report's title (default: the audience's, or its name)",
                         example="IT & operations weekly")
    sections: tuple[str, ...] = setting(
        ("overview", "insights", "data_quality"), "sections in page order (see Sections)",
        kind="list", example=["api", "system", "incidents", "data_quality"])
    recipients: tuple[str, ...] = setting((), "email addresses; a string is one recipient",
                                          kind="emails", example=["ops@example.com"])
    schedule: str = setting("0 7 * * mon", "when the scheduler builds and sends it (cron in "
                            "`timezone`); \"\" turns it off", kind="cron")
    period: str = setting("last-week", "the period a scheduled run builds", kind="period")
    template: str = setting("", "a template of your own; \"\" = audiences/<name>.html or the "
                            "generic page")
    compact: bool = setting(False, "domain sections as tiles and one chart, top 5 insights")
    notify: tuple[str, ...] = setting((), "Apprise URLs; {VAR} is read from the environment",
                                      kind="urls", secret=True,
                                      example=["slack://{SLACK_TOKENS}/#ops"])
    attach: tuple[str, ...] = setting(("pdf",), "what mail and chat carry", kind="list",
                                      choices=ATTACHMENTS, example=["pdf", "csv"])
    locale: str = setting("", "language and number format of its pages, mail and charts; "
                          "\"\" = the top-level `locale`", kind="locale", example="de_DE")
    timezone: str = setting("", "zone of the times its pages show; \"\" = the top-level "
                            "`timezone`", kind="zone", inherit=True,
                            example="Europe/Berlin")
    filters: tuple[tuple[str, tuple[str, ...]], ...] = setting(
        (), "a slice: shell patterns per key", kind="table", choices=FILTER_KEYS,
        example={"services": ["payments-*"], "pages": ["/checkout*"]})


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
class SchedulerConfig:
    misfire_grace_hours: float = setting(6.0, "a run missed while down still runs this late",
                                         low=0, unit="h")
    allow_partial: bool = setting(True, "mail a report whose period the data covers in part")
    notify_on_failure: str = setting("", "who gets a short notice when a job fails",
                                     kind="email", example="ops@example.com")
    stop_grace_s: float = setting(8.0, "a running job's time to finish after SIGTERM", low=0,
                                  unit="s")


@dataclass(frozen=True)
class ServeConfig:
    read_timeout_s: float = setting(10.0, "`reporting serve`: each read or write on a "
                                    "connection", low=0, above=True, unit="s")
    idle_timeout_s: float = setting(15.0, "`reporting serve`: a request's head must arrive "
                                    "within this; then the connection is closed", low=0,
                                    above=True, unit="s")
    max_connections: int = setting(64, "`reporting serve`: open connections; the longest "
                                   "idle one is closed to make room", low=1, high=10_000)
    allow_hosts: tuple[str, ...] = setting((), "`reporting serve`: Host names answered "
                                           "besides the loopback ones (--allow-host)",
                                           kind="list", example=["reports.internal"])


@dataclass(frozen=True)
class AlertsConfig:
    schedule: str = setting("", "cron in `timezone` for `reporting alert`; \"\" = by hand only",
                            kind="cron", example="*/30 * * * *")
    lookback_hours: float = setting(6.0, "the newest hours of data that are searched", low=1,
                                    high=168, unit="h")
    notify: tuple[str, ...] = setting((), "Apprise URLs, as for audiences", kind="urls",
                                      secret=True, example=["slack://{SLACK_TOKENS}/#oncall"])
    recipients: tuple[str, ...] = setting((), "email addresses; a string is one recipient",
                                          kind="emails", example=["oncall@example.com"])
    on: tuple[str, ...] = setting(
        ("incidents", "back_end"), "what is alerted: cross-signal incidents, back-end and "
        "user-felt anomalies, level shifts", kind="list", choices=ALERT_KINDS,
        example=["incidents", "back_end", "level_shifts"])
    locale: str = setting("", "language and number format of the alerts; \"\" = the "
                          "top-level `locale`", kind="locale", example="de_DE")


ENGINES = ("local", "dask")


@dataclass(frozen=True)
class Config:
    timezone: str = setting("UTC", "periods and naive times are in this zone", kind="zone",
                            example="Europe/Warsaw")
    data_dir: Path = setting(Path("data"), "the folder of one file per source", kind="path")
    output_dir: Path = setting(Path("output"), "where reports and the archive go", kind="path")
    archive_url: str = setting("", "the archive's database; \"\" = output_dir/archive.sqlite; "
                               "PostgreSQL (no password) for several hosts", kind="url",
                               example="postgresql://reports@db.internal:5432/reports")
    archive_password_env: str = setting("", "environment variable holding the archive "
                                        "database's password", kind="env",
                                        example="REPORTS_DB_PASSWORD")
    lock_timeout_s: float = setting(600.0, "how long a build waits for another to finish",
                                    low=0, unit="s")
    top_n: int = setting(100, "entities kept per breakdown, judged for incidents, archived",
                         low=1, high=100_000)
    earliest_timestamp: str = setting("2000-01-01", "earlier timestamps are rejected rows",
                                      kind="date")
    future_margin_hours: float = setting(24.0, "later than the build's clock + this: rejected",
                                         low=0, unit="h")
    pdf_timeout_s: float = setting(300.0, "one audience's PDF; then the build stops", low=0,
                                   above=True, unit="s")
    thresholds: Thresholds = setting(None, "targets the KPIs are judged against",
                                     factory=Thresholds, kind="table", of=Thresholds)
    columns: dict[str, dict[str, str]] = setting(
        None, "per source: column in your file = contract column", factory=dict, kind="table",
        named="<source>", example={"support_tickets": {"opened": "created_at"}})
    smtp: SmtpConfig = setting(None, "mail server; without a host mail goes to the outbox",
                               factory=SmtpConfig, kind="table", of=SmtpConfig)
    audiences: dict[str, Audience] = setting(
        None, "a table merges onto the default audience of its name; a new name adds one",
        factory=lambda: dict(DEFAULT_AUDIENCES), kind="table", of=Audience, named="<audience>")
    scheduler: SchedulerConfig = setting(None, "the long-running scheduler",
                                         factory=SchedulerConfig, kind="table",
                                         of=SchedulerConfig)
    currency: str = setting("", "ISO 4217 code shown with money; \"\" = none", example="EUR")
    locale: str = setting("en_GB", "every audience's language and number format unless it "
                          "sets its own (en, de, fr, pl)", kind="locale", example="pl_PL")
    funnel: tuple[tuple[str, tuple[str, ...]], ...] = setting(
        DEFAULT_FUNNEL, "steps in order: name = [page patterns]; \"finished\" is added",
        kind="table", example={"search": ["search*"], "checkout": ["checkout*"]})
    public_url: str = setting("", "where output/ is published: mail links to the reports",
                              kind="url", example="https://reports.example.com/diagnostics/")
    service_map: dict[str, ServiceLinks] = setting(
        None, "what users see of a back-end service (others are inferred from names)",
        factory=dict, kind="table", of=ServiceLinks, named="<service>")
    serve: ServeConfig = setting(None, "`reporting serve`'s bounds", factory=ServeConfig,
                                 kind="table", of=ServeConfig)
    alerts: AlertsConfig = setting(None, "incident alerts (`reporting alert`)",
                                   factory=AlertsConfig, kind="table", of=AlertsConfig)
    sources: dict[str, SourceConfig] = setting(
        None, "a source kept elsewhere: either path (+ format) or url and sql", factory=dict,
        kind="table", of=SourceConfig, named="<source>")
    maintenance: tuple[Maintenance, ...] = setting(
        (), "planned windows: their hours are not judged as anomalies", kind="table",
        of=Maintenance, named="<name>")
    engine: str = setting("local", "where the high-volume sources are reduced",
                          kind="choice", choices=ENGINES)
    workers: int = setting(0, "local engine's processes; 0 = every core", low=0)
    pool_min_mb: int = setting(48, "local engine: smaller local inputs skip the worker pool "
                               "(plain CSV counts 1/8); 0 = always a pool",
                               low=0, unit="MiB")
    chunk_rows: int = setting(250_000, "rows per chunk (a CSV block, a Parquet batch)",
                              low=1000)
    dask_scheduler: str = setting("local", "\"local\" (a LocalCluster here) or an address",
                                  example="tcp://dask-scheduler.internal:8786")
    dask_workers: int = setting(2, "a local Dask cluster's worker processes", low=1)
    dask_memory_limit: str = setting("2GB", "each local Dask worker's memory (\"auto\": a "
                                     "share of RAM)", kind="size")
    max_decompressed_mb: int = setting(16_384, "what one .gz input may expand to; past it "
                                       "the source is not loaded", low=1, unit="MiB")
    max_decompression_ratio: float = setting(200.0, "and at most this many times its "
                                             "compressed size (64 MiB always allowed)",
                                             low=1)
    source: Path | None = None         # the file read (not a key)

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
        """Check a parsed TOML document against the declarations; a mistake is one sentence
        naming the key (an unknown one with the closest declared key)."""
        where = str(source or "config")
        base = base or Path.cwd()
        kwargs = _top(read_table(cls, raw, where, "", skip=TABLES), where, base)
        kwargs["source"] = source
        if "public_url" in raw:      # its own check names what a published URL looks like
            kwargs["public_url"] = public_url(raw["public_url"], where)
        kwargs["thresholds"] = _thresholds(raw.get("thresholds", {}), where)
        kwargs["smtp"] = _smtp(raw.get("smtp", {}), where, base)
        kwargs["scheduler"] = SchedulerConfig(**read_table(
            SchedulerConfig, raw.get("scheduler", {}), where, "scheduler."))
        kwargs["columns"] = _columns(raw.get("columns", {}), where)
        kwargs["audiences"] = _audiences(raw.get("audiences", {}), where)
        kwargs["service_map"] = _service_map(raw.get("service_map", {}), where)
        kwargs["serve"] = ServeConfig(**read_table(ServeConfig, raw.get("serve", {}), where,
                                                   "serve."))
        kwargs["alerts"] = AlertsConfig(**read_table(AlertsConfig, raw.get("alerts", {}),
                                                     where, "alerts."))
        kwargs["sources"] = read_sources(raw.get("sources", {}), where, base)
        if "funnel" in raw:
            kwargs["funnel"] = _funnel(raw["funnel"], where)
        kwargs["maintenance"] = _maintenance(raw.get("maintenance", {}), where,
                                             ZoneInfo(kwargs.get("timezone", "UTC")))
        config = cls(**kwargs)
        remember_config(config)     # error texts are scrubbed of these secrets
        return config

    def digest(self) -> str:
        """A short hash of the effective settings, recorded in each manifest."""
        data = dataclasses.asdict(self)
        data.pop("source", None)
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# Keys read by their own functions below (tables, and the published URL).
TABLES = ("thresholds", "columns", "smtp", "audiences", "scheduler", "funnel", "service_map",
          "serve", "alerts", "sources", "public_url", "maintenance")


def _top(values: dict[str, Any], where: str, base: Path) -> dict[str, Any]:
    """The top-level keys: paths made relative to the config file; the currency and the
    Dask scheduler's address checked."""
    for key in ("data_dir", "output_dir"):
        if key in values:
            p = Path(values[key])
            values[key] = p if p.is_absolute() else base / p
    if values.get("archive_url"):
        values["archive_url"] = database_url(values["archive_url"], where, base)
    if values.get("currency"):          # "" (the default): no currency shown
        values["currency"] = currency(values["currency"], where)
    text = values.get("dask_scheduler", "local")
    if text != "local" and not re.fullmatch(r"(tcp|tls|ucx|inproc)://[^\s/]+", text):
        raise ConfigError(f"{where}: dask_scheduler must be \"local\" or an address such "
                          f"as \"tcp://scheduler:8786\", not {text[:60]!r}.")
    return values


def _thresholds(raw: Any, where: str) -> Thresholds:
    values = read_table(Thresholds, raw, where, "thresholds.")
    if "support_sla_hours_by_priority" in values:
        values["support_sla_hours_by_priority"] = _hours_by_priority(
            values["support_sla_hours_by_priority"], where)
    t = Thresholds(**values)
    if t.page_poor_ms < t.page_p75_ms:
        raise ConfigError(f"{where}: thresholds.page_poor_ms ({t.page_poor_ms:g}) must be at "
                          f"least thresholds.page_p75_ms ({t.page_p75_ms:g}): a page is poor "
                          "only beyond good.")
    return t


def _hours_by_priority(raw: Any, where: str) -> tuple[tuple[str, float], ...]:
    """`support_sla_hours_by_priority = { urgent = 4, ... }`: hours, each more than 0."""
    key = "thresholds.support_sla_hours_by_priority"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {key} must be a table such as {{ urgent = 4, high = 8 }}.")
    out = tuple((str(k).strip().lower(), number(v, where, f"{key}.{k}"))
                for k, v in raw.items())
    if any(v <= 0 for _, v in out):
        raise ConfigError(f"{where}: every {key} value must be more than 0 hours.")
    return out


def _maintenance(raw: Any, where: str, tz: ZoneInfo) -> tuple[Maintenance, ...]:
    """`[maintenance.NAME]` tables: start and end (TOML or ISO 8601 times; naive ones in
    `timezone`), optional services and repeat ("daily" or "weekly")."""
    unknown_keys(raw, set(raw) if isinstance(raw, dict) else set(), where, "maintenance.")
    out = []
    for name, table in raw.items():
        key = f"maintenance.{name}"
        values = read_table(Maintenance, table, where, key + ".", skip=("start", "end"))
        start, end = (moment(table.get(k), where, f"{key}.{k}", tz) for k in ("start", "end"))
        if end <= start:
            raise ConfigError(f"{where}: {key} ends before it starts ({end} <= {start}).")
        repeat = values.get("repeat", "")
        if repeat and end - start >= timedelta(days=1 if repeat == "daily" else 7):
            raise ConfigError(f"{where}: {key} lasts longer than it repeats ({repeat}).")
        services = tuple(s.strip() for s in values.get("services", ()) if s.strip())
        out.append(Maintenance(str(name), start, end, services, repeat))
    return tuple(out)


LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _smtp(raw: Any, where: str, base: Path) -> SmtpConfig:
    """[smtp], relative ca_file beside the config; values that would send a password in
    clear text are refused."""
    smtp = SmtpConfig(**read_table(SmtpConfig, raw, where, "smtp."))
    if smtp.ca_file and not Path(smtp.ca_file).is_absolute():
        smtp = dataclasses.replace(smtp, ca_file=str(base / smtp.ca_file))
    if smtp.host and smtp.username and smtp.security == "none" \
            and not smtp.allow_plaintext_auth and smtp.host.lower() not in LOOPBACK \
            and not smtp.host.startswith("127."):
        raise ConfigError(f"{where}: smtp.security = \"none\" would send the password for "
                          f"{smtp.username} in clear text to {smtp.host}; use starttls or ssl, "
                          "or set smtp.allow_plaintext_auth = true.")
    return smtp


def _columns(raw: Any, where: str) -> dict[str, dict[str, str]]:
    unknown_keys(raw, SOURCE_NAMES, where, "columns.")
    for src, mapping in raw.items():
        if not isinstance(mapping, dict) or not all(isinstance(v, str)
                                                    for v in mapping.values()):
            raise ConfigError(f"{where}: columns.{src} must be a table of your column = "
                              "contract column, such as opened = \"created_at\".")
    return {src: {str(k).strip().lower(): str(v).strip().lower() for k, v in mapping.items()}
            for src, mapping in raw.items()}


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


def _audiences(raw: Any, where: str) -> dict[str, Audience]:
    """Each table merges onto the default audience of its name; a new name adds one."""
    unknown_keys(raw, set(raw) if isinstance(raw, dict) else (), where, "audiences.")
    result = dict(DEFAULT_AUDIENCES)
    for name, table in raw.items():
        check_name(name, f"{where}: audience")
        prefix = f"audiences.{name}."
        values = read_table(Audience, table, where, prefix, skip=("filters",))
        known = names()
        bad = [s for s in values.get("sections", ()) if s not in known]
        if bad:
            raise ConfigError(f"{where}: audiences.{name}.sections has unknown section(s) "
                              f"{', '.join(bad)}; known: {', '.join(known)}.")
        if "attach" in values:
            values["attach"] = tuple(dict.fromkeys(values["attach"]))
        if "filters" in table:
            values["filters"] = _filters(table["filters"], name, where)
        base = result.get(name) or Audience(name, name.replace("_", " ").title())
        result[name] = dataclasses.replace(base, **values)
    return result


def _filters(raw: Any, name: str, where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """An audience's slice: each key a list of shell-style patterns."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: audiences.{name}.filters must be a table such as "
                          '{ services = ["payments-*"], pages = ["/checkout*"] }.')
    unknown_keys(raw, FILTER_KEYS, where, f"audiences.{name}.filters.")
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


def _service_map(raw: Any, where: str) -> dict[str, ServiceLinks]:
    """`[service_map.NAME]` tables: lists of strings, and `carts` true or false."""
    unknown_keys(raw, set(raw) if isinstance(raw, dict) else (), where, "service_map.")
    out = {}
    for name, table in raw.items():
        values = read_table(ServiceLinks, table, where, f"service_map.{name}.")
        for key, value in values.items():
            if key != "carts":
                values[key] = tuple(v.strip().lower() for v in value if v.strip())
        out[str(name)] = ServiceLinks(**values)
    return out
