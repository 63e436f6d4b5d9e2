"""The archive as a site: output/index.html, reports on screen, in a real Chromium over
file:// and over `reporting serve`, at 1280 and 390 px."""
from __future__ import annotations

import datetime
import http.client
import json
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from reporting.build import build
from reporting.cli import main
from reporting.core import formatting, i18n
from reporting.core.config import Config
from reporting.core.errors import ConfigError
from reporting.deliver.reports import deliver
from reporting.present import site
from reporting.simulate import simulate

from .browser import (
    broken_images,
    chromium,
    fonts,
    links,
    open_page,
    overflow,
    screenshot,
    set_width,
)

WEEKS = ["2026-W43", "2026-W44", "2026-W45"]
BAD_ROW = '2026-11-03 09:00:00Z,"/checkout",200,-5,"payment-api","GET"\n'


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three simulated weeks (an outage in the third) built into one output folder: the
    first two as HTML only, the third with the IT and executive PDFs; one rejected row."""
    root = tmp_path_factory.mktemp("site")
    data = root / "data"
    simulate(data, 3, "tiny", 3, datetime.date(2026, 10, 19), "csv")
    with (data / "api_logs.csv").open("a") as fh:
        fh.write(BAD_ROW)
    out = root / "output"
    config = Config()
    for week in WEEKS[:2]:
        build(config, period=week, fmt="html", data_dir=data, output_dir=out)
    build(config, period=WEEKS[2], fmt="both", audiences=["it", "executive"], data_dir=data,
          output_dir=out)
    return out


def kpis(out: Path, week: str) -> dict:
    return json.loads((out / "reports" / week / "kpis.json").read_text())


# --- the index as written ---------------------------------------------------------------

def test_index_lists_periods_newest_first_with_headline_numbers(archive: Path) -> None:
    html = (archive / "index.html").read_text()
    assert [m for m in re.findall(r'id="p-([^"]+)"', html)] == WEEKS[::-1]
    assert "file://" not in html
    newest = html[html.index('id="p-2026-W45"'):html.index('id="p-2026-W44"')]
    doc = kpis(archive, "2026-W45")
    # The newest period: its two audiences, links to their HTML and PDF, every headline number.
    assert 'href="reports/2026-W45/html/it.html">IT &amp; operations weekly</a>' in newest
    assert 'href="reports/2026-W45/it.pdf">PDF</a>' in newest
    assert 'href="reports/2026-W45/html/ux.html"' not in newest       # not built that week
    for key in doc["headline"]["it"]:
        k = doc["kpis"][key]
        shown = (f'<li class="{k["status"] or ""}"><span class="label">{doc["labels"][key]}'
                 f'</span><span class="value">{formatting.value(k["value"], k["unit"])}</span>')
        assert shown.replace("&", "&amp;") in newest, key
    # The status colour of a card is its worst headline number.
    statuses = [doc["kpis"][k]["status"] for k in doc["headline"]["it"]]
    worst = "bad" if "bad" in statuses else "warn" if "warn" in statuses else "good"
    assert f'<div class="card {worst}">\n          <h4><a href="reports/2026-W45/html/it.html"' \
        in newest
    # An HTML-only week links no PDF; every week links its kpis.json and rejected rows.
    older = html[html.index('id="p-2026-W44"'):html.index('id="p-2026-W43"')]
    assert ".pdf" not in older and 'href="reports/2026-W44/kpis.json"' in older
    assert 'href="reports/2026-W44/rejected/api_logs.csv">rejected api_logs rows (1)' in older


def test_index_history_and_incidents(archive: Path) -> None:
    html = (archive / "index.html").read_text()
    history = html[html.index('<section id="history">'):html.index('<section id="incidents">')]
    assert "3 periods of the same length as the newest" in history
    for title in ("Executive summary", "UX weekly", "IT &amp; operations weekly",
                  "Support weekly"):
        assert f"<h3>{title}</h3>" in history
    # One SVG per headline KPI, drawn once and shared by the audiences that show it.
    srcs = re.findall(r'<img src="(site/charts/[^"]+)"', history)
    headline = {k for keys in kpis(archive, "2026-W45")["headline"].values() for k in keys}
    assert set(srcs) >= {f"site/charts/{k}.svg" for k in headline}
    svg = (archive / "site" / "charts" / "api.availability.svg").read_text()
    assert all(tick in svg for tick in ("W43", "W44", "W45"))
    incidents = html[html.index('<section id="incidents">'):]
    found = kpis(archive, "2026-W45")["incidents"]
    assert len(found) == 1 and incidents.count("<li>") == 1
    assert "Wed 4 Nov 2026 10:00 – 12:00" in incidents and "payment-api" in incidents
    assert ('<a href="reports/2026-W45/html/it.html#incidents">IT &amp; operations weekly →'
            '</a>') in incidents
    assert 'id="incidents"' in (archive / "reports/2026-W45/html/it.html").read_text()


def test_the_index_a_report_page_s_links_and_the_mail_links_in_german(archive: Path,
                                                                   tmp_path: Path) -> None:
    """The top-level `locale` speaks the index (its own words, KPI labels, dates in the
    zone); an audience's `locale` its page's screen links and its mail's links."""
    out = tmp_path / "output"
    shutil.copytree(archive, out)
    config = Config.from_dict({
        "locale": "de_DE", "timezone": "Europe/Berlin",
        "public_url": "https://reports.example.com/diag",
        "audiences": {"it": {"recipients": ["ops@example.com"]}}})
    build(config, period=WEEKS[2], fmt="both", audiences=["it", "executive"],
          data_dir=archive.parent / "data",
          output_dir=out)
    html = (out / "index.html").read_text()
    assert '<html lang="de">' in html and "<h1>Diagnoseberichte</h1>" in html
    assert "3 archivierte Zeiträume, neueste zuerst · aktualisiert" in html
    assert "Vorfälle (1)" in html and "<h2>KPI-Verlauf</h2>" in html
    assert "Mi., 4. Nov. 2026 11:00 – 13:00" in html           # 10:00-12:00 UTC
    assert "Verfügbarkeit" in html                              # a headline KPI's label
    # the incident's sentence as the build said it in German (site-words.json), and a
    # KPI label naming its threshold
    assert "Mi., 4. Nov., 11:00–13:00: payment-api 5xx bei" in html
    assert 'lang="en"' not in html and "Ladevorgänge &gt; 4\u00a0s" in html
    # the two older weeks were built in English: their cards keep kpis.json's labels
    body = html[html.index("<body>"):html.index('<details class="period"')] + html[
        html.index('<section id="history">'):]
    body = re.sub(r"<[^>]+>", " ", body)
    english = [w for w in ("Periods", "archived", "built", "rows", "history", "Incidents",
                           "impact", "tickets", "against", "Loads", "usual", "than")
               if re.search(rf"\b{w}\b", body)]
    assert english == []
    # an index in another locale than the words': kpis.json's English, marked so
    site.write_index(out, voice=i18n.voice("fr_FR", ZoneInfo("Europe/Paris")))
    html = (out / "index.html").read_text()
    assert '<div lang="en">Wed 4 Nov 11:00–13:00: payment-api 5xx at' in html
    page = (out / "reports" / WEEKS[2] / "html" / "it.html").read_text()
    assert "← Alle Berichte" in page
    assert 'Andere Zielgruppen: <a href="executive.html">Management-Zusammenfassung</a>' in page
    assert "All reports" not in page
    outcome = deliver(config, out, WEEKS[2], ["it"])
    import email
    from email import policy
    msg = email.message_from_bytes(outcome.written[0].read_bytes(), policy=policy.default)
    text = msg.get_body(("plain",)).get_content()
    assert "Diesen Bericht online lesen: https://reports.example.com/diag/" in text
    assert "Alle Berichte und KPI-Verlauf: https://reports.example.com/diag/index.html" in text


