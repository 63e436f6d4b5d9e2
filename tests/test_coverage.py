"""Coverage before content: what part of the period each source's data reaches."""
from __future__ import annotations

import dataclasses
import email
import email.policy
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from reporting import scheduler
from reporting.cli import build_report
from reporting.compute import coverage
from reporting.core.errors import NoDataError
from reporting.core.periods import date_range, resolve, week
from reporting.core.values import KPI, Section
from reporting.simulate import simulate
from reporting.store.archive import Archive

UTC = ZoneInfo("UTC")


def every_day(first: str, last: str, skip: tuple[str, ...] = (), hours=(9, 15)) -> pd.Series:
    days = [d for d in pd.date_range(first, last, freq="D") if f"{d:%Y-%m-%d}" not in skip]
    return pd.Series([d + pd.Timedelta(hours=h) for d in days for h in hours]).dt.tz_localize(UTC)


def frames(**times: pd.Series) -> dict[str, pd.DataFrame]:
    cols = {"api_logs": "timestamp", "support_tickets": "created_at"}
    return {name: pd.DataFrame({cols[name]: t}) for name, t in times.items()}


def test_a_source_that_ends_early_and_a_missing_day_are_named():
    # W46 = Mon 9 .. Sun 15 Nov. API logs stop after Thu 12 Nov: 13, 14, 15 have none
    # (3 of 7 days); tickets come every day from 19 Oct but not on Sat 14 Nov.
    p = week(2026, 46, UTC)
    cov = coverage.compute(frames(api_logs=every_day("2026-10-19", "2026-11-12"),
                                  support_tickets=every_day("2026-10-19", "2026-11-15",
                                                            skip=("2026-11-14",))), p)
    assert cov.sources["api_logs"].status == "partial"
    assert [f"{t:%d}" for t in cov.sources["api_logs"].missing] == ["13", "14", "15"]
    assert cov.notes() == ["API logs end 12 Nov: 13–15 Nov without data (3 of 7 days)",
                           "Tickets missing on 14 Nov"]


def test_a_day_a_source_never_has_rows_on_is_not_missing():
    # Tickets only on weekdays since 19 Oct: the weekend of W46 is not a gap.
    weekdays = every_day("2026-10-19", "2026-11-15")
    weekdays = weekdays[weekdays.dt.day_of_week < 5]
    cov = coverage.compute(frames(support_tickets=weekdays), week(2026, 46, UTC))
    assert cov.sources["support_tickets"].status == "full" and cov.notes() == []


def test_a_day_long_period_is_judged_by_the_hour():
    # API rows at every hour from 1 Nov to 12 Nov 05:59: on 12 Nov hours 06..23 are missing.
    times = pd.Series(pd.date_range("2026-11-01", "2026-11-12 05:00", freq="h", tz=UTC))
    p = date_range(pd.Timestamp("2026-11-12").date(), pd.Timestamp("2026-11-12").date(), UTC)
    c = coverage.compute(frames(api_logs=times), p).sources["api_logs"]
    assert c.hourly and len(c.missing) == 18
    assert c.sentence(p) == "API logs end 05:00: 06:00–23:00 without data (18 of 24 hours)"


def test_a_period_after_the_data_is_one_sentence():
    times = every_day("2026-10-19", "2026-11-15")
    p = week(2026, 47, UTC)
    cov = coverage.compute(frames(api_logs=times), p)
    with pytest.raises(NoDataError) as exc:
        coverage.require_some(cov, (times.min(), times.max()))
    assert str(exc.value) == ("The data ends 15 Nov 2026, before 2026-W47 starts; "
                              "nothing was built.")
    assert exc.value.exit_code == 1


def test_a_partial_source_is_never_good_and_not_compared():
    p = week(2026, 46, UTC)
    cov = coverage.compute(frames(api_logs=every_day("2026-10-19", "2026-11-12")), p)
    s = Section("api", "API", kpis=(
        KPI("api.availability", "Availability", 0.9995, 0.999, "ratio", "good", "up"),
        KPI("api.p95_ms", "p95", 900.0, 700.0, "ms", "bad", "down")))
    [a, b] = coverage.untrusted({"api": s}, {"api": "api_logs"}, cov)["api"].kpis
    assert (a.status, a.previous, a.change) == (None, None, None)
    assert (b.status, b.previous) == ("bad", None)


