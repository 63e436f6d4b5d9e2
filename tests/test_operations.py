"""Saying what happened (issue 19): output problems, piped output, simulate's folder,
column mappings."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reporting.cli import build_report, main
from reporting.simulate import simulate


@pytest.fixture(scope="module")
def week(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("ops") / "data"
    simulate(data, weeks=1, scale="tiny", seed=5)
    return data


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody can write to, root included: a read-only tmpfs (or chmod)."""
    target = tmp_path / "ro"
    target.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(target)],
                       check=True, capture_output=True)
        yield target
        subprocess.run(["umount", "-l", str(target)], check=False)
    else:
        target.chmod(0o500)
        yield target
        target.chmod(0o700)


def one_error_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert result.exit_code == 2, result.output
    return lines[0]


def test_an_output_that_cannot_be_written_is_one_sentence_exit_2(week, tmp_path,
                                                                 read_only_folder):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = [(read_only_folder / "out", "the file system is read-only"
              if os.geteuid() == 0 else "permission denied"),
             (a_file, "a file is in the way"),
             (Path("/proc/reports-out"), "no such file or folder")]
    for target, why in cases:
        r = CliRunner().invoke(build_report, ["--data", str(week), "--output", str(target),
                                              "-a", "it", "--format", "html"])
        line = one_error_line(r)
        assert line.startswith("error: Cannot use ") and why in line, line
        s = CliRunner().invoke(main, ["simulate", "--out", str(target / "sim"), "--weeks", "1",
                                      "--scale", "tiny"])
        assert one_error_line(s).startswith("error: Cannot use ")


def test_simulate_refuses_a_folder_of_other_files_unless_forced(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "api_logs.csv").write_text("real export\n")
    args = ["simulate", "--out", str(folder), "--weeks", "1", "--scale", "tiny",
            "--format", "parquet"]
    r = CliRunner().invoke(main, args)
    assert "holds files the simulator did not write" in one_error_line(r)
    assert (folder / "api_logs.csv").read_text() == "real export\n"
    assert sorted(p.name for p in folder.iterdir()) == ["api_logs.csv"]
    forced = CliRunner().invoke(main, args + ["--force"])
    assert forced.exit_code == 0 and (folder / "api_logs.parquet").exists()
    again = CliRunner().invoke(main, args)       # its own folder: no --force needed
    assert again.exit_code == 0, again.output


def test_piped_warnings_are_printed_once_and_never_wrapped(week, tmp_path):
    data = tmp_path / "data-with-a-rather-long-folder-name-so-the-line-passes-eighty-columns"
    data.mkdir()
    for f in week.iterdir():
        (data / f.name).write_bytes(f.read_bytes())
    api = data / "api_logs.csv"
    api.write_text(api.read_text().replace("response_time_ms", "resp_ms", 1))
    proc = subprocess.run([sys.executable, "-m", "reporting", "build", "--data", str(data),
                           "--output", str(tmp_path / "out"), "-a", "it", "--format", "html"],
                          capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "COLUMNS"})
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "has no column" in line]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("warning: ") and len(lines[0]) > 80
    assert lines[0].endswith("'service_name', 'method'.")


def test_a_wrong_column_mapping_is_named(week, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    tickets = (week / "support_tickets.csv").read_text()
    (data / "support_tickets.csv").write_text(tickets.replace("created_at", "opened", 1))
    config = tmp_path / "report.toml"
    config.write_text('[columns.support_tickets]\nopened = "created_att"\n')
    r = CliRunner().invoke(main, ["validate", "--data", str(data), "--config", str(config)])
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and "has no column 'created_at'" in said
    assert ("Check the config: columns.support_tickets maps 'opened' to 'created_att', which "
            "is not a column of support_tickets") in said
