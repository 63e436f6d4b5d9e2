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
import html
import io
import logging
import os
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any

from . import formatting, site
from .archive import Archive
from .audience import audience_view
from .config import Audience, Config, SmtpConfig
from .errors import DeliveryError, ReportError
from .files import atomic_write, report_folder
from .guard import inside

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


class TemporaryFailure(Exception):
    """A failure worth retrying: connection trouble or a 4xx reply."""


class PermanentFailure(Exception):
    """A 5xx reply: retrying will not help."""


class UnknownOutcome(Exception):
    """The message was sent but the server's answer never came: it may have it."""


def one_line(text: str) -> str:
    """Header-safe text: no CR/LF, so a title or period id cannot add headers."""
    return " ".join(str(text).split())


def new_message(smtp: SmtpConfig, subject: str, recipients: Iterable[str]) -> EmailMessage:
    """A message with its headers (Subject, From, To, Date, Message-ID), each one line so
    no title or address can add a header."""
    msg = EmailMessage()
    msg["Subject"] = one_line(subject)
    msg["From"] = one_line(smtp.sender)
    to = [one_line(r) for r in recipients if r]
    msg["To"] = ", ".join(to) if to else "undisclosed-recipients:;"
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = make_msgid(domain=parseaddr(smtp.sender)[1].rpartition("@")[2]
                                   or "localhost")
    return msg


def compose(*, audience: Audience, period_id: str, period_label: str,
            document: Mapping[str, Any], pdf: Path, recipients: Iterable[str],
            smtp: SmtpConfig, archive_path: str, public_url: str = ""
            ) -> tuple[EmailMessage, str | None]:
    """The message for one audience; returns it and a warning when the PDF was too big.
    With `public_url`, it links to the published HTML report and the archive index."""
    msg = new_message(smtp, f"{audience.title}, {period_id}", recipients)
    kpis = _headline(document, audience)
    insights = list(audience_view(document, audience).insights[:5])
    size = pdf.stat().st_size
    too_big = size > smtp.max_attachment_mb * 1024 * 1024
    warning = None
    note = ""
    partial = document.get("coverage_notes") or []
    if partial:   # the same warning as page 1 of the PDF
        kpis = [{"label": "Partial data", "value": ". ".join(partial), "change": "",
                 "tone": None, "status": "warn"}] + kpis
    if too_big:
        warning = (f"{pdf.name} is {size / 1024 / 1024:,.1f} MB, over the "
                   f"{smtp.max_attachment_mb:g} MB limit; the message gives its archive path.")
        note = f"The PDF ({size / 1024 / 1024:,.1f} MB) is too large to attach: {archive_path}"
    links = site.public_links(public_url, period_id, audience.name) if public_url else []
    msg.set_content(_text_body(audience, period_label, kpis, insights, note, links))
    msg.add_alternative(_html_body(audience, period_label, kpis, insights, note, links),
                        subtype="html")
    if not too_big:
        msg.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf",
                           filename=f"{audience.name}-{period_id}.pdf")
    table = pdf.with_suffix(".csv")
    if "csv" in audience.attach and table.exists():
        msg.add_attachment(table.read_bytes(), maintype="text", subtype="csv",
                           filename=f"{audience.name}-{period_id}.csv")
    return msg, warning


def _headline(document: Mapping[str, Any], audience: Audience) -> list[dict[str, Any]]:
    return [{"label": k["label"], "value": formatting.value(k["value"], k["unit"]),
             "change": f"{k['arrow']} {k['change']}".strip() if k["change"] else "",
             "tone": k["tone"], "status": k["status"]}
            for k in audience_view(document, audience).headline]


def _text_body(audience: Audience, period_label: str, kpis: list[dict[str, Any]],
               insights: list[dict[str, str]], note: str,
               links: list[tuple[str, str]] = ()) -> str:
    lines = [f"{audience.title}: {period_label}", ""]
    lines += [f"- {k['label']}: {k['value']}" + (f" ({k['change']} vs previous)"
                                                  if k["change"] else "") for k in kpis]
    if insights:
        lines += ["", "What stands out:"] + [f"- {i['text']}" for i in insights]
    lines += ["", note or "The full report is attached as a PDF."]
    lines += [f"{text}: {url}" for text, url in links]
    return "\n".join(lines) + "\n"


