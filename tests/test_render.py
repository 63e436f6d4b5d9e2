from __future__ import annotations

from pathlib import Path

import pytest

from reporting import render


def test_fetcher_serves_only_allowed_folders(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "chart.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    f = render.fetcher([run])
    assert f.fetch((run / "chart.svg").as_uri()).read().startswith(b"<svg")
    for url in ("file:///etc/passwd", "http://example.com/x.png", "https://example.com/",
                (run / ".." / "secret.txt").as_uri(), "ftp://example.com/x",
                (run / "missing.svg").as_uri()):
        with pytest.raises(ValueError):
            f.fetch(url)


def test_allowed_path_resolves_traversal(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b.txt").write_text("x")
    assert render.allowed_path(f"file://{tmp_path}/a/../b.txt", [tmp_path / "a"]) is None
    assert render.allowed_path(f"file://{tmp_path}/b.txt", [tmp_path]) == tmp_path / "b.txt"


def test_untrusted_text_is_escaped_and_never_evaluated():
    env = render.environment()
    t = env.from_string("{{ x }}")
    evil = '<a rel="attachment" href="file:///etc/passwd">x</a> {{ 7*7 }}'
    out = t.render(x=evil)
    assert "<a" not in out and "&lt;a rel=&#34;attachment&#34;" in out
    assert "{{ 7*7 }}" in out and "49" not in out


def test_templates_are_found(tmp_path):
    assert (render.template_dir() / "base.html").is_file()
    assert (render.template_dir() / "audiences" / "generic.html").is_file()


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    target = render.atomic_write(tmp_path / "x" / "a.json", "{}")
    assert target.read_text() == "{}" and [p.name for p in target.parent.iterdir()] == ["a.json"]
    assert oct(target.stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("value, unit, text", [
    (1234.5, "ms", "1,234.5 ms"), (0.123, "ratio", "12.3 %"), (0.9995, "ratio", "99.95 %"),
    (0.004, "ratio", "0.40 %"), (1213.19, "money", "1,213.19"), (66842, "count", "66,842"),
    (None, "ms", "–"), (float("nan"), "count", "–"), (3.0, "rating", "3.00 / 5"),
    (14.4, "x", "14.4x"), ("payment-api", "text", "payment-api"), (81.25, "pct", "81.2 %"),
])
def test_formats(value, unit, text):
    from reporting import formatting
    assert formatting.value(value, unit) == text


def test_a_warn_kpi_without_an_insight_gets_a_plain_sentence():
    from reporting.kpis.base import KPI
    from reporting.render import flagged_insights

    burn = KPI("api.max_burn_rate", "Worst 1-hour burn rate", 12.0, None, "x", "warn", "down")
    csat = KPI("feedback.csat", "CSAT", 0.432, None, "ratio", "bad", "up")
    said = [{"domain": "feedback", "severity": "high", "text": "CSAT was 43.2 % (340 ...)."}]
    out = flagged_insights([burn, csat], said, {"api": "API reliability and latency"})
    assert [(i["severity"], i["text"]) for i in out] == [
        ("medium", "Worst 1-hour burn rate was 12.0x, just outside its target "
                   "(see API reliability and latency).")]
