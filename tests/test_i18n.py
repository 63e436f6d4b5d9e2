"""Locale and time zone per audience (issue 32): config keys, Babel's CLDR numbers, dates
and week labels, the shipped gettext catalogues, and a German and a Polish executive
report of the sample read back from their PDFs."""
from __future__ import annotations

import dataclasses
import io
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from babel import Locale
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from reporting.core import formatting, i18n
from reporting.core.config import DEFAULT_AUDIENCES, Config
from reporting.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ROOT / "reporting" / "locales"
UTC = ZoneInfo("UTC")
NB, NNB = "\u00a0", "\u202f"        # CLDR's no-break space (de %, pl groups), narrow (fr)


def speak(locale: str, zone: str = "UTC"):
    return i18n.speaking(i18n.voice(locale, ZoneInfo(zone)))


# --- numbers ---------------------------------------------------------------------------

@pytest.mark.parametrize("locale, expected", [
    ("de_DE", [f"1.234,5{NB}ms", f"12,3{NB}%", f"1.234,50{NB}EUR", "1.235", f"99,95{NB}%",
               f"−4,0{NB}%", "3,04 / 5"]),
    ("pl_PL", [f"1{NB}234,5{NB}ms", "12,3%", f"1{NB}234,50{NB}EUR", f"1{NB}235", "99,95%",
               "−4,0%", "3,04 / 5"]),
    ("fr_FR", [f"1{NNB}234,5{NB}ms", f"12,3{NB}%", f"1{NNB}234,50{NB}EUR", f"1{NNB}235",
               f"99,95{NB}%", f"−4,0{NB}%", "3,04 / 5"]),
])
def test_numbers_in_the_locale(locale, expected):
    """1234.5 ms, 0.1234 as a ratio, 1234.5 EUR, 1234.6 counted, 0.99953 (two decimals
    near 100 %), a change of −4 %, a rating of 3.04: each worked out from CLDR's patterns
    (de: "." groups, "," decimals, "#,##0 %"; pl: no-break space groups, "#,##0%")."""
    with speak(locale):
        got = [formatting.ms(1234.5), formatting.pct(0.1234), formatting.money(1234.5, "EUR"),
               formatting.count(1234.6), formatting.pct(0.99953), formatting.change(-0.04),
               formatting.value(3.04, "rating")]
    assert got == expected


def test_english_is_unchanged_with_or_without_a_voice():
    """en_GB speaks the product's own forms, byte for byte (the goldens rest on this)."""
    forms = lambda: [formatting.ms(1234.5), formatting.pct(0.1234),      # noqa: E731
                     formatting.money(1234.5, "EUR"), formatting.change(-0.04),
                     formatting.delta(0.5, 0.427, "ratio").text,
                     formatting.delta(1.0, 1.0, "count").text]
    plain = forms()
    with speak("en_GB"):
        assert forms() == plain
    assert plain == ["1,234.5 ms", "12.3 %", "1,234.50 EUR", "−4.0 %", "+7.3 pp", "no change"]


def test_changes_in_points_and_no_change_are_translated():
    """0.427 -> 0.5 is +7.3 percentage points: Pp. in German, p.p. in Polish."""
    with speak("de_DE"):
        assert formatting.delta(0.5, 0.427, "ratio").text == "+7,3 Pp."
        assert formatting.delta(2.0, 2.0, "count").text == "unverändert"
    with speak("pl_PL"):
        assert formatting.delta(0.5, 0.427, "ratio").text == "+7,3 p.p."


def test_thresholds_in_sentences_take_the_decimal_comma():
    @dataclasses.dataclass
    class T:
        page_p75_ms: float = 2500.0
        availability_slo: float = 0.999
        resolution_hours: float = 24.0

    with speak("de_DE"):
        words = formatting.threshold_words(T())
    assert words == {"page_p75_ms": f"2,5{NB}s", "availability_slo": "99,9 %",
                     "resolution_hours": "24 h"}


# --- dates, zones and week labels ------------------------------------------------------

def test_dates_in_the_audience_zone():
    """13:05 UTC on Sat 14 Nov 2026 is 14:05 in Berlin (CET, UTC+1) and 14:05 in Warsaw."""
    t = datetime(2026, 11, 14, 13, 5, tzinfo=timezone.utc)
    with speak("de_DE", "Europe/Berlin"):
        assert formatting.when(t, "datetime") == "Sa., 14. Nov., 14:05"
        assert formatting.when(t, "date") == "Sa., 14. Nov. 2026"
    with speak("pl_PL", "Europe/Warsaw"):
        assert formatting.when(t, "date") == "sob., 14 lis 2026"
    with speak("en_GB", "America/New_York"):          # English, another zone: 08:05 EST
        assert formatting.when(t, "datetime") == "Sat 14 Nov 08:05"
    assert formatting.when(t, "datetime") == "Sat 14 Nov 13:05"


