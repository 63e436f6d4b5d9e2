"""The one scrubber every error text passes before it is logged, stored or printed.

Secrets live in environment variables that the config names (the SMTP and database
passwords, a channel URL's `{NAME}` placeholders). A server or a library may echo one
back in its own words: an SMTP 535 reply quoting the AUTH PLAIN line, a driver's message
with the connection URL. So each secret is removed in the forms it travels in: as is,
URL-encoded, base64 (alone, inside a longer base64 text at any of its three alignments,
and as the SMTP AUTH PLAIN blob with the login name).
"""
from __future__ import annotations

import base64
import logging
import os
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")   # a channel URL's {NAME}
SHORTEST_DERIVED = 4      # shorter secrets are removed only as typed (their encoded
                          # forms are a few letters that ordinary text holds too)

_known: set[str] = set()  # every secret this process has read, for `scrub`
_lock = threading.Lock()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _inside_base64(data: bytes) -> list[str]:
    """The base64 letters that `data` always becomes inside a longer base64 text, at each
    of the three byte alignments: only the letters made of its own bits alone."""
    out = []
    for offset in range(3):
        text = _b64(b"\0" * offset + data).rstrip("=")
        first = -(-8 * offset // 6)                       # ceil(8k / 6)
        last = (8 * (offset + len(data))) // 6            # letters wholly inside
        core = text[first:last]
        if len(core) >= SHORTEST_DERIVED:
            out.append(core)
    return out


def forms(secret: str, login: str = "") -> set[str]:
    """Every text `secret` may travel as (see the module's docstring)."""
    if not secret:
        return set()
    found = {secret}
    if len(secret) < SHORTEST_DERIVED:
        return found
    raw = secret.encode("utf-8")
    found |= {quote(secret, safe=""), quote_plus(secret), quote(secret), _b64(raw)}
    found.update(_inside_base64(raw))
    if login:     # AUTH PLAIN: base64 of "\0login\0password" (and "login\0login\0...")
        for blob in (f"\0{login}\0{secret}", f"{login}\0{login}\0{secret}"):
            found.add(_b64(blob.encode("utf-8")))
    return found


def remember(*secrets: str | None, login: str = "") -> None:
    """Add secrets (and their forms) to the ones `scrub` removes in this process."""
    with _lock:
        for secret in secrets:
            if secret:
                _known.update(forms(secret, login))


def remember_env(names: Iterable[str], login: str = "") -> None:
    """Remember the values of the environment variables `names` (those that are set)."""
    remember(*(os.environ.get(n) for n in names if n), login=login)


def remember_config(config: Any) -> None:
    """Remember every secret a config names: the SMTP password (with its login for the
    AUTH forms), each database source's password and each channel URL's placeholders."""
    smtp = config.smtp
    if smtp.password_env:
        remember_env([smtp.password_env], login=smtp.username)
    remember_env(s.password_env for s in config.sources.values())
    urls = [*config.alerts.notify, *(u for a in config.audiences.values() for u in a.notify)]
    remember_env(n for u in urls for n in PLACEHOLDER.findall(u))


def scrub(text: Any) -> str:
    """`text` (as a string) with every form of every secret this process has read replaced
    by `***` (longest first, so that no half of a base64 text is left behind)."""
    text = str(text)
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for form in known:
        if form in text:
            text = text.replace(form, MASK)
    return text


class ScrubFilter(logging.Filter):
    """A handler filter: every record's text passes `scrub` before it is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True
