"""Chat and webhook channels (Slack, Teams, Mattermost, JSON webhooks, ...) through Apprise.

A channel is an Apprise URL from the config, whose `{NAME}` placeholders are filled from
environment variables at send time only: the archive keeps the URL as configured (with
its placeholders) or Apprise's privacy form, and every Apprise log line has the secret
values blanked. Delivery rides on the email's claims in the archive: at most once per
channel, audience and period; every claim a row of its own.
"""
from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..core.secrets import remember, scrub

log = logging.getLogger(__name__)


PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
RETRIES = 3                # after the first try: 4 tries in all
RETRY_BASE_S = 2.0         # backoff 2 s, 4 s, 8 s
TEMPORARY_HTTP = {408, 425, 429}
REDACTED_LOGGERS = ("apprise", "urllib3.connectionpool")   # both log request URLs


class ChannelFailure(Exception):
    """One try failed; `temporary` says whether another try may help."""

    def __init__(self, text: str, temporary: bool) -> None:
        super().__init__(text)
        self.temporary = temporary


@dataclass(frozen=True)
class Channel:
    url: str        # as configured: placeholders, never their values

    @property
    def variables(self) -> list[str]:
        return PLACEHOLDER.findall(self.url)

    @property
    def key(self) -> str:
        """What the archive records as the recipient: the configured URL when its secrets
        are placeholders, else Apprise's privacy form (tokens shortened to a...z) without
        its query."""
        if self.variables:
            return self.url
        plugin = _instantiate(self.url)     # its query (Apprise's defaults) left out
        return plugin.url(privacy=True).split("?")[0] if plugin is not None \
            else f"{self.scheme}://?"

    @property
    def scheme(self) -> str:
        return self.url.partition("://")[0]

    @property
    def label(self) -> str:
        """The channel in a sentence: its service and host, never a token. A host without
        a dot (Slack's first token) or with a placeholder is left out."""
        host = _host(self.url)
        return f"{self.scheme}://{host}" if host else f"{self.scheme}://"

    def expand(self, environ: dict[str, str] | None = None) -> tuple[str, list[str]]:
        """The URL with each `{NAME}` replaced by its environment variable, and the values
        (to blank them in logs). A variable that is not set is a failure of this channel."""
        environ = os.environ if environ is None else environ
        missing = [v for v in self.variables if v not in environ]
        if missing:
            raise ChannelFailure(f"environment variable {missing[0]} (named in the channel's "
                                 "URL) is not set", temporary=False)
        secrets = [environ[v] for v in self.variables if environ[v]]
        remember(*secrets)              # every later error text is scrubbed of them
        return PLACEHOLDER.sub(lambda m: environ[m.group(1)], self.url), secrets


def _host(url: str) -> str:
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return ""
    if not host or "{" in url.split("://", 1)[1].split("/", 1)[0] or \
            ("." not in host and host != "localhost" and ":" not in host):
        return ""
    return f"{host}:{port}" if port else host


def _instantiate(url: str) -> Any:
    # lazy: start-up time (only a config with chat channels needs it)
    import apprise
    with _quiet():
        return apprise.Apprise.instantiate(url)


@contextmanager
def _quiet() -> Iterator[None]:
    apprise_log = logging.getLogger("apprise")
    level = apprise_log.level
    apprise_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        apprise_log.setLevel(level)


class _Capture(logging.Handler):
    """Apprise's warnings during one try (they carry the HTTP status: "error=503")."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class _Redact(logging.Filter):
    """Blank secret values in every Apprise log record (its debug lines show URLs)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        remember(*secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage()), ()
        return True


def send_once(url: str, secrets: Sequence[str], title: str, body: str,
              attachments: Sequence[Path]) -> bool:
    """One try through Apprise; returns whether the files were attached (else the body
    has to carry the link). Raises ChannelFailure."""
    # lazy: start-up time (only a config with chat channels needs it)
    import apprise

    apprise_log = logging.getLogger("apprise")
    capture, redact = _Capture(), _Redact(secrets)
    for name in REDACTED_LOGGERS:
        logging.getLogger(name).addFilter(redact)
    apprise_log.addHandler(capture)
    propagate, apprise_log.propagate = apprise_log.propagate, False   # said once: our
    try:                                                              # ChannelFailure
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            raise ChannelFailure("not a URL Apprise understands", temporary=False)
        attached = bool(attachments) and bool(getattr(plugin, "attachment_support", False))
        box = apprise.Apprise()
        box.add(plugin)
        ok = box.notify(body=body, title=title,
                        attach=apprise.AppriseAttachment([str(a) for a in attachments])
                        if attached else None)
    finally:
        apprise_log.removeHandler(capture)
        apprise_log.propagate = propagate
        for name in REDACTED_LOGGERS:
            logging.getLogger(name).removeFilter(redact)
    if not ok:
        text = scrub(capture.lines[-1] if capture.lines else "the service did not accept it")
        found = re.search(r"error=(\d{3})", text)
        if found is None:          # no HTTP answer: connection refused, timeout, ...
            raise ChannelFailure(text.rstrip("."), temporary=True)
        code = int(found.group(1))
        raise ChannelFailure(f"the service answered HTTP {code}",
                             temporary=code >= 500 or code in TEMPORARY_HTTP)
    return attached


def send(channel: Channel, title: str, body: Callable[[bool], str],
         attachments: Sequence[Path], *, retries: int = RETRIES,
         retry_base_s: float = RETRY_BASE_S,
         sleep: Callable[[float], None] = time.sleep) -> tuple[str, str, int]:
    """Send with exponential backoff on temporary failures; returns (delivered | failed,
    error or '', tries). `body(attached)` is the text, with or without the link."""
    tries = 0
    try:
        url, secrets = channel.expand()
        plugin = _instantiate(url)
        will_attach = bool(attachments) and bool(getattr(plugin, "attachment_support", False))
    except ChannelFailure as exc:
        return "failed", str(exc), 0
    while True:
        tries += 1
        try:
            send_once(url, secrets, title, body(will_attach), attachments)
            return "delivered", "", tries
        except ChannelFailure as exc:
            if not exc.temporary or tries > retries:
                return "failed", f"{exc} after {tries} tr{'y' if tries == 1 else 'ies'}", tries
            wait = retry_base_s * 2 ** (tries - 1)
            log.info("%s: temporary failure (%s); retrying in %.1f s", channel.label, exc, wait)
            sleep(wait)