@pytest.mark.parametrize("year, week, de, pl", [
    (2026, 46, "Woche 46 des Jahres 2026", "2026, tydz. 46"),
    (2020, 53, "Woche 53 des Jahres 2020", "2020, tydz. 53"),    # Mon 28 Dec 2020
    (2027, 1, "Woche 1 des Jahres 2027", "2027, tydz. 1"),       # Mon 4 Jan 2027
])
def test_iso_week_labels_by_cldr_pattern(year, week, de, pl):
    """CLDR's `yw` pattern with the ISO week and week-year (de, pl: weeks start on Monday
    and need four days, as ISO 8601's do), also across a year's end."""
    assert i18n.week(year, week, Locale.parse("de_DE")) == de
    assert i18n.week(year, week, Locale.parse("pl_PL")) == pl


# --- config ----------------------------------------------------------------------------

def test_locale_and_timezone_per_audience(tmp_path):
    path = tmp_path / "report.toml"
    path.write_text('locale = "fr"\ntimezone = "Europe/Warsaw"\n'
                    '[audiences.executive]\nlocale = "de-DE"\ntimezone = "Europe/Berlin"\n')
    c = Config.load(path)
    assert c.locale == "fr"
    assert c.audiences["executive"].locale == "de_DE"
    exec_voice, it_voice = (i18n.of(c.audiences[n], c) for n in ("executive", "it"))
    assert (exec_voice.name, exec_voice.zone.key) == ("de_DE", "Europe/Berlin")
    assert (it_voice.name, it_voice.zone.key) == ("fr", "Europe/Warsaw")
    assert i18n.of(DEFAULT_AUDIENCES["ux"], Config()).name == "en_GB"


@pytest.mark.parametrize("text, key", [
    ('[audiences.executive]\nlocale = "es_ES"\n', "audiences.executive.locale"),
    ('locale = "klingon"\n', "locale"),
    ('[audiences.it]\ntimezone = "Mars/Olympus"\n', "audiences.it.timezone"),
])
def test_a_wrong_locale_or_zone_is_one_sentence(tmp_path, text, key):
    path = tmp_path / "report.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        Config.load(path)
    message = str(err.value)
    assert key in message and "\n" not in message and "Traceback" not in message


# --- catalogues ------------------------------------------------------------------------

def _catalogue(lang: str):
    with open(LOCALES / lang / "LC_MESSAGES" / "reporting.po", "rb") as f:
        return read_po(f, locale=lang)


@pytest.mark.parametrize("lang", ["de", "fr", "pl"])
def test_shipped_catalogues_are_complete(lang):
    """Every message of the template is translated, none fuzzy, every plural form given
    (Polish three, French three by CLDR, German two), placeholders kept."""
    with open(LOCALES / "reporting.pot", "rb") as f:
        template = read_po(f)
    cat = _catalogue(lang)
    wanted = {m.id for m in template if m.id}
    assert wanted <= {m.id for m in cat if m.id}
    assert not cat.fuzzy
    for m in cat:
        if not m.id:
            continue
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        assert "fuzzy" not in m.flags, (lang, m.id)
        assert all(s.strip() for s in strings), (lang, m.id)
        if isinstance(m.id, tuple):
            assert len(strings) == cat.num_plurals, (lang, m.id)
        hole = r"%\(\w+\)[sd]|\{\w+\}"        # %(num)d in sentences, {name} in KPI labels
        holes = set(re.findall(hole, m.id[0] if isinstance(m.id, tuple) else m.id))
        assert all(holes <= set(re.findall(hole, s)) for s in strings), (lang, m.id)


@pytest.mark.parametrize("lang", ["de", "fr", "pl"])
def test_compiled_catalogues_match_their_po(lang):
    """The committed .mo is the .po compiled (`make locales`), so a clone reads it."""
    with open(LOCALES / lang / "LC_MESSAGES" / "reporting.mo", "rb") as f:
        mo = read_mo(f)
    po = _catalogue(lang)
    def pairs(cat):
        return {(tuple(m.id) if isinstance(m.id, (list, tuple)) else m.id):
                (tuple(m.string) if isinstance(m.string, (list, tuple)) else m.string)
                for m in cat if m.id}

    assert pairs(mo) == pairs(po)


