"""A newcomer's first hour (issue 30), as a user types it: in a fresh folder `reporting
init`, `reporting validate`, `build-report`, each exit 0, on the shipped sample and on a
folder of nginx access logs only; `reporting config check`; `reporting backfill`."""
from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

from click.testing import CliRunner
from pypdf import PdfReader

from reporting.cli import main
from reporting.core.config import Config
from reporting.core.configtext import resolved
from reporting.simulate import simulate

ROOT = Path(__file__).resolve().parent.parent


def reporting(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """One command in `folder`, as a user's shell runs it (no COLUMNS: lines unwrapped)."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run([sys.executable, "-m", "reporting", *args], cwd=folder, text=True,
                          capture_output=True, timeout=300, env=env)


def build_report(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """The `build-report` script the package installs beside the interpreter."""
    script = Path(sys.executable).parent / "build-report"
    return subprocess.run([str(script), *args], cwd=folder, text=True, capture_output=True,
                          timeout=300)


def first_hour(folder: Path) -> tuple[str, Path]:
    """init, validate, build-report in `folder`; returns init's output and the report."""
    steps = [reporting(folder, "init"), reporting(folder, "validate"), build_report(folder)]
    for step in steps:
        assert step.returncode == 0, (step.args, step.stdout, step.stderr)
    [report] = (folder / "output" / "reports").iterdir()
    return steps[0].stdout, report


def test_the_first_hour_on_the_shipped_sample(tmp_path):
    shutil.copytree(ROOT / "data", tmp_path / "data")
    said, report = first_hour(tmp_path)
    assert "wrote report.toml" in said and "next: reporting validate, then build-report" in said
    written = (tmp_path / "report.toml").read_text()
    assert 'data_dir = "data"' in written and "# [thresholds]" in written
    assert "api_logs.parquet" in written and "[sources." not in written.replace("# [sources", "")
    assert report.name == "2026-W46"
    assert {p.name for p in report.glob("*.pdf")} == {"executive.pdf", "ux.pdf", "it.pdf",
                                                      "support.pdf"}
    again = reporting(tmp_path, "init")
    assert again.returncode == 2 and "pass --force" in again.stderr


def access_logs(folder: Path, days: int = 9, seed: int = 3) -> int:
    """nginx `combined` lines with `$request_time` appended (nginx's docs: log_format
    combined plus the time in seconds, ms resolution), rotated as logrotate leaves them:
    access.log, access.log.1, access.log.2.gz; and an error.log that is not read. The last
    line is two hours before now, so no row is in the future."""
    rng = random.Random(seed)
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) \
        - timedelta(hours=2)
    t, lines = end - timedelta(days=days), []
    targets = ["/v2/pay/{}", "/v2/search?q=red+shoes", "/v2/products/{}", "/v2/cart",
               "/login", "/static/app.3f9a1c.js"]
    while t < end:
        t += timedelta(seconds=rng.expovariate(1 / 120))
        target = rng.choice(targets).format(rng.randint(1, 99999))
        status = rng.choices([200, 304, 404, 502], [90, 5, 4, 1])[0]
        lines.append(f'203.0.113.{rng.randint(1, 254)} - - [{t:%d/%b/%Y:%H:%M:%S +0000}] '
                     f'"GET {target} HTTP/1.1" {status} {rng.randint(100, 9000)} "-" '
                     f'"Mozilla/5.0 (X11; Linux x86_64)" {rng.lognormvariate(-2.5, 0.7):.3f}')
    logs = folder / "logs"
    logs.mkdir(parents=True)
    a, b = len(lines) // 3, 2 * len(lines) // 3
    with gzip.open(logs / "access.log.2.gz", "wt") as f:
        f.write("\n".join(lines[:a]) + "\n")
    (logs / "access.log.1").write_text("\n".join(lines[a:b]) + "\n")
    (logs / "access.log").write_text("\n".join(lines[b:]) + "\n")
    (logs / "error.log").write_text("2026/11/10 13:55:36 [error] 31#31: *1 open() failed\n")
    return len(lines)


def test_the_first_hour_on_a_folder_of_access_logs_only(tmp_path):
    n = access_logs(tmp_path)
    said, report = first_hour(tmp_path)
    assert "Access logs in logs/: access.log reads as the combined format" in said
    config = Config.load(tmp_path / "report.toml")
    assert config.sources["api_logs"].format == "access_log"
    doc = json.loads((report / "kpis.json").read_text())
    quality = doc["data_quality"]["api_logs"]
    assert (quality["status"], quality["read"], quality["rows"]) == ("loaded", 3, n)
    assert quality["valid"] == n                       # error.log is not an access log
    assert doc["kpis"]["api.requests"]["value"] > 0
    assert doc["data_quality"]["clickstream"]["status"] == "absent"
    assert "API reliability" in " ".join(p.extract_text() for p in
                                         PdfReader(report / "it.pdf").pages)


