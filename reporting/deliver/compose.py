"""Mail messages: headers that no title can break, and the body in text and HTML from
the audience's headline KPIs and insights."""
from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any

from ..core import formatting
from ..core.config import Audience, SmtpConfig
from ..core.i18n import gettext as _
from ..present import site
from ..present.audience import audience_view


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
            smtp: SmtpConfig, archive_path: str, public_url: str = "",
            said: Mapping[str, Any] | None = None) -> tuple[EmailMessage, str | None]:
    """The message for one audience; returns it and a warning when the PDF was too big.
    With `public_url`, it links to the published HTML report and the archive index.
    `said`: the page's own words in the audience's language (`mail_words`), quoted instead
    of kpis.json's English sentences (the audience's voice is then active)."""
    msg = new_message(smtp, f"{_(audience.title)}, {period_id}", recipients)
    kpis, insights = quoted(document, audience, said)
    if said:
        period_label = said["period_label"]
    size = pdf.stat().st_size
    too_big = size > smtp.max_attachment_mb * 1024 * 1024
    warning = None
    note = ""
    partial = document.get("coverage_notes") or []
    if partial:   # the same warning as page 1 of the PDF
        kpis = [{"label": _("Partial data"), "value": ". ".join(partial), "change": "",
                 "tone": None, "status": "warn"}] + kpis
    if too_big:
        warning = (f"{pdf.name} is {size / 1024 / 1024:,.1f} MB, over the "
                   f"{smtp.max_attachment_mb:g} MB limit; the message gives its archive path.")
        note = _("The PDF (%(size)s MB) is too large to attach: %(path)s") % {
            "size": formatting.number(size / 1024 / 1024, 1), "path": archive_path}
    links = site.public_links(public_url, period_id, audience.name) if public_url else []
    msg.set_content(text_body(audience, period_label, kpis, insights, note, links))
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


def quoted(document: Mapping[str, Any], audience: Audience,
           said: Mapping[str, Any] | None = None
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The headline KPIs and first five findings a message quotes: the page's own words
    where they were kept (`said`), else kpis.json's."""
    if said:
        return list(said["headline"]), list(said["insights"])
    return headline(document, audience), list(audience_view(document, audience).insights[:5])


def headline(document: Mapping[str, Any], audience: Audience) -> list[dict[str, Any]]:
    return [{"label": k["label"], "value": formatting.value(k["value"], k["unit"]),
             "change": f"{k['arrow']} {k['change']}".strip() if k["change"] else "",
             "tone": k["tone"], "status": k["status"]}
            for k in audience_view(document, audience).headline]


def text_body(audience: Audience, period_label: str, kpis: list[dict[str, Any]],
              insights: list[dict[str, str]], note: str,
              links: list[tuple[str, str]] = ()) -> str:
    lines = [f"{_(audience.title)}: {period_label}", ""]
    lines += [f"- {k['label']}: {k['value']}" + (
        " (" + _("%(change)s vs previous") % {"change": k["change"]} + ")"
        if k["change"] else "") for k in kpis]
    if insights:
        lines += ["", _("What stands out:")] + [f"- {i['text']}" for i in insights]
    lines += ["", note or _("The full report is attached as a PDF.")]
    lines += [f"{text}: {url}" for text, url in links]
    return "\n".join(lines) + "\n"


STATUS_COLOUR = {"good": "#009E73", "warn": "#B07700", "bad": "#D55E00"}
TONE_COLOUR = {"good": "#00734f", "bad": "#b34700"}     # as the PDF's .tone-good/.tone-bad
STATUS_ICON = {"good": "✓", "warn": "⚠", "bad": "✖"}     # as the PDF's badges


def status_word(status: str | None) -> str:
    """A status as icon and word ('✖ bad'), never colour alone; '' when not judged."""
    return f"{STATUS_ICON[status]} {_(status)}" if status in STATUS_ICON else ""


def _html_body(audience: Audience, period_label: str, kpis: list[dict[str, Any]],
               insights: list[dict[str, str]], note: str,
               links: list[tuple[str, str]] = ()) -> str:
    """Inline styles only and no remote images: renders the same in common mail clients."""
    e = html.escape
    rows = "".join(
        f'<tr><td style="padding:4px 12px 4px 0;color:#555">{e(k["label"])}</td>'
        f'<td style="padding:4px 12px 4px 0;font-weight:bold;'
        f'color:{STATUS_COLOUR.get(k["status"] or "", "#222")}">{e(k["value"])}</td>'
        f'<td style="padding:4px 12px 4px 0;color:{TONE_COLOUR.get(k["tone"] or "", "#777")}">'
        f'{e(k["change"])}</td>'
        f'<td style="padding:4px 0;font-weight:bold;white-space:nowrap;'
        f'color:{STATUS_COLOUR.get(k["status"] or "", "#222")}">{status_word(k["status"])}'
        '</td></tr>' for k in kpis)
    items = "".join(f'<li style="margin:0 0 6px 0">{e(i["text"])}</li>' for i in insights)
    return (
        '<div style="font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#222">'
        f'<h2 style="color:#0b3c5d;margin:0 0 4px 0">{e(_(audience.title))}</h2>'
        f'<p style="margin:0 0 12px 0;color:#555">{e(period_label)}</p>'
        f'<table style="border-collapse:collapse">{rows}</table>'
        + (f'<h3 style="margin:16px 0 6px 0">{e(_("What stands out"))}</h3><ul>{items}</ul>'
           if items else "")
        + f'<p style="color:#555">{e(note or _("The full report is attached as a PDF."))}</p>'
        + "".join(f'<p style="margin:0 0 6px 0"><a href="{e(url)}" style="color:#0b5cad">'
                  f'{e(text)}</a></p>' for text, url in links)
        + '</div>')
