"""Cross-signal incidents: when things went wrong across the stack, and what it cost.

Every source gives hourly signals, and every hour of the period is judged by how likely
its value is under that hour's baseline: the same hour of the week over up to 4
preceding weeks in the data or, where the data does not reach back, in the archive (the
same hour of day over up to 28 preceding days when there are fewer than 2 such weeks;
no judgement with fewer than 3 days). Baseline hours of counts, ratios and money that
are themselves unlikely under the others (an earlier incident) are left out.

- **Tail probabilities.** Counts (tickets, abandoned carts, negative comments, failed
  probes) get the exact upper tail of a Poisson whose rate is learnt from those baseline
  hours (a gamma prior from the same hour of day: the predictive is negative binomial);
  error ratios the exact upper tail of a binomial with the hour's request count, the
  rate learnt the same way (beta-binomial). Percentiles, CPU and memory, and traffic
  falls use a robust scale: z = 0.6745 (x - median) / MAD, MAD floored by the signal's
  own sampling noise, read as a normal tail; a percentile also by the binomial count of
  the hour's events above its usual level (alone in hours with few events). Ratios are
  judged at any request count (the tail knows how many events there were).
- **Service map.** Each back-end service is tied to the pages, ticket issue types,
  feedback words and (for checkout) abandoned carts its users see: `[service_map]` in
  the config, or inferred from the names of the service, its endpoints, pages and issue
  types (see FAMILIES). A user signal pairs only with the services it is tied to.
- **Incidents.** Per service and hour, each side's evidence is its smallest tail
  probability times the number of its signals judged that hour (Bonferroni within the
  side); the two sides are combined by Fisher's method (q = p_back * p_user, P = q (1 -
  ln q)). An hour is an incident hour when P <= alpha / (hours x services) and each side
  on its own is below SUGGESTIVE; the window is the run of hours around it in which the
  back-end side stays below SUGGESTIVE. So the chance that a quiet period shows a false incident
  is at most alpha (`thresholds.incident_false_alarms`, 0.01), whatever the dependence
  between hours and services.
- **One-sided anomalies.** A back-end signal below alpha / (hours x back-end signals)
  outside an incident is a back-end anomaly (IT report); a user signal below alpha /
  (hours x user signals) outside an incident that holds it is a user-felt anomaly
  (support report). Each family holds the same alpha bound.
- **Level shifts.** A percentile or CPU/memory signal that stays above its baseline for
  the rest of the period (at least SHIFT_HOURS) is one level shift with its start (CUSUM
  estimate, sign test at alpha / (signals x candidate starts)); the hours after it are
  judged against the shifted level, so a later failure still shows.

Signals of the high-volume sources come from their rollups (`reporting/rollups.py`), never
from rows: requests, 5xx rates, sessions dropped at checkout, CPU and memory means (sums /
samples) and failed probes exactly; an hour's p95 latency per service and p75 load time
per page from that hour's histogram of 0.5 % logarithmic buckets (`latency_hourly`,
`load_time_hourly`), so within 0.5 % of the percentile of the raw values, and the count of
the hour's events above its usual level is counted over the same buckets. Hours are cut
in UTC (a slot of 15 minutes in a zone with a half-hour offset is a quarter of one).
"""
from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from . import formatting as fmt
from . import sentiment
from .config import ServiceLinks, Thresholds
from .kpis.base import Chart, Insight, Section, Table, codes_of, hour_numbers
from .periods import Period
from .rollups import Rollup, hist_quantiles, rollup_of
from .sources import SPECS

NAME = "incidents"
TITLE = "Incidents across the stack"
HOUR = pd.Timedelta(hours=1)
EPOCH = pd.Timestamp(0, tz="UTC")
WEEK_H = 168
BACK_END = ("api.", "system.")       # the other signals are what users felt
K = 0.6745          # makes the MAD comparable to a standard deviation
MIN_DAYS = 3        # the same hour on at least 3 earlier days, where weeks are short
SUGGESTIVE = 0.01   # each side of an incident hour, and each hour a window grows by
PRIOR_HOURS = 4.0   # weight of the same-hour-of-day prior for counts, in hours
PRIOR_EVENTS = 100.0  # ... and for ratios, in requests
TAIL_TERMS = 2000   # terms summed for a ratio's far tail
SCREEN = 1e-3       # a baseline hour this unlikely under the others is left out
SHIFT_HOURS = 24    # a level shift lasts at least a day
SHIFT_LEVEL = np.log(1.2)   # and moves a percentile by 20 % or more
SHIFT_PCT = 5.0             # or CPU/memory by 5 percentage points or more

# Words that tie a service to what its users see; True: abandoned carts are its doing.
FAMILIES: dict[str, tuple[tuple[str, ...], bool]] = {
    "payments": (("pay", "checkout", "card", "billing", "refund", "authoriz"), True),
    "cart": (("cart", "basket", "checkout"), True),
    "accounts": (("login", "logon", "signin", "auth", "account", "password", "profile",
                  "user"), False),
    "search": (("search", "product", "catalog", "category"), False),
    "stock": (("stock", "inventory", "order", "shipping", "delivery"), False),
    "recommendations": (("recommend",), False),
}

# The time column of each source that gives signals: sessions count where they end.
TIME_COLUMNS = {name: SPECS[name].time for name in (
    "api_logs", "page_load_times", "cart_abandonment", "session_tracking", "user_feedback",
    "support_tickets", "system_metrics")} | {"session_tracking": "end_time"}
# The rollup tables the signals of each high-volume source are built from (the small
# sources give theirs from rows); the first names each entity's volume.
SOURCE_TABLES = {"api_logs": ("requests", "latency_hourly"),
                 "page_load_times": ("loads", "load_time_hourly"),
                 "session_tracking": ("ends",), "system_metrics": ("samples",)}


@dataclass(frozen=True)
class Signal:
    """One hourly series: a count, a ratio of events, a level (percentile, CPU), traffic,
    or a money total (impact only, never judged)."""

    name: str              # api.server_error_rate
    entity: str            # payment-api, /checkout, Payment Failure, all
    kind: str              # count | ratio | level | pct | traffic | value
    values: np.ndarray     # per hour of the grid
    events: np.ndarray     # per hour: how many observations the value rests on
    unit: str
    services: tuple[str, ...] = ()   # the back-end services it belongs to or is tied to
    quantile: float = 0.0  # a percentile signal: which one (0.95)
    # ... and how many of each hour's events lie above a level given per hour
    above: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def back_end(self) -> bool:
        return self.name.startswith(BACK_END)


@dataclass(frozen=True)
class Reading:
    """What one signal did in a window: its worst hour and that hour's usual level."""

    name: str
    entity: str
    peak: float | None
    baseline: float | None
    p: float | None        # tail probability of the worst hour under its baseline
    unit: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Impact:
    """What exceeded the expected level in the window, each with its standard error (the
    noise of the window's ordinary traffic and of the expected level itself)."""

    abandoned_value: float = 0.0
    abandoned_carts: int = 0
    tickets: int = 0
    abandoned_value_se: float = 0.0
    abandoned_carts_se: float = 0.0
    tickets_se: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Incident:
    """A window in which a back-end service failed and its users felt it."""

    start: pd.Timestamp
    end: pd.Timestamp
    services: tuple[str, ...]
    pages: tuple[str, ...]
    signals: tuple[Reading, ...]
    impact: Impact
    text: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The kpis.json shape (design.md: incidents)."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "services": list(self.services), "pages": list(self.pages),
                "signals": [r.as_dict() for r in self.signals],
                "impact": self.impact.as_dict(), "text": self.text}


@dataclass(frozen=True)
class Anomaly:
    """One side only: a back-end failure users did not visibly feel, or what users felt
    without a back-end cause."""

    side: str              # back-end | user-felt
    start: pd.Timestamp
    end: pd.Timestamp
    entity: str            # the service (back-end) or the first signal's entity
    signals: tuple[Reading, ...]
    text: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"side": self.side, "start": self.start.isoformat(),
                "end": self.end.isoformat(), "entity": self.entity,
                "signals": [r.as_dict() for r in self.signals], "text": self.text}


@dataclass(frozen=True)
class LevelShift:
    """A change that lasts: from `start` on, the signal sits at `after` instead of
    `before`; `rising` when it keeps climbing (a trend such as a memory leak)."""

    name: str
    entity: str
    unit: str
    start: pd.Timestamp
    before: float
    after: float
    rising: bool
    text: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["start"] = self.start.isoformat()
        return d


