"""The config as text, from its declarations: the docs' config reference (Markdown), the
commented report.toml `reporting init` writes, and the resolved config `reporting config
check` prints (secrets as ***). Nothing here knows a key by name."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import textwrap
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .config import Config
from .settings import KINDS, Key, declared, span

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_value(value: Any) -> str:
    """A value as TOML writes it: "text", 0.999, true, ["a", "b"], { key = "v" }."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (str, Path)):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, dict):
        inner = ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return f"{{ {inner} }}" if inner else "{}"
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            return toml_value(dict(value))           # (key, value) pairs: a table
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def toml_key(key: Any) -> str:
    return str(key) if BARE_KEY.fullmatch(str(key)) else json.dumps(str(key))


def allowed(key: Key) -> str:
    """What values a key takes, in words."""
    s = key.setting
    if s.choices:
        return ", ".join(f'"{c}"' for c in s.choices)
    if key.kind in ("number", "whole", "ratio") and (s.low is not None or s.high is not None
                                                      or key.kind == "ratio"):
        return span(s, key.kind) + (f" {s.unit}" if s.unit and s.unit != "x" else "")
    return KINDS[key.kind]


# --- the docs' config reference -------------------------------------------------------------

REFERENCE = Path("docs") / "snippets" / "config-keys.md"     # included by docs/config.md


def reference() -> str:
    """The config reference: every declared key, table by table, as Markdown tables
    (`make config-docs` writes it to REFERENCE; a test holds the committed file equal to
    this)."""
    out = ["<!-- Generated from the declarations in reporting/core/config.py by",
           "     `make config-docs` (python -m reporting.core.configtext); do not edit. -->",
           "",
           "Names in angle brackets are yours: `[audiences.<audience>]` is `[audiences.it]` "
           "or a new audience, `[sources.<source>]` one of the eight sources.", ""]
    for title, keys in _tables():
        out += [f"### `{title}`" if title else "### Top level", ""]
        out += ["| key | type | default | allowed | meaning | example |",
                "|---|---|---|---|---|---|"]
        out += [_row(k) for k in keys]
        out.append("")
    return "\n".join(out)


def _tables() -> Iterator[tuple[str, list[Key]]]:
    """Keys grouped by the table they are written in: top level first."""
    groups: dict[str, list[Key]] = {}
    for key in declared(Config):
        table, _, _ = key.name.rpartition(".")
        groups.setdefault(f"[{table}]" if table else "", []).append(key)
    yield from groups.items()


def _row(key: Key) -> str:
    s = key.setting
    name = key.name.rpartition(".")[2]
    default = "" if key.kind == "table" and s.of is not None else toml_value(key.default)
    example = "" if s.example is None else toml_value(s.example)
    cells = [f"`{name}`", key.kind, _code(default), allowed(key), s.help, _code(example)]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


# --- the file `reporting init` writes ------------------------------------------------------

EXAMPLE_NAMES = {"<audience>": "it", "<service>": "payments-gw", "<source>": "api_logs"}


def template(found: Iterable[str], lines: Iterable[str]) -> str:
    """A commented report.toml: `found` (comment lines about the data folder), `lines` (keys
    set for what was found: data_dir, [sources] tables), then every other key commented
    out with its default (or, in a table named by you, its example) and its help."""
    lines = list(lines)
    written = {line.split("=", 1)[0].strip() for line in lines if "=" in line
               and not line.startswith("[")}
    out = ["# report.toml, written by `reporting init`. Every key is optional; a commented",
           "# line shows the default. Uncomment and change what you need; `reporting config",
           "# check` prints the config as it is read. Reference: docs/config.md.", ""]
    out += [textwrap.fill(line, 88, initial_indent="# ", subsequent_indent="# ")
            for line in found] + lines + [""]
    blocks: list[list[str]] = []
    for title, keys in _tables():
        if title.startswith("[sources") and any(x.startswith("[sources.") for x in lines):
            continue                       # written above for the sources found
        parent = next((k for k in declared(Config) if k.setting.named and title.startswith(
            f"[{k.name}.")), None)
        block = [f"# {_named(title)}"] + ([f"# ({parent.setting.help})"] if parent else []) \
            if title else out
        for key in keys:
            name = key.name.rpartition(".")[2]
            if key.setting.of is not None or (not title and name in written):
                continue
            if key.kind == "table" and "." not in key.name:
                blocks.append(_table_block(key))
                continue
            empty = key.default in (None, "", (), {})
            value = key.setting.example if ("<" in title or empty) and \
                key.setting.example is not None else key.default
            if value not in (None, "", (), {}):
                block.append(_commented(f"{name} = {toml_value(value)}", key.setting.help))
        if title:
            blocks.append(block)
    for block in blocks:
        out += [""] + block
    return "\n".join(out) + "\n"


