"""The SQLite store's reports: statistics and the bounce and deferral exports.

Plain functions of a connection, run in one read transaction each.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from postroom.queue.models import ExportRow, Outcome, State, Stats
from postroom.queue.sqlite_results import counts_by_state
from postroom.queue.sqlite_schema import from_db
from postroom.queue.sqlite_sql import db_or_none, where_clause

# Reasons that mean the recipient asked not to be mailed (RFC 8058 one-click,
# a mailto unsubscribe, or an RFC 5965 abuse report).
_OPT_OUT_REASONS = ("unsubscribe", "complaint")


def stats(conn: sqlite3.Connection, campaign: str | None) -> Stats:
    by_state = dict.fromkeys((str(state) for state in State), 0)
    # Kept by triggers: a million-recipient campaign is counted in microseconds.
    by_state.update(counts_by_state(conn, campaign))

    where, params = where_clause(("scope = ?", campaign))
    query = f"SELECT reason, COUNT(*) AS n FROM suppressions {where} GROUP BY reason"  # noqa: S608 -- only "?" placeholders are interpolated
    by_reason = {row["reason"]: row["n"] for row in conn.execute(query, params)}
    unsubscribed = sum(by_reason.get(reason, 0) for reason in _OPT_OUT_REASONS)

    return Stats(
        sent_ok=by_state[State.DELIVERED],
        bounced=by_state[State.BOUNCED] + by_state[State.EXPIRED],
        invalid=by_state[State.INVALID],
        deferred=by_state[State.DEFERRED],
        queued=by_state[State.QUEUED],
        suppressed=by_state[State.SUPPRESSED],
        unsubscribed=unsubscribed,
        complaints=by_reason.get("complaint", 0),
        by_state=by_state,
    )


def campaigns(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT DISTINCT campaign FROM messages ORDER BY campaign")
    return [row[0] for row in rows]


def export_bounces(
    conn: sqlite3.Connection,
    campaign: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[ExportRow]:
    where, params = where_clause(
        ("COALESCE(b.campaign, r.campaign) = ?", campaign),
        ("b.at >= ?", db_or_none(since)),
        ("b.at < ?", db_or_none(until)),
    )
    rows = conn.execute(
        "SELECT b.address, COALESCE(r.display_name, '') AS display_name,"  # noqa: S608 -- only "?" placeholders are interpolated
        " COALESCE(b.campaign, r.campaign, '') AS campaign, b.code, b.status,"
        " b.at, b.diagnostic AS text"
        " FROM bounce_records b LEFT JOIN recipients r ON r.id = b.recipient_id"
        f" {where} ORDER BY b.at, b.id",
        params,
    ).fetchall()
    return [_export_row(row) for row in rows]


def export_deferrals(
    conn: sqlite3.Connection,
    campaign: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[ExportRow]:
    where, params = where_clause(
        ("a.outcome = ?", Outcome.DEFERRED),
        ("r.campaign = ?", campaign),
        ("a.at >= ?", db_or_none(since)),
        ("a.at < ?", db_or_none(until)),
    )
    rows = conn.execute(
        "SELECT r.address, r.display_name, r.campaign, a.code, a.status, a.at,"  # noqa: S608 -- only "?" placeholders are interpolated
        " a.text FROM attempts a JOIN recipients r ON r.id = a.recipient_id"
        f" {where} ORDER BY a.at, a.id",
        params,
    ).fetchall()
    return [_export_row(row) for row in rows]


def _export_row(row: sqlite3.Row) -> ExportRow:
    return ExportRow(
        address=row["address"],
        display_name=row["display_name"],
        campaign=row["campaign"],
        code=row["code"],
        status=row["status"],
        at=from_db(row["at"]),
        text=row["text"],
    )
