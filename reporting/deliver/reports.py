"""Email delivery of the archived PDFs: SMTP with retries, or the outbox folder.

Each audience's message goes to its recipients at most once: before talking to the
server, each recipient is claimed in the archive index (a row in state "sending"), so
no two processes send the same (period, audience, recipient); every attempt keeps its
row. A rerun sends only what failed (or everything with `force`). Once the server has
accepted the message (250 to the end of DATA) it is delivered, whatever happens to the
QUIT; a conversation that ends after the message was sent but before the server's
answer is "unknown" and is not sent again without `force`. Each conversation has an
overall deadline besides the socket timeout. A server that is down or refuses never
costs a report: the PDFs are built and archived before anything is sent.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import i18n
from ..core.config import Audience, Config, SmtpConfig
from ..core.errors import DeliveryError, ReportError
from ..core.i18n import gettext as _
from ..store.archive import Archive
from ..store.files import atomic_write
from ..store.paths import inside, report_folder
from ..store.publish import kpis_digest
from . import channels
from .compose import compose, one_line, quoted, text_body
from .smtp import send

log = logging.getLogger(__name__)


OUTBOX = "(outbox)"          # the recipient recorded for a message written to the outbox
DONE = ("delivered", "written")


@dataclass
class Outcome:
    """What one delivery run did."""

    sent: list[tuple[str, str]] = field(default_factory=list)      # (audience, recipient)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # already delivered
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (+ error)
    unknown: list[tuple[str, str, str]] = field(default_factory=list)  # the server may have it
    written: list[Path] = field(default_factory=list)              # outbox files
    warnings: list[str] = field(default_factory=list)
    channel_sent: list[tuple[str, str]] = field(default_factory=list)     # (audience, label)
    channel_skipped: list[tuple[str, str]] = field(default_factory=list)
    channel_failed: list[tuple[str, str, str]] = field(default_factory=list)  # (+ error)


# --- the delivery run ---------------------------------------------------------------------

def deliver(config: Config, output_dir: Path, period_id: str, audiences: Iterable[str],
            *, force: bool = False, sleep: Callable[[float], None] = time.sleep,
            channels: bool = True) -> Outcome:
    """Mail each audience's archived PDF of `period_id` at most once per recipient, and
    post it to each of its `notify` channels (unless `channels` is false) at most once
    per channel; record every attempt."""
    outcome = Outcome()
    folder = report_folder(output_dir, period_id)
    doc_path = folder / "kpis.json"
    if not doc_path.exists():
        raise ReportError(f"No report for {period_id} in {output_dir}: build it first.")
    document = json.loads(doc_path.read_text())
    label = document.get("period", {}).get("label") or period_id
    with Archive.of(config, output_dir) as store:
        for name in audiences:
            audience = config.audiences[name]
            pdf = inside(output_dir, folder / f"{name}.pdf")
            own = folder / f"kpis-{name}.json"      # a sliced audience's own numbers
            doc = json.loads(own.read_text()) if audience.filters and own.exists() else document
            if not pdf.exists():
                raise ReportError(f"{pdf} does not exist: build the PDF before sending.")
            _same_build(folder, pdf, document)
            _check_archived(store, period_id, name, pdf)
            said = page_words(folder, name, i18n.of(audience, config))
            with i18n.speaking(i18n.of(audience, config) if said else None):
                if channels and audience.notify:
                    _post(store, config, audience, period_id, label, doc, pdf, force, sleep,
                          outcome, said)
                claimed = _claim(store, config, period_id, name, force, outcome,
                                 posted=channels and bool(audience.notify))
                if not claimed:
                    continue
                msg, warning = compose(
                    audience=audience, period_id=period_id, period_label=label, document=doc,
                    pdf=pdf, recipients=audience.recipients, smtp=config.smtp,
                    archive_path=str(pdf.resolve()), said=said,
                    public_url=config.public_url
                    if (folder / "html" / f"{name}.html").exists() else "")
            if warning:
                outcome.warnings.append(warning)
            message_id = msg["Message-ID"]
            try:
                if not config.smtp.host:
                    path = atomic_write(output_dir / "outbox" / f"{period_id}-{name}.eml",
                                        msg.as_bytes())
                    results = {OUTBOX: ("written", "", 1)}
                    outcome.written.append(path)
                else:
                    results = send(config.smtp, msg, list(claimed), sleep=sleep)
            except Exception as exc:     # no claim stays "sending" behind us
                for row in claimed.values():
                    store.finish_delivery(row, "failed", 0, str(exc), message_id)
                raise
            _finish(store, claimed, results, message_id, name, outcome)
    return outcome


def _finish(store: Archive, claimed: Mapping[str, Any], results: Mapping[str, tuple],
            message_id: str, name: str, outcome: Outcome) -> None:
    """Each recipient's claim closed with what the server said, and counted."""
    for recipient, (status, error, attempts) in results.items():
        store.finish_delivery(claimed[recipient], status, attempts, error or None, message_id)
        if status in DONE:
            outcome.sent.append((name, recipient))
        elif status == "unknown":
            outcome.unknown.append((name, recipient, error))
        else:
            outcome.failed.append((name, recipient, error))


