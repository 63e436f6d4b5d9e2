"""Email delivery of the archived PDFs: SMTP with retries, or the outbox folder.

Each audience's message goes to its recipients once: every delivery is recorded in
the archive index, so a rerun sends only what was not delivered (or everything with
`force`). A server that is down or refuses never costs a report: the PDFs are built
and archived before anything is sent.
"""
from __future__ import annotations

import html
import logging
import os
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from pathlib import Path
from typing import Any

from . import formatting
from .archive import Archive, now_iso
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
    written: list[Path] = field(default_factory=list)              # outbox files
    warnings: list[str] = field(default_factory=list)


class TemporaryFailure(Exception):
    """A failure worth retrying: connection trouble or a 4xx reply."""


class PermanentFailure(Exception):
    """A 5xx reply: retrying will not help."""


def one_line(text: str) -> str:
    """Header-safe text: no CR/LF, so a title or period id cannot add headers."""
    return " ".join(str(text).split())


def compose(*, audience: Audience, period_id: str, period_label: str,
            document: Mapping[str, Any], pdf: Path, recipients: Iterable[str],
            smtp: SmtpConfig, archive_path: str) -> tuple[EmailMessage, str | None]:
    """The message for one audience; returns it and a warning when the PDF was too big."""
    msg = EmailMessage()
    msg["Subject"] = one_line(f"{audience.title}, {period_id}")
    msg["From"] = one_line(smtp.sender)
    to = [one_line(r) for r in recipients if r]
    msg["To"] = ", ".join(to) if to else "undisclosed-recipients:;"
    domain = parseaddr(smtp.sender)[1].rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(domain=domain)
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
    msg.set_content(_text_body(audience, period_label, kpis, insights, note))
    msg.add_alternative(_html_body(audience, period_label, kpis, insights, note),
                        subtype="html")
    if not too_big:
        msg.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf",
                           filename=f"{audience.name}-{period_id}.pdf")
    return msg, warning


def _headline(document: Mapping[str, Any], audience: Audience) -> list[dict[str, Any]]:
    return [{"label": k["label"], "value": formatting.value(k["value"], k["unit"]),
             "change": f"{k['arrow']} {k['change']}".strip() if k["change"] else "",
             "tone": k["tone"], "status": k["status"]}
            for k in audience_view(document, audience).headline]


def _text_body(audience: Audience, period_label: str, kpis: list[dict[str, Any]],
               insights: list[dict[str, str]], note: str) -> str:
    lines = [f"{audience.title}: {period_label}", ""]
    lines += [f"- {k['label']}: {k['value']}" + (f" ({k['change']} vs previous)"
                                                  if k["change"] else "") for k in kpis]
    if insights:
        lines += ["", "What stands out:"] + [f"- {i['text']}" for i in insights]
    lines += ["", note or "The full report is attached as a PDF."]
    return "\n".join(lines) + "\n"


STATUS_COLOUR = {"good": "#009E73", "warn": "#B07700", "bad": "#D55E00"}
TONE_COLOUR = {"good": "#00734f", "bad": "#b34700"}     # as the PDF's .tone-good/.tone-bad


def _html_body(audience: Audience, period_label: str, kpis: list[dict[str, Any]],
               insights: list[dict[str, str]], note: str) -> str:
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
        '</div>')


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


