"""The archive's ledger: deliveries, incident alerts and scheduled runs, one row each."""
from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from ..core.secrets import scrub
from .db import Db


def clean(error: str | None) -> str | None:
    """An error text as stored: scrubbed of every secret (a server's or a driver's own
    words may quote one)."""
    return None if error is None else scrub(error)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


HOST = socket.gethostname()


def alive(pid: int | None, host: str | None = None) -> bool:
    """Whether the process that wrote a row still runs. Only this machine's processes can
    be asked: one of another host (a shared archive) is taken to be alive."""
    if host and host != HOST:
        return True
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Ledger:
    """The archive's record of what was sent and run: deliveries (claimed before any
    message leaves, one row per attempt), incident alerts and scheduled runs. A mixin of
    `Archive`, whose connection (`db`) and `transaction` it uses."""

    db: Db
    transaction: Callable[[], AbstractContextManager[Db]]

    # --- deliveries: one row per attempt; the newest row per recipient is its state ----

    def claim(self, period_id: str, audience: str, recipients: Iterable[str], *,
              force: bool = False) -> tuple[dict[str, int], dict[str, str]]:
        """Claim recipients for sending, in one transaction, before any SMTP conversation:
        returns (recipient -> claimed row id, recipient -> why it was not claimed).

        Not claimed: delivered or written at any time (unless `force`), newest attempt
        "unknown" (the server may have it; unless `force`), or "sending" by a live
        process. A "sending" row whose process is gone becomes "unknown": it may have
        reached the server."""
        claimed, skipped = {}, {}
        with self.transaction() as db:
            recipients = list(dict.fromkeys(recipients))
            for r in sorted(recipients):    # locked in one order: senders never deadlock
                _lock_key(db, period_id, audience, r)
            for r in recipients:
                row = db.execute("SELECT id, status, pid, host FROM deliveries WHERE"
                                 " period_id = ? AND audience = ? AND recipient = ?"
                                 " ORDER BY id DESC LIMIT 1",
                                 (period_id, audience, r)).fetchone()
                status = row["status"] if row else None
                if status == "sending" and not alive(row["pid"], row["host"]):
                    db.execute("UPDATE deliveries SET status = 'unknown', last_error = ?,"
                               " updated_at = ? WHERE id = ?",
                               (f"the sending process (pid {row['pid']}) stopped before the "
                                "server's answer was recorded", now_iso(), row["id"]))
                    status = "unknown"
                if status != "sending" and not force and db.execute(
                        "SELECT 1 FROM deliveries WHERE period_id = ? AND audience = ? AND"
                        " recipient = ? AND status IN ('delivered', 'written')",
                        (period_id, audience, r)).fetchone():
                    status = "delivered"     # once delivered, a later failed --force is history
                if status == "sending" or (status in ("delivered", "written", "unknown")
                                           and not force):
                    skipped[r] = status
                    continue
                claimed[r] = db.execute(
                    "INSERT INTO deliveries (period_id, audience, recipient, status, attempts,"
                    " updated_at, pid, host) VALUES (?,?,?,'sending',0,?,?,?) RETURNING id",
                    (period_id, audience, r, now_iso(), os.getpid(), HOST)).fetchone()[0]
        return claimed, skipped

    def finish_delivery(self, row_id: int, status: str, attempts: int, error: str | None,
                        message_id: str | None) -> None:
        with self.transaction() as db:
            db.execute("UPDATE deliveries SET status = ?, attempts = ?, last_error = ?,"
                       " message_id = ?, updated_at = ? WHERE id = ?",
                       (status, attempts, clean(error), message_id, now_iso(), row_id))

    def deliveries(self, period_id: str | None = None) -> list[dict[str, Any]]:
        """Every attempt, oldest first."""
        sql = "SELECT * FROM deliveries" + (" WHERE period_id = ?" if period_id else "")
        return [dict(r) for r in self.db.execute(sql + " ORDER BY id",
                                                 (period_id,) if period_id else ())]

    # --- incident alerts --------------------------------------------------------------

    def record_alert(self, incident: Mapping[str, Any]) -> tuple[str, bool]:
        """The alert id of `incident` and whether it is new. An archived alert whose window
        overlaps or touches the incident's, and that names a service in common with it (or
        either names none), is the same incident: its window grows."""
        start, end = (pd.Timestamp(incident[k]) for k in ("start", "end"))
        services = set(incident.get("services", []))
        with self.transaction() as db:
            for row in db.execute("SELECT * FROM alerts ORDER BY id DESC").fetchall():
                a, b = pd.Timestamp(row["start"]), pd.Timestamp(row["end"])
                named = {s for s in row["services"].split(", ") if s}
                same = not services or not named or bool(services & named)
                if same and start <= b and end >= a:   # its sentence follows only if it grew
                    db.execute("UPDATE alerts SET start = ?, \"end\" = ?, text = ?,"
                               " last_seen = ?"
                               " WHERE id = ?", (min(a, start).isoformat(),
                                                 max(b, end).isoformat(),
                                                 incident["text"] if end > b else row["text"],
                                                 now_iso(), row["id"]))
                    return f"alert-{row['id']}", False
            row_id = db.execute(
                "INSERT INTO alerts (start, \"end\", services, text, first_seen, last_seen)"
                " VALUES (?,?,?,?,?,?) RETURNING id",
                (start.isoformat(), end.isoformat(), ", ".join(incident.get("services", [])),
                 incident["text"], now_iso(), now_iso())).fetchone()[0]
        return f"alert-{row_id}", True

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert, newest first, with how its messages fared."""
        out = []
        for row in self.db.execute("SELECT * FROM alerts ORDER BY start DESC, id DESC"):
            sent = self.db.execute(
                "SELECT recipient, status FROM deliveries WHERE period_id = ? ORDER BY id",
                (f"alert-{row['id']}",)).fetchall()
            latest = {r["recipient"]: r["status"] for r in sent}
            out.append({**dict(row), "id": f"alert-{row['id']}", "deliveries": latest})
        return out

    # --- scheduled runs ---------------------------------------------------------------

    def record_run(self, job_id: str, audience: str, scheduled_for: str | None,
                   started_at: str, finished_at: str | None, status: str,
                   error: str | None) -> int:
        with self.transaction() as db:
            return int(db.execute(
                "INSERT INTO runs (job_id, audience, scheduled_for, started_at, finished_at,"
                " status, error, pid, host) VALUES (?,?,?,?,?,?,?,?,?) RETURNING id",
                (job_id, audience, scheduled_for, started_at, finished_at, status,
                 clean(error), os.getpid(), HOST)).fetchone()[0])

    def finish_run(self, run_id: int, status: str, error: str | None) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                       (status, clean(error), now_iso(), run_id))

    def interrupt_runs(self, pid: int | None, error: str) -> list[dict[str, Any]]:
        """Mark as "interrupted" the running rows of `pid` (None: of every process that
        is gone); returns them."""
        with self.transaction() as db:
            rows = [dict(r) for r in db.execute("SELECT * FROM runs WHERE status = 'running'")
                    if r["host"] in (None, HOST) and
                    (r["pid"] == pid if pid is not None else not alive(r["pid"]))]
            for r in rows:
                db.execute("UPDATE runs SET status = 'interrupted', error = ?,"
                           " finished_at = ? WHERE id = ?", (clean(error), now_iso(), r["id"]))
        return rows

    def last_run(self, job_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM runs WHERE job_id = ? ORDER BY id DESC LIMIT 1",
                              (job_id,)).fetchone()
        return dict(row) if row else None


def _lock_key(db: Db, period_id: str, audience: str, recipient: str) -> None:
    """Hold the recipient's claim key until COMMIT: its row is made once (a unique key)
    and locked (PostgreSQL: FOR UPDATE), so a second sender, on any host, reads the
    first one's claim only after it is committed. SQLite's BEGIN IMMEDIATE already lets
    one writer in at a time."""
    db.execute("INSERT INTO delivery_keys (period_id, audience, recipient) VALUES (?,?,?)"
               " ON CONFLICT DO NOTHING", (period_id, audience, recipient))
    db.execute("SELECT 1 FROM delivery_keys WHERE period_id = ? AND audience = ? AND"
               " recipient = ?" + db.lock_rows(), (period_id, audience, recipient))
