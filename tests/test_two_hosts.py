"""Several hosts, one archive (issue 29): two builders on different output folders that
share one PostgreSQL archive build and send the same week at once; each recipient and
each webhook gets the report once, and neither host's build rows are lost."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from aiosmtpd.controller import Controller

from reporting.core.config import Config
from reporting.store.archive import Archive

from .pgarchive import PASSWORD, pg  # noqa: F401 - the fixture
from .servers import free_port
from .test_channels import hooks  # noqa: F401 - the webhook receiver fixture
from .test_delivery import LateAnswer

WEEK = "2026-W43"
RECIPIENTS = ["ops@example.com", "oncall@example.com", "sre@example.com"]
HOST = """
import json, sys, time
from pathlib import Path
from reporting.build import build
from reporting.core.config import Config
from reporting.deliver.reports import deliver
config = Config.load(sys.argv[1])
out = Path(sys.argv[2])
build(config, period="{week}", audiences=["it"], data_dir=Path(sys.argv[3]), output_dir=out,
      fmt="pdf")
# both hosts built: they send at the same moment (a barrier of two files)
(out.parent / (out.name + ".ready")).touch()
waited = time.monotonic()
while len(list(out.parent.glob("*.ready"))) < 2:
    if time.monotonic() - waited > 120:
        sys.exit("the other host never finished its build")
    time.sleep(0.01)
o = deliver(config, out, "{week}", ["it"])
print(json.dumps({{"sent": len(o.sent), "skipped": len(o.skipped),
                  "channels": len(o.channel_sent)}}))
"""


def finish(procs: list[subprocess.Popen]) -> list[tuple[str, str]]:
    """Each process's output; one that fails ends the others (it waited for it at the
    barrier), so the failure's own stderr is what the test shows."""
    deadline = time.monotonic() + 300
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        if any(p.poll() not in (None, 0) for p in procs):
            break
        time.sleep(0.1)
    for p in procs:
        if p.poll() is None:
            p.kill()
    return [p.communicate() for p in procs]


def test_two_hosts_sharing_one_postgresql_archive_send_each_message_once(
        pg, hooks, tmp_path):   # noqa: F811
    # lazy: the simulator is only this test's data
    from reporting.simulate import simulate
    simulate(tmp_path / "data", weeks=1, scale="tiny", seed=8)
    url = pg.database("hosts")
    smtp = LateAnswer()
    smtp.delay = 1.0      # a slow server: the two senders overlap
    controller = Controller(smtp, hostname="127.0.0.1", port=free_port())
    controller.start()
    toml = tmp_path / "report.toml"
    toml.write_text(
        f'archive_url = "{url}"\narchive_password_env = "REPORTS_ARCHIVE_PW"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {controller.port}\nsecurity = "none"\n'
        'retries = 0\ntimeout = 10\nsender = "reports@example.com"\n'
        f'[audiences.it]\nrecipients = {json.dumps(RECIPIENTS)}\n'
        f'notify = ["json://127.0.0.1:{hooks.port}/hook"]\n')
    env = {**os.environ, "REPORTS_ARCHIVE_PW": PASSWORD}
    try:
        procs = [subprocess.Popen(
            [sys.executable, "-c", HOST.format(week=WEEK), str(toml), str(tmp_path / host),
             str(tmp_path / "data")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env) for host in ("host-a", "host-b")]
        outputs = finish(procs)
    finally:
        controller.stop()
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    received = sorted(r for rcpts, _ in smtp.messages for r in rcpts)
    assert received == sorted(RECIPIENTS)                   # each recipient once
    assert sum(r["sent"] for r in results) == 3
    assert sum(r["skipped"] for r in results) == 3          # the other host skipped them
    assert len(hooks.requests) == 1 and sum(r["channels"] for r in results) == 1
    os.environ["REPORTS_ARCHIVE_PW"] = PASSWORD
    try:
        config = Config.load(toml)
        for host in ("host-a", "host-b"):   # each host's build rows, under its own folder
            with Archive.of(config, tmp_path / host) as store:
                row = store.latest_build(WEEK, "it", ".pdf")
                assert row is not None and row["output"] == str((tmp_path / host).resolve())
                assert (tmp_path / host / row["path"]).is_file()
                assert store.show(WEEK)["files"][0]["state"] == "ok"
        with Archive.of(config, tmp_path / "host-a") as store:
            outputs_seen = {r["output"] for r in store.db.execute("SELECT output FROM builds")}
            assert len(outputs_seen) == 2
            statuses = [r["status"] for r in store.deliveries(WEEK)]
            assert sorted(statuses) == ["delivered"] * 4     # 3 mails and the webhook
    finally:
        del os.environ["REPORTS_ARCHIVE_PW"]