def send(smtp: SmtpConfig, msg: EmailMessage, recipients: list[str],
         sleep: Callable[[float], None] = time.sleep) -> dict[str, tuple[str, str, int]]:
    """Send to `recipients`, retrying temporary failures with exponential backoff;
    returns recipient -> (delivered | failed, error or '', attempts)."""
    pending = list(recipients)
    results: dict[str, tuple[str, str]] = {}
    password = smtp_password(smtp)
    attempts = 0
    while pending:
        attempts += 1
        try:
            refused = _send_once(smtp, msg, pending, password)
        except TemporaryFailure as exc:
            error = str(exc)
            if attempts > smtp.retries:
                results.update({r: ("failed", error) for r in pending})
                break
            log.warning("temporary failure (%s); retrying in %.1f s", error,
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


def _send_once(smtp: SmtpConfig, msg: EmailMessage, recipients: list[str],
               password: str | None) -> dict[str, tuple[int, str]]:
    """One connection, one transaction; refused recipients with their codes."""
    context = ssl.create_default_context(cafile=smtp.ca_file or None)
    try:
        if smtp.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout,
                                                   context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        with client:
            if smtp.security == "starttls":
                client.starttls(context=context)
            if smtp.username:
                client.login(smtp.username, password or "")
            refused = client.send_message(msg, from_addr=parseaddr(smtp.sender)[1],
                                          to_addrs=recipients)
        return {r: (int(code), _text(text)) for r, (code, text) in refused.items()}
    except smtplib.SMTPRecipientsRefused as exc:
        return {r: (int(code), _text(text)) for r, (code, text) in exc.recipients.items()}
    except smtplib.SMTPAuthenticationError as exc:
        raise PermanentFailure(f"login refused: {exc.smtp_code} {_text(exc.smtp_error)}") \
            from None
    except smtplib.SMTPResponseException as exc:
        text = f"{exc.smtp_code} {_text(exc.smtp_error)}"
        if 400 <= exc.smtp_code < 500:
            raise TemporaryFailure(text) from None
        raise PermanentFailure(text) from None
    except ssl.SSLError as exc:
        raise PermanentFailure(f"TLS failed: {exc.reason or exc}") from None
    except (smtplib.SMTPException, OSError, socket.timeout) as exc:
        raise TemporaryFailure(f"{type(exc).__name__}: {exc}") from None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# --- the delivery run ---------------------------------------------------------------------

def deliver(config: Config, output_dir: Path, period_id: str, audiences: Iterable[str],
            *, force: bool = False, sleep: Callable[[float], None] = time.sleep) -> Outcome:
    """Mail each audience's archived PDF of `period_id` once; record every attempt."""
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
            if not pdf.exists():
                raise ReportError(f"{pdf} does not exist: build the PDF before sending.")
            _same_build(folder, pdf, document)
            recipients = list(audience.recipients) if config.smtp.host else [OUTBOX]
            done = store.delivered(period_id, name)
            todo = [r for r in recipients if force or r not in done]
            outcome.skipped += [(name, r) for r in recipients if r not in todo]
            if not todo:
                continue
            msg, warning = compose(audience=audience, period_id=period_id, period_label=label,
                                   document=document, pdf=pdf,
                                   recipients=[] if todo == [OUTBOX] else audience.recipients,
                                   smtp=config.smtp, archive_path=str(pdf.resolve()))
            if warning:
                outcome.warnings.append(warning)
            if not config.smtp.host:
                path = atomic_write(output_dir / "outbox" / f"{period_id}-{name}.eml",
                                    msg.as_bytes())
                store.record_delivery(period_id, name, OUTBOX, msg["Message-ID"], "written",
                                      1, None)
                outcome.written.append(path)
                outcome.sent.append((name, OUTBOX))
                continue
            results = send(config.smtp, msg, todo, sleep=sleep)
            for recipient, (status, error, attempts) in results.items():
                store.record_delivery(period_id, name, recipient, msg["Message-ID"], status,
                                      attempts, error or None)
                if status == "delivered":
                    outcome.sent.append((name, recipient))
                else:
                    outcome.failed.append((name, recipient, error))
    return outcome


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


def failure_sentence(smtp: SmtpConfig, outcome: Outcome) -> str:
    last = outcome.failed[-1][2]
    return (f"{len(outcome.failed)} message(s) were not delivered through "
            f"{smtp.host}:{smtp.port} (last error: {last}); the reports are built and "
            "archived, and the next run or `reporting send` retries them.")


def raise_if_failed(smtp: SmtpConfig, outcome: Outcome) -> None:
    if outcome.failed:
        raise DeliveryError(failure_sentence(smtp, outcome))