def test_build_after_the_data_exits_1_and_writes_nothing(tmp_path):
    simulate(tmp_path / "data", weeks=1, scale="tiny", seed=3)     # 2026-W43 only
    out = tmp_path / "out"
    result = CliRunner().invoke(build_report, ["--data", str(tmp_path / "data"), "--output",
                                               str(out), "--period", "2026-W47"])
    assert result.exit_code == 1
    assert "The data ends 25 Oct 2026, before 2026-W47 starts; nothing was built." \
        in " ".join(result.output.split())
    assert not (out / "reports").exists()
    with Archive(out) as a:
        assert a.db.execute("SELECT count(*) FROM builds").fetchone()[0] == 0


def test_partial_period_builds_and_page_one_names_the_gap(tmp_path):
    simulate(tmp_path / "data", weeks=1, scale="tiny", seed=3)     # 19 .. 25 Oct
    out = tmp_path / "out"
    result = CliRunner().invoke(build_report, [
        "--data", str(tmp_path / "data"), "--output", str(out), "--format", "pdf",
        "--period", "2026-10-22..2026-10-28", "--audience", "it"])
    assert result.exit_code == 0, result.output
    folder = out / "reports" / "2026-10-22_2026-10-28"
    first = " ".join(PdfReader(folder / "it.pdf").pages[0].extract_text().split())
    assert "All sources end 25 Oct: 26–28 Oct without data (3 of 7 days)" in first
    doc = json.loads((folder / "kpis.json").read_text())
    assert doc["coverage"]["api_logs"]["status"] == "partial"
    assert [k for k, v in doc["kpis"].items()
            if k.startswith(("api.", "system.")) and v["status"] == "good"] == []


def test_scheduled_job_over_old_data_fails_and_mails_no_report(tmp_path):
    simulate(tmp_path / "data", weeks=1, scale="tiny", seed=3)     # 2026-W43; today is later
    toml = tmp_path / "report.toml"
    toml.write_text('[audiences.it]\nperiod = "last-week"\nrecipients = ["it@example.com"]\n'
                    '[scheduler]\nnotify_on_failure = "ops@example.com"\n')
    out = tmp_path / "out"
    scheduler.run_job(str(toml), "it", str(tmp_path / "data"), str(out))
    with Archive(out) as a:
        [run] = [dict(r) for r in a.db.execute("SELECT * FROM runs")]
        assert a.db.execute("SELECT count(*) FROM builds").fetchone()[0] == 0
    assert run["status"] == "failed"
    assert "The data ends 25 Oct 2026, before" in run["error"]
    assert [p.name.startswith("failure-it-") for p in (out / "outbox").iterdir()] == [True]
    assert not (out / "reports").exists()


@pytest.mark.parametrize("allow", [True, False])
def test_a_scheduled_partial_report_is_mailed_with_the_warning_unless_refused(tmp_path, allow):
    simulate(tmp_path / "data", weeks=1, scale="tiny", seed=3)     # 19 .. 25 Oct
    toml = tmp_path / "report.toml"
    toml.write_text('[audiences.it]\nperiod = "2026-10-22..2026-10-28"\n'
                    'recipients = ["it@example.com"]\n'
                    f'[scheduler]\nallow_partial = {str(allow).lower()}\n')
    out = tmp_path / "out"
    scheduler.run_job(str(toml), "it", str(tmp_path / "data"), str(out))
    with Archive(out) as a:
        [run] = [dict(r) for r in a.db.execute("SELECT * FROM runs")]
    mails = sorted((out / "outbox").glob("*.eml")) if (out / "outbox").exists() else []
    if allow:
        assert run["status"] == "ok"
        [mail] = mails
        message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
        body = message.get_body(("plain",)).get_content()
        assert "Partial data: All sources end 25 Oct: 26–28 Oct without data (3 of 7 days)" in body
    else:
        assert run["status"] == "failed" and "built but not mailed" in run["error"]
        assert mails == []