STATUS_COLOUR = {"good": "#009E73", "warn": "#B07700", "bad": "#D55E00"}
TONE_COLOUR = {"good": "#00734f", "bad": "#b34700"}     # as the PDF's .tone-good/.tone-bad


def _html_body(audience: Audience, period_label: str, kpis: list[dict[str, Any]],
               insights: list[dict[str, str]], note: str,
               links: list[tuple[str, str]] = ()) -> str:
    """Inline styles only and no remote images: renders the same in common mail clients."""
    e = html.escape
    rows = "".join(
        f'<tr><td style="padding:4px 12px 4px 0;color:#555">{e(k["label"])}</td>'
        f'<td style="padding:4px 12px 4px 0;font-weight:bold;'
        f'color:{STATUS_COLOUR.get(k["status"] or "", "#222")}">{e(k["value"])}</td>'
        f'<td style="padding:4px 0;color:{TONE_COLOUR.get(k["tone"] or "", "#777")}">'
        f'{e(k["change"])}</td></tr>' for k in kpis)
    items = "".join(f'<li style="margin:0 0 6px 0">{e(i["text"])}</li>' for i in insights)
    return (
        '<div style="font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#222">'
        f'<h2 style="color:#0b3c5d;margin:0 0 4px 0">{e(audience.title)}</h2>'
        f'<p style="margin:0 0 12px 0;color:#555">{e(period_label)}</p>'
        f'<table style="border-collapse:collapse">{rows}</table>'
        + (f'<h3 style="margin:16px 0 6px 0">What stands out</h3><ul>{items}</ul>'
           if items else "")
        + f'<p style="color:#555">{e(note or "The full report is attached as a PDF.")}</p>'
        + "".join(f'<p style="margin:0 0 6px 0"><a href="{e(url)}" style="color:#0b5cad">'
                  f'{e(text)}</a></p>' for text, url in links)
        + '</div>')


# --- sending ------------------------------------------------------------------------------

def smtp_password(smtp: SmtpConfig) -> str | None:
    """The password, from the environment variable the config names (never logged)."""
    if not smtp.password_env:
        return None
    value = os.environ.get(smtp.password_env)
    if value is None:
        raise ReportError(f"smtp.password_env names {smtp.password_env}, but that "
                          "environment variable is not set.")
    return value


def deadline_s(smtp: SmtpConfig) -> float:
    """How long one whole SMTP conversation may take."""
    return smtp.deadline_s or 4 * smtp.timeout


def send(smtp: SmtpConfig, msg: EmailMessage, recipients: list[str],
         sleep: Callable[[float], None] = time.sleep) -> dict[str, tuple[str, str, int]]:
    """Send to `recipients`, retrying temporary failures with exponential backoff;
    returns recipient -> (delivered | failed | unknown, error or '', attempts).

    Nothing is retried once the server may have the message."""
    pending = list(recipients)
    results: dict[str, tuple[str, str]] = {}
    password = smtp_password(smtp)
    attempts = 0
    while pending:
        attempts += 1
        try:
            refused = _send_once(smtp, msg, pending, password)
        except UnknownOutcome as exc:
            results.update({r: ("unknown", str(exc)) for r in pending})
            break
        except TemporaryFailure as exc:
            error = str(exc)
            if attempts > smtp.retries:
                results.update({r: ("failed", error) for r in pending})
                break
            log.info("temporary failure (%s); retrying in %.1f s", error,
                     smtp.retry_base_s * 2 ** (attempts - 1))
            sleep(smtp.retry_base_s * 2 ** (attempts - 1))
            continue
        except PermanentFailure as exc:
            results.update({r: ("failed", str(exc)) for r in pending})
            break
        retry = []
        for r in pending:
            if r not in refused:
                results[r] = ("delivered", "")
            elif 400 <= refused[r][0] < 500 and attempts <= smtp.retries:
                retry.append(r)
            else:
                results[r] = ("failed", f"{refused[r][0]} {refused[r][1]}")
        if retry:
            sleep(smtp.retry_base_s * 2 ** (attempts - 1))
        pending = retry
    return {r: (status, error, attempts) for r, (status, error) in results.items()}