@dataclass(frozen=True)
class Findings:
    """What `detect` found in a period, with the hour grid and the signals behind it."""

    incidents: tuple[Incident, ...]
    back_end: tuple[Anomaly, ...]
    user_felt: tuple[Anomaly, ...]
    shifts: tuple[LevelShift, ...]
    hours: pd.DatetimeIndex
    signals: tuple[Signal, ...]


def grid(period: Period, frames: Mapping[str, Any], weeks: int = 4,
         history_from: pd.Timestamp | None = None) -> pd.DatetimeIndex:
    """Hours from up to `weeks` weeks before the period to its end (cut in UTC); the weeks
    before start no earlier than the first event in the data or the first archived hour."""
    start = period.start - pd.Timedelta(weeks=weeks)
    firsts = list(_firsts(as_tables(frames)).values())
    if history_from is not None:
        firsts.append(history_from)
    if firsts:
        start = min(period.start, max(start, min(firsts)))
    return pd.date_range(start.tz_convert("UTC").floor("h"), period.end.tz_convert("UTC"),
                         freq="h", inclusive="left")


def as_tables(frames: Mapping[str, Any]) -> dict[str, Any]:
    """The frames with each high-volume source as a rollup (a caller's frame of rows is
    reduced here)."""
    return {name: rollup_of(f, name) if name in SOURCE_TABLES else f
            for name, f in frames.items()}


def _firsts(frames: Mapping[str, Any]) -> dict[str, pd.Timestamp]:
    """Each signal source's first time (of its TIME_COLUMNS column; for a rollup of
    sessions the start of the slot of the first end: all the hour grid needs)."""
    out = {}
    for source, col in TIME_COLUMNS.items():
        f = frames.get(source)
        if f is None or not len(f):
            continue
        if source == "session_tracking" and isinstance(f, Rollup):
            first_end = int(f.tables["ends"]["end_slot"].min())
            out[source] = EPOCH + pd.Timedelta(minutes=first_end)
        else:
            out[source] = f.span[0] if isinstance(f, Rollup) else f[col].min()
    return out


def _slot(times: pd.Series, hours: pd.DatetimeIndex) -> np.ndarray:
    """Position of each time in the hour grid; -1 outside it."""
    pos = hour_numbers(times) - int(epoch_hours(hours[:1])[0])
    pos[(pos < 0) | (pos >= len(hours))] = -1
    return pos


def _table_slot(table: pd.DataFrame, first: int, n: int, col: str = "slot") -> np.ndarray:
    """Position of each entry of a rollup table in the hour grid whose first hour is
    `first` (hours since the epoch), by its slot column `col`; -1 outside it. Slots cut
    hours in UTC."""
    pos = table[col].to_numpy(dtype=np.int64) // 60 - first
    pos[(pos < 0) | (pos >= n)] = -1
    return pos