def test_config_check_prints_the_config_as_read_with_secrets_hidden(tmp_path):
    config = tmp_path / "report.toml"
    config.write_text(
        'timezone = "Europe/Warsaw"\n[audiences.it]\nrecipients = "ops@example.com"\n'
        'notify = ["slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ops"]\n'
        '[sources.support_tickets]\nurl = "postgresql://reports:hunter2@db/helpdesk"\n'
        'sql = "select 1"\npassword_env = "I30_UNSET_VARIABLE"\n')
    r = CliRunner().invoke(main, ["config", "check", "--config", str(config)])
    assert r.exit_code == 0, r.output
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in r.output and "hunter2" not in r.output
    assert 'notify = ["slack://***"]' in r.output
    assert 'url = "postgresql://reports:***@db/helpdesk"' in r.output
    assert 'password_env = "I30_UNSET_VARIABLE"   # not set in this environment' in r.output
    assert 'recipients = ["ops@example.com"]' in r.output and "[thresholds]" in r.output


def test_config_check_output_reads_back_as_the_same_config(tmp_path):
    raw = {"timezone": "Europe/Warsaw", "currency": "eur", "data_dir": "data",
           "output_dir": "/srv/out",
           "audiences": {"it": {"recipients": "a@example.com",
                                "filters": {"services": ["pay*"]}},
                         "fin": {"sections": ["cart"]}},
           "sources": {"api_logs": {"path": "/var/log/a*", "format": "access_log",
                                    "services": {"/v2": "x"}}},
           "service_map": {"pay": {"pages": ["/c*"], "carts": True}},
           "columns": {"support_tickets": {"opened": "created_at"}},
           "funnel": {"a": ["x"]}, "thresholds": {"csat": 0.8}}
    config = Config.from_dict(raw, base=tmp_path)
    assert Config.from_dict(tomllib.loads(resolved(config)), base=tmp_path) == config


def test_a_config_mistake_is_one_sentence_from_every_command(tmp_path):
    (tmp_path / "report.toml").write_text("[thresholds]\navailability_slo = 99.9\n")
    r = reporting(tmp_path, "config", "check")
    assert r.returncode == 2 and r.stderr.strip() == (
        "error: report.toml: thresholds.availability_slo = 99.9: write 0.999 for 99.9 % "
        "(a share from 0 to 1).")
    assert build_report(tmp_path).returncode == 2


def test_init_finds_near_misses_and_writes_beside_a_data_folder_elsewhere(tmp_path):
    data = tmp_path / "exports"
    data.mkdir()
    (data / "support_ticket.csv").write_text("ticket_id,created_at\n")
    r = CliRunner().invoke(main, ["init", str(tmp_path / "conf"), "--data", str(data)])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "conf" / "report.toml").read_text()
    assert f'data_dir = "{data}"' in text
    assert "did you mean support_tickets?" in " ".join(text.replace("\n#", " ").split())
    assert "no data found in" in r.output
    Config.load(tmp_path / "conf" / "report.toml")


def test_backfill_builds_past_weeks_oldest_first_and_skips_what_it_cannot(tmp_path):
    """The sample's four weeks and one before the data: built W43..W46 oldest first
    (W46 compares with W45 and draws Trends), W42 listed and skipped, nothing mailed; a
    second run keeps what is archived."""
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["backfill", "--weeks", "5", "--data", str(ROOT / "data"),
                                  "--output", str(out)])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert "2026-W42 │ no data: The data starts 19 Oct 2026, after 2026-W42 ends" in said
    assert "4 built, 0 archived already (--force builds them again), 1 without data: " \
           "2026-W42" in said
    listed = json.loads(CliRunner().invoke(main, ["archive", "list", "--output", str(out),
                                                  "--json"]).output)
    assert [p["period_id"] for p in listed] == ["2026-W46", "2026-W45", "2026-W44",
                                                "2026-W43"]
    built = [p["built_at"] for p in listed][::-1]
    assert built == sorted(built)                      # oldest first
    w46 = out / "reports" / "2026-W46"
    assert "trends_executive" in (w46 / "html" / "executive.html").read_text()
    # docs/commands.md: "4 pages for the sample's newest week, 5 once Trends have a month"
    assert len(PdfReader(w46 / "executive.pdf").pages) <= 5
    assert not (out / "outbox").exists()
    again = CliRunner().invoke(main, ["backfill", "--weeks", "2", "--data",
                                      str(ROOT / "data"), "--output", str(out)])
    assert again.exit_code == 0 and "0 built, 2 archived already" in again.output


def test_backfill_until_a_week_with_force_and_deliver(tmp_path):
    simulate(tmp_path / "data", weeks=2, scale="tiny", seed=4)       # 2026-W43 and W44
    config = tmp_path / "report.toml"
    config.write_text('[audiences.it]\nrecipients = "ops@example.com"\n')
    args = ["backfill", "--data", str(tmp_path / "data"), "--output", str(tmp_path / "out"),
            "--config", str(config)]
    first = CliRunner().invoke(main, [*args, "--weeks", "1", "--until", "2026-W43"])
    assert first.exit_code == 0 and "1 built" in first.output, first.output
    both = CliRunner().invoke(main, [*args, "--weeks", "2", "--until", "2026-11-01..2026-11-01",
                                     "--force", "--deliver"])
    assert both.exit_code == 0 and "2 built, 0 archived already" in both.output, both.output
    assert sorted(p.name for p in (tmp_path / "out" / "outbox").glob("*-it.eml")) == [
        "2026-W43-it.eml", "2026-W44-it.eml"]
    none = CliRunner().invoke(main, [*args, "--weeks", "2", "--until", "2025-W10"])
    assert none.exit_code == 1 and "The data reaches none of the 2 week(s)" in none.output
