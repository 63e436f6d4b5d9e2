"""Alerts between reports: `reporting alert` looks in the newest `lookback_hours` of data
for what `[alerts] on` names (cross-signal incidents and back-end anomalies by default;
user-felt anomalies and level shifts on request) and sends each new one once, by mail and
to the `[alerts]` channels.

A finding is the same one as an archived alert when their windows overlap or touch and
they name a service in common (or either names none): a later run that sees it grow, or
sees a back-end anomaly become an incident as users feel it, updates the archived window
and sends nothing.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .compute.coverage import data_span
from .compute.incidents import section as incidents
from .core import formatting, i18n
from .core.config import Config
from .core.errors import DeliveryError, ReportError
from .core.i18n import gettext as _
from .core.periods import BASELINE_WEEKS, Period
from .deliver import channels
from .deliver.compose import new_message
from .deliver.reports import OUTBOX, report_link
from .deliver.smtp import send
from .ingest.engine.load import load
from .store.archive import Archive
from .store.files import atomic_write

AUDIENCE = "alerts"          # the deliveries rows of alerts carry this audience name


@dataclass
class AlertOutcome:
    new: list[dict[str, Any]] = field(default_factory=list)       # alerted now
    known: list[dict[str, Any]] = field(default_factory=list)     # alerted before
    failed: list[tuple[str, str]] = field(default_factory=list)   # (where, error)
    searched: tuple[pd.Timestamp, pd.Timestamp] | None = None   # the hours looked at


def lookback(frames: dict[str, pd.DataFrame], hours: float,
             now: datetime | None = None) -> Period:
    """The newest `hours` of data in whole hours, ending with the hour of the newest
    timestamp once the clock (`now`) has passed that hour's end, else the hour before: an
    hour still being written is not judged (its falls in traffic are only its future)."""
    span = data_span(frames)
    if span is None:
        raise ReportError("No timestamped data to look for incidents in.")
    clock = pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC")
    end = span[1].floor("h") + pd.Timedelta(hours=1)
    if clock.tz_convert("UTC") < end:
        end -= pd.Timedelta(hours=1)
    start = end - pd.Timedelta(hours=hours)
    return Period(f"alert-{start:%Y%m%dT%H%M}", start, end)


def run(config: Config, data_dir: Path, output_dir: Path, *,
        sleep: Callable[[float], None] = time.sleep, now: datetime | None = None
        ) -> AlertOutcome:
    """Detect, record and send; every new incident once (`now`: the clock, which bounds
    the timestamps accepted, as in a build)."""
    loaded = load(config, data_dir, now=now)
    frames = loaded.frames
    recent = lookback(frames, config.alerts.lookback_hours, now)
    outcome = AlertOutcome(searched=(recent.start, recent.end))
    with Archive.of(config, output_dir) as store:
        history = store.signal_history(recent.start - pd.Timedelta(weeks=BASELINE_WEEKS),
                                       recent.start)
        section, typed, _ = incidents.compute(
            frames, recent, config.thresholds, history, links=config.service_map,
            top_n=config.top_n, currency=config.currency, maintenance=config.maintenance)
        found = wanted(config.alerts.on, [i.as_dict() for i in typed], section.breakdowns,
                       recent)
        link = _it_report(store, config)
        for incident in found:
            alert_id, is_new = store.record_alert(incident)
            (outcome.new if is_new else outcome.known).append(incident)
            # Claimed like mail: a known alert's delivered messages are not sent again,
            # its failed ones are retried.
            _send(store, config, output_dir, alert_id, incident, link, sleep, outcome)
    return outcome


def wanted(on: tuple[str, ...], found: list[dict[str, Any]], breakdowns: dict[str, Any],
           recent: Period) -> list[dict[str, Any]]:
    """What `[alerts] on` asks for, oldest first, each as an alert: start, end, the
    services it names and its sentence (a level shift lasts to the end of the hours
    searched)."""
    picked = list(found) if "incidents" in on else []
    for kind, key in (("back_end", "back_end_anomalies"), ("user_felt", "user_felt_anomalies")):
        if kind in on:
            picked += [{**a, "services": [a["entity"]] if kind == "back_end" else []}
                       for a in breakdowns.get(key, [])]
    if "level_shifts" in on:
        picked += [{**s, "end": recent.end.isoformat(), "services": [s["entity"]]}
                   for s in breakdowns.get("level_shifts", [])]
    return sorted(picked, key=lambda a: a["start"])


def _it_report(store: Archive, config: Config) -> str:
    for row in sorted(store.periods(), key=lambda r: r.end, reverse=True):
        if "it" in row.audiences:
            built = store.latest_build(row.period_id, "it")
            if built:
                return report_link(config, row.period_id, store._abs(built["path"]))
    return ""


def message(incident: dict[str, Any], link: str, voice: i18n.Voice | None = None
            ) -> tuple[str, str]:
    """Title and body of one alert in `voice` (`[alerts] locale`, else the top-level one;
    None: English, times in their own zone): the incident's sentence and the IT report's
    link."""
    with i18n.speaking(voice):
        start = pd.Timestamp(incident["start"])
        services = ", ".join(incident["services"]) or _("several services")
        kind = (_("Incident") if "impact" in incident else
                _("Level shift") if "before" in incident else _("Anomaly"))
        title = _("%(kind)s: %(services)s since %(when)s") % {
            "kind": kind, "services": services, "when": formatting.when(start, "datetime")}
        body = i18n.gettext(incident["text"]) + "\n\n" + (
            _("IT report: %(link)s") % {"link": link} if link else
            _("No IT report is archived yet."))
    return title, body


def _send(store: Archive, config: Config, output_dir: Path, alert_id: str,
          incident: dict[str, Any], link: str, sleep: Callable[[float], None],
          outcome: AlertOutcome) -> None:

    title, body = message(incident, link,
                          i18n.voice(config.alerts.locale or config.locale, config.tz))
    for url in config.alerts.notify:
        channel = channels.Channel(url)
        claimed, _ = store.claim(alert_id, AUDIENCE, [channel.key])
        if not claimed:
            continue
        status, error, tries = channels.send(channel, title, lambda attached: body, [],
                                             sleep=sleep)
        store.finish_delivery(claimed[channel.key], status, tries, error or None, None)
        if status != "delivered":
            outcome.failed.append((channel.label, error))
    if not config.alerts.recipients:
        return
    smtp = config.smtp
    recipients = list(config.alerts.recipients) if smtp.host else [OUTBOX]
    claimed, _ = store.claim(alert_id, AUDIENCE, recipients)
    if not claimed:
        return
    msg = new_message(smtp, title, config.alerts.recipients)
    msg.set_content(body + "\n")
    if smtp.host:
        results = send(smtp, msg, list(claimed), sleep=sleep)
    else:
        atomic_write(output_dir / "outbox" / f"{alert_id}.eml", msg.as_bytes())
        results = {OUTBOX: ("written", "", 1)}
    for r, (status, error, tries) in results.items():
        store.finish_delivery(claimed[r], status, tries, error or None, msg["Message-ID"])
        if status not in ("delivered", "written"):
            outcome.failed.append((f"{smtp.host}:{smtp.port}", error))


def raise_if_failed(outcome: AlertOutcome) -> None:
    if outcome.failed:
        where, error = outcome.failed[-1]
        raise DeliveryError(f"{len(outcome.failed)} alert message(s) were not delivered "
                            f"(last: to {where}: {error}); the alerts are recorded, and the "
                            "next `reporting alert` retries them.")
