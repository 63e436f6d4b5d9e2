"""SMTP with retries and backoff, an overall deadline per conversation, and the
outcome of each recipient (delivered, failed or unknown)."""
from __future__ import annotations

import io
import logging
import os
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

from ..core.config import SmtpConfig
from ..core.errors import ReportError
from ..core.secrets import remember, scrub

log = logging.getLogger(__name__)


class TemporaryFailure(Exception):
    """A failure worth retrying: connection trouble or a 4xx reply."""


class PermanentFailure(Exception):
    """A 5xx reply: retrying will not help."""


class UnknownOutcome(Exception):
    """The message was sent but the server's answer never came: it may have it."""


MAX_LINE = 8192           # one reply line, as smtplib allows


class ReplyTooLong(smtplib.SMTPException):
    """The server's reply passed `smtp.max_reply_lines` or `smtp.max_reply_kb`."""


class _BoundedReplies:
    """smtplib's `getreply` with a bound on a reply's lines and bytes: a server that
    sends `250-` lines without end ends the conversation instead of filling memory."""

    max_lines = 100
    max_bytes = 64 * 1024

    def getreply(self) -> tuple[int, bytes]:
        lines: list[bytes] = []
        size = 0
        if self.file is None:
            self.file = self.sock.makefile("rb")
        while True:
            try:
                line = self.file.readline(min(MAX_LINE, self.max_bytes - size) + 1)
            except OSError as exc:
                self.close()
                raise smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {exc}")
            if not line:
                self.close()
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            size += len(line)
            if len(line) > MAX_LINE or size > self.max_bytes \
                    or len(lines) >= self.max_lines:
                self.close()
                raise ReplyTooLong(
                    f"the server's reply passed {self.max_lines} lines or "
                    f"{self.max_bytes // 1024} KB (smtp.max_reply_lines, smtp.max_reply_kb)")
            lines.append(line[4:].strip(b" \t\r\n"))
            try:
                code = int(line[:3])
            except ValueError:
                return -1, b"\n".join(lines)
            if line[3:4] != b"-":
                return code, b"\n".join(lines)


class BoundedSMTP(_BoundedReplies, smtplib.SMTP):
    pass


class BoundedSMTPSSL(_BoundedReplies, smtplib.SMTP_SSL):
    pass


# --- sending ------------------------------------------------------------------------------

def smtp_password(smtp: SmtpConfig) -> str | None:
    """The password, from the environment variable the config names (never logged)."""
    if not smtp.password_env:
        return None
    value = os.environ.get(smtp.password_env)
    if value is None:
        raise ReportError(f"smtp.password_env names {smtp.password_env}, but that "
                          "environment variable is not set.")
    remember(value, login=smtp.username)     # a server may echo it back in a reply
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
            log.info("temporary failure (%s); retrying in %.1f s", scrub(error),
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
    # The server's own words (a 535 may quote the AUTH line) leave here scrubbed.
    return {r: (status, scrub(error), attempts) for r, (status, error) in results.items()}


def _payload(msg: EmailMessage) -> bytes:
    """The message as sent after DATA: CRLF lines, dots doubled, the final dot line."""
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=msg.policy.clone(linesep="\r\n")).flatten(msg)
    data = re.sub(rb"(?m)^\.", b"..", buffer.getvalue())
    return data + (b"" if data.endswith(b"\r\n") else b"\r\n") + b".\r\n"


def _client(smtp: SmtpConfig, context: ssl.SSLContext) -> smtplib.SMTP:
    """A client (not yet connected) whose replies are bounded as the config says."""
    client: smtplib.SMTP = (BoundedSMTPSSL(timeout=smtp.timeout, context=context)
                            if smtp.security == "ssl" else BoundedSMTP(timeout=smtp.timeout))
    client.max_lines = smtp.max_reply_lines
    client.max_bytes = int(smtp.max_reply_kb * 1024)
    return client


def _send_once(smtp: SmtpConfig, msg: EmailMessage, recipients: list[str],
               password: str | None) -> dict[str, tuple[int, str]]:
    """One connection, one transaction, within the overall deadline; refused recipients
    with their codes. Once the server accepted the message, the rest is a courtesy."""
    context = ssl.create_default_context(cafile=smtp.ca_file or None)
    limit = deadline_s(smtp)
    client = _client(smtp, context)
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
               else str(exc) if isinstance(exc, ReplyTooLong)
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
