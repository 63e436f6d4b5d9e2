"""Checks of single config values, each failure one sentence naming its key: names that
become file names, numbers, email addresses, URLs, currencies, chat channel URLs and
times."""
from __future__ import annotations

import re
import threading
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from .errors import ConfigError

# Names that become file and folder names: letters, digits, "_" and "-", no dots or
# slashes, so "../../x" can never name a path (issue 18).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_name(name: str, what: str) -> str:
    """An audience name or similar that will name files: letters, digits, _ and -."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"{what} {str(name)[:80]!r} is not a valid name: use letters, "
                          "digits, '_' and '-' (at most 64), no dots, slashes or spaces.")
    return name


def number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: {key} must be a number, not {value!r}.")
    return float(value)


def public_url(value: Any, where: str) -> str:
    """An http(s) URL with a host, e.g. https://reports.example.com/diagnostics/ ("" = none)."""
    text = value.strip() if isinstance(value, str) else "-"
    if text == "":
        return ""                      # the default: no links
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query \
            or parts.fragment or any(c.isspace() or c in "<>\"'" for c in text):
        raise ConfigError(f"{where}: public_url must be an http:// or https:// address "
                          f"where output/ is published, such as "
                          f"'https://reports.example.com/diagnostics/', not {value!r}.")
    return text.rstrip("/") + "/"


def database_url(value: str, where: str, base: Path) -> str:
    """archive_url: postgresql://user@host[:port]/db (the password comes from
    archive_password_env, never from the file) or sqlite:///file (relative: beside the
    config file)."""
    text = value.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite" and text.startswith("sqlite:///"):
        file = text[len("sqlite:///"):]
        return text if file.startswith("/") else f"sqlite:///{base / file}"
    if scheme not in ("postgresql", "postgres") or not parts.hostname or \
            not parts.path.strip("/"):
        raise ConfigError(f"{where}: archive_url must be a PostgreSQL URL such as "
                          "'postgresql://reports@db.internal:5432/reports' (or "
                          f"sqlite:///file), not {text[:80]!r}.")
    if parts.password is not None:
        raise ConfigError(f"{where}: archive_url holds a password; remove it and name the "
                          "environment variable that holds it in archive_password_env.")
    return text


_special_use = threading.Lock()


def address(text: str, where: str, audience: str, key: str = "") -> str:
    """A recipient checked as an email address (syntax only, no DNS); internal names
    such as ops@corp.local or root@localhost are allowed."""
    # lazy: start-up time (only a config with recipients needs it)
    import email_validator
    from email_validator import EmailNotValidError, validate_email

    try:
        with _special_use:   # the library reads its list of refused names at each call
            saved = email_validator.SPECIAL_USE_DOMAIN_NAMES
            email_validator.SPECIAL_USE_DOMAIN_NAMES = []
            try:
                return validate_email(text.strip(), check_deliverability=False,
                                      globally_deliverable=False).normalized
            finally:
                email_validator.SPECIAL_USE_DOMAIN_NAMES = saved
    except EmailNotValidError as exc:
        key = key or f"audiences.{audience}.recipients"
        raise ConfigError(f"{where}: {key} has {text!r}, which is "
                          f"not an email address ({exc}).") from None


ATTACHMENTS = ("pdf", "csv")
ALERT_KINDS = ("incidents", "back_end", "user_felt", "level_shifts")   # [alerts] on


def notify_urls(raw: Any, key: str, where: str) -> tuple[str, ...]:
    """Apprise URLs (checked for form only: secrets are read at send time)."""
    if isinstance(raw, str) or not isinstance(raw, (list, tuple)):
        raise ConfigError(f"{where}: {key} must be a list of URLs such as "
                          '["slack://{SLACK_TOKEN}/", "json://host/path"].')
    for url in raw:
        if not isinstance(url, str) or not re.fullmatch(r"[a-z][a-z0-9+.-]*://\S+", url):
            # Never echoed whole: it may hold a pasted secret.
            raise ConfigError(f"{where}: {key} has an entry that is not a URL of the form "
                              "service://...; see the README's Channels and alerts.")
    return tuple(raw)


def currency(raw: Any, where: str) -> str:
    """An ISO 4217 code (EUR, USD, PLN) shown with money values."""
    code = str(raw).strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise ConfigError(f"{where}: currency must be an ISO 4217 code such as "
                          f"'EUR' or 'USD', not {raw!r}.")
    return code


def moment(value: Any, where: str, key: str, tz: ZoneInfo) -> datetime:
    """A TOML datetime or an ISO 8601 string, as an aware datetime (naive: in `tz`)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            value = None
    if not isinstance(value, datetime):
        raise ConfigError(f"{where}: {key} must be a date and time such as "
                          f"\"2026-11-08 02:00\", not {value!r}.")
    return value if value.tzinfo else value.replace(tzinfo=tz)