def _named(title: str) -> str:
    for placeholder, example in EXAMPLE_NAMES.items():
        title = title.replace(placeholder, example)
    return title


def _table_block(key: Key) -> list[str]:
    """A table of your own names (the funnel's steps, columns per source), commented."""
    value = key.setting.example if key.setting.named else key.default
    entries = dict(value) if not isinstance(value, dict) else value
    if key.setting.named:
        name, entries = next(iter(entries.items()))
        head = f"[{key.name}.{toml_key(name)}]"
    else:
        head = f"[{key.name}]"
    return [_commented(head, key.setting.help)] + [
        f"# {toml_key(k)} = {toml_value(v)}" for k, v in entries.items()]


def _commented(assignment: str, help: str) -> str:
    line = f"# {assignment}"
    return f"{line:<40} # {help}" if len(line) < 40 else f"{line}  # {help}"


# --- the resolved config `reporting config check` prints ---------------------------------------

def resolved(config: Config) -> str:
    """Every key as the config holds it, defaults included, as TOML; secrets as ***."""
    out = []
    tables: list[tuple[str, Any, Key]] = []
    for key in declared(Config):
        if "." in key.name:
            continue
        value = getattr(config, key.name)
        if key.kind == "table":
            tables.append((key.name, value, key))
        else:
            out.append(f"{key.name} = {toml_value(value)}")
    for name, value, key in tables:
        for head, entry in _entries(name, value, key):
            out += ["", f"[{head}]", *_fields(entry)]
    return "\n".join(out) + "\n"


def _entries(name: str, value: Any, key: Key) -> Iterator[tuple[str, Any]]:
    if dataclasses.is_dataclass(value):
        yield name, value
    elif isinstance(value, dict):
        for entry_name, entry in value.items():
            yield f"{name}.{toml_key(entry_name)}", entry
    else:                                  # the funnel: (step, patterns) pairs
        yield name, dict(value)


def _fields(entry: Any) -> list[str]:
    if not dataclasses.is_dataclass(entry):
        return [f"{toml_key(k)} = {toml_value(v)}" for k, v in entry.items()]
    out = []
    for f in dataclasses.fields(entry):
        s = f.metadata.get("setting")
        if s is None:
            continue
        value = getattr(entry, f.name)
        if s.kind == "choice" and value == "":
            continue                       # "" = the default way (a format from file names)
        if s.kind == "table" and not isinstance(value, dict):
            value = dict(value)            # (key, patterns) pairs: an audience's filters
        if s.secret:
            value = [hide(v) for v in value]
        elif s.kind == "url" and value:
            value = without_password(value)
        line = f"{f.name} = {toml_value(value)}"
        if s.kind == "env" and value:
            line += "   # " + ("set" if os.environ.get(value) else "not set") + \
                " in this environment"
        out.append(line)
    return out


def hide(value: str) -> str:
    """A secret: an Apprise URL as service://*** (its tokens may be in it)."""
    scheme, sep, _ = str(value).partition("://")
    return f"{scheme}://***" if sep else "***"


def without_password(url: str) -> str:
    """A URL with any password in it shown as ***: user:***@host."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


if __name__ == "__main__":           # make config-docs: write the config reference
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(reference(), encoding="utf-8")