def test_template_holds_every_marked_sentence(tmp_path):
    """`pybabel extract` now finds what the committed reporting.pot holds: a sentence added
    without `make locales` fails here."""
    out = tmp_path / "now.pot"
    # the keywords `make locales` extracts with besides the default ones (_, gettext,
    # ngettext): N_, Metric:2, Chart:3, read from it
    keywords = re.findall(r"-k (\S+)", (ROOT / "Makefile").read_text())
    assert {"N_", "Metric:2", "Chart:3"} <= set(keywords)
    subprocess.run([str(Path(sys.executable).with_name("pybabel")), "extract", "-F",
                    "babel.cfg", *(a for k in keywords for a in ("-k", k)), "--no-location",
                    "-o", str(out), "."], cwd=ROOT, check=True, capture_output=True)
    with open(out, "rb") as f:
        now = {m.id for m in read_po(f) if m.id}
    with open(LOCALES / "reporting.pot", "rb") as f:
        stored = {m.id for m in read_po(io.BytesIO(f.read())) if m.id}
    assert now == stored


# --- a German and a Polish executive report of the sample --------------------------------

# Words of our templates' own sentences and labels (page 1, tiles, appendix, glossary): none
# may remain on a translated page; nor may the common words of English sentences (the
# findings, the glossary's rows, the charts' target lines), which are neither German nor
# Polish words. Proper names stay as written (payment-api, Payment Failure, the channels).
ENGLISH_WORDS = ["the", "were", "of", "and", "with", "than", "above", "below", "usually",
                 "baseline", "target", "hour", "worth", "more", "good", "warn", "poor", "share",
                 "loads", "over", "which", "are", "from", "vs"]


def english_words(text: str) -> list[str]:
    return [w for w in ENGLISH_WORDS if re.search(rf"\b{w}\b", text, re.IGNORECASE)]


TEMPLATE_WORDS = ["Period:", "Compared with", "Generated", "Headline KPIs", "What stands out",
                  "Glossary", "Appendix", "Data span", "Rows read", "all rows valid",
                  "no change", "Status against", "more findings", "Executive summary",
                  "What is counted", "Judged by", "Audience:", "vs", "WARN", "GOOD", "BAD"]
TILE_WORDS = ["Availability", "Revenue", "Abandoned carts", "P95 latency"]   # English labels


@pytest.fixture(scope="module")
def translated(tmp_path_factory):
    """One build of the sample's latest week: the executive page in German (Berlin time)
    and the same page in Polish (Warsaw time); the IT report in German."""
    from reporting.build import build

    from tests.conftest import pdf_text

    polish = dataclasses.replace(DEFAULT_AUDIENCES["executive"], name="executive_pl",
                                 locale="pl_PL", timezone="Europe/Warsaw")
    audiences = {**DEFAULT_AUDIENCES, "executive_pl": polish,
                 "executive": dataclasses.replace(DEFAULT_AUDIENCES["executive"],
                                                  locale="de_DE", timezone="Europe/Berlin"),
                 "it": dataclasses.replace(DEFAULT_AUDIENCES["it"], locale="de_DE",
                                           timezone="Europe/Berlin")}
    out = tmp_path_factory.mktemp("i18n")
    result = build(Config(audiences=audiences), period="2026-W46", data_dir=ROOT / "data",
                   output_dir=out, fmt="pdf", audiences=["executive", "executive_pl", "it"])
    # Spaces of any kind as one: a tile's value may wrap before its unit (tile widths are
    # the design pass's, issue 32 point 3), which is a line break in the text.
    return {p.stem: re.sub(r"\s+", " ", pdf_text(p))
            for p in result.files if p.suffix == ".pdf"}


def _tiles(text: str, start: str, end: str) -> str:
    return text[text.index(start):text.index(end)]


