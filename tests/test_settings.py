"""Config values are checked against their declarations when the file is read (issue 30):
shares with a percent hint, positive durations, cron lines by APScheduler's own parser,
audience periods, a recipient written as a string, unknown keys with "did you mean"."""
from __future__ import annotations

import dataclasses

import pytest
from apscheduler.triggers.cron import CronTrigger

from reporting.core.config import Config
from reporting.core.errors import ConfigError
from reporting.core.settings import declared


def error(raw: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        Config.from_dict(raw)
    return str(caught.value)


@pytest.mark.parametrize("key, value, words", [
    ("availability_slo", 99.9, "thresholds.availability_slo = 99.9: write 0.999 for 99.9 % "
                               "(a share from 0 to 1)."),
    ("csat", 70, "thresholds.csat = 70: write 0.7 for 70 %"),
    ("uptime", 99, "thresholds.uptime = 99: write 0.99 for 99 %"),
    ("availability_slo", 0, "thresholds.availability_slo must be more than 0 and at most 1, "
                            "not 0."),
    ("csat", -0.1, "thresholds.csat must be from 0 to 1, not -0.1."),
    ("api_p95_ms", -5, "thresholds.api_p95_ms must be more than 0, not -5."),
    ("support_sla_hours", 0, "thresholds.support_sla_hours must be more than 0, not 0."),
    ("cpu_p95_pct", 180, "thresholds.cpu_p95_pct must be from 0 to 100, not 180."),
    ("incident_min_events", 2.5, "thresholds.incident_min_events must be a whole number, "
                                 "not 2.5."),
])
def test_thresholds_are_checked_with_a_hint_for_percents(key, value, words):
    assert words in error({"thresholds": {key: value}})


def test_a_share_written_as_a_share_is_kept():
    t = Config.from_dict({"thresholds": {"availability_slo": 0.995, "csat": 0.8}}).thresholds
    assert (t.availability_slo, t.csat) == (0.995, 0.8)


def test_poor_pages_start_after_good_ones():
    assert "page_poor_ms (2000) must be at least thresholds.page_p75_ms (2500)" in error(
        {"thresholds": {"page_poor_ms": 2000}})


@pytest.mark.parametrize("raw, words", [
    ({"pdf_timeout_s": 0}, "pdf_timeout_s must be more than 0, not 0."),
    ({"future_margin_hours": -1}, "future_margin_hours must be 0 or more, not -1."),
    ({"scheduler": {"stop_grace_s": -3}}, "scheduler.stop_grace_s must be 0 or more"),
    ({"smtp": {"max_attachment_mb": 0}}, "smtp.max_attachment_mb must be more than 0"),
    ({"alerts": {"lookback_hours": 200}}, "alerts.lookback_hours must be from 1 to 168"),
])
def test_durations_and_sizes_must_be_positive(raw, words):
    assert words in error(raw)


def test_a_cron_mistake_is_found_on_load_with_apschedulers_message():
    text = error({"audiences": {"it": {"schedule": "0 7 * * monday"}}})
    with pytest.raises(ValueError) as parser:
        CronTrigger.from_crontab("0 7 * * monday")
    assert text == ("config: audiences.it.schedule = '0 7 * * monday' is not a cron schedule: "
                    f"{parser.value} (5 fields: minute hour day month weekday, such as "
                    "\"0 7 * * mon\"; \"\" for none).")
    assert "Wrong number of fields" in error({"alerts": {"schedule": "0 7 * *"}})
    ok = Config.from_dict({"audiences": {"it": {"schedule": "30 6 * * 1-5"}},
                           "alerts": {"schedule": "*/30 * * * *"}})
    assert ok.audiences["it"].schedule == "30 6 * * 1-5"


def test_the_default_schedule_is_a_valid_cron():
    for audience in Config().audiences.values():
        CronTrigger.from_crontab(audience.schedule)


@pytest.mark.parametrize("period", ["lastweek", "2026-W54", "2026-11-30..2026-11-01",
                                    "week", "2026-13-01..2026-13-02"])
def test_an_audience_period_must_be_a_period(period):
    assert f"audiences.it.period = {period!r} is not a period; use latest, last-week" in error(
        {"audiences": {"it": {"period": period}}})


@pytest.mark.parametrize("period", ["latest", "last-week", "all", "2026-W46", "2026-w46",
                                    "2026-11-01..2026-11-30"])
def test_every_period_form_is_accepted_in_an_audience(period):
    assert Config.from_dict({"audiences": {"it": {"period": period}}}).audiences["it"].period \
        == period


def test_a_recipient_written_as_a_string_is_one_recipient():
    c = Config.from_dict({"audiences": {"it": {"recipients": "ops@example.com"}},
                          "alerts": {"recipients": "oncall@example.com"},
                          "scheduler": {"notify_on_failure": "ops@example.com"}})
    assert c.audiences["it"].recipients == ("ops@example.com",)
    assert c.alerts.recipients == ("oncall@example.com",)
    assert "scheduler.notify_on_failure has 'nobody', which is not an email address" in error(
        {"scheduler": {"notify_on_failure": "nobody"}})


@pytest.mark.parametrize("raw, words", [
    ({"thresholds": {"api_p99_ms": 3}},
     "unknown key(s) thresholds.api_p99_ms (did you mean thresholds.api_p95_ms?)"),
    ({"timezon": "UTC"}, "unknown key(s) timezon (did you mean timezone?)"),
    ({"audiences": {"it": {"recipient": ["a@b.c"]}}},
     "unknown key(s) audiences.it.recipient (did you mean audiences.it.recipients?)"),
    ({"sources": {"api_log": {"path": "x"}}},
     "unknown key(s) sources.api_log (did you mean sources.api_logs?)"),
    ({"smtp": {"passwd_env": "X"}}, "smtp.passwd_env (did you mean smtp.password_env?)"),
    ({"weather": "fine"}, "unknown key(s) weather; allowed: alerts, archive_password_env, archive_url, audiences"),
])
def test_unknown_keys_say_what_was_meant(raw, words):
    assert words in error(raw)


def test_every_dataclass_field_a_config_holds_is_declared():
    """A key used (a field of a config dataclass) but not declared fails here."""
    not_keys = {"Config.source", "Audience.name", "SourceConfig.name", "Maintenance.name"}
    names = {k.name for k in declared(Config)}
    missing = []
    tables = [(k.setting.of, f"{k.name}.{k.setting.named + '.' if k.setting.named else ''}")
              for k in declared(Config) if k.setting.of is not None]
    for cls, prefix in ((Config, ""), *tables):
        for f in dataclasses.fields(cls):
            if f"{cls.__name__}.{f.name}" not in not_keys and prefix + f.name not in names:
                missing.append(prefix + f.name)
    assert missing == []


def test_every_declaration_has_help_and_a_sound_default():
    for key in declared(Config):
        s = key.setting
        assert s.help and "\n" not in s.help and len(s.help) <= 100, key.name
        if key.kind in ("number", "whole", "ratio"):
            assert (s.low is None or key.default >= s.low) and \
                (s.high is None or key.default <= s.high), key.name
        if key.kind == "choice":
            assert key.default in s.choices or key.default == "", key.name