def _payload(msg: EmailMessage) -> bytes:
    """The message as sent after DATA: CRLF lines, dots doubled, the final dot line."""
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=msg.policy.clone(linesep="\r\n")).flatten(msg)
    data = re.sub(rb"(?m)^\.", b"..", buffer.getvalue())
    return data + (b"" if data.endswith(b"\r\n") else b"\r\n") + b".\r\n"


def _send_once(smtp: SmtpConfig, msg: EmailMessage, recipients: list[str],
               password: str | None) -> dict[str, tuple[int, str]]:
    """One connection, one transaction, within the overall deadline; refused recipients
    with their codes. Once the server accepted the message, the rest is a courtesy."""
    context = ssl.create_default_context(cafile=smtp.ca_file or None)
    limit = deadline_s(smtp)
    client: smtplib.SMTP = (smtplib.SMTP_SSL(timeout=smtp.timeout, context=context)
                            if smtp.security == "ssl" else smtplib.SMTP(timeout=smtp.timeout))
    expired = threading.Event()

    def expire() -> None:       # ends a conversation that trickles past the deadline
        expired.set()
        sock = getattr(client, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(limit, expire)
    timer.daemon = True
    sent: list[bool] = []       # [True] once the whole message went out
    timer.start()
    client._host = smtp.host     # what TLS checks the certificate against
    try:
        client.connect(smtp.host, smtp.port)
        if expired.is_set():
            raise TemporaryFailure(f"no complete answer within the {limit:g} s deadline")
        refused = _transaction(client, smtp, msg, recipients, password, context, sent)
    except smtplib.SMTPAuthenticationError as exc:
        client.close()
        raise PermanentFailure(f"login refused: {exc.smtp_code} {_text(exc.smtp_error)}") \
            from None
    except smtplib.SMTPResponseException as exc:
        client.close()
        text = f"{exc.smtp_code} {_text(exc.smtp_error)}"
        if 400 <= exc.smtp_code < 500:
            raise TemporaryFailure(text) from None
        raise PermanentFailure(text) from None
    except ssl.SSLError as exc:
        client.close()
        raise PermanentFailure(f"TLS failed: {exc.reason or exc}") from None
    except (smtplib.SMTPException, OSError) as exc:
        client.close()
        why = (f"no complete answer within the {limit:g} s deadline" if expired.is_set()
               else f"{type(exc).__name__}: {exc}")
        if sent:
            raise UnknownOutcome(f"the message was sent but the server's answer never came "
                                 f"({why}); it may have been delivered") from None
        raise TemporaryFailure(why) from None
    finally:
        timer.cancel()
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        client.close()
    return refused


def _transaction(client: smtplib.SMTP, smtp: SmtpConfig, msg: EmailMessage,
                 recipients: list[str], password: str | None, context: ssl.SSLContext,
                 sent: list[bool]) -> dict[str, tuple[int, str]]:
    """EHLO, TLS, login, MAIL, RCPT, DATA; returns the refused recipients."""
    client.ehlo_or_helo_if_needed()
    if smtp.security == "starttls":
        client.starttls(context=context)
        client.ehlo()
    if smtp.username:
        client.login(smtp.username, password or "")
    code, reply = client.mail(parseaddr(smtp.sender)[1])
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, smtp.sender)
    refused: dict[str, tuple[int, str]] = {}
    for r in recipients:
        code, reply = client.rcpt(r)
        if code not in (250, 251):
            refused[r] = (code, _text(reply))
    if len(refused) < len(recipients):
        client.putcmd("data")
        code, reply = client.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        client.send(_payload(msg))
        sent.append(True)
        code, reply = client.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
    return refused


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# --- the delivery run ---------------------------------------------------------------------

