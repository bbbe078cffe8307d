"""The SQLite store's part of the daily blacklist scan: the day's refusals
and the claim on a day's report.

Plain functions of a connection, like `postroom.queue.sqlite_sql`.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from postroom.queue.models import DailyReport, Failure, Outcome
from postroom.queue.sqlite_schema import from_db, from_db_or_none, to_db

# Bounce records that an attempt row already stands for.
_FROM_ATTEMPTS = ("smtp", "expiry")


def failures(
    conn: sqlite3.Connection, since: datetime, until: datetime
) -> list[Failure]:
    window = (to_db(since), to_db(until))
    # Both queries walk an index on the time column (attempts_at,
    # bounce_records_at), so a day costs what it holds, not the table.
    attempts = conn.execute(
        "SELECT 'attempt' AS source, a.at, r.address, r.campaign, r.queue_id,"
        " a.mx_host, a.code, a.status, a.text"
        " FROM attempts a JOIN recipients r ON r.id = a.recipient_id"
        " WHERE a.at >= ? AND a.at < ? AND a.outcome IN (?, ?)",
        (*window, Outcome.DEFERRED, Outcome.BOUNCED),
    ).fetchall()
    reports = conn.execute(
        "SELECT b.source, b.at, b.address,"
        " COALESCE(b.campaign, r.campaign, '') AS campaign, r.queue_id,"
        " b.remote_mta AS mx_host, b.code, b.status, b.diagnostic AS text"
        " FROM bounce_records b LEFT JOIN recipients r ON r.id = b.recipient_id"
        " WHERE b.at >= ? AND b.at < ? AND b.source NOT IN (?, ?)",
        (*window, *_FROM_ATTEMPTS),
    ).fetchall()
    rows = sorted([*attempts, *reports], key=lambda row: row["at"])
    return [
        Failure(
            source=row["source"],
            at=from_db(row["at"]),
            address=row["address"],
            campaign=row["campaign"],
            queue_id=row["queue_id"],
            mx_host=row["mx_host"],
            code=row["code"],
            status=row["status"],
            text=row["text"],
        )
        for row in rows
    ]


def claim_report(
    conn: sqlite3.Connection,
    day: str,
    holder: str,
    now: datetime,
    hold: timedelta,
    force: bool,
) -> bool:
    row = conn.execute(
        "SELECT holder, claimed_until, sent_at FROM daily_reports WHERE day = ?",
        (day,),
    ).fetchone()
    at = to_db(now)
    if row is not None:
        held = row["holder"] is not None and row["claimed_until"] > at
        if held and row["holder"] != holder:
            return False
        if row["sent_at"] is not None and not force:
            return False
    # The writer thread runs one job at a time, so reading and then
    # writing here cannot interleave with another claim.
    conn.execute(
        "INSERT INTO daily_reports (day, holder, claimed_until) VALUES (?, ?, ?)"
        " ON CONFLICT (day) DO UPDATE SET holder = excluded.holder,"
        " claimed_until = excluded.claimed_until",
        (day, holder, to_db(now + hold)),
    )
    return True


def finish_report(
    conn: sqlite3.Connection,
    day: str,
    holder: str,
    now: datetime,
    sent: bool,
    queue_id: str | None,
    summary: str,
) -> None:
    if sent:
        conn.execute(
            "UPDATE daily_reports SET holder = NULL, claimed_until = NULL,"
            " sent_at = ?, queue_id = ?, summary = ? WHERE day = ? AND holder = ?",
            (to_db(now), queue_id, summary, day, holder),
        )
    else:
        conn.execute(
            "UPDATE daily_reports SET holder = NULL, claimed_until = NULL"
            " WHERE day = ? AND holder = ?",
            (day, holder),
        )


def daily_report(conn: sqlite3.Connection, day: str) -> DailyReport | None:
    row = conn.execute(
        "SELECT day, sent_at, queue_id, summary FROM daily_reports"
        " WHERE day = ? AND sent_at IS NOT NULL",
        (day,),
    ).fetchone()
    if row is None:
        return None
    return DailyReport(
        day=row["day"],
        sent_at=from_db_or_none(row["sent_at"]),
        queue_id=row["queue_id"],
        summary=row["summary"],
    )
