"""Email delivery against a real SMTP server on loopback (aiosmtpd, started here)."""
from __future__ import annotations

import email
import hashlib
import json
import shutil
import socket
import ssl
import subprocess
import sys
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from reporting.cli import build_report, main
from reporting.core.config import Config
from reporting.core.errors import ConfigError
from reporting.deliver.compose import compose, headline, status_word
from reporting.deliver.reports import OUTBOX, deliver
from reporting.simulate import simulate
from reporting.store.archive import Archive

from .conftest import pdf_text

RECIPIENTS = {"executive": ["ceo@example.com", "cfo@example.com"],
              "it": ["ops@example.com", "oncall@example.com"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """Accepts mail and keeps it; scripted replies for RCPT and DATA when asked."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.data_replies: list[str] = []
        self.rcpt_replies: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_replies:
            return self.data_replies.pop(0)
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def server():
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    controller.stop()


def config_for(port: int, **smtp) -> Config:
    return Config.from_dict({
        "smtp": {"host": "127.0.0.1", "port": port, "security": "none", "retries": 3,
                 "retry_base_s": 0.01, "timeout": 5, "sender": "Reports <reports@example.com>",
                 **smtp},
        "audiences": {name: {"recipients": r} for name, r in RECIPIENTS.items()}})


OUTBOX_CONFIG = Config.from_dict({"audiences": {n: {"recipients": r}
                                                for n, r in RECIPIENTS.items()}})


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("mail")
    simulate(root / "data", weeks=1, scale="tiny", seed=8)
    out = root / "out"
    r = CliRunner().invoke(build_report, ["--data", str(root / "data"), "--output", str(out),
                                          "--format", "pdf", "-a", "executive", "-a", "it"])
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture
def out(built, tmp_path):
    target = tmp_path / "out"
    shutil.copytree(built, target)
    return target


PERIOD = "2026-W43"


def parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=policy.default)


def test_each_recipient_gets_one_message_per_audience_with_the_archived_pdf(server, out):
    controller, handler = server
    outcome = deliver(config_for(controller.port), out, PERIOD, ["executive", "it"])
    assert not outcome.failed and len(outcome.sent) == 4
    received: dict[str, list] = {}
    for rcpts, raw in handler.messages:
        for r in rcpts:
            received.setdefault(r, []).append(parsed(raw))
    assert sorted(received) == sorted(r for rs in RECIPIENTS.values() for r in rs)
    for audience, recipients in RECIPIENTS.items():
        archived = hashlib.sha256((out / "reports" / PERIOD / f"{audience}.pdf")
                                  .read_bytes()).hexdigest()
        for r in recipients:
            [msg] = received[r]
            assert msg["Subject"] == f"{Config().audiences[audience].title}, {PERIOD}"
            [pdf] = [p for p in msg.iter_attachments()]
            assert pdf.get_filename() == f"{audience}-{PERIOD}.pdf"
            assert hashlib.sha256(pdf.get_content()).hexdigest() == archived
            assert msg.get_body(("html",)).get_content().count("<img") == 0
            assert "p95 latency" in msg.get_body(("plain",)).get_content() or \
                audience == "executive"


def test_a_second_run_sends_nothing_and_force_resends(server, out):
    controller, handler = server
    cfg = config_for(controller.port)
    deliver(cfg, out, PERIOD, ["it"])
    again = deliver(cfg, out, PERIOD, ["it"])
    assert again.sent == [] and len(again.skipped) == 2 and len(handler.messages) == 1
    forced = deliver(cfg, out, PERIOD, ["it"], force=True)
    assert len(forced.sent) == 2 and len(handler.messages) == 2


def test_temporary_451_twice_is_retried_to_success(server, out):
    controller, handler = server
    handler.data_replies = ["451 Try again later", "451 Try again later"]
    slept: list[float] = []
    outcome = deliver(config_for(controller.port), out, PERIOD, ["it"], sleep=slept.append)
    assert not outcome.failed and len(handler.messages) == 1
    assert slept == [0.01, 0.02]                       # exponential backoff
    with Archive(out) as a:
        rows = a.deliveries(PERIOD)
    assert {(r["recipient"], r["status"], r["attempts"]) for r in rows} == {
        ("ops@example.com", "delivered", 3), ("oncall@example.com", "delivered", 3)}


def test_permanent_550_is_recorded_as_failed_without_retry(server, out):
    controller, handler = server
    handler.rcpt_replies = {"oncall@example.com": "550 No such user here"}
    slept: list[float] = []
    outcome = deliver(config_for(controller.port), out, PERIOD, ["it"], sleep=slept.append)
    assert outcome.sent == [("it", "ops@example.com")]
    assert outcome.failed == [("it", "oncall@example.com", "550 No such user here")]
    assert slept == []
    with Archive(out) as a:
        row = [r for r in a.deliveries(PERIOD) if r["recipient"] == "oncall@example.com"][0]
    assert (row["status"], row["attempts"], row["last_error"]) == (
        "failed", 1, "550 No such user here")
    # the next run retries only what failed
    handler.rcpt_replies = {}
    retry = deliver(config_for(controller.port), out, PERIOD, ["it"])
    assert retry.sent == [("it", "oncall@example.com")]


def test_server_down_exit_1_names_host_and_port_and_keeps_the_reports(tmp_path):
    root = tmp_path
    simulate(root / "data", weeks=1, scale="tiny", seed=8)
    port = free_port()     # nothing listens here
    (root / "report.toml").write_text(
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nretries = 1\n'
        'retry_base_s = 0.01\ntimeout = 2\n[audiences.it]\nrecipients = ["ops@example.com"]\n')
    r = CliRunner().invoke(build_report, ["--data", str(root / "data"), "--output",
                                          str(root / "out"), "--config", str(root / "report.toml"),
                                          "-a", "it", "--email"])
    assert r.exit_code == 1
    assert f"1 message(s) were not delivered through 127.0.0.1:{port}" in r.output
    assert "Traceback" not in r.output
    assert pdf_text(root / "out" / "reports" / PERIOD / "it.pdf").startswith("IT & operations")
    resend = CliRunner().invoke(main, ["send", "--period", PERIOD, "--output", str(root / "out"),
                                       "--config", str(root / "report.toml")])
    assert resend.exit_code == 1 and "not delivered" in resend.output, resend.output


def test_starttls_with_a_trusted_self_signed_certificate(tmp_path, out):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True,
                   capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(),
                            tls_context=context, require_starttls=True)
    controller.start()
    try:
        untrusted = deliver(config_for(controller.port, security="starttls"), out, PERIOD,
                            ["it"])
        assert len(untrusted.failed) == 2 and "TLS failed" in untrusted.failed[0][2]
        trusted = deliver(config_for(controller.port, security="starttls",
                                     ca_file=str(cert)), out, PERIOD, ["it"])
        assert not trusted.failed and len(handler.messages) == 1
    finally:
        controller.stop()


def test_outbox_without_smtp_host_is_a_readable_eml(out):
    outcome = deliver(OUTBOX_CONFIG, out, PERIOD, ["executive", "it"])
    assert outcome.sent == [("executive", OUTBOX), ("it", OUTBOX)]
    msg = parsed((out / "outbox" / f"{PERIOD}-it.eml").read_bytes())
    assert msg["Subject"] == f"IT & operations weekly, {PERIOD}"
    assert [p.get_content_type() for p in msg.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html",
        "application/pdf"]
    body = msg.get_body(("plain",)).get_content()
    assert "Availability:" in body and "attached as a PDF" in body
    assert msg["To"] == "ops@example.com, oncall@example.com" and msg["Date"]
    again = deliver(OUTBOX_CONFIG, out, PERIOD, ["it"])
    assert again.sent == [] and again.skipped == [("it", OUTBOX)]


def test_no_header_injection_and_big_attachments_become_a_path(out):
    cfg = Config.from_dict({"audiences": {"it": {
        "title": "Ops\r\nBcc: thief@example.com"}}, "smtp": {"max_attachment_mb": 0.001}})
    pdf = out / "reports" / PERIOD / "it.pdf"
    msg, warning = compose(audience=cfg.audiences["it"], period_id="2026-W43\nX-Evil: 1",
                           period_label="p", document={"kpis": {}, "insights": []}, pdf=pdf,
                           recipients=["ops@example.com"], smtp=cfg.smtp,
                           archive_path=str(pdf))
    reread = parsed(msg.as_bytes())
    assert "Bcc" not in reread and "X-Evil" not in reread
    assert msg["Subject"] == "Ops Bcc: thief@example.com, 2026-W43 X-Evil: 1"
    assert not list(msg.iter_attachments())
    assert "too large to attach" in msg.get_body(("plain",)).get_content()
    assert str(pdf) in msg.get_body(("plain",)).get_content() and "MB limit" in warning


def test_bad_recipient_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match="'ops-at-example' , which is not an email address"
                       .replace(" ,", ",")):
        Config.from_dict({"audiences": {"it": {"recipients": ["ops-at-example"]}}})


# --- servers that misbehave (issue 19) ---------------------------------------------------

class QuitRefuser(Recorder):
    """Accepts the message (250 to DATA), then answers QUIT with 421."""

    async def handle_QUIT(self, server, session, envelope):
        return "421 Service closing transmission channel"


class LateAnswer(Recorder):
    """Keeps the message but answers DATA only after `delay` seconds."""

    delay = 2.5

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        await asyncio.sleep(self.delay)
        return "250 Message accepted for delivery"


def rows_of(out, period=PERIOD):
    with Archive(out) as a:
        return [(r["recipient"], r["status"]) for r in a.deliveries(period)]


def test_250_to_data_then_421_to_quit_is_delivered_once_and_never_resent(out):
    handler = QuitRefuser()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        slept: list[float] = []
        outcome = deliver(config_for(controller.port), out, PERIOD, ["it"], sleep=slept.append)
        assert outcome.failed == [] and len(outcome.sent) == 2 and slept == []
        again = deliver(config_for(controller.port), out, PERIOD, ["it"])
        assert again.sent == [] and len(again.skipped) == 2
    finally:
        controller.stop()
    assert len(handler.messages) == 1          # one copy, to both recipients
    assert rows_of(out) == [("ops@example.com", "delivered"),
                            ("oncall@example.com", "delivered")]


def test_a_data_answer_after_the_timeout_is_unknown_and_not_resent_without_force(out):
    handler = LateAnswer()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        cfg = config_for(controller.port, timeout=1)
        outcome = deliver(cfg, out, PERIOD, ["it"], sleep=lambda s: None)
        assert outcome.sent == [] and outcome.failed == []
        assert [(a, r) for a, r, _ in outcome.unknown] == [("it", "ops@example.com"),
                                                           ("it", "oncall@example.com")]
        assert "may have been delivered" in outcome.unknown[0][2]
        assert len(handler.messages) == 1      # sent once, not retried
        again = deliver(cfg, out, PERIOD, ["it"])
        assert again.sent == [] and len(again.skipped) == 2
        assert "outcome is unknown" in again.warnings[0] and len(handler.messages) == 1
        r = CliRunner().invoke(main, ["send", "--period", PERIOD, "-a", "it", "--output",
                                      str(out), "--config",
                                      str(write_toml(out, controller.port, 1))])
        assert r.exit_code == 0 and "0 delivered, 2 not sent again" in r.output, r.output
        assert len(handler.messages) == 1
    finally:
        controller.stop()
    assert {s for _, s in rows_of(out)} == {"unknown"}


def write_toml(folder: Path, port: int, timeout: float) -> Path:
    path = folder / "mail.toml"
    path.write_text(
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nretries = 0\n'
        f'timeout = {timeout}\nsender = "reports@example.com"\n'
        + "".join(f'[audiences.{a}]\nrecipients = {list(r)!r}\n'.replace("'", '"')
                  for a, r in RECIPIENTS.items()))
    return path


def trickling_server(stop) -> int:
    """A server that sends a `220-` greeting line twice a second and never finishes the
    greeting (it gives up by itself after 15 s)."""
    import threading
    import time as _time
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)

    def serve():
        conns = []
        ends = _time.monotonic() + 15         # bounded: it stops by itself
        while not stop.is_set() and _time.monotonic() < ends:
            try:
                conns.append(listener.accept()[0])
            except OSError:
                pass
            for c in conns:
                try:
                    c.sendall(b"220-still greeting you\r\n")
                except OSError:
                    pass
            _time.sleep(0.3)   # with the accept wait: a line every 0.5 s
        for c in conns:
            c.close()
        listener.close()
    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def test_a_greeting_that_trickles_forever_ends_at_the_deadline(out):
    import threading
    import time as _time
    stop = threading.Event()
    port = trickling_server(stop)
    try:
        started = _time.monotonic()
        outcome = deliver(config_for(port, timeout=1, retries=0), out, PERIOD, ["it"])
        took = _time.monotonic() - started
    finally:
        stop.set()
    assert 3.5 < took < 6.5                     # the deadline is 4 x timeout = 4 s
    assert len(outcome.failed) == 2 and "within the 4 s deadline" in outcome.failed[0][2]
    assert rows_of(out) == [("ops@example.com", "failed"), ("oncall@example.com", "failed")]


def test_two_processes_sending_at_once_send_each_recipient_one_copy(out):
    handler = LateAnswer()
    handler.delay = 1.0
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    toml = write_toml(out, controller.port, 5)
    code = ("import sys; from pathlib import Path; from reporting.core.config import Config;"
            "from reporting.deliver.reports import deliver;"
            f"o = deliver(Config.load('{toml}'), Path('{out}'), '{PERIOD}', ['it']);"
            "print(len(o.sent), len(o.skipped))")
    try:
        procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                  text=True) for _ in range(2)]
        results = sorted(p.communicate(timeout=60)[0].split() for p in procs)
    finally:
        controller.stop()
    received = sorted(r for rcpts, _ in handler.messages for r in rcpts)
    assert received == ["oncall@example.com", "ops@example.com"]
    assert sum(int(sent) for sent, _ in results) == 2
    assert sum(int(skipped) for _, skipped in results) == 2


def test_send_refuses_a_pdf_whose_checksum_no_longer_matches(server, out):
    controller, handler = server
    pdf = out / "reports" / PERIOD / "it.pdf"
    pdf.write_bytes(pdf.read_bytes() + b"%tampered\n")
    r = CliRunner().invoke(main, ["send", "--period", PERIOD, "-a", "it", "--output", str(out),
                                  "--config", str(write_toml(out, controller.port, 5))])
    assert r.exit_code == 2 and handler.messages == []
    assert "its checksum no longer matches" in r.output and "rebuild it" in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_a_failed_forced_resend_keeps_the_earlier_delivered_rows(server, out):
    controller, handler = server
    deliver(config_for(controller.port), out, PERIOD, ["it"])
    handler.data_replies = ["554 Transaction failed"]
    forced = deliver(config_for(controller.port), out, PERIOD, ["it"], force=True)
    assert len(forced.failed) == 2
    assert rows_of(out) == [("ops@example.com", "delivered"),
                            ("oncall@example.com", "delivered"),
                            ("ops@example.com", "failed"), ("oncall@example.com", "failed")]
    # what was delivered stays delivered: a plain run sends nothing
    assert deliver(config_for(controller.port), out, PERIOD, ["it"]).sent == []


def test_an_audience_without_recipients_is_a_warning_not_a_message(out):
    r = CliRunner().invoke(main, ["send", "--period", PERIOD, "-a", "it", "--output",
                                  str(out)])
    assert r.exit_code == 0, r.output
    assert r.output.count("The it audience has no recipients") == 1
    assert not (out / "outbox").exists()


def test_internal_recipient_domains_are_accepted():
    cfg = Config.from_dict({"audiences": {"it": {
        "recipients": ["ops@corp.local", "root@localhost"]}}})
    assert cfg.audiences["it"].recipients == ("ops@corp.local", "root@localhost")
    with pytest.raises(ConfigError, match="not an email address"):
        Config.from_dict({"audiences": {"it": {"recipients": ["ops@corp..local"]}}})


@pytest.mark.parametrize("smtp, words", [
    ({"host": "mail.example.com", "security": "none", "username": "reports"},
     "in clear text to mail.example.com"),
    ({"password_env": "hunter2-S3cret!"}, "not the password itself"),
    ({"timeout": 0}, "smtp.timeout must be more than 0"),
    ({"retries": -1}, "smtp.retries must be 0 or more"),
])
def test_smtp_settings_that_leak_or_hang_are_config_errors(smtp, words):
    with pytest.raises(ConfigError, match=words) as caught:
        Config.from_dict({"smtp": smtp})
    assert "hunter2" not in str(caught.value)


def test_plain_text_login_is_allowed_on_loopback_or_when_asked():
    for smtp in ({"host": "127.0.0.1", "security": "none", "username": "u"},
                 {"host": "mail.example.com", "security": "none", "username": "u",
                  "allow_plaintext_auth": True}):
        assert Config.from_dict({"smtp": smtp}).smtp.username == "u"
    with pytest.raises(ConfigError, match="lock_timeout_s must be 0 or more"):
        Config.from_dict({"lock_timeout_s": -1})


# --- issue 33: a reply has a bound; secrets never reach the archive or the screen -------

def flooding_server(stop, greeting: bool, limit: int = 20 << 20, width: int = 70
                    ) -> tuple[int, list[int]]:
    """A server that floods `220-` lines (of `width` characters) as its greeting, or
    greets and answers EHLO with `250-` lines without end (it stops by itself after
    `limit` bytes); the list gets the bytes it sent to each connection."""
    import threading
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(10)
    sent: list[int] = []

    def serve():
        try:
            conn = listener.accept()[0]
        except OSError:
            return
        conn.settimeout(10)
        total, line = 0, (b"220-" if greeting else b"250-") + b"x" * width + b"\r\n"
        try:
            if not greeting:
                conn.sendall(b"220 flood.example ESMTP\r\n")
                conn.recv(1000)                          # EHLO
            batch = line * max(1, 7400 // len(line))     # about 7 KB a send
            while total < limit and not stop.is_set():
                conn.sendall(batch)
                total += len(batch)
        except OSError:
            pass
        sent.append(total)
        stop.wait(10)
        conn.close()
        listener.close()
    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], sent


@pytest.mark.parametrize("greeting, width", [(True, 70), (False, 70), (False, 100_000)])
def test_a_server_flooding_reply_lines_ends_at_the_line_bound(out, greeting, width):
    """100 lines of 70 characters end the conversation; so does one line of 100,000
    (100 of them would hold 10 MB)."""
    import threading
    import time as _time
    import tracemalloc
    stop = threading.Event()
    port, sent = flooding_server(stop, greeting, width=width)
    tracemalloc.start()
    try:
        started = _time.monotonic()
        outcome = deliver(config_for(port, timeout=5, retries=0), out, PERIOD, ["it"])
        took = _time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        stop.set()
    assert took < 3                                  # not the 20 s deadline
    assert peak < 8 << 20                            # MB, while the server sent up to 20
    assert len(outcome.failed) == 2
    assert "the server's reply passed 100 lines or 64 KB" in outcome.failed[0][2]
    assert rows_of(out) == [("ops@example.com", "failed"), ("oncall@example.com", "failed")]


def test_a_reply_of_long_lines_ends_at_the_byte_bound():
    """`smtp.max_reply_kb`: 50 lines of 2,000 characters (100 KB, far under 100 lines)
    against a bound of 16 KB end after the ninth line (18 KB), not after the last."""
    import io

    from reporting.deliver.smtp import ReplyTooLong, _BoundedReplies

    class Reader(_BoundedReplies):
        max_bytes = 16 * 1024
        closed = False

        def __init__(self, data: bytes) -> None:
            self.file, self.sock = io.BytesIO(data), None

        def close(self) -> None:
            self.closed = True

    line = b"250-" + b"x" * 1996 + b"\r\n"
    reader = Reader(line * 50 + b"250 ok\r\n")
    with pytest.raises(ReplyTooLong, match="100 lines or 16 KB"):
        reader.getreply()
    assert reader.closed and reader.file.tell() <= 9 * len(line)
    assert Reader(line * 5 + b"250 ok\r\n").getreply()[0] == 250     # 10 KB: read whole


SMTP_SECRET = "s3cr3t-P@ss/w+rd"


def echoing_server(stop) -> int:
    """A server offering AUTH PLAIN that refuses every login with a 535 reply quoting the
    client's AUTH line (base64 of "\\0user\\0password"), the password as typed and its
    URL-encoded form, as some servers' debug modes do."""
    import threading
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)

    def talk(conn):
        conn.settimeout(10)
        file = conn.makefile("rb")
        conn.sendall(b"220 echo.example ESMTP\r\n")
        while line := file.readline():
            if line.upper().startswith((b"EHLO", b"HELO")):
                conn.sendall(b"250-echo.example\r\n250 AUTH PLAIN\r\n")
            elif line.upper().startswith(b"AUTH"):
                echoed = line.strip().decode()
                conn.sendall(f"535 5.7.8 authentication failed: {echoed} (password "
                             f"{SMTP_SECRET}, sent as s3cr3t-P%40ss%2Fw%2Brd)\r\n".encode())
            elif line.upper().startswith(b"QUIT"):
                conn.sendall(b"221 bye\r\n")
                break
            else:
                conn.sendall(b"250 OK\r\n")
        conn.close()

    def serve():
        while not stop.is_set():
            try:
                conn = listener.accept()[0]
            except OSError:
                continue
            threading.Thread(target=talk, args=(conn,), daemon=True).start()
        listener.close()
    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def test_a_535_reply_echoing_the_credentials_is_stored_and_printed_scrubbed(out, tmp_path):
    import base64
    import threading
    stop = threading.Event()
    port = echoing_server(stop)
    path = write_toml(tmp_path, port, 5)
    path.write_text(path.read_text().replace(
        'retries = 0\n', 'retries = 0\nusername = "reports"\n'
                         'password_env = "ISSUE33_SMTP_PASSWORD"\n'))
    try:
        r = CliRunner().invoke(main, ["send", "-p", PERIOD, "-a", "it", "--output", str(out),
                                      "--config", str(path)],
                               env={"ISSUE33_SMTP_PASSWORD": SMTP_SECRET})
    finally:
        stop.set()
    assert r.exit_code == 1, r.output
    with Archive(out) as store:
        stored = [d["last_error"] for d in store.deliveries(PERIOD)]
    assert len(stored) == 2 and all(e.startswith("login refused: 535 5.7.8") for e in stored)
    blob = base64.b64encode(f"\0reports\0{SMTP_SECRET}".encode()).decode()
    for text in [*stored, r.output]:
        assert "535" in text or "login refused" in text
        for form in (SMTP_SECRET, blob, "s3cr3t-P%40ss%2Fw%2Brd", "s3cr3t-P"):
            assert form not in text, (form, text)
    assert "AUTH PLAIN ***" in stored[0]


def test_send_during_a_rebuild_of_the_same_period_waits_for_it(out):
    """A rebuild swaps the report folder away for a moment under the build lock (the old
    folder is renamed, then the new one takes its place: store.files.swap_in); send used
    to say "No PDF of 2026-W43 ...; build the report first." in that moment."""
    import os
    import threading
    import time as _time

    from reporting.store.archive import build_lock

    folder = out / "reports" / PERIOD
    old = folder.with_name(f".{PERIOD}.old-{os.getpid()}")
    locked, done = threading.Event(), threading.Event()

    def rebuild():
        with build_lock(out, 60):
            os.rename(folder, old)              # swap_in's first rename ...
            locked.set()
            _time.sleep(1.5)                    # ... the moment held open for the test
            os.rename(old, folder)              # ... and the (new) folder in place
        done.set()

    config = out / "outbox.toml"
    config.write_text('[audiences.it]\nrecipients = ["ops@example.com"]\n')
    threading.Thread(target=rebuild, daemon=True).start()
    assert locked.wait(10)
    assert not folder.exists()
    r = CliRunner().invoke(main, ["send", "-p", PERIOD, "-a", "it", "--output", str(out),
                                  "--config", str(config)])
    assert done.is_set()
    assert r.exit_code == 0, r.output
    assert (out / "outbox" / f"{PERIOD}-it.eml").exists()


def test_the_mail_shows_each_status_as_icon_and_word_not_colour_alone(out):
    cfg = Config.from_dict({})
    pdf = out / "reports" / PERIOD / "it.pdf"
    document = json.loads((out / "reports" / PERIOD / "kpis.json").read_text())
    msg, _ = compose(audience=cfg.audiences["it"], period_id=PERIOD, period_label="p",
                     document=document, pdf=pdf, recipients=["ops@example.com"],
                     smtp=cfg.smtp, archive_path=str(pdf))
    html_body = msg.get_body(("html",)).get_content()
    statuses = [k["status"] for k in headline(document, cfg.audiences["it"])]
    judged = [s for s in statuses if s]
    assert judged, statuses
    for status in set(judged):
        icon = {"good": "✓", "warn": "⚠", "bad": "✖"}[status]
        assert html_body.count(f"{icon} {status}</td>") == judged.count(status)
    assert status_word(None) == "" and status_word("warn") == "⚠ warn"


def test_a_german_audience_reads_its_mail_in_german(built, tmp_path):
    """The mail quotes the page's own words (mail/<audience>.json, written by the build)
    for an audience of another language: subject, period, tiles, findings and its own
    sentences in German; kpis.json stays English."""
    from reporting.build import build

    config = Config.from_dict({"audiences": {"executive": {
        "recipients": ["ceo@example.com"], "locale": "de_DE", "timezone": "Europe/Berlin"}}})
    out = tmp_path / "out"
    build(config, period=PERIOD, data_dir=built.parent / "data", output_dir=out, fmt="pdf",
          audiences=["executive"])
    said = json.loads((out / "reports" / PERIOD / "mail" / "executive.json").read_text())
    assert said["locale"] == "de_DE"
    deliver(config, out, PERIOD, ["executive"])
    msg = parsed((out / "outbox" / f"{PERIOD}-executive.eml").read_bytes())
    assert msg["Subject"] == f"Management-Zusammenfassung, {PERIOD}"
    body = msg.get_body(("plain",)).get_content()
    assert "Der vollständige Bericht ist als PDF angehängt." in body
    assert "Umsatz:" in body and "attached as a PDF" not in body
    assert "What stands out" not in body and "Verfügbarkeit" in body
    html = msg.get_body(("html",)).get_content()
    assert "Was auffällt" in html or not said["insights"]
    assert all(i["text"] in body for i in said["insights"])
