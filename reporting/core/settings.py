"""Config keys declared once, as datasette declares its SETTINGS: each key is a field of a
config dataclass whose metadata holds its `Setting` (kind, allowed range or values, one-line
help, example). The value checks, the unknown-key "did you mean", `reporting init`'s
commented report.toml, `reporting config check` and the docs' config reference all read
these declarations, so a key added in one place is checked and documented everywhere."""
from __future__ import annotations

import dataclasses
import difflib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .checks import address, notify_urls, number
from .errors import ConfigError
from .i18n import locale_name
from .periodforms import FORMS, is_period

# What each kind of value is, in the words the docs and error messages use.
KINDS = {
    "number": "number", "whole": "whole number", "ratio": "share from 0 to 1",
    "text": "string", "bool": "true or false", "choice": "one of the values listed",
    "list": "list of strings", "emails": "list of email addresses",
    "urls": "list of Apprise URLs", "email": "email address",
    "cron": "5-field cron expression, or \"\" for none",
    "period": "period", "zone": "IANA time zone", "date": "date (YYYY-MM-DD)",
    "path": "path (relative to the config file)", "url": "URL", "env": "environment "
    "variable's name", "size": "size such as \"2GB\"", "table": "table",
    "locale": "locale such as \"de_DE\" (language en, de, fr or pl)",
}
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Setting:
    """One config key's declaration (its name is the field's, its default the field's)."""

    help: str                            # one line, shown in docs, init and errors
    kind: str = ""                       # a KINDS key; "" = from the default's type
    low: float | None = None             # allowed range of a number
    high: float | None = None
    above: bool = False                  # `low` itself is not allowed ("more than 0")
    choices: tuple[str, ...] = ()
    example: Any = None                  # a value worth showing; None = the default
    unit: str = ""                       # what a number counts: s, h, ms, %, MB
    secret: bool = False                 # shown as *** by `reporting config check`
    of: type | None = None               # a table's own keys (a config dataclass)
    named: str = ""                      # a table of tables: what names them (<audience>)
    inherit: bool = False                # "" = the top-level key of the same name