def deliver(config: Config, output_dir: Path, period_id: str, audiences: Iterable[str],
            *, force: bool = False, sleep: Callable[[float], None] = time.sleep,
            channels: bool = True) -> Outcome:
    """Mail each audience's archived PDF of `period_id` at most once per recipient, and
    post it to each of its `notify` channels (unless `channels` is false) at most once
    per channel; record every attempt."""
    import json

    outcome = Outcome()
    folder = report_folder(output_dir, period_id)
    doc_path = folder / "kpis.json"
    if not doc_path.exists():
        raise ReportError(f"No report for {period_id} in {output_dir}: build it first.")
    document = json.loads(doc_path.read_text())
    label = document.get("period", {}).get("label") or period_id
    with Archive(output_dir) as store:
        for name in audiences:
            audience = config.audiences[name]
            pdf = inside(output_dir, folder / f"{name}.pdf")
            own = folder / f"kpis-{name}.json"      # a sliced audience's own numbers
            doc = json.loads(own.read_text()) if audience.filters and own.exists() else document
            if not pdf.exists():
                raise ReportError(f"{pdf} does not exist: build the PDF before sending.")
            _same_build(folder, pdf, document)
            _check_archived(store, period_id, name, pdf)
            if channels and audience.notify:
                _post(store, config, audience, period_id, label, doc, pdf, force, sleep, outcome)
            claimed = _claim(store, config, period_id, name, force, outcome,
                             posted=channels and bool(audience.notify))
            if not claimed:
                continue
            msg, warning = compose(audience=audience, period_id=period_id, period_label=label,
                                   document=doc, pdf=pdf, recipients=audience.recipients,
                                   smtp=config.smtp, archive_path=str(pdf.resolve()),
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


def report_link(config: Config, period_id: str, pdf: Path) -> str:
    """Where people open the PDF: under `public_url` when the output folder is published,
    else its path in the archive."""
    public = config.public_url
    if public:
        return f"{public.rstrip('/')}/reports/{period_id}/{pdf.name}"
    return str(pdf.resolve())


def _post(store: Archive, config: Config, audience: Audience, period_id: str, label: str,
          document: Mapping[str, Any], pdf: Path, force: bool,
          sleep: Callable[[float], None], outcome: Outcome) -> None:
    """The audience's chat and webhook channels: claimed like mail, one row per claim."""
    from . import channels

    kpis = _headline(document, audience)
    insights = list(audience_view(document, audience).insights[:5])
    link = report_link(config, period_id, pdf)
    files = [f for kind, f in (("pdf", pdf), ("csv", pdf.with_suffix(".csv")))
             if kind in audience.attach and f.exists()]

    def body(attached: bool) -> str:
        note = "" if attached else f"The full report: {link}"
        return _text_body(audience, label, kpis, insights, note)

    for channel in map(channels.Channel, audience.notify):
        claimed, skipped = store.claim(period_id, audience.name, [channel.key], force=force)
        if skipped:
            outcome.channel_skipped.append((audience.name, channel.label))
            continue
        row = claimed[channel.key]
        try:
            status, error, tries = channels.send(
                channel, one_line(f"{audience.title}, {period_id}"), body, files, sleep=sleep)
        except Exception as exc:     # no claim stays "sending" behind us
            store.finish_delivery(row, "failed", 0, f"{type(exc).__name__}", None)
            raise
        store.finish_delivery(row, status, tries, error or None, None)
        if status == "delivered":
            outcome.channel_sent.append((audience.name, channel.label))
        else:
            log.warning("%s report to %s not delivered: %s", audience.name, channel.label,
                        error)
            outcome.channel_failed.append((audience.name, channel.label, error))


def _same_build(folder: Path, pdf: Path, document: Mapping[str, Any]) -> None:
    """Refuse to mail a PDF built from other KPI values than the kpis.json the body quotes."""
    import json

    from .kpis import digest

    try:
        outputs = json.loads((folder / "manifest.json").read_text()).get("outputs", {})
    except (OSError, ValueError):
        outputs = {}
    entry = outputs.get(pdf.name) or {}
    if entry.get("kpis") != digest(document):
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
    row = store.latest_build(period_id, audience)
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
