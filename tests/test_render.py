from __future__ import annotations


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