def setting(default: Any, help: str, *, factory: Callable[[], Any] | None = None,
            **declared: Any) -> Any:
    """A dataclass field that declares one config key (its default, then its `Setting`)."""
    meta = {"setting": Setting(help, **declared)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Key:
    """A declared key with its dotted name (`thresholds.api_p95_ms`, `audiences.<name>.period`)."""

    name: str
    setting: Setting
    default: Any

    @property
    def kind(self) -> str:
        return kind_of(self.setting, self.default)


def kind_of(s: Setting, default: Any) -> str:
    if s.kind:
        return s.kind
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "whole"
    if isinstance(default, float):
        return "number"
    return "text"


def declared(cls: type, prefix: str = "") -> Iterator[Key]:
    """Every key a config dataclass declares, tables' keys after the table's own entry."""
    for f in dataclasses.fields(cls):
        s = f.metadata.get("setting")
        if s is None:
            continue                     # not a key (an audience's name, the file read)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        yield Key(prefix + f.name, s, default)
        if s.of is not None:
            yield from declared(s.of, f"{prefix}{f.name}.{s.named + '.' if s.named else ''}")


def settings_of(cls: type) -> dict[str, Setting]:
    """A dataclass's own keys (not its tables' keys) and their declarations."""
    return {f.name: f.metadata["setting"] for f in dataclasses.fields(cls)
            if "setting" in f.metadata}


def unknown_keys(raw: Any, allowed: Any, where: str, prefix: str) -> None:
    """One sentence naming keys that are not declared, with the closest declared one."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {prefix.rstrip('.')} must be a table.")
    allowed = sorted(allowed)
    unknown = sorted(set(raw) - set(allowed))
    if not unknown:
        return
    names = []
    for k in unknown:
        close = difflib.get_close_matches(str(k), allowed, n=1, cutoff=0.6)
        names.append(f"{prefix}{k}" + (f" (did you mean {prefix}{close[0]}?)" if close else ""))
    raise ConfigError(f"{where}: unknown key(s) {', '.join(names)}; allowed: "
                      f"{', '.join(allowed)}.")


def check(s: Setting, kind: str, value: Any, where: str, key: str) -> Any:
    """`value` checked against its declaration: the value to keep, or one sentence."""
    if kind in ("number", "whole", "ratio"):
        return _number(s, kind, value, where, key)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} must be true or false, not {value!r}.")
        return value
    if kind in ("emails", "list"):
        return _list(s, kind, value, where, key)
    if kind == "urls":
        return notify_urls(value, key, where)
    if kind == "table":
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string, not {value!r}.")
    return _text(s, kind, value if kind == "text" else value.strip(), where, key)


def _list(s: Setting, kind: str, value: Any, where: str, key: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value     # a string is one entry
    if kind == "emails":
        if not isinstance(items, list):
            raise ConfigError(f"{where}: {key} must be a list of email addresses such as "
                              f"[\"ops@example.com\"], not {value!r}.")
        return tuple(address(str(r), where, "", key) for r in items)
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items) \
            or (s.choices and not set(items) <= set(s.choices)):
        allowed = f"of {either(s.choices)}" if s.choices else "of strings"
        raise ConfigError(f"{where}: {key} must be a list {allowed}, such as "
                          f"{json.dumps(s.example)}, not {value!r}.")
    return tuple(items)


SIZE = re.compile(r"\d+(\.\d+)?\s*([KMGT]i?B)?|auto", re.IGNORECASE)


def _text(s: Setting, kind: str, text: str, where: str, key: str) -> str:
    if kind == "choice" and text not in s.choices:
        raise ConfigError(f"{where}: {key} must be {either(s.choices)}, not {text[:60]!r}.")
    if kind == "env" and text and not ENV_NAME.fullmatch(text):
        # Never echoed: a password pasted here by mistake must not reach a log.
        raise ConfigError(f"{where}: {key} must be the name of an environment variable that "
                          "holds the password (letters, digits and _), not the password "
                          "itself.")
    if kind == "email" and text:
        return address(text, where, "", key)
    if kind == "cron" and text:
        cron_check(text, where, key)
    if kind == "period":
        period_check(text, where, key)
    if kind == "date" and not (_is_date(text) and "1900" <= text <= "2200"):
        raise ConfigError(f"{where}: {key} must be a date such as 2000-01-01, not {text!r}.")
    if kind == "zone" and (text or not s.inherit):
        try:
            ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"{where}: {key} {text[:60]!r} is not an IANA time zone such as "
                              "'UTC' or 'Europe/Warsaw'.") from None
    if kind == "locale" and text:
        return locale_name(text, where, key)
    if kind == "size" and not SIZE.fullmatch(text):
        raise ConfigError(f"{where}: {key} must be a size such as \"2GB\" or \"auto\", not "
                          f"{text[:40]!r}.")
    return text


def either(choices: tuple[str, ...]) -> str:
    """"a", "b" or "c": the allowed values as they are written in TOML."""
    quoted = [f'"{c}"' for c in choices]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _number(s: Setting, kind: str, value: Any, where: str, key: str) -> float | int:
    n = number(value, where, key)
    if kind == "whole" and n != int(n):
        raise ConfigError(f"{where}: {key} must be a whole number, not {value!r}.")
    low, high = (0.0, 1.0) if kind == "ratio" and s.low is None else (s.low, s.high)
    ok = (low is None or (n > low if s.above else n >= low)) and (high is None or n <= high)
    if ok:
        return int(n) if kind == "whole" else n
    if kind == "ratio" and 1 < n <= 100:
        raise ConfigError(f"{where}: {key} = {value!r}: write {n / 100:g} for {n:g} % "
                          "(a share from 0 to 1).")
    raise ConfigError(f"{where}: {key} must be {span(s, kind)}, not {value!r}.")


def span(s: Setting, kind: str) -> str:
    """The allowed range in words: "more than 0", "from 1 to 168", "0 or more"."""
    low, high = (0.0, 1.0) if kind == "ratio" and s.low is None else (s.low, s.high)
    noun = "a whole number " if kind == "whole" else ""
    if low is not None and high is not None:
        return (f"{noun}more than {low:g} and at most {high:g}" if s.above
                else f"{noun}from {low:g} to {high:g}")
    if low is not None:
        return f"more than {low:g}" if s.above else f"{low:g} or more"
    if high is not None:
        return f"at most {high:g}"
    return f"a {KINDS[kind]}"


def cron_check(text: str, where: str, key: str) -> None:
    """A cron line parsed now, by APScheduler's own parser, so a mistake is found when the
    config is read and named with the parser's message (not when the scheduler starts)."""
    # lazy: start-up time (only a config that sets a schedule parses one)
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: {key} = {text[:80]!r} is not a cron schedule: {exc} "
                          "(5 fields: minute hour day month weekday, such as "
                          "\"0 7 * * mon\"; \"\" for none).") from None


def period_check(text: str, where: str, key: str) -> None:
    """A period an audience builds: one of the forms `--period` takes."""
    if not is_period(text):
        raise ConfigError(f"{where}: {key} = {text[:60]!r} is not a period; use {FORMS}.")


def _is_date(text: str) -> bool:
    try:
        return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", text)) and bool(date.fromisoformat(text))
    except ValueError:
        return False


def read_table(cls: type, raw: Any, where: str, prefix: str,
               skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A table's keys checked against the dataclass's declarations (unknown keys with "did
    you mean"); `skip`: keys the caller reads itself. Returns the checked values."""
    own = settings_of(cls)
    unknown_keys(raw, own, where, prefix)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    return {k: check(own[k], kind_of(own[k], defaults[k]), v, where, prefix + k)
            for k, v in raw.items() if k not in skip}