def test_prune_rewrites_the_index(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "output"
    shutil.copytree(archive, out)
    run = CliRunner().invoke(main, ["archive", "prune", "--keep", "2", "--output", str(out)])
    assert run.exit_code == 0, run.output
    html = (out / "index.html").read_text()
    assert re.findall(r'id="p-([^"]+)"', html) == ["2026-W45", "2026-W44"]
    assert "2 periods of the same length" in html
    run = CliRunner().invoke(main, ["archive", "prune", "--keep", "1", "--output", str(out)])
    assert run.exit_code == 0, run.output
    html = (out / "index.html").read_text()
    assert re.findall(r'id="p-([^"]+)"', html) == ["2026-W45"]
    assert "History appears once two periods of the same length are archived." in html
    assert list((out / "site" / "charts").glob("*.svg")) == []        # stale charts removed
    run = CliRunner().invoke(main, ["archive", "prune", "--keep", "0", "--output", str(out)])
    assert run.exit_code == 0, run.output
    html = (out / "index.html").read_text()
    assert "0 archived periods" in html and "No report has been built into this folder yet." \
        in html and "No incidents in the archived periods." in html


def test_report_html_links_and_relative_assets(archive: Path) -> None:
    it = (archive / "reports/2026-W45/html/it.html").read_text()
    assert "file://" not in it
    assert 'url("../../../assets/fonts/DejaVuSans.ttf")' in it
    assert (archive / "assets/fonts/DejaVuSans.ttf").read_bytes()[:4] == b"\x00\x01\x00\x00"
    for href in ('href="../../../index.html"', 'href="../it.pdf"', 'href="../kpis.json"',
                 'href="../rejected/api_logs.csv">rejected api_logs rows (1)',
                 'href="executive.html">Executive summary'):
        assert href in it
    assert re.search(r'<img src="charts/[a-z_]+\.svg"', it)
    html_only = (archive / "reports/2026-W44/html/it.html").read_text()
    assert ".pdf" not in html_only and 'href="ux.html">UX weekly' in html_only


# --- a real browser ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(archive: Path) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "reporting", "serve", "--output",
                             str(archive), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert " at http://127.0.0.1:" in line, line + proc.stderr.read()
        yield line.split(" at ")[1].split(" ")[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    with chromium(tmp_path_factory.mktemp("chromium")) as driver:
        yield driver


def _resolves(url: str, base: str, archive: Path) -> bool:
    """A link's target exists: the file (file://) or a 200 answer (http://); a fragment
    names an element id of its page."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = Path(unquote(parts.path))
        ok = path.is_file() and path.resolve().is_relative_to(archive.resolve())
        text = path.read_text(errors="replace") if ok and path.suffix == ".html" else ""
    else:
        assert url.startswith(base), url
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("GET", parts.path)
        response = conn.getresponse()
        body = response.read()
        ok = response.status == 200
        text = body.decode(errors="replace") if parts.path.endswith(".html") else ""
    if ok and parts.fragment:
        ok = f'id="{parts.fragment}"' in text
    return ok


PAGES = ["index.html", "reports/2026-W45/html/it.html"]


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("via", ["file", "serve"])
def test_pages_in_chromium(archive: Path, served: str, browser: object, page: str, via: str,
                           tmp_path: Path) -> None:
    from PIL import Image

    url = (archive / page).as_uri() if via == "file" else served + page
    base = archive.as_uri() if via == "file" else served
    for width in (1280, 390):
        set_width(browser, width)
        console = open_page(browser, url)
        assert console == [], console                      # no errors, no warnings
        assert overflow(browser) == 0, f"{page} scrolls sideways at {width} px"
        assert broken_images(browser) == []
        assert fonts(browser) == [("DejaVu Sans normal", "loaded"),
                                  ("DejaVu Sans bold", "loaded")]
        shot = screenshot(browser, tmp_path / f"{via}-{Path(page).stem}-{width}.png")
        assert Image.open(shot).size[0] == width
    found = links(browser)
    assert len(found) >= (20 if page == "index.html" else 12)   # links, images, fonts
    broken = [u for u in dict.fromkeys(found) if not _resolves(u, base, archive)]
    assert broken == []


# --- public_url ----------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["reports.example.com", "ftp://x/y", "https://",
                                   "javascript:alert(1)", "https://x/?a=1",
                                   "https://x/a b", 42])
def test_public_url_must_be_an_http_address(value: object) -> None:
    with pytest.raises(ConfigError, match="public_url must be an http:// or https:// address"):
        Config.from_dict({"public_url": value})


def test_mail_links_to_the_published_report_and_index(archive: Path, tmp_path: Path) -> None:
    """The outbox message of a built week: both bodies link to the HTML report under
    public_url and to the index; the links name files that exist under output/."""
    import email
    from email import policy

    out = tmp_path / "output"
    shutil.copytree(archive, out)
    audiences = {"it": {"recipients": ["ops@example.com"]},
                 "executive": {"recipients": ["boss@example.com"]}}
    config = Config.from_dict({"public_url": "https://reports.example.com/diag",
                               "audiences": audiences})
    assert config.public_url == "https://reports.example.com/diag/"
    outcome = deliver(config, out, "2026-W45", ["it"])
    msg = email.message_from_bytes(outcome.written[0].read_bytes(), policy=policy.default)
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    report = "https://reports.example.com/diag/reports/2026-W45/html/it.html"
    index = "https://reports.example.com/diag/index.html"
    assert f"Read this report online: {report}\n" in text
    assert f"All reports and KPI history: {index}\n" in text
    assert f'<a href="{report}" style="color:#0b5cad">Read this report online</a>' in html
    assert f'<a href="{index}" style="color:#0b5cad">All reports and KPI history</a>' in html
    for url in (report, index):
        assert (out / url.removeprefix(config.public_url)).is_file()
    # Without public_url the message has no links.
    plain = deliver(Config.from_dict({"audiences": audiences}), out, "2026-W45", ["executive"])
    body = email.message_from_bytes(plain.written[0].read_bytes(), policy=policy.default)
    assert "http" not in body.get_body(("plain",)).get_content()


def test_a_pdf_only_folder_gets_no_fonts_until_a_page_needs_them(archive: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "output"
    build(Config(), period=WEEKS[0], fmt="pdf", audiences=["support"],
          data_dir=archive.parent / "data", output_dir=out)
    assert not (out / "assets" / "fonts").exists() and (out / "assets" / "favicon.svg").is_file()
    assert "@font-face" not in (out / "index.html").read_text()     # the browser's sans-serif
    build(Config(), period=WEEKS[0], fmt="html", audiences=["support"],
          data_dir=archive.parent / "data", output_dir=out)
    assert (out / "assets" / "fonts" / "DejaVuSans.ttf").is_file()
    assert 'url("assets/fonts/DejaVuSans.ttf")' in (out / "index.html").read_text()


def test_a_week_across_the_change_of_summer_time_is_charted_beside_the_others() -> None:
    """2026-W43 in Berlin is 169 hours long (clocks go back on Sun 25 Oct): still a week."""
    from zoneinfo import ZoneInfo

    import pandas as pd

    from reporting.core.periods import resolve
    from reporting.present import site

    zone = ZoneInfo("Europe/Berlin")
    weeks = [resolve(w, zone, None) for w in ("2026-W43", "2026-W44")]
    found = [site._Period(p.id, p.start, p.end, Path("."), "", (), None) for p in weeks]
    assert [p.end - p.start for p in found] == [pd.Timedelta(hours=169),
                                                pd.Timedelta(hours=168)]
    assert [site._days(p) for p in found] == [7, 7]


def test_a_period_s_days_on_a_translated_index_are_its_own_not_shifted_by_the_zone() -> None:
    """A week archived with UTC bounds, the index in German and Berlin time: 2–8 Nov,
    as the English index says, not 2–9 Nov (its end read in Berlin)."""
    import pandas as pd

    week = site._Period("2026-W45", pd.Timestamp("2026-11-02", tz="UTC"),
                        pd.Timestamp("2026-11-09", tz="UTC"), Path("."), "", (), None)
    assert site._span(week) == "2 Nov – 8 Nov 2026"
    with i18n.speaking(i18n.voice("de_DE", ZoneInfo("Europe/Berlin"))):
        assert site._span(week) == "2.–8. Nov. 2026"
