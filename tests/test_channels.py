"""Chat and webhook channels through Apprise, against a real HTTP server on loopback."""
from __future__ import annotations

import base64
import email
import hashlib
import json
import logging
import threading
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from reporting.cli import build_report, main
from reporting.core import formatting
from reporting.core.config import Config
from reporting.core.errors import ConfigError
from reporting.deliver.channels import Channel
from reporting.deliver.reports import deliver
from reporting.present.audience import audience_view
from reporting.simulate import simulate
from reporting.store.archive import Archive

from .test_delivery import built, out  # noqa: F401 (fixtures: executive and it of 2026-W43)

PERIOD = "2026-W43"
SECRET = "s3cr3t-token-4711"


class Hooks:
    """A webhook receiver: keeps each request; answers with scripted statuses first."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.statuses: dict[str, list[int]] = {}     # path prefix -> statuses to answer
        self.lock = threading.Lock()

    def answer(self, path: str, body: bytes) -> int:
        with self.lock:
            self.requests.append((path, json.loads(body or b"{}")))
            for prefix, statuses in self.statuses.items():
                if path.startswith(prefix) and statuses:
                    return statuses.pop(0)
        return 200


@pytest.fixture
def hooks():
    state = Hooks()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:   # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            code = state.answer(self.path, body)
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.port = server.server_address[1]
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


def config_for(notify: dict[str, list[str]]) -> Config:
    return Config.from_dict({"audiences": {a: {"notify": urls} for a, urls in notify.items()}})


def no_sleep(seconds: float) -> None:
    pass


def test_json_webhook_carries_headline_numbers_and_the_archived_pdf(hooks, out):
    config = config_for({"executive": [f"json://127.0.0.1:{hooks.port}/hook"]})
    outcome = deliver(config, out, PERIOD, ["executive"], sleep=no_sleep)
    assert outcome.channel_sent == [("executive", f"json://127.0.0.1:{hooks.port}")]
    assert len(hooks.requests) == 1
    path, payload = hooks.requests[0]
    assert path == "/hook"
    assert payload["title"] == f"Executive summary, {PERIOD}"
    document = json.loads((out / "reports" / PERIOD / "kpis.json").read_text())
    view = audience_view(document, config.audiences["executive"])
    assert len(view.headline) >= 4
    for k in view.headline:     # every headline KPI, formatted as in the PDF
        assert f"- {k['label']}: {formatting.value(k['value'], k['unit'])}" in payload["message"]
    assert view.insights[0]["text"] in payload["message"]
    [attachment] = payload["attachments"]
    assert attachment["filename"] == "executive.pdf"
    sent = base64.b64decode(attachment["base64"])
    with Archive(out) as store:
        archived = store.latest_build(PERIOD, "executive")["sha256"]
    assert hashlib.sha256(sent).hexdigest() == archived
    assert "The full report is attached as a PDF." in payload["message"]


def test_503_twice_then_200_is_retried_to_success_and_every_try_counted(hooks, out):
    hooks.statuses["/hook"] = [503, 503]
    waits: list[float] = []
    config = config_for({"it": [f"json://127.0.0.1:{hooks.port}/hook"]})
    outcome = deliver(config, out, PERIOD, ["it"], sleep=waits.append)
    assert outcome.channel_sent and not outcome.channel_failed
    assert len(hooks.requests) == 3 and waits == [2.0, 4.0]
    with Archive(out) as store:
        [row] = [r for r in store.deliveries(PERIOD) if r["recipient"].startswith("json://")]
    assert (row["status"], row["attempts"], row["audience"]) == ("delivered", 3, "it")


def test_second_run_sends_nothing_and_force_sends_again(hooks, out):
    config = config_for({"it": [f"json://127.0.0.1:{hooks.port}/hook"]})
    deliver(config, out, PERIOD, ["it"], sleep=no_sleep)
    again = deliver(config, out, PERIOD, ["it"], sleep=no_sleep)
    assert len(hooks.requests) == 1 and again.channel_skipped and not again.channel_sent
    forced = deliver(config, out, PERIOD, ["it"], sleep=no_sleep, force=True)
    assert len(hooks.requests) == 2 and forced.channel_sent
    with Archive(out) as store:
        rows = [r["status"] for r in store.deliveries(PERIOD)]
    assert rows == ["delivered", "delivered"]       # every claim kept, none overwritten


def test_mattermost_webhook_on_loopback_gets_the_link_and_the_secret_stays_out(
        hooks, out, monkeypatch, caplog):
    monkeypatch.setenv("MM_TOKEN", SECRET)
    url = f"mmost://127.0.0.1:{hooks.port}/{{MM_TOKEN}}"
    config = config_for({"it": [url]})
    with caplog.at_level(logging.DEBUG):
        outcome = deliver(config, out, PERIOD, ["it"], sleep=no_sleep)
    assert outcome.channel_sent == [("it", f"mmost://127.0.0.1:{hooks.port}")]
    [(path, payload)] = hooks.requests
    assert path == f"/hooks/{SECRET}"
    pdf = (out / "reports" / PERIOD / "it.pdf").resolve()
    assert f"The full report: {pdf}" in payload["text"]    # no attachments on webhooks
    with Archive(out) as store:
        assert [r["recipient"] for r in store.deliveries(PERIOD)] == [url]
    assert SECRET not in (out / "archive.sqlite").read_bytes().decode("latin-1")
    assert SECRET not in caplog.text


def test_one_channel_failing_still_delivers_the_others_and_exits_1(hooks, out, tmp_path):
    hooks.statuses["/broken"] = [404]
    (tmp_path / "report.toml").write_text(
        "[audiences.executive]\n"
        f'notify = ["json://127.0.0.1:{hooks.port}/broken", '
        f'"json://127.0.0.1:{hooks.port}/ok"]\n'
        "[audiences.it]\n"
        f'notify = ["json://127.0.0.1:{hooks.port}/ok"]\n')
    r = CliRunner().invoke(main, ["send", "-p", PERIOD, "--output", str(out), "--config",
                                  str(tmp_path / "report.toml")])
    assert r.exit_code == 1, r.output
    assert [p for p, _ in hooks.requests].count("/ok") == 2
    assert [p for p, _ in hooks.requests].count("/broken") == 1    # 404: not retried
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("error: 1 channel message(s) were not delivered (last: the "
                           f"executive report to json://127.0.0.1:{hooks.port}: the service "
                           "answered HTTP 404 after 1 try); the reports are built"), last
    # the next send retries only the failed one
    r = CliRunner().invoke(main, ["send", "-p", PERIOD, "--output", str(out), "--config",
                                  str(tmp_path / "report.toml")])
    assert r.exit_code == 0, r.output
    assert [p for p, _ in hooks.requests] == ["/broken", "/ok", "/ok", "/broken"]


def test_build_report_deliver_sends_mail_and_channels_email_only_mail(hooks, tmp_path):
    simulate(tmp_path / "data", weeks=1, scale="tiny", seed=8)
    (tmp_path / "report.toml").write_text(
        "[audiences.it]\n"
        'recipients = ["ops@example.com"]\n'
        f'notify = ["json://127.0.0.1:{hooks.port}/it"]\n'
        'attach = ["pdf", "csv"]\n')
    args = ["--data", str(tmp_path / "data"), "--output", str(tmp_path / "out"), "--format",
            "pdf", "-a", "it", "--config", str(tmp_path / "report.toml")]
    r = CliRunner().invoke(build_report, [*args, "--email"])
    assert r.exit_code == 0, r.output
    assert hooks.requests == [] and len(list((tmp_path / "out" / "outbox").glob("*.eml"))) == 1
    r = CliRunner().invoke(build_report, [*args, "--deliver"])
    assert r.exit_code == 0, r.output
    assert [p for p, _ in hooks.requests] == ["/it"]
    assert "channels: 1 delivered, 0 not sent again, 0 failed" in r.output
    # attach = ["pdf", "csv"]: the audience's tables as one CSV, in the mail and the post
    folder = tmp_path / "out" / "reports" / PERIOD
    [eml] = (tmp_path / "out" / "outbox").glob("*.eml")
    mail = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    names = [part.get_filename() for part in mail.iter_attachments()]
    assert names == [f"it-{PERIOD}.pdf", f"it-{PERIOD}.csv"]
    attachments = {a["filename"]: base64.b64decode(a["base64"])
                   for a in hooks.requests[0][1]["attachments"]}
    assert attachments["it.csv"] == (folder / "it.csv").read_bytes()
    table = pd.read_csv(folder / "it.csv")
    assert list(table.columns[:2]) == ["section", "table"]
    assert set(table.section) <= {"api", "system", "incidents"} and "api" in set(table.section)
    services = table[(table.section == "api") & (table.table == "services")]
    document = json.loads((folder / "kpis.json").read_text())
    assert services["requests"].sum() == document["kpis"]["api.requests"]["value"]


def test_a_missing_secret_variable_is_a_failure_naming_the_variable_not_a_crash(out,
                                                                                monkeypatch):
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    config = config_for({"it": ["mmost://chat.example.com/{NO_SUCH_TOKEN}"]})
    outcome = deliver(config, out, PERIOD, ["it"], sleep=no_sleep)
    [(audience, where, error)] = outcome.channel_failed
    assert (audience, where) == ("it", "mmost://chat.example.com")
    assert "NO_SUCH_TOKEN" in error and "not set" in error


def test_channel_labels_never_show_tokens():
    assert Channel("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ops").label \
        == "slack://"
    assert Channel("msteams://{TEAMS_WEBHOOK}").label == "msteams://"
    assert Channel("json://hooks.example.com:8443/x").label == "json://hooks.example.com:8443"
    key = Channel("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ops").key
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in key and key.startswith("slack://")


@pytest.mark.parametrize("notify", ["slack://x", ["not a url"], [3]])
def test_notify_must_be_a_list_of_urls(notify):
    with pytest.raises(ConfigError, match="audiences.it.notify"):
        Config.from_dict({"audiences": {"it": {"notify": notify}}})