def test_german_executive_report(translated):
    text = translated["executive"]
    assert text.startswith("Management-Zusammenfassung")
    assert "Zeitraum: 9.–15. Nov. 2026 (Woche 46 des Jahres 2026)" in text
    assert "Europe/Berlin" in text and "Seite 1 von" in text
    tiles = _tiles(text, "Wichtigste Kennzahlen", "Was auffällt")
    # p75 load time 2,438.0 ms and revenue 90,061.50 in the golden English page
    assert "2.438,0 ms ✓ GUT" in tiles and "90.061,50" in tiles
    assert "Verfügbarkeit" in tiles and "Antwortzeit p95" in tiles      # tile labels
    assert "▼ −0,05 Pp. ggü. 99,94 %" in tiles
    assert not re.search(r"\d,\d{3}\.\d|\d\.\d+ ?(ms|%)", tiles), tiles
    assert [w for w in TEMPLATE_WORDS if re.search(rf"\b{re.escape(w)}\b", text)] == []
    assert [w for w in TILE_WORDS if w.lower() in tiles.lower()] == []
    # the charts drawn in German: ticks 6.000 and 12.000 (English 6,000), day labels
    assert "0 6.000 12.000" in text and "Mo. 9. Nov." in text   # weekday over date
    assert "0 6,000 12,000" not in text
    # the findings and the glossary in German, in Berlin time (the sample is UTC)
    assert "HOCH · VORFÄLLE Mi., 11. Nov., 11:00–13:00: payment-api 5xx bei 38,6 %" in text
    assert "HOCH · API Die Verfügbarkeit lag bei 99,89 %" in text
    assert english_words(text) == []


def test_polish_executive_report(translated):
    text = translated["executive_pl"]
    assert text.startswith("Podsumowanie dla zarządu")
    assert "Okres: 9–15 lis 2026 (2026, tydz. 46)" in text
    assert "Europe/Warsaw" in text and "strona 1 z" in text
    tiles = _tiles(text, "Kluczowe wskaźniki", "Co się wyróżnia")
    assert "2 438,0 ms ✓ DOBRZE" in tiles and "90 061,50" in tiles
    assert "99,89% ⚠ UWAGA" in tiles
    assert "Dostępność" in tiles and "Przychód" in tiles   # labels in their own case
    assert not re.search(r"\d,\d{3}\.\d|\d\.\d+ ?(ms|%)", tiles), tiles
    assert [w for w in TEMPLATE_WORDS if re.search(rf"\b{re.escape(w)}\b", text)] == []
    assert [w for w in TILE_WORDS if w.lower() in tiles.lower()] == []
    assert "Dostępność wyniosła 99,89% przy SLO 99,90%" in text
    assert english_words(text) == []


def test_german_it_report_notes(translated):
    """The notes under the IT report's tables (impact, deploys, p99, shares) in German."""
    text = translated["it"]
    assert "Auswirkung ist, was im Zeitfenster über dem üblichen Niveau lag." in text
    assert "p99 für Gruppen ab 200 Anfragen gezeigt." in text
    # the timeline's panel named after the failing service, a label computed with the data
    assert "payment-api 5xx-Quote (%)" in text and "5xx rate" not in text
    assert "Anteil: an den Serverfehlern (5xx) oder Clientfehlern (4xx) des Zeitraums." in text
    assert english_words(text) == []


# --- charts in the page's language -------------------------------------------------------

def test_a_german_chart_says_its_title_axes_legend_and_days_in_german(tmp_path):
    """A chart's own words come from the catalogue while a German audience's charts are
    drawn (SVG text stays text: svg.fonttype none); the same chart drawn in English is
    as it always was."""
    from reporting.core.values import Chart
    from reporting.present import charts

    days = pd.date_range("2026-11-09", periods=7, freq="D", tz=UTC)
    per_day = pd.DataFrame({"Chat": [3, 4, 5, 2, 6, 1, 0], "Email": [1, 2, 0, 3, 1, 2, 2]},
                           index=days)
    chart = Chart("support_per_day", "stacked", "New tickets per day by channel (tickets)",
                  per_day, {"x_label": "", "y_label": "tickets", "date_labels": True})
    with i18n.speaking(i18n.voice("de_DE", UTC)):
        german = charts.draw(chart, tmp_path / "de.svg").read_text()
    english = charts.draw(chart, tmp_path / "en.svg").read_text()
    def texts(svg: str) -> list[str]:
        return re.findall(r">([^<>]+)</text>", svg)

    assert texts(german)[:2] == ["Mo.", "9. Nov."]
    assert texts(german)[-4:] == ["Tickets", "Neue Tickets pro Tag nach Kanal (Tickets)",
                                  "Chat", "Email"]       # the channels are data: as written
    assert texts(english)[:2] == ["Mon", "9 Nov"]
    assert texts(english)[-4:] == ["tickets", "New tickets per day by channel (tickets)",
                                   "Chat", "Email"]


