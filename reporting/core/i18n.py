"""Each audience's language, number format and time zone (issue 32): the active locale
while one audience's page is rendered, its gettext catalogue, and Babel's (CLDR) number,
date and ISO-week forms.

English is the product's own voice: while no other locale is active, `formatting` keeps
its own f-string forms, so English pages stay byte-identical to what they were (and
cost no Babel call); German, French and Polish read CLDR's patterns ("1.234,5",
"1 234,5", "1 234,5") and the catalogues in `reporting/locales/<lang>/LC_MESSAGES`."""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_interval, format_skeleton
from babel.lists import format_list
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import NullTranslations, Translations
from markupsafe import escape

from .errors import ConfigError

SHIPPED = ("en", "de", "fr", "pl")          # languages with a catalogue in reporting/locales
DEFAULT = "en_GB"
DOMAIN = "reporting"
LOCALES_DIR = Path(__file__).resolve().parents[1] / "locales"


def locale_name(text: str, where: str, key: str) -> str:
    """A config's locale ("de_DE", "de-DE", "pl"): its canonical name, or one sentence."""
    try:
        loc = Locale.parse(text.strip().replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        loc = None
    if loc is None or loc.language not in SHIPPED:
        raise ConfigError(f"{where}: {key} {text[:40]!r} is not a locale the reports are "
                          f"written in; use one of en_GB, de_DE, fr_FR or pl_PL (any "
                          f"region of en, de, fr or pl).")
    return str(loc)


@dataclass(frozen=True)
class Voice:
    """One audience's locale and zone, and its catalogue's gettext/ngettext."""

    locale: Locale
    zone: ZoneInfo
    translations: NullTranslations

    @property
    def english(self) -> bool:
        return self.locale.language == "en"

    @property
    def name(self) -> str:
        return str(self.locale)


@functools.lru_cache(maxsize=16)
def translations(language: str) -> NullTranslations:
    """The compiled catalogue of `language` (English: the source text itself)."""
    if language == "en":
        return NullTranslations()
    found = Translations.load(str(LOCALES_DIR), [language], DOMAIN)
    if not isinstance(found, Translations):
        raise FileNotFoundError(
            f"{LOCALES_DIR / language / 'LC_MESSAGES' / (DOMAIN + '.mo')} is missing: run "
            f"`make locales` (pybabel compile) after installing from a clone.")
    return found


def voice(locale: str, zone: ZoneInfo) -> Voice:
    loc = Locale.parse(locale or DEFAULT)
    return Voice(loc, zone, translations(loc.language))


def of(audience: Any, config: Any) -> Voice:
    """An audience's voice: its own locale and zone, else the config's."""
    locale = audience.locale or config.locale or DEFAULT
    zone = ZoneInfo(audience.timezone) if audience.timezone else config.tz
    return voice(locale, zone)


_ACTIVE: ContextVar[Voice | None] = ContextVar("reporting_voice", default=None)


def current() -> Voice | None:
    """The voice of the page being rendered, English too (its zone matters to times)."""
    return _ACTIVE.get()


def active() -> Voice | None:
    """The voice of the page being rendered; None: English (the product's own forms)."""
    v = _ACTIVE.get()
    return None if v is None or v.english else v


@contextlib.contextmanager
def speaking(v: Voice | None) -> Iterator[Voice | None]:
    """Every `formatting` call and `gettext` inside speaks `v`."""
    token = _ACTIVE.set(v)
    try:
        yield v
    finally:
        _ACTIVE.reset(token)


def N_(message: str) -> str:
    """Marks `message` for extraction; the translation happens where it is shown."""
    return message


def gettext(message: str) -> str:
    """`message` in the active voice; "" stays "" (a catalogue's "" is its header); a
    `Phrase` is said again in that voice."""
    if isinstance(message, Phrase):
        return message.said()
    v = _ACTIVE.get()
    return message if v is None or not message else v.translations.gettext(message)


class Phrase(str):
    """A sentence computed with the data (an insight, an incident, a chart's target line)
    that each page can say in its own voice: the str itself is the English text, made
    once while no voice is active (kpis.json, the archive, logs and tests read it), and
    `said()` calls the same builder again with the same arguments while a page's voice is
    active, so its words go through gettext and its numbers and dates through
    `formatting` in that locale and zone.

    A template's `{{ insight.text }}` says it in the page's voice: autoescape asks
    `__html__` (MarkupSafe's protocol) of a str subclass, which returns the said text
    escaped. `gettext(phrase)` is `phrase.said()`. A copy is the same phrase; a pickled
    one (a worker's result) is its English text."""

    def __new__(cls, build: Callable[..., str], *args: Any) -> Phrase:
        with speaking(None):
            self = super().__new__(cls, build(*args))
        self._build, self._args = build, args
        return self

    def said(self) -> str:
        """The sentence in the active voice (the English text while none is)."""
        if _ACTIVE.get() is None:
            return str.__str__(self)
        return str(self._build(*self._args))

    def __html__(self) -> str:
        return str(escape(self.said()))

    def __copy__(self) -> Phrase:
        return self

    def __deepcopy__(self, memo: Any) -> Phrase:
        return self

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return str, (str.__str__(self),)


def said_as(english: str, said: str) -> Phrase:
    """A Phrase whose English text is `english` and that says `said` in a voice: one said
    in a page's voice before it goes to a worker (`present.workers`), where its builder
    cannot go."""
    self = str.__new__(Phrase, english)
    self._build, self._args = _same, (said,)
    return self


def _same(text: str) -> str:
    return text


def _joined(*parts: str) -> str:
    return "".join(p.said() if isinstance(p, Phrase) else p for p in parts)


def concat(*parts: str) -> Phrase:
    """Sentences and phrases one after another, each said in the page's voice."""
    return Phrase(_joined, *parts)


def ngettext(singular: str, plural: str, n: int) -> str:
    v = _ACTIVE.get()
    if v is None:
        return singular if n == 1 else plural
    return v.translations.ngettext(singular, plural, n)


# --- CLDR forms (only called while a non-English voice is active) -----------------------

def decimal(v: float, digits: int, loc: Locale) -> str:
    """`v` with `digits` decimals and the locale's grouping: 1.234,5 (de)."""
    return format_decimal(v, "#,##0" + ("." + "0" * digits if digits else ""), locale=loc)


def short(v: float, loc: Locale) -> str:
    """A threshold as written in a sentence (`{v:g}`): 2,5 (de), no grouping of 2500."""
    return format_decimal(v, "0.######", locale=loc)


def percent(ratio: float, digits: int, loc: Locale) -> str:
    """A ratio as the locale writes percentages: 12,3 % (de), 12,3% (pl)."""
    pattern = loc.percent_formats[None].pattern.split(";")[0]
    body = "#,##0" + ("." + "0" * digits if digits else "")
    return format_percent(ratio, pattern.replace("#,##0", body), locale=loc)


def money(v: float, currency: str, loc: Locale) -> str:
    """Money with its ISO code where the locale puts the sign: 1.234,50 EUR (de)."""
    if not currency:
        return decimal(v, 2, loc)
    pattern = loc.currency_formats["standard"].pattern.split(";")[0]
    return format_currency(v, currency, pattern.replace("¤", "¤¤"), locale=loc,
                           currency_digits=False)


DATE_FORMS = {"date": "yMMMEd", "day": "MMMEd", "dm": "MMMd", "dmy": "yMMMd",
              "weekday": "MMMEEEEd"}


def when(t: Any, form: str, loc: Locale, zone: ZoneInfo | None = None) -> str:
    """A time in the locale's words: form date (Sa., 14. Nov. 2026), day (Sa., 14. Nov.),
    dm (14. Nov.), dmy (14. Nov. 2026), datetime (Sa., 14. Nov., 14:05), time (14:05)."""
    t = _local(t, zone)
    if form == "time":
        return f"{t:%H:%M}"
    if form == "datetime":
        return f"{format_skeleton('MMMEd', t, locale=loc)}, {t:%H:%M}"
    return format_skeleton(DATE_FORMS[form], t, locale=loc)


def span(a: Any, b: Any, loc: Locale, zone: ZoneInfo | None = None,
         skeleton: str = "yMMMd") -> str:
    """Two days as the locale writes a range: 9.–15. Nov. 2026 (de)."""
    return format_interval(_local(a, zone), _local(b, zone), skeleton, locale=loc)


def listing(items: list[str], loc: Locale) -> str:
    """Words as the locale lists them: "A, B und C" (de)."""
    return format_list(items, locale=loc)


def week(year: int, number: int, loc: Locale) -> str:
    """An ISO week by the locale's CLDR pattern (`yw`): Woche 46 des Jahres 2026 (de),
    2026, tydz. 46 (pl), semaine 46 de 2026 (fr)."""
    pattern = loc.datetime_skeletons.get("yw")
    text = pattern.pattern if hasattr(pattern, "pattern") else str(pattern or "Y-'W'ww")
    monday = datetime.fromisocalendar(year, number, 1)
    return format_date(monday, text.replace("Y", "YYYY"), locale=loc)


def _local(t: Any, zone: ZoneInfo | None) -> Any:
    if zone is not None and getattr(t, "tzinfo", None) is not None:
        return t.astimezone(zone)
    return t
