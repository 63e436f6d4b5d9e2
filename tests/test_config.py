from __future__ import annotations

from pathlib import Path

import pytest

from reporting.core.config import Config
from reporting.core.errors import ConfigError


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = Config.load()
    assert c.timezone == "UTC" and c.data_dir == Path("data")
    assert list(c.audiences) == ["executive", "ux", "it", "support"]
    assert c.thresholds.availability_slo == 0.999 and c.smtp.host == ""


def test_full_example_and_relative_paths(tmp_path):
    path = tmp_path / "report.toml"
    path.write_text('''
timezone = "Europe/Warsaw"
data_dir = "exports"
[thresholds]
api_p95_ms = 600
[columns.support_tickets]
Opened = "created_at"
[smtp]
host = "smtp.example.com"
port = 465
security = "ssl"
[audiences.it]
sections = ["api", "system", "data_quality"]
recipients = ["ops@example.com"]
[audiences.finance]
title = "Finance weekly"
sections = ["cart", "data_quality"]
''')
    c = Config.load(path)
    assert c.timezone == "Europe/Warsaw" and c.data_dir == tmp_path / "exports"
    assert c.thresholds.api_p95_ms == 600 and c.thresholds.page_p75_ms == 2500
    assert c.columns == {"support_tickets": {"opened": "created_at"}}
    assert (c.smtp.port, c.smtp.security) == (465, "ssl")
    it = c.audiences["it"]
    assert it.sections == ("api", "system", "data_quality")
    assert it.title == "IT & operations weekly"        # merged onto the default
    assert c.audiences["finance"].title == "Finance weekly"


@pytest.mark.parametrize("text, words", [
    ('colour = "blue"', "unknown key(s) colour"),
    ('[thresholds]\napi_p99_ms = 3', "thresholds.api_p99_ms"),
    ('[audiences.it]\nsections = ["api", "weather"]', "unknown section(s) weather"),
    ('timezone = "Mars/Olympus"', "not an IANA time zone"),
    ('[smtp]\nsecurity = "tls"', 'smtp.security must be "none", "starttls" or "ssl"'),
    ('[thresholds]\napi_p95_ms = "fast"', "must be a number"),
    ('timezone = ', "not valid TOML"),
])
def test_config_errors_name_the_problem(tmp_path, text, words):
    path = tmp_path / "report.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        Config.load(path)


def test_missing_explicit_config(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Config.load(tmp_path / "nope.toml")


def test_the_docs_config_example_loads(tmp_path):
    """The Config page's example is valid as written (it must not drift)."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "config.md").read_text()
    section = page.split("## Example", 1)[1]
    example = section.split("```toml", 1)[1].split("```", 1)[0]
    path = tmp_path / "report.toml"
    path.write_text(example)
    c = Config.load(path)
    assert c.timezone == "Europe/Warsaw" and c.lock_timeout_s == 600
    assert c.audiences["finance"].sections == ("overview", "insights", "cart", "data_quality")
    assert c.scheduler.misfire_grace_hours == 6 and c.smtp.retries == 3


def test_funnel_steps_from_the_config_in_order():
    c = Config.from_dict({"funnel": {"search": ["search*", "*/search*"], "buy": "checkout"}})
    assert c.funnel == (("search", ("search*", "*/search*")), ("buy", ("checkout",)))
    with pytest.raises(ConfigError, match="funnel.buy must be a list of page patterns"):
        Config.from_dict({"funnel": {"buy": []}})