def test_latest_ends_on_the_last_day_covered_to_its_end():
    # Rows every hour to 15 Nov 23:00 UTC, which in Warsaw is 16 Nov 00:00: the 16th holds
    # one hour there, so `latest` is 9..15 Nov, not 10..16 Nov.
    times = pd.Series(pd.date_range("2026-11-01", "2026-11-15 23:00", freq="h", tz=UTC))
    warsaw = ZoneInfo("Europe/Warsaw")
    f = {"api_logs": pd.DataFrame({"timestamp": times.dt.tz_convert(warsaw)})}
    assert f"{coverage.last_complete_day(f, warsaw)}" == "2026-11-15"
    assert f"{coverage.last_complete_day(f, UTC)}" == "2026-11-15"
    p = resolve("latest", warsaw, (times.min(), times.max()), None,
                coverage.last_complete_day(f, warsaw))
    assert p.id == "2026-W46"


def test_a_row_dated_2052_is_rejected_and_latest_stays(tmp_path):
    simulate(tmp_path / "data", weeks=1, scale="tiny", seed=3)     # 19 .. 25 Oct: 2026-W43
    api = next((tmp_path / "data").glob("api_logs.*"))
    frame = pd.read_parquet(api) if api.suffix == ".parquet" else pd.read_csv(api)
    stray = frame.iloc[[0]].copy()
    stray["timestamp"] = "2052-06-01T12:00:00Z"
    frame["timestamp"] = frame["timestamp"].astype(str)
    pd.concat([frame, stray]).to_csv(tmp_path / "data" / "api_logs.csv", index=False)
    if api.suffix != ".csv":
        api.unlink()
    out = tmp_path / "out"
    result = CliRunner().invoke(build_report, ["--data", str(tmp_path / "data"), "--output",
                                               str(out), "--format", "html", "-a", "it"])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "reports" / "2026-W43" / "kpis.json").read_text())
    assert doc["period"]["id"] == "2026-W43"
    [(reason, count)] = doc["data_quality"]["api_logs"]["rejected"].items()
    assert count == 1 and "future" in reason


def test_a_source_with_two_gaps_is_named_once():
    """'Clicks end 12 Nov (…); also missing on 11 Nov', not '…; they missing on 11 Nov'."""
    tz = ZoneInfo("UTC")
    p = resolve("2026-W46", tz, None)
    usual = pd.Series(pd.date_range("2026-10-01", "2026-11-08", freq="6h", tz=tz))
    days = pd.Series(pd.to_datetime(["2026-11-09 10:00", "2026-11-10 10:00",
                                     "2026-11-12 10:00"]).tz_localize(tz))
    c = dataclasses.replace(coverage.of_source(pd.concat([usual, days], ignore_index=True), p),
                            source="clickstream")
    assert coverage.Coverage(p, {"clickstream": c}).notes() == [
        "Clicks end 12 Nov: 13–15 Nov without data (3 of 7 days); also missing on 11 Nov"]


def test_days_after_a_short_log_ends_are_all_missing_and_named():
    # Issue 27: a log of Sun 17 May 10:05 .. Wed 20 May 21:05 2015 (the span of a public
    # Apache sample). In 2015-W21 (Mon 18 .. Sun 24 May) Thu 21 .. Sun 24 hold nothing:
    # 4 days, all after the log's end, although Thu-Sat never occur in its own span.
    # Before: "API logs end 20 May (1 of 7 days without data)" (only Sunday counted).
    times = pd.Series(pd.date_range("2015-05-17 10:05", "2015-05-20 21:05", freq="7min",
                                    tz=UTC))
    p = week(2015, 21, UTC)
    c = coverage.compute(frames(api_logs=times), p).sources["api_logs"]
    assert [f"{t:%d}" for t in c.missing] == ["21", "22", "23", "24"]
    assert c.sentence(p) == "API logs end 20 May: 21–24 May without data (4 of 7 days)"