def test_the_trends_title_and_heatmap_days_in_each_language():
    from reporting.core.values import Chart
    from reporting.present.chartwords import trends_title, weekday

    chart = Chart("trends_it", "trends", "Headline KPIs over the last 5 periods (this one "
                  "in orange)", pd.DataFrame(), {"periods": 5})
    assert trends_title(chart) == chart.title                          # English as before
    said = {}
    for locale in ("de_DE", "fr_FR", "pl_PL"):
        with i18n.speaking(i18n.voice(locale, UTC)):
            said[locale] = (trends_title(chart), weekday("Mon"), weekday("Sun"))
    assert said == {
        "de_DE": ("Wichtigste Kennzahlen der letzten 5 Perioden (diese in Orange)", "Mo.",
                  "So."),
        "fr_FR": ("Indicateurs clés des 5 dernières périodes (celle-ci en orange)", "lun.",
                  "dim."),
        "pl_PL": ("Kluczowe wskaźniki z ostatnich 5 okresów (bieżący na pomarańczowo)",
                  "pon.", "niedz.")}


def test_a_table_title_and_headings_in_german():
    from reporting.core.values import Table
    from reporting.present.html import table_view

    table = Table("by_channel", "By channel", pd.DataFrame(
        {"channel": ["Email"], "tickets": [61], "share": [0.301]}),
        {"tickets": "count", "share": "ratio"})
    with i18n.speaking(i18n.voice("de_DE", UTC)):
        german = table_view(table, {})
    english = table_view(table, {})
    assert (german["title"], [c["name"] for c in german["columns"]]) == (
        "Nach Kanal", ["Kanal", "Tickets", "Anteil"])
    assert (english["title"], [c["name"] for c in english["columns"]]) == (
        "By channel", ["Channel", "Tickets", "Share"])
    assert german["rows"] == english["rows"]             # the values are data: as given


# --- sentences computed with the data, said in each page's language -------------------

def test_a_phrase_is_its_english_text_and_is_said_again_in_the_page_voice():
    """An insight's sentence is made once in English (kpis.json, the archive and the logs
    read that) and made again, from the same arguments, while a page's voice is active:
    its numbers and words in that language, escaped in the HTML (a page name is text from
    outside), and a copy sent to another process is its English text."""
    import copy
    import json
    import pickle

    import jinja2

    def build(page: str, ms: float) -> str:
        return i18n.gettext("%(page)s loads in %(p75)s at p75 over %(views)s views, above "
                            "the %(good)s good band; %(share)s of its loads take over "
                            "%(poor)s.") % {"page": page, "p75": formatting.ms(ms),
                                            "views": formatting.count(3998),
                                            "share": formatting.pct(0.095),
                                            "good": "2.5 s", "poor": "4 s"}

    said = i18n.Phrase(build, "<b>/cart</b>", 2900.8)
    english = ("<b>/cart</b> loads in 2,900.8 ms at p75 over 3,998 views, above the 2.5 s "
               "good band; 9.5 % of its loads take over 4 s.")
    assert said == english and json.dumps(said) == json.dumps(english)
    assert said.said() == english                       # no voice active: the English text
    page = jinja2.Environment(autoescape=True).from_string("{{ s }}")
    with speak("de_DE"):
        german = said.said()
        html = page.render(s=said)
        assert i18n.gettext(said) == german
    assert german.startswith(f"<b>/cart</b> ") and f"2.900,8{NB}ms" in german
    assert "loads in" not in german and f"9,5{NB}%" in german
    assert html == german.replace("<", "&lt;").replace(">", "&gt;")   # escaped, German
    assert page.render(s=said) == english.replace("<", "&lt;").replace(">", "&gt;")
    assert type(pickle.loads(pickle.dumps(said))) is str
    assert pickle.loads(pickle.dumps(said)) == english
    assert copy.deepcopy(said) is said


def test_a_sliced_german_audience_s_charts_are_drawn_in_german(tmp_path):
    """A slice's charts are its own (`charts/<audience>/`), drawn in its voice: titles,
    axis names and day labels in German, numbers with the German separators."""
    from reporting.build import build
    from reporting.simulate import simulate

    simulate(tmp_path / "data", weeks=2, scale="tiny", seed=8)
    config = Config.from_dict({"audiences": {"payments": {
        "title": "Payments weekly", "locale": "de_DE", "sections": ["api", "trends"],
        "filters": {"services": ["payment-*"]}}}})
    result = build(config, period="latest", data_dir=tmp_path / "data",
                   output_dir=tmp_path / "out", fmt="html", audiences=["payments"])
    svg = (result.folder / "html" / "charts" / "payments" / "api_hourly.svg").read_text()
    texts = re.findall(r">([^<>]+)</text>", svg)
    assert "Anfragen und Serverfehlerquote pro Stunde" in texts
    assert "Anfragen / Stunde" in texts and "26. Okt." in texts
    assert not [t for t in texts if re.search(r"\b(Requests|per hour|Mon)\b", t)], texts