def _count(pos: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    ok = pos >= 0
    return np.bincount(pos[ok], None if weights is None else weights[ok], minlength=n)


def _mean(pos: np.ndarray, values: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Mean per hour slot, given the slot's sample counts (NaN where there are none)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _count(pos, len(samples), values) / np.where(samples > 0, samples, np.nan)


def _by(column: pd.Series) -> list[tuple[str, np.ndarray]]:
    """(name, row positions) per distinct value of a column (or entity of a rollup table),
    from one sort of its codes (memory O(rows), not rows x names)."""
    codes, labels = codes_of(column)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
    return [(str(name), order[bounds[i]:bounds[i + 1]]) for i, name in enumerate(labels)
            if bounds[i + 1] > bounds[i]]


OTHER = "other"
ENTITY_COLUMNS = {"api_logs": "service_name", "page_load_times": "page_url",
                  "support_tickets": "issue_type", "system_metrics": "service_name"}


def top_entities(column: pd.Series, top_n: int, weights: np.ndarray | None = None
                 ) -> pd.Series:
    """The column with every value outside the `top_n` most frequent (of most `weights`:
    a rollup table's row counts) folded into "other": incidents judge (and the archive
    keeps) at most `top_n` + 1 entities per signal."""
    codes, labels = codes_of(column)
    if len(labels) <= top_n:
        return column
    ok = codes >= 0
    counts = np.bincount(codes[ok], None if weights is None else weights[ok],
                         minlength=len(labels))
    keep = np.sort(np.argsort(-counts, kind="stable")[:top_n])
    new = np.full(len(labels), len(keep), dtype=np.int64)     # the rest: "other"
    new[keep] = np.arange(len(keep))
    names = [str(labels[i]) for i in keep]
    other = OTHER if OTHER not in names else f"{OTHER} ({len(labels) - top_n:,})"
    mapped = np.where(codes >= 0, new[np.maximum(codes, 0)], -1)
    return pd.Series(pd.Categorical.from_codes(mapped, names + [other]), index=column.index,
                     name=column.name)


def _folded(rollup: Rollup, top_n: int | None) -> dict[str, pd.DataFrame]:
    """The tables the source's signals use, each entity outside the `top_n` with the most
    rows (in the source's first table) as "other" in all of them."""
    names = SOURCE_TABLES[rollup.source]
    tables = {name: rollup.tables[name] for name in names}
    col = ENTITY_COLUMNS.get(rollup.source)
    if not top_n or col is None:
        return tables
    volume = tables[names[0]]
    folded = top_entities(volume[col], top_n, volume["n"].to_numpy(dtype=float))
    if folded is volume[col]:
        return tables
    kept = folded.cat.categories
    for name, t in tables.items():
        codes, labels = codes_of(t[col])
        at = pd.Index(kept[:-1]).get_indexer(labels.astype(str))
        at = np.where(at >= 0, at, len(kept) - 1)               # the rest: "other"
        mapped = np.append(at, -1)[codes]                       # -1: missing stays so
        tables[name] = t.assign(**{col: pd.Categorical.from_codes(mapped, kept)})
    return tables


# --- the service map -------------------------------------------------------------------

def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", str(text).lower())


def infer_links(service: str, endpoints: Sequence[str] = ()) -> ServiceLinks:
    """What users see of a service, from the words of its name and endpoints: each word
    picks the family with the longest keyword it starts with (payment-api: `pay`;
    /login: `login`; /payments/authorize: `authoriz`, not `auth`)."""
    words = _words(service) + [w for e in endpoints for w in _words(e)]
    picked = set()
    for w in words:
        best = max(((len(k), name) for name, (keys, _) in FAMILIES.items() for k in keys
                    if w.startswith(k)), default=None)
        if best:
            picked.add(best[1])
    chosen = [FAMILIES[name] for name in FAMILIES if name in picked]
    keys = tuple(dict.fromkeys(k for ks, _ in chosen for k in ks))
    return ServiceLinks(pages=tuple(f"*{k}*" for k in keys),
                        issue_types=tuple(f"*{k}*" for k in keys), feedback_words=keys,
                        carts=any(carts for _, carts in chosen))


def service_map(frames: Mapping[str, Any],
                configured: Mapping[str, ServiceLinks] | None = None
                ) -> dict[str, ServiceLinks]:
    """Links of every service in the API logs (the `requests` table of a rollup) or system
    metrics (`samples`): as configured, else inferred."""
    def table(f: Any, name: str) -> pd.DataFrame:
        return f.tables[name] if isinstance(f, Rollup) else f
    endpoints: dict[str, list[str]] = {}
    api = frames.get("api_logs")
    if api is not None and len(api):
        pairs = table(api, "requests")[["service_name", "endpoint"]].drop_duplicates()
        for service, endpoint in zip(pairs["service_name"].astype(str),
                                     pairs["endpoint"].astype(str)):
            endpoints.setdefault(service, []).append(endpoint)
    system = frames.get("system_metrics")
    if system is not None and len(system):
        for service in pd.unique(table(system, "samples")["service_name"].astype(str)):
            endpoints.setdefault(service, [])
    configured = configured or {}
    return {s: configured.get(s) or infer_links(s, e) for s, e in sorted(endpoints.items())}


def tied(links: Mapping[str, ServiceLinks], *, page: str | None = None,
         issue_type: str | None = None, carts: bool = False) -> tuple[str, ...]:
    """The services a page, an issue type or the abandoned carts belong to."""
    def match(name: str, patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatchcase(name.lower(), p.lower()) for p in patterns)
    return tuple(s for s, link in links.items()
                 if (page is not None and match(page, link.pages))
                 or (issue_type is not None and match(issue_type, link.issue_types))
                 or (carts and link.carts))


# --- hourly signals --------------------------------------------------------------------

def _api(tables: Mapping[str, pd.DataFrame], first: int, n: int,
         links: Mapping[str, ServiceLinks]) -> list[Signal]:
    """Requests and 5xx rate per service and hour from `requests`; the p95 (within 0.5 %)
    from the hour's histogram in `latency_hourly`."""
    requests = tables["requests"]
    pos = _table_slot(requests, first, n)
    counts = requests["n"].to_numpy(dtype=float)
    errors = counts * (requests["status_code"].to_numpy(dtype=float) >= 500)
    levels = _levels(tables["latency_hourly"], "service_name", "response_time_ms", first, n)
    out = []
    for service, mine in _by(requests["service_name"]):
        p = pos[mine]
        req = _count(p, n, counts[mine]).astype(np.int64)
        err = _count(p, n, errors[mine])
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(req > 0, err / np.maximum(req, 1), np.nan)
        own = (service,)
        p95, above = levels(service, 0.95)
        out += [Signal("api.requests", service, "traffic", req, req, "count", own),
                Signal("api.server_error_rate", service, "ratio", rate, req, "ratio", own),
                Signal("api.p95_ms", service, "level", p95, req, "ms", own, 0.95, above)]
    return out


def _levels(table: pd.DataFrame, col: str, value: str, first: int, n: int
            ) -> Callable[[str, float], tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]]:
    """For an entity of an hourly histogram table (0.5 % buckets), its quantile per hour
    and how many of each hour's values lie above a level."""
    pos = _table_slot(table, first, n)
    values = table[value].to_numpy(dtype=float)
    counts = table["n"].to_numpy(dtype=float)
    members = dict(_by(table[col]))

    def of(entity: str, q: float) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        mine = members.get(entity, np.zeros(0, dtype=np.int64))
        p, v, c = pos[mine], values[mine], counts[mine]
        return hist_quantiles(p, v, c, n, (q,))[0], _above(p, v, c, n)
    return of


def _above(pos: np.ndarray, values: np.ndarray, counts: np.ndarray, n: int
           ) -> Callable[[np.ndarray], np.ndarray]:
    """Per hour, how many values (of a histogram: value, count) lie above that hour's
    level."""
    def count(level: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return _count(pos, n, counts * (values > level[np.maximum(pos, 0)]))
    return count


def _pages(tables: Mapping[str, pd.DataFrame], first: int, n: int,
           links: Mapping[str, ServiceLinks]) -> list[Signal]:
    """Loads per page and hour from `loads`; the p75 (within 0.5 %) from
    `load_time_hourly`."""
    loads = tables["loads"]
    pos = _table_slot(loads, first, n)
    counts = loads["n"].to_numpy(dtype=float)
    levels = _levels(tables["load_time_hourly"], "page_url", "load_time_ms", first, n)
    out = []
    for page, mine in _by(loads["page_url"]):
        p75, above = levels(page, 0.75)
        out.append(Signal("pages.p75_load_ms", page, "level", p75,
                          _count(pos[mine], n, counts[mine]).astype(np.int64), "ms",
                          tied(links, page=page), 0.75, above))
    return out


def _carts(f: pd.DataFrame, pos: np.ndarray, n: int, links: Mapping[str, ServiceLinks]
           ) -> list[Signal]:
    count = _count(pos, n)
    owners = tied(links, carts=True)
    return [Signal("cart.abandoned_carts", "all", "count", count, count, "count", owners),
            Signal("cart.abandoned_value", "all", "value",
                   _count(pos, n, f["total_value"].to_numpy(dtype=float)), count, "money",
                   owners)]


def _sessions(tables: Mapping[str, pd.DataFrame], first: int, n: int,
              links: Mapping[str, ServiceLinks]) -> list[Signal]:
    """Sessions dropped at checkout per hour they ended in (`ends`)."""
    ends = tables["ends"]
    at_checkout = (ends["drop_off_page"].astype("str").str.lower() == "checkout").to_numpy()
    pos = np.where(at_checkout, _table_slot(ends, first, n, "end_slot"), -1)
    count = _count(pos, n, ends["n"].to_numpy(dtype=float)).astype(np.int64)
    return [Signal("sessions.dropped_at_checkout", "checkout", "count", count, count, "count",
                   tied(links, carts=True))]


def _feedback(f: pd.DataFrame, pos: np.ndarray, n: int, links: Mapping[str, ServiceLinks]
              ) -> list[Signal]:
    """Negative comments, all of them (tied to no service) and per service those that use
    its words."""
    negative = sentiment.scores(f["feedback_text"])["polarity"].to_numpy() < sentiment.NEGATIVE
    count = _count(np.where(negative, pos, -1), n)
    out = [Signal("feedback.negative", "all", "count", count, count, "count")]
    text = f["feedback_text"].astype("str").str.lower()[negative]
    by_words: dict[tuple[str, ...], list[str]] = {}
    for service, link in links.items():      # one signal per set of words
        if link.feedback_words:
            by_words.setdefault(link.feedback_words, []).append(service)
    named: set[str] = set()
    for words, services in by_words.items():
        pattern = "|".join(re.escape(w) for w in words)
        about = text.str.contains(rf"\b(?:{pattern})", regex=True).to_numpy()
        mine = _count(pos[negative][about], n)
        entity = "/".join(words[:3])
        entity = entity if entity not in named else f"{entity} ({services[0]})"
        named.add(entity)
        out.append(Signal("feedback.negative_about", entity, "count", mine, mine, "count",
                          tuple(services)))
    return out


def _tickets(f: pd.DataFrame, pos: np.ndarray, n: int, links: Mapping[str, ServiceLinks]
             ) -> list[Signal]:
    out = []
    for issue, mine in _by(f["issue_type"]):
        count = _count(pos[mine], n)
        out.append(Signal("support.new_tickets", issue, "count", count, count, "count",
                          tied(links, issue_type=issue)))
    return out


def _system(tables: Mapping[str, pd.DataFrame], first: int, n: int,
            links: Mapping[str, ServiceLinks]) -> list[Signal]:
    """Mean CPU and memory per service and hour (sums / samples) and failed health probes,
    from `samples`."""
    f = tables["samples"]
    pos = _table_slot(f, first, n)
    counts = f["n"].to_numpy(dtype=float)
    cpu, memory = (f[c].to_numpy(dtype=float) for c in ("cpu_pct_sum", "memory_pct_sum"))
    failed = f["failed"].to_numpy(dtype=float)
    out = []
    for service, mine in _by(f["service_name"]):
        p = pos[mine]
        samples = _count(p, n, counts[mine]).astype(np.int64)
        own = (service,)
        fails = _count(p, n, failed[mine])
        out += [Signal("system.cpu_pct", service, "pct", _mean(p, cpu[mine], samples),
                       samples, "pct", own),
                Signal("system.memory_pct", service, "pct", _mean(p, memory[mine], samples),
                       samples, "pct", own),
                Signal("system.failed_probes", service, "count", fails, fails, "count", own)]
    return out


SIGNALS = {"api_logs": _api, "page_load_times": _pages, "cart_abandonment": _carts,
           "session_tracking": _sessions, "user_feedback": _feedback,
           "support_tickets": _tickets, "system_metrics": _system}


def signals(frames: Mapping[str, Any], hours: pd.DatetimeIndex,
            top_n: int | None = None, links: Mapping[str, ServiceLinks] | None = None
            ) -> list[Signal]:
    """Every hourly signal the present sources give (the high-volume ones from their
    rollup tables), tied to services by `links` (default: inferred); hours before a
    source's first event are unknown (NaN), not zero. Per-entity signals cover the
    `top_n` busiest entities and "other"."""
    frames = as_tables(frames)
    links = service_map(frames) if links is None else links
    n = len(hours)
    firsts = _firsts(frames)
    out: list[Signal] = []
    for source, make in SIGNALS.items():
        frame = frames.get(source)
        if frame is None or not len(frame):
            continue
        if isinstance(frame, Rollup):
            made = make(_folded(frame, top_n), int(epoch_hours(hours[:1])[0]), n, links)
        else:
            if top_n and source in ENTITY_COLUMNS:
                col = ENTITY_COLUMNS[source]
                frame = frame.assign(**{col: top_entities(frame[col], top_n)})
            made = make(frame, _slot(frame[TIME_COLUMNS[source]], hours), n, links)
        first = max(0, int(hours.searchsorted(firsts[source], side="right")) - 1)
        out += [_unknown_before(sig, first) for sig in made]
    return out


def _unknown_before(sig: Signal, first: int) -> Signal:
    if first <= 0:
        return sig
    values, events = sig.values.astype(float), sig.events.astype(float)
    values[:first], events[:first] = np.nan, 0
    return dataclasses.replace(sig, values=values, events=events)


def epoch_hours(hours: pd.DatetimeIndex) -> np.ndarray:
    """Whole hours since 1970-01-01 UTC: how the archive keys hourly values."""
    return ((hours - EPOCH) // HOUR).to_numpy(dtype="int64")


def with_history(sigs: list[Signal], hours: pd.DatetimeIndex, history: pd.DataFrame | None
                 ) -> list[Signal]:
    """Fill the unknown hours of each signal from archived hourly values (columns signal,
    entity, hour as hours since the epoch, value, events)."""
    if history is None or history.empty:
        return sigs
    first = int(epoch_hours(hours[:1])[0])
    groups = {key: g for key, g in history.groupby(["signal", "entity"], sort=False)}
    out = []
    for sig in sigs:
        g = groups.get((sig.name, sig.entity))
        if g is None:
            out.append(sig)
            continue
        pos = g["hour"].to_numpy(dtype="int64") - first
        ok = (pos >= 0) & (pos < len(hours))
        pos = pos[ok]
        values, events = sig.values.astype(float), sig.events.astype(float)
        unknown = np.isnan(values[pos])
        values[pos[unknown]] = g["value"].to_numpy(dtype=float)[ok][unknown]
        events[pos[unknown]] = g["events"].to_numpy(dtype=float)[ok][unknown]
        out.append(dataclasses.replace(sig, values=values, events=events))
    return out


def archive_rows(sigs: list[Signal], hours: pd.DatetimeIndex, period: Period) -> pd.DataFrame:
    """The period's known hourly values, for the archive to serve as later baselines."""
    inside = np.flatnonzero(np.asarray((hours >= period.start) & (hours < period.end)))
    hour_ids = epoch_hours(hours[inside])
    parts = []
    for sig in sigs:
        known = ~np.isnan(sig.values[inside].astype(float))
        parts.append(pd.DataFrame({
            "signal": sig.name, "entity": sig.entity, "hour": hour_ids[known],
            "value": sig.values[inside][known].astype(float),
            "events": sig.events[inside][known].astype(float)}))
    columns = ["signal", "entity", "hour", "value", "events"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


# --- baselines and tail probabilities --------------------------------------------------

def _stack(values: np.ndarray, at: np.ndarray, step: int, count: int) -> np.ndarray:
    """values at `at` - step, - 2 step, ... - count step (NaN before the grid)."""
    idx = at[None, :] - step * np.arange(1, count + 1)[:, None]
    return np.where(idx >= 0, values[np.maximum(idx, 0)], np.nan)


def history(values: np.ndarray, at: np.ndarray, weeks: int = 4,
            also: Sequence[np.ndarray] = ()) -> list[np.ndarray]:
    """Earlier values of each hour in `at`, one column per hour: the same hour of up to
    `weeks` preceding weeks where at least 2 exist, else the same hour of day over up to
    28 preceding days (none with fewer than MIN_DAYS); then the same cells of each array
    in `also` (NaN where `values` is)."""
    values = values.astype(float)
    weekly = _stack(values, at, WEEK_H, weeks)
    daily = _stack(values, at, 24, 28)
    use_weekly = np.sum(~np.isnan(weekly), axis=0) >= 2
    use_daily = ~use_weekly & (np.sum(~np.isnan(daily), axis=0) >= MIN_DAYS)
    rows = np.full((max(weeks, 28), len(at)), np.nan)
    rows[:weeks, use_weekly] = weekly[:, use_weekly]
    rows[:28, use_daily] = daily[:, use_daily]
    out = [rows]
    for other in also:
        o = np.full(rows.shape, np.nan)
        o[:weeks, use_weekly] = _stack(other.astype(float), at, WEEK_H, weeks)[:, use_weekly]
        o[:28, use_daily] = _stack(other.astype(float), at, 24, 28)[:, use_daily]
        out.append(np.where(np.isnan(rows), np.nan, o))
    return out


def baseline(values: np.ndarray, weeks: int = 4, at: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Median and MAD per hour over its `history` (only for the hours `at`, default all;
    NaN elsewhere and where there is no history)."""
    n = len(values)
    at = np.arange(n) if at is None else np.asarray(at, dtype=int)
    [rows] = history(values, at, weeks)
    median, mad = np.full(n, np.nan), np.full(n, np.nan)
    median[at] = _column_median(rows)
    mad[at] = _column_median(np.abs(rows - median[at]))
    return median, mad


def _column_median(rows: np.ndarray) -> np.ndarray:
    """np.nanmedian(rows, axis=0) for a few rows and many columns, without its per-column
    warnings and masked arrays: NaN where a column has no value."""
    ordered = np.sort(rows, axis=0)                  # NaN sorts last
    k = np.sum(~np.isnan(rows), axis=0)
    lo = np.take_along_axis(ordered, np.maximum((k - 1) // 2, 0)[None, :], axis=0)[0]
    hi = np.take_along_axis(ordered, np.maximum(k // 2, 0)[None, :], axis=0)[0]
    return np.where(k > 0, (lo + hi) / 2, np.nan)


def noise_floor(kind: str, median: np.ndarray, events: np.ndarray) -> np.ndarray:
    """The smallest MAD that a robust-scale signal's own sampling noise allows."""
    with np.errstate(all="ignore"):
        if kind == "pct":
            return np.full(len(median), 5.0)   # percentage points (CPU, memory)
        if kind == "traffic":    # hourly traffic swings well beyond Poisson noise
            return 0.1 * np.abs(median)
        # An hourly percentile swings ~25 % on its own at 100 events, more on fewer.
        return 0.25 * np.abs(median) * np.maximum(1.0, np.sqrt(100 / np.maximum(events, 1)))


def count_tail(x: np.ndarray, total: np.ndarray, hours: np.ndarray, prior: np.ndarray
               ) -> np.ndarray:
    """P(X >= x) for a Poisson count whose rate was seen as `total` events in `hours`
    earlier hours, with a gamma prior of mean `prior` worth PRIOR_HOURS: the negative
    binomial predictive (the Poisson tail as the history grows)."""
    shape = total + PRIOR_HOURS * prior
    rate = hours + PRIOR_HOURS
    with np.errstate(all="ignore"):
        return stats.nbinom.sf(x - 1, shape, rate / (rate + 1))


def ratio_tail(errors: np.ndarray, events: np.ndarray, seen_errors: np.ndarray,
               seen_events: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """P(E >= errors) of `events` requests whose error rate was seen as `seen_errors` of
    `seen_events` earlier, with a beta prior of mean `prior` worth PRIOR_EVENTS requests:
    the beta-binomial predictive (the binomial tail as the history grows)."""
    a = seen_errors + PRIOR_EVENTS * prior
    b = seen_events - seen_errors + PRIOR_EVENTS * (1 - prior)
    n = np.maximum(events, 0).astype(np.int64)
    e = np.clip(np.nan_to_num(errors), 0, n).astype(np.int64)
    with np.errstate(all="ignore"):
        out = np.asarray(stats.betabinom.sf(e - 1, n, a, b), dtype=float)
        # scipy takes 1 - cdf, which loses the digits of a small tail: above the mean
        # sum the pmf instead.
        mean = n * a / (a + b)
        far = np.flatnonzero((e > 0) & (e >= mean) & (out < 0.01))
        if far.size:
            # up to 12 standard deviations (with the beta's extra spread) past the mean
            sd = np.sqrt(mean * (1 - a / (a + b)) * (1 + (n - 1) / (a + b + 1)))[far]
            width = int(min(TAIL_TERMS, np.max(e[far] - mean[far] + 12 * sd) + 20))
            ks = e[far, None] + np.arange(max(width, 1))[None, :]
            terms = np.exp(stats.betabinom.logpmf(ks, n[far, None], a[far, None],
                                                  b[far, None]))
            out[far] = np.sum(np.where(ks <= n[far, None], terms, 0.0), axis=1)
    return np.where(events >= 1, out, np.nan)


def fisher(p_back: np.ndarray, p_user: np.ndarray) -> np.ndarray:
    """Fisher's combination of two independent tail probabilities: with q = p1 p2,
    P(-2 ln(P1 P2) >= -2 ln q) = q (1 - ln q) (chi-square with 4 degrees of freedom)."""
    q = np.asarray(p_back, dtype=float) * np.asarray(p_user, dtype=float)
    with np.errstate(all="ignore"):
        return np.where(q > 0, q * (1 - np.log(np.where(q > 0, q, 1))), 0.0)


def _ordinary(counts: np.ndarray, prior: np.ndarray | None = None,
              events: np.ndarray | None = None) -> np.ndarray:
    """Which cells of a (baseline hours x hours) stack are ordinary: each is judged against
    the others of its column, left out of them (a count by `count_tail`, errors of
    `events` by `ratio_tail`; `prior` as there, default the others' own mean), and one
    below SCREEN is an earlier incident, not the usual level: a previous outage in the
    same hour of an earlier week would otherwise raise the expected count and hide the
    next one. Judged where at least 2 others are known; NaN cells are not ordinary."""
    known = ~np.isnan(counts)
    c = np.where(known, counts, 0.0)
    others_n = np.sum(known, axis=0) - known
    with np.errstate(all="ignore"):
        if events is None:
            others = np.sum(c, axis=0) - c
            mean = prior if prior is not None else (others + 0.5) / (others_n + 1)
            q = count_tail(c, others, others_n, np.broadcast_to(mean, c.shape))
        else:
            n = np.where(known, events, 0.0)
            others, others_ev = np.sum(c, axis=0) - c, np.sum(n, axis=0) - n
            mean = prior if prior is not None else (others + 0.5) / (others_ev + 1)
            q = ratio_tail(c.ravel(), n.ravel(), others.ravel(), others_ev.ravel(),
                           np.broadcast_to(mean, c.shape).ravel()).reshape(c.shape)
    return known & ~((others_n >= 2) & (np.nan_to_num(q, nan=1.0) < SCREEN))


def _screened(values: np.ndarray, counts: np.ndarray, prior: np.ndarray | None = None,
              events: np.ndarray | None = None) -> np.ndarray:
    """`values` with the cells that are not `_ordinary` by their counts made NaN."""
    return np.where(_ordinary(counts, prior, events), values, np.nan)


def _expected(kind: str, values: np.ndarray, events: np.ndarray, rows: np.ndarray,
              seen: np.ndarray, x: np.ndarray, at: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """A count's tail and expected value (a money total: no tail, its mean) over the
    ordinary baseline hours, the prior from the same hour of day's ordinary days."""
    # the counts behind each cell: the values themselves, or a money total's events
    day, day_n = _stack(values, at, 24, 28), _stack(events, at, 24, 28)
    day_counts, counts = (day, rows) if kind == "count" else (day_n, seen)
    day = _screened(day, day_counts)
    days = np.sum(~np.isnan(day), axis=0)
    day_prior = (np.nansum(_screened(day_counts, day_counts), axis=0) + 0.5) / (days + 1)
    rows = _screened(rows, counts, day_prior)
    seen_hours = np.sum(~np.isnan(rows), axis=0)
    if kind == "count":
        prior = (np.nansum(day, axis=0) + 0.5) / (days + 1)
        q = count_tail(x, np.nansum(rows, axis=0), seen_hours, prior)
        # the expected count, so that what exceeds it is an unbiased impact
        return q, (np.nansum(rows, axis=0) + PRIOR_HOURS * prior) / (seen_hours + PRIOR_HOURS)
    mean = np.where(seen_hours > 0, np.nansum(rows, axis=0) / np.maximum(seen_hours, 1),
                    np.nan)
    return np.full(len(at), np.nan), mean    # a money total is the impact, not a symptom


def _ratio_p(values: np.ndarray, events: np.ndarray, rows: np.ndarray, seen: np.ndarray,
             x: np.ndarray, ev: np.ndarray, at: np.ndarray) -> np.ndarray:
    """An error ratio's tail over the ordinary baseline hours, the prior from the same hour
    of day's ordinary days."""
    day, day_n = _stack(values, at, 24, 28), _stack(events, at, 24, 28)
    day_e = np.round(day * day_n)
    ok = _ordinary(day_e, events=day_n)
    prior = (np.nansum(np.where(ok, day_e, 0), axis=0) + 0.5) / (np.nansum(
        np.where(ok, day_n, 0), axis=0) + 1)
    seen_e = np.round(rows * seen)
    ok = _ordinary(seen_e, prior, events=seen)
    return ratio_tail(np.round(np.nan_to_num(x) * ev), ev,
                      np.nansum(np.where(ok, seen_e, 0), axis=0),
                      np.nansum(np.where(ok, seen, 0), axis=0), prior)


def tail(sig: Signal, min_events: int, at: np.ndarray | None = None
         ) -> tuple[np.ndarray, np.ndarray]:
    """Upper-tail probability of each hour under its baseline (NaN where it cannot be
    judged, or outside `at`), and the usual level (the baseline median; the expected
    value for counts and money). Baseline hours of counts, ratios and money that were
    themselves far from the others (earlier incidents, `_ordinary`) are left out."""
    n = len(sig.values)
    at = np.arange(n) if at is None else np.asarray(at, dtype=int)
    values, events = sig.values.astype(float), sig.events.astype(float)
    rows, seen = history(values, at, also=[events])
    median = _column_median(rows)
    usual, p = np.full(n, np.nan), np.full(n, np.nan)
    usual[at] = median
    x, ev = values[at], events[at]
    known = (np.sum(~np.isnan(rows), axis=0) > 0) & ~np.isnan(x)
    with np.errstate(all="ignore"):
        if sig.kind in ("count", "value"):
            q, usual[at] = _expected(sig.kind, values, events, rows, seen, x, at)
        elif sig.kind == "ratio":
            q = _ratio_p(values, events, rows, seen, x, ev, at)
        else:     # level, pct, traffic: a robust scale
            mad = np.fmax(_column_median(np.abs(rows - median)),
                          noise_floor(sig.kind, median, ev))
            z = K * (x - median) / mad
            if sig.kind == "traffic":
                # Traffic is judged by its falls (clients that cannot reach a service), in
                # hours that usually have enough of it.
                z = np.where(median >= min_events, -z, np.nan)
            else:
                z = np.where(ev >= (min_events if sig.kind == "level" else 1), z, np.nan)
            q = stats.norm.sf(z)
            if sig.above is not None:
                q = _above_tail(sig, q, median, ev, np.nansum(seen, axis=0), at, min_events)
    p[at] = np.where(known, q, np.nan)
    return p, usual


def _above_tail(sig: Signal, q: np.ndarray, median: np.ndarray, ev: np.ndarray,
                seen: np.ndarray, at: np.ndarray, min_events: int) -> np.ndarray:
    """A percentile's tail: how many of the hour's events lie above its usual level, a
    binomial with the chance 1 - quantile raised by three standard errors of a quantile
    estimated from the `seen` baseline events (the usual level is an estimate too). Heavy
    tails make a lone jump of the percentile cheap, so in hours with `min_events` the
    robust z must agree; in thinner hours the count alone judges."""
    level = np.full(len(sig.values), np.nan)
    level[at] = median
    over = sig.above(level)[at]
    share = 1 - sig.quantile
    with np.errstate(all="ignore"):
        chance = np.minimum(share + 3 * np.sqrt(share * (1 - share) / np.maximum(seen, 1)), 1)
    counted = stats.binom.sf(over - 1, np.maximum(ev, 0).astype(np.int64), chance)
    counted = np.where((ev >= 1) & ~np.isnan(median), counted, np.nan)
    return np.where(ev >= min_events, np.maximum(q, counted), counted)


def level_shift(sig: Signal, usual: np.ndarray, judged: np.ndarray, alpha: float,
                min_events: int) -> tuple[int, float, float, bool] | None:
    """(first hour, usual level, level since, still rising) of a lasting rise of a
    percentile or CPU/memory signal over the judged hours, or None.

    The residual is log(value / usual) (percentiles) or value - usual (percentage points);
    the start is the CUSUM estimate with reference half the smallest shift worth naming,
    then half the shift so found;
    the shift must hold for SHIFT_HOURS, have a median of at least that smallest shift,
    and more of its hours above usual than chance allows (sign test at `alpha` over the
    candidate starts)."""
    if sig.kind not in ("level", "pct"):
        return None
    x, med, ev = sig.values[judged].astype(float), usual[judged], sig.events[judged]
    # Only against weekly baselines: the same hour of earlier days hides a weekly rhythm.
    weekly = np.sum(~np.isnan(_stack(sig.values.astype(float), judged, WEEK_H, 4)), axis=0) >= 2
    with np.errstate(all="ignore"):
        if sig.kind == "level":
            ok = weekly & (x > 0) & (med > 0) & (ev >= min_events)
            r, theta = np.log(x / med), SHIFT_LEVEL
        else:
            ok = weekly & np.isfinite(x) & np.isfinite(med) & (ev > 0)
            r, theta = x - med, SHIFT_PCT
    r = r[ok]
    if len(r) < SHIFT_HOURS:
        return None
    i = int(np.argmax(np.cumsum((r - theta / 2)[::-1])[::-1]))
    if len(r) - i >= SHIFT_HOURS:
        # again with the reference at half the shift it found: a start closer to the truth
        step = max(float(np.median(r[i:])), theta)
        i = int(np.argmax(np.cumsum((r - step / 2)[::-1])[::-1]))
    after = r[i:]
    if len(after) < SHIFT_HOURS or np.median(after) < theta:
        return None
    above = int(np.sum(after > 0))
    if stats.binom.sf(above - 1, len(after), 0.5) > alpha / len(r):
        return None
    half = len(after) // 2
    rising = bool(np.median(after[half:]) - np.median(after[:half]) >= theta)
    start = int(judged[np.flatnonzero(ok)[i]])
    return start, float(np.median(med[ok][i:])), float(np.median(x[ok][i:])), rising


def _shifted(sig: Signal, start: int, usual: np.ndarray) -> Signal:
    """The signal as judged after a level shift: from `start` on, moved back by the
    shift's median, so later hours are judged against the new level."""
    values = sig.values.astype(float).copy()
    above = sig.above
    with np.errstate(all="ignore"):
        if sig.kind == "level":
            factor = np.ones(len(values))
            factor[start:] = np.exp(np.nanmedian(np.log(values[start:] / usual[start:])))
            values /= factor
            if sig.above is not None:
                above = lambda level: sig.above(level * factor)   # noqa: E731
        else:
            values[start:] -= np.nanmedian(values[start:] - usual[start:])
    return dataclasses.replace(sig, values=values, above=above)


def windows(flagged: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive flagged hours as [start, end) index pairs."""
    idx = np.flatnonzero(flagged)
    if not idx.size:
        return []
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks] + 1, idx[-1] + 1]
    return list(zip(starts.tolist(), ends.tolist()))


def side(p: np.ndarray, rows: Sequence[int]) -> np.ndarray:
    """One side's evidence per hour: its smallest tail probability times the number of
    its signals judged that hour (Bonferroni), at most 1; 1 where none is judged."""
    if not len(rows):
        return np.ones(p.shape[1])
    chosen = p[list(rows)]
    judged = np.sum(~np.isnan(chosen), axis=0)
    low = np.min(np.where(np.isnan(chosen), 1.0, chosen), axis=0)
    return np.minimum(low * np.maximum(judged, 1), 1.0)


# --- finding incidents, one-sided anomalies and level shifts ---------------------------

def detect(frames: Mapping[str, pd.DataFrame], period: Period, t: Thresholds,
           tz: Any = None, history: pd.DataFrame | None = None,
           links: Mapping[str, ServiceLinks] | None = None,
           top_n: int | None = None) -> Findings:
    """Incidents of the period (most costly first), back-end-only and user-felt-only
    anomalies, level shifts, with the hour grid and signals. `history` (archived hourly
    values, see `archive_rows`) fills the weeks that the data does not cover; `links` is
    the configured service map (the rest is inferred); `top_n` bounds the entities per
    signal."""
    frames = as_tables(frames)
    history_from = None
    if history is not None and not history.empty:
        history_from = EPOCH + int(history["hour"].min()) * HOUR
    hours = grid(period, frames, history_from=history_from)
    if len(hours) == 0:
        return Findings((), (), (), (), hours, ())
    tz = tz or period.start.tz
    link_map = service_map(frames, links)
    sigs = with_history(signals(frames, hours, top_n, link_map), hours, history)
    judged = np.flatnonzero(np.asarray((hours >= period.start) & (hours < period.end)))
    alpha = t.incident_false_alarms
    p = np.full((len(sigs), len(hours)), np.nan)
    usual = np.full((len(sigs), len(hours)), np.nan)
    shifts = []
    testable = max(1, sum(s.kind in ("level", "pct") for s in sigs))
    for i, sig in enumerate(sigs):
        p[i], usual[i] = tail(sig, t.incident_min_events, judged)
        found = level_shift(sig, usual[i], judged, alpha / testable, t.incident_min_events)
        if found:
            start, before, after, rising = found
            p[i], _ = tail(_shifted(sig, start, usual[i]), t.incident_min_events, judged)
            shifts.append(_level_shift(sig, hours[start].tz_convert(tz), before, after,
                                       rising))
    hours_judged = max(len(judged), 1)
    services = sorted({s.entity for s in sigs if s.back_end})
    back = {s: [i for i, g in enumerate(sigs) if g.back_end and g.entity == s]
            for s in services}
    user = {s: [i for i, g in enumerate(sigs) if not g.back_end and s in g.services]
            for s in services}
    pairs = [s for s in services if user[s]]
    incidents = _incidents(p, usual, sigs, back, user, pairs,
                           alpha / (hours_judged * max(len(pairs), 1)), hours, tz)
    covered = {s: np.zeros(len(hours), bool) for s in services}
    held = np.zeros(p.shape, bool)
    for inc, (a, b, rows) in incidents:
        for s in inc.services:
            covered[s][a:b] = True
        held[rows, a:b] = True
    n_back = sum(s.back_end for s in sigs)
    n_user = sum(not s.back_end and s.kind != "value" for s in sigs)
    back_end = [a for s in services for a in _back_end(
        p, usual, sigs, back[s], s, covered[s], alpha / (hours_judged * max(n_back, 1)),
        hours, tz)]
    user_rows = [i for i, g in enumerate(sigs) if not g.back_end]
    user_felt = _user_felt(p, usual, sigs, user_rows, held,
                           alpha / (hours_judged * max(n_user, 1)), hours, tz)
    ranked = sorted((inc for inc, _ in incidents),
                    key=lambda i: (i.impact.abandoned_value, i.impact.tickets), reverse=True)
    return Findings(tuple(ranked), tuple(sorted(back_end, key=lambda a: a.start)),
                    tuple(user_felt), tuple(shifts), hours, tuple(sigs))


def _incidents(p: np.ndarray, usual: np.ndarray, sigs: Sequence[Signal],
               back: Mapping[str, list[int]], user: Mapping[str, list[int]],
               pairs: Sequence[str], level: float, hours: pd.DatetimeIndex, tz: Any
               ) -> list[tuple[Incident, tuple[int, int, list[int]]]]:
    """Runs of hours in which a service's back-end side stays below SUGGESTIVE and that
    hold an hour where its user side is below SUGGESTIVE too and the combined evidence is
    below `level`; overlapping runs of several services are one incident, the most
    certain back-end side first."""
    runs = []
    for s in pairs:
        pb, pu = side(p, back[s]), side(p, user[s])
        failing = pb <= SUGGESTIVE
        hit = failing & (pu <= SUGGESTIVE) & (fisher(pb, pu) <= level)
        runs += [(a, b, (float(pb[a:b].min()), s)) for a, b in windows(failing)
                 if hit[a:b].any()]
    out = []
    for a, b, chosen in _merge(runs):
        services = tuple(dict.fromkeys(s for _, s in sorted(chosen)))
        rows = [i for s in services for i in back[s] + user[s]]
        rows = [i for i in dict.fromkeys(rows)
                if np.nanmin(np.r_[p[i, a:b], np.inf]) <= SUGGESTIVE]
        readings = _readings(p, usual, sigs, rows, a, b)
        owners = set(services)
        carts = [i for i, g in enumerate(sigs) if g.name.startswith("cart.")
                 and owners & set(g.services)]
        value, value_se = _extra(sigs, usual, carts, "cart.abandoned_value", a, b)
        carts_n, carts_se = _extra(sigs, usual, carts, "cart.abandoned_carts", a, b)
        tickets, tickets_se = _extra(sigs, usual, rows, "support.new_tickets", a, b)
        impact = Impact(round(value, 2), round(carts_n), round(tickets), round(value_se, 2),
                        round(carts_se, 1), round(tickets_se, 1))
        inc = Incident(hours[a].tz_convert(tz), hours[b - 1].tz_convert(tz) + HOUR, services,
                       tuple(r.entity for r in readings if r.name.startswith("pages.")),
                       readings, impact)
        out.append((dataclasses.replace(inc, text=_sentence(inc)), (a, b, rows)))
    return out


def _merge(runs: list[tuple[int, int, Any]]) -> list[tuple[int, int, list[Any]]]:
    """[start, end) runs that overlap or touch, merged, with what each run carried."""
    merged: list[tuple[int, int, list[Any]]] = []
    for a, b, item in sorted(runs, key=lambda r: (r[0], r[1])):
        if merged and a <= merged[-1][1]:
            start, end, items = merged[-1]
            merged[-1] = (start, max(end, b), items + [item])
        else:
            merged.append((a, b, [item]))
    return merged


def _back_end(p: np.ndarray, usual: np.ndarray, sigs: Sequence[Signal], rows: list[int],
              service: str, covered: np.ndarray, level: float, hours: pd.DatetimeIndex,
              tz: Any) -> list[Anomaly]:
    """Runs of hours outside incidents in which the service's back-end side stays below
    SUGGESTIVE and one signal is below `level`."""
    low = np.fmin.reduce(np.where(np.isnan(p[rows]), np.inf, p[rows]), axis=0)
    grow = (side(p, rows) <= SUGGESTIVE) & ~covered
    out = []
    for a, b in windows(grow):
        if (low[a:b] <= level).any():
            readings = _readings(p, usual, sigs, [i for i in rows if np.nanmin(
                np.r_[p[i, a:b], np.inf]) <= SUGGESTIVE], a, b)
            out.append(_anomaly("back-end", service, readings, a, b, hours, tz))
    return out


def _user_felt(p: np.ndarray, usual: np.ndarray, sigs: Sequence[Signal], rows: list[int],
               held: np.ndarray, level: float, hours: pd.DatetimeIndex, tz: Any
               ) -> list[Anomaly]:
    """Runs of hours in which a user signal outside the incidents that hold it stays below
    SUGGESTIVE and reaches `level` once; overlapping runs of several signals are one."""
    runs = []
    for i in rows:
        grow = (np.nan_to_num(p[i], nan=1.0) <= SUGGESTIVE) & ~held[i]
        runs += [(a, b, i) for a, b in windows(grow)
                 if (np.nan_to_num(p[i, a:b], nan=1.0) <= level).any()]
    out = []
    for a, b, chosen in _merge(runs):
        readings = _readings(p, usual, sigs, chosen, a, b)
        out.append(_anomaly("user-felt", readings[0].entity, readings, a, b, hours, tz))
    return out


def _readings(p: np.ndarray, usual: np.ndarray, sigs: Sequence[Signal], rows: list[int],
              a: int, b: int) -> tuple[Reading, ...]:
    """Each signal's least likely hour in the window, the least likely signal first."""
    out = []
    for i in rows:
        window = np.nan_to_num(p[i, a:b], nan=np.inf)
        k = a + int(np.argmin(window))
        out.append(Reading(sigs[i].name, sigs[i].entity, _num(sigs[i].values[k]),
                           _num(usual[i, k]), _num(p[i, k]), sigs[i].unit))
    return tuple(sorted(out, key=lambda r: r.p if r.p is not None else 1.0))


def _extra(sigs: Sequence[Signal], usual: np.ndarray, rows: Sequence[int], name: str,
           a: int, b: int) -> tuple[float, float]:
    """What exceeded the expected level in the window over the chosen signals of a name
    (each signal's sum of value - expected, at least 0: clipping each hour instead would
    add the ordinary hours' upward noise), and its standard error."""
    total, variance = 0.0, 0.0
    for i in rows:
        sig = sigs[i]
        if sig.name != name:
            continue
        x, mu = sig.values[a:b].astype(float), usual[i, a:b]
        ok = ~np.isnan(x) & ~np.isnan(mu)
        total += max(float(np.sum(x[ok] - mu[ok])), 0.0)
        variance += float(np.sum(_variance(sig, mu, a, b)[ok]))
    return total, float(np.sqrt(variance))


def _variance(sig: Signal, mu: np.ndarray, a: int, b: int) -> np.ndarray:
    """Per hour of the window [a, b): the variance of a count or money total's excess over
    its expected level `mu`: the ordinary traffic's own (Poisson; for money, compound
    Poisson: carts x the mean squared cart value, learnt from the hours outside the
    window), plus that of `mu`, a mean of the known baseline hours (and for counts the
    prior worth PRIOR_HOURS)."""
    [rows] = history(sig.values.astype(float), np.arange(a, b))
    seen = np.sum(~np.isnan(rows), axis=0)
    if sig.kind == "count":
        return mu * (1 + 1 / (seen + PRIOR_HOURS))
    values, carts = sig.values.astype(float), sig.events.astype(float)
    out = np.ones(len(values), bool)
    out[a:b] = False
    out &= ~np.isnan(values) & (carts > 0)
    per_cart = values[out].sum() / max(carts[out].sum(), 1)
    spread = np.sum((values[out] - per_cart * carts[out]) ** 2) / max(carts[out].sum(), 1)
    square = per_cart ** 2 + spread             # the mean squared value of a cart
    return mu / max(per_cart, 1e-9) * square * (1 + 1 / np.maximum(seen, 1))


def _anomaly(side_: str, entity: str, readings: tuple[Reading, ...], a: int, b: int,
             hours: pd.DatetimeIndex, tz: Any) -> Anomaly:
    start, end = hours[a].tz_convert(tz), hours[b - 1].tz_convert(tz) + HOUR
    shown = "; ".join(_reading_text(r) for r in readings[:3])
    tail_text = ("; no sign that users felt it" if side_ == "back-end"
                 else "; no back-end cause found")
    text = f"{_window_text(start, end)}: {shown}{tail_text}."
    return Anomaly(side_, start, end, entity, readings, text)


def _level_shift(sig: Signal, start: pd.Timestamp, before: float, after: float,
                 rising: bool) -> LevelShift:
    what = label({"name": sig.name, "entity": sig.entity})
    if sig.unit == "ms":
        change = f"{after / before - 1:+.0%}".replace("+", "+") if before else ""
    else:
        change = f"{after - before:+.1f} pp"
    verb = "has kept rising" if rising else "has stayed higher"
    text = (f"{what} {verb} since {start:%a %-d %b %H:%M}: {fmt.value(after, sig.unit)} "
            f"against a usual {fmt.value(before, sig.unit)} ({change}); a level shift, "
            "not an incident.")
    return LevelShift(sig.name, sig.entity, sig.unit, start, before, after, rising, text)


def _num(v: Any) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _reading_text(r: Reading) -> str:
    return (f"{label(dataclasses.asdict(r))} {fmt.value(r.peak, r.unit)} "
            f"(usually {fmt.value(r.baseline, r.unit)})")


def _sentence(inc: Incident, currency: str = "") -> str:
    """'Wed 4 Nov 10:00-12:00: payment-api 5xx at 38.0 % (baseline 0.40 %), p95 ...'"""
    parts = []
    by = {(r.name, r.entity): r for r in inc.signals}
    for service in inc.services[:2]:
        bits = []
        e = by.get(("api.server_error_rate", service))
        if e:
            bits.append(f"5xx at {fmt.pct(e.peak)} (baseline {fmt.pct(e.baseline)})")
        p = by.get(("api.p95_ms", service))
        if p:
            bits.append(f"p95 {fmt.ms(p.peak)} (baseline {fmt.ms(p.baseline)})")
        r = by.get(("api.requests", service))
        if r:
            bits.append(f"{fmt.count(r.peak)} requests in an hour (usually "
                        f"{fmt.count(r.baseline)})")
        c = by.get(("system.cpu_pct", service))
        if c:
            bits.append(f"CPU {fmt.pct_points(c.peak)}")
        if bits:
            parts.append(f"{service} " + ", ".join(bits))
    impact = inc.impact
    if impact.abandoned_value > 0:
        parts.append(f"{fmt.count(impact.abandoned_carts)} more carts than usual abandoned, "
                     f"worth {fmt.money(impact.abandoned_value, currency)}"
                     + _give_or_take(impact.abandoned_value, impact.abandoned_value_se,
                                     lambda v: fmt.money(v, currency)))
    if impact.tickets > 0:
        kinds = [r.entity for r in inc.signals if r.name == "support.new_tickets"]
        parts.append(f"{fmt.count(impact.tickets)} extra tickets"
                     + _give_or_take(impact.tickets, impact.tickets_se, fmt.count)
                     + (f" ({', '.join(kinds[:2])})" if kinds else ""))
    for r in inc.signals:
        if r.name.startswith("feedback."):
            parts.append(f"{fmt.count(r.peak)} negative comments in an hour "
                         f"(usually {fmt.count(r.baseline)})")
            break
    if not impact.abandoned_value and not impact.tickets:   # say what users felt
        felt = [r for r in inc.signals if not r.name.startswith(BACK_END)]
        parts += [_reading_text(r) for r in felt[:1] if not r.name.startswith("feedback.")]
    return f"{_window_text(inc.start, inc.end)}: " + "; ".join(parts) + "."


def _give_or_take(value: float, se: float, show: Callable[[float], str]) -> str:
    """' (± 640)': two standard errors, where they are more than a fifth of the value (a
    few carts at night: the window's ordinary traffic weighs as much as the incident)."""
    return f" (± {show(2 * se)})" if 2 * se > 0.2 * value else ""


LABELS = {
    "api.requests": "requests per hour", "api.server_error_rate": "5xx rate",
    "api.p95_ms": "p95 latency", "pages.p75_load_ms": "p75 load time",
    "cart.abandoned_carts": "abandoned carts per hour",
    "cart.abandoned_value": "abandoned value per hour",
    "sessions.dropped_at_checkout": "sessions dropped at checkout per hour",
    "feedback.negative": "negative comments per hour",
    "feedback.negative_about": "negative comments per hour",
    "support.new_tickets": "new tickets per hour", "system.cpu_pct": "CPU",
    "system.memory_pct": "memory", "system.failed_probes": "failed health probes per hour",
}


def label(row: Mapping[str, Any]) -> str:
    """'payment-api 5xx rate'; signals over everything ('all') name only the measure."""
    what = LABELS.get(row["name"], row["name"])
    if row["name"] == "feedback.negative_about":
        return f"Negative comments on {row['entity']} per hour"
    return what[0].upper() + what[1:] if row["entity"] == "all" else f"{row['entity']} {what}"




def compute(frames: Mapping[str, pd.DataFrame], period: Period, t: Thresholds,
            history: pd.DataFrame | None = None,
            links: Mapping[str, ServiceLinks] | None = None, top_n: int | None = None,
            currency: str = "") -> tuple[Section, list[Incident], pd.DataFrame]:
    """The incidents section, the incidents for kpis.json, and the period's hourly
    signal values for the archive; money in their sentences carries `currency`."""
    if not frames:
        return (Section(NAME, TITLE, "no data", "No data to look for incidents in."), [],
                archive_rows([], pd.DatetimeIndex([], tz="UTC"), period))
    found = detect(frames, period, t, history=history, links=links, top_n=top_n)
    hours, sigs = found.hours, list(found.signals)
    tz = period.start.tz
    in_period = np.asarray((hours >= period.start) & (hours < period.end))
    incidents = [dataclasses.replace(i, text=_sentence(i, currency)) if currency else i
                 for i in found.incidents]
    timeline = _timeline(hours[in_period], sigs, in_period, incidents, tz)
    insights = tuple(Insight("high", NAME, i.text, impact=1e12 + i.impact.abandoned_value)
                     for i in incidents)
    insights += tuple(Insight("medium", _domain(a.signals[0].name), a.text)
                      for a in found.back_end + found.user_felt)
    insights += tuple(Insight("medium", _domain(s.name), s.text) for s in found.shifts)
    message = "" if incidents else (
        "No incident: in no hour were a back-end service and what its users see (its pages, "
        "tickets, comments, carts) both unusual beyond the false-alarm bound "
        f"({t.incident_false_alarms:g} per period).")
    section = Section(
        NAME, TITLE, "ok", message, tables=_tables(found), charts=(timeline,),
        insights=insights,
        breakdowns={"count": len(incidents),
               "back_end_anomalies": [a.as_dict() for a in found.back_end],
               "user_felt_anomalies": [a.as_dict() for a in found.user_felt],
               "level_shifts": [s.as_dict() for s in found.shifts]})
    return section, incidents, archive_rows(sigs, hours, period)


def _domain(signal: str) -> str:
    """The report section a one-sided finding belongs to (api, system, support, ...)."""
    return {"sessions": "sessions", "cart": "cart", "feedback": "feedback", "pages": "pages",
            "support": "support", "system": "system"}.get(signal.split(".")[0], "api")


def _usual(r: Reading) -> str:
    """A usual count is an expected value: 0.4 tickets an hour is not 0."""
    if r.unit == "count" and r.baseline is not None and r.baseline < 10:
        return fmt.number(r.baseline, 1)
    return fmt.value(r.baseline, r.unit)


def _chance(p: float | None) -> str:
    return "–" if p is None else "< 1e-12" if p < 1e-12 else f"{p:.0e}".replace("e-0", "e-")


def _tables(found: Findings) -> tuple[Table, ...]:
    incidents = found.incidents
    windows_ = [_window_text(i.start, i.end) for i in incidents]
    table = pd.DataFrame([{
        "window": w, "services": ", ".join(i.services) or "–",
        "abandoned_carts": i.impact.abandoned_carts,
        "abandoned_value": i.impact.abandoned_value, "tickets": i.impact.tickets,
    } for w, i in zip(windows_, incidents)],
        columns=["window", "services", "abandoned_carts", "abandoned_value", "tickets"])

    def readings(items: Sequence[Any], who: str | None = None) -> pd.DataFrame:
        columns = ["window"] + ([who] if who else []) + ["signal", "peak", "usual", "chance"]
        return pd.DataFrame([{
            "window": _window_text(i.start, i.end),
            **({who: i.entity} if who else {}),
            # the service column already names a back-end signal's service
            "signal": label({"name": r.name, "entity": "all" if who and r.entity == i.entity
                             else r.entity}),
            "peak": fmt.value(r.peak, r.unit), "usual": _usual(r), "chance": _chance(r.p),
        } for i in items for r in i.signals], columns=columns)

    shifts = pd.DataFrame([{
        "signal": label({"name": s.name, "entity": s.entity}),
        "since": f"{s.start:%a %-d %b %H:%M}", "usual": fmt.value(s.before, s.unit),
        "now": fmt.value(s.after, s.unit), "kind": "still rising" if s.rising else "step",
    } for s in found.shifts], columns=["signal", "since", "usual", "now", "kind"])
    usual_note = ("Usual: the median of the same hour of the week over up to 4 earlier weeks "
                  "in the data or the archive (of the same hour of day when history is "
                  "short). Peak: the window's least likely hour. Chance: how likely that "
                  "hour was under its baseline.")
    return (
        Table("incidents", "Incidents, most costly first", table,
              {"abandoned_carts": "count", "abandoned_value": "money", "tickets": "count"},
              "Impact is what exceeded the usual level during the window."),
        Table("signals", "What each incident's signals did", readings(incidents), {},
              usual_note),
        Table("back_end", "Back-end anomalies users did not visibly feel",
              readings(found.back_end, "service"), {},
              "A back-end signal far from its usual level with no sign in the pages, "
              "tickets, comments or carts tied to that service."),
        Table("user_felt", "What users felt without a back-end cause",
              readings(found.user_felt), {},
              "Pages, tickets, comments or carts far from their usual level with no "
              "back-end service failing at the time."),
        Table("level_shifts", "Level shifts", shifts, {},
              "A change that lasted at least a day: the hours after it are judged against "
              "the new level."),
    )


def _window_text(start: pd.Timestamp, end: pd.Timestamp) -> str:
    if start.date() == (end - pd.Timedelta(seconds=1)).date():
        return f"{start:%a %-d %b %H:%M}–{end:%H:%M}"
    return f"{start:%a %-d %b %H:%M} – {end:%a %-d %b %H:%M}"


def _timeline(hours: pd.DatetimeIndex, sigs: list[Signal], in_period: np.ndarray,
              found: Sequence[Incident], tz: Any) -> Chart:
    """API 5xx rate, abandoned cart value and negative feedback per hour (per day when the
    period is longer than two weeks), incidents shaded."""
    def total(name: str, weight: bool = False) -> np.ndarray | None:
        chosen = [s for s in sigs if s.name == name]
        if not chosen:
            return None
        return sum(np.nan_to_num(s.values) * (s.events if weight else 1)
                   for s in chosen)[in_period]

    local = hours.tz_convert(tz)
    sums = pd.DataFrame(index=local)
    for column, values in (("errors", total("api.server_error_rate", weight=True)),
                           ("requests", total("api.requests")),
                           ("abandoned value", total("cart.abandoned_value")),
                           ("negative comments", total("feedback.negative"))):
        if values is not None:
            sums[column] = values
    daily = len(local) > 14 * 24
    if daily and len(sums.columns):
        sums = sums.groupby(local.floor("D") if len(local) else local).sum()
    data = pd.DataFrame({"hour": sums.index})
    if "requests" in sums:
        with np.errstate(all="ignore"):
            data["5xx rate (%)"] = (sums["errors"] / sums["requests"].where(
                sums["requests"] > 0)).to_numpy()
    for column in ("abandoned value", "negative comments"):
        if column in sums:
            data[column] = sums[column].to_numpy()
    shade = [(i.start, i.end) for i in found]
    unit = "day" if daily else "hour"
    return Chart("incidents_timeline", "stacked_lines",
                 f"API errors, abandoned carts and negative feedback per {unit}", data,
                 {"x": "hour", "shade": shade})