def page_words(folder: Path, name: str, voice: i18n.Voice) -> dict[str, Any] | None:
    """The words an audience of another language than English reads in its mail, as its
    page said them (`mail/<audience>.json`, written by the same build); None for English,
    or when the file is missing or was written in another locale (the mail then quotes
    kpis.json in English)."""
    if voice.english:
        return None
    try:
        said = json.loads((folder / "mail" / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return said if isinstance(said, dict) and said.get("locale") == voice.name else None


def report_link(config: Config, period_id: str, pdf: Path) -> str:
    """Where people open the PDF: under `public_url` when the output folder is published,
    else its path in the archive."""
    public = config.public_url
    if public:
        return f"{public.rstrip('/')}/reports/{period_id}/{pdf.name}"
    return str(pdf.resolve())


def _post(store: Archive, config: Config, audience: Audience, period_id: str, label: str,
          document: Mapping[str, Any], pdf: Path, force: bool,
          sleep: Callable[[float], None], outcome: Outcome,
          said: Mapping[str, Any] | None = None) -> None:
    """The audience's chat and webhook channels: claimed like mail, one row per claim."""
    kpis, insights = quoted(document, audience, said)
    label = said["period_label"] if said else label
    link = report_link(config, period_id, pdf)
    files = [f for kind, f in (("pdf", pdf), ("csv", pdf.with_suffix(".csv")))
             if kind in audience.attach and f.exists()]

    def body(attached: bool) -> str:
        note = "" if attached else _("The full report: %(link)s") % {"link": link}
        return text_body(audience, label, kpis, insights, note)

    for channel in map(channels.Channel, audience.notify):
        claimed, skipped = store.claim(period_id, audience.name, [channel.key], force=force)
        if skipped:
            outcome.channel_skipped.append((audience.name, channel.label))
            continue
        row = claimed[channel.key]
        try:
            status, error, tries = channels.send(
                channel, one_line(f"{_(audience.title)}, {period_id}"), body, files,
                sleep=sleep)
        except Exception as exc:     # no claim stays "sending" behind us
            store.finish_delivery(row, "failed", 0, f"{type(exc).__name__}", None)
            raise
        store.finish_delivery(row, status, tries, error or None, None)
        if status == "delivered":
            outcome.channel_sent.append((audience.name, channel.label))
        else:               # said once, by whoever reports the outcome (failure_sentence)
            outcome.channel_failed.append((audience.name, channel.label, error))


def _same_build(folder: Path, pdf: Path, document: Mapping[str, Any]) -> None:
    """Refuse to mail a PDF built from other KPI values than the kpis.json the body quotes."""
    try:
        outputs = json.loads((folder / "manifest.json").read_text()).get("outputs", {})
    except (OSError, ValueError):
        outputs = {}
    entry = outputs.get(pdf.name) or {}
    if entry.get("kpis") != kpis_digest(document):
        raise ReportError(f"{pdf} was not built from the KPIs in {folder / 'kpis.json'}; "
                          f"rebuild {folder.name} with --format pdf before sending.")


def _claim(store: Archive, config: Config, period_id: str, name: str, force: bool,
           outcome: Outcome, posted: bool = False) -> dict[str, int]:
    """The recipients this run may send to (claimed rows), with a warning for each one it
    may not, and for an audience without recipients (unless its channels had it)."""
    audience = config.audiences[name]
    if not audience.recipients:
        if not posted:
            outcome.warnings.append(
                f"The {name} audience has no recipients (audiences.{name}.recipients in the "
                "config); its report was not mailed.")
        return {}
    recipients = list(audience.recipients) if config.smtp.host else [OUTBOX]
    claimed, skipped = store.claim(period_id, name, recipients, force=force)
    for r, status in skipped.items():
        outcome.skipped.append((name, r))
        if status == "unknown":
            outcome.warnings.append(
                f"{name} to {r}: an earlier send may have reached the server (its outcome "
                "is unknown); not sent again without --force.")
        elif status == "sending":
            outcome.warnings.append(f"{name} to {r}: another process is sending it right "
                                    "now; not sent twice.")
    return claimed


def _check_archived(store: Archive, period_id: str, audience: str, pdf: Path) -> None:
    """Only the PDF the archive recorded is mailed."""
    row = store.latest_build(period_id, audience, suffix=".pdf")
    digest = hashlib.sha256(pdf.read_bytes()).hexdigest()
    if row is None or row["sha256"] != digest:
        raise ReportError(
            f"{pdf} is not the file the archive recorded for {period_id} "
            f"({'no build row' if row is None else 'its checksum no longer matches'}); "
            f"rebuild it (build-report --period {period_id} -a {audience}) before sending.")


def failure_sentence(smtp: SmtpConfig, outcome: Outcome) -> str:
    parts = []
    if outcome.channel_failed:
        a, where, error = outcome.channel_failed[-1]
        parts.append(f"{len(outcome.channel_failed)} channel message(s) were not delivered "
                     f"(last: the {a} report to {where}: {error}); the reports are built and "
                     "archived, and the next run or `reporting send` retries them")
    if outcome.failed:
        parts.append(f"{len(outcome.failed)} message(s) were not delivered through "
                     f"{smtp.host}:{smtp.port} (last error: {outcome.failed[-1][2]}); the "
                     "reports are built and archived, and the next run or `reporting send` "
                     "retries them")
    if outcome.unknown:
        parts.append(f"{len(outcome.unknown)} message(s) to {smtp.host}:{smtp.port} have an "
                     f"unknown outcome ({outcome.unknown[-1][2]}); they are not sent again "
                     "unless `reporting send --force` asks")
    return "; ".join(parts) + "."


def raise_if_failed(smtp: SmtpConfig, outcome: Outcome) -> None:
    if outcome.failed or outcome.unknown or outcome.channel_failed:
        raise DeliveryError(failure_sentence(smtp, outcome))