def test_days_before_a_log_starts_are_all_missing_and_named():
    # Rows from Thu 12 Nov 2026 on: Mon 9 .. Wed 11 Nov of 2026-W46 are before the first.
    times = every_day("2026-11-12", "2026-11-15")
    p = week(2026, 46, UTC)
    c = coverage.compute(frames(api_logs=times), p).sources["api_logs"]
    assert [f"{t:%d}" for t in c.missing] == ["09", "10", "11"]
    assert c.sentence(p) == "API logs start 12 Nov: 9–11 Nov without data (3 of 7 days)"


def test_each_gap_is_said_in_the_audience_language():
    # The gaps of the first test, said while a German, a French and a Polish page is
    # written (issue 32): the sources' names, the dates (CLDR), the list and the plural of
    # days in each language; the English text (kpis.json, logs) is unchanged.
    from reporting.core import i18n
    p = week(2026, 46, UTC)
    cov = coverage.compute(frames(api_logs=every_day("2026-10-19", "2026-11-12"),
                                  support_tickets=every_day("2026-10-19", "2026-11-15",
                                                            skip=("2026-11-14",))), p)
    notes = cov.notes()
    said = {}
    for locale in ("de_DE", "fr_FR", "pl_PL"):
        with i18n.speaking(i18n.voice(locale, UTC)):
            said[locale] = [i18n.gettext(n) for n in notes]
    assert said["de_DE"] == ["API-Logs enden 12. Nov.: 13.–15. Nov. ohne Daten (3 von 7 Tagen)",
                             "Tickets fehlen am 14. Nov."]
    assert said["fr_FR"][0] == ("Journaux d’API se terminent 12 nov. : 13–15 nov. sans données "
                                "(3 sur 7 jours)")
    assert said["pl_PL"][0] == "Logi API kończą się 12 lis: 13–15 lis bez danych (3 z 7 dni)"
    assert notes == ["API logs end 12 Nov: 13–15 Nov without data (3 of 7 days)",
                     "Tickets missing on 14 Nov"]
    # two sources with the same gap: one sentence, the names listed as the language does
    both = coverage.compute(frames(api_logs=every_day("2026-10-19", "2026-11-12"),
                                   support_tickets=every_day("2026-10-19", "2026-11-12")), p)
    with i18n.speaking(i18n.voice("de_DE", UTC)):
        assert [i18n.gettext(n) for n in both.notes()] == [
            "Alle Quellen enden 12. Nov.: 13.–15. Nov. ohne Daten (3 von 7 Tagen)"]
    assert both.notes() == ["All sources end 12 Nov: 13–15 Nov without data (3 of 7 days)"]


def test_usual_hours_and_weekdays_are_counted_on_local_days_by_hand():
    # Paris rows: Mon 2 Nov 10:15 and 10:45, Wed 4 Nov 00:30 (Tue 23:30 UTC), Thu 5 Nov
    # 10:05. Per hour over the 3 days held: 10:00 on 2 of 3 (usual), 00:00 on 1 of 3 (not),
    # 23:00 on none (a UTC day would have put Wednesday's row there). Per weekday over
    # Mon..Thu: Mon, Wed, Thu held once of once (usual), Tue not, Fri-Sun never in the
    # span (unknown: None). The days held are Mon, Wed and Thu, at local midnight.
    from reporting.compute.coverage import _floor, _usual
    tz = "Europe/Paris"
    times = pd.Series(pd.to_datetime(["2026-11-02 10:15", "2026-11-02 10:45",
                                      "2026-11-04 00:30", "2026-11-05 10:05"])
                      ).dt.tz_localize(tz)
    hourly = _usual(times, hourly=True)
    assert (hourly[10], hourly[0], hourly[23]) == (True, False, False)
    assert _usual(times, hourly=False) == {0: True, 1: False, 2: True, 3: True, 4: None,
                                           5: None, 6: None}
    assert _floor(times, hourly=False) == [pd.Timestamp(f"2026-11-0{d}", tz=tz)
                                           for d in (2, 4, 5)]
