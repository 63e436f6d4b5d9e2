"""core.secrets: the one scrubber error texts pass before they are logged, stored or
printed (issue 33)."""
from __future__ import annotations

import base64
import logging

import pytest

from reporting.core import secrets
from reporting.core.config import Config


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(secrets, "_known", set())


def test_each_form_of_a_secret_is_removed():
    secrets.remember("hunter2!x", login="ops")
    text = ("raw hunter2!x, url hunter2%21x, b64 aHVudGVyMiF4, plain "
            + base64.b64encode(b"\0ops\0hunter2!x").decode())
    assert secrets.scrub(text) == "raw ***, url ***, b64 ***, plain ***"


@pytest.mark.parametrize("prefix", [b"", b"a", b"ab", b"abc", b"token="])
def test_a_secret_inside_a_longer_base64_text_is_removed_at_any_alignment(prefix):
    secrets.remember("correct horse")
    blob = base64.b64encode(prefix + b"correct horse" + b"!").decode()
    scrubbed = secrets.scrub(f"server said {blob}")
    assert "***" in scrubbed
    # what is left of the blob is at most the letters mixing the secret's edges with
    # its neighbours: never enough to decode the secret (13 bytes -> 17+ letters)
    left = scrubbed.replace("server said ", "").replace("***", "")
    assert len(left) <= 4 + len(base64.b64encode(prefix)), (blob, scrubbed)


def test_a_short_secret_is_removed_only_as_typed():
    secrets.remember("ab1")
    assert secrets.forms("ab1") == {"ab1"}
    assert secrets.scrub("xab1y YWIx") == "x***y YWIx"


def test_the_config_names_the_secrets_and_the_log_filter_removes_them(monkeypatch, caplog):
    monkeypatch.setenv("T33_SMTP", "smtp-pass-1")
    monkeypatch.setenv("T33_DB", "db-pass-2")
    monkeypatch.setenv("T33_HOOK", "hook-token-3")
    Config.from_dict({
        "smtp": {"host": "mail.example.com", "username": "u", "password_env": "T33_SMTP"},
        "sources": {"support_tickets": {"url": "postgresql://r@db/x", "sql": "select 1",
                                        "password_env": "T33_DB"}},
        "audiences": {"it": {"notify": ["json://hooks.example.com/{T33_HOOK}"]}}})
    logger = logging.getLogger("t33")
    handler = logging.Handler()
    lines = []
    handler.emit = lambda record: lines.append(record.getMessage())
    handler.addFilter(secrets.ScrubFilter())
    logger.addHandler(handler)
    try:
        logger.error("failed: %s / %s / %s", "smtp-pass-1", "db-pass-2",
                     "hook-token-3".encode().hex() + " hook-token-3")
    finally:
        logger.removeHandler(handler)
    assert lines == ["failed: *** / *** / " + "hook-token-3".encode().hex() + " ***"]
