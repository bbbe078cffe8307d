"""The SQLite store's suppression-list upkeep and its kept inbound reports.

Plain functions of a connection, like those of `postroom.queue.sqlite_sql`:
each runs inside a transaction that `postroom.queue.sqlite` opened.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from postroom.errors import NotFound, StorageError
from postroom.queue.models import (
    InboundReport,
    NewInboundReport,
    Recipient,
    Suppression,
)
from postroom.queue.sqlite_schema import address_key, from_db, to_db
from postroom.queue.sqlite_sql import recipient_from_row, where_clause

# -- suppression lists ----------------------------------------------------


def suppressions(
    conn: sqlite3.Connection, scope: str | None, limit: int | None
) -> list[Suppression]:
    where, params = where_clause(("scope = ?", scope))
    rows = conn.execute(
        "SELECT scope, address, reason, created_at FROM suppressions"  # noqa: S608 -- only "?" placeholders are interpolated
        f" {where} ORDER BY scope, address LIMIT ?",
        (*params, -1 if limit is None else limit),
    )
    return [
        Suppression(
            row["scope"], row["address"], row["reason"], from_db(row["created_at"])
        )
        for row in rows
    ]


def unsuppress(conn: sqlite3.Connection, scope: str, address: str) -> bool:
    cursor = conn.execute(
        "DELETE FROM suppressions WHERE scope = ? AND address = ?",
        (scope, address_key(address)),
    )
    return cursor.rowcount == 1


def suppress_many(conn: sqlite3.Connection, entries: list[Suppression]) -> int:
    added = 0
    for entry in entries:
        cursor = conn.execute(
            "INSERT OR IGNORE INTO suppressions (scope, address, reason,"
            " created_at) VALUES (?, ?, ?, ?)",
            (
                entry.scope,
                address_key(entry.address),
                entry.reason,
                to_db(entry.created_at),
            ),
        )
        added += cursor.rowcount
    return added


# -- inbound reports ------------------------------------------------------


def add_inbound(
    conn: sqlite3.Connection, report: NewInboundReport, now: datetime
) -> int:
    cursor = conn.execute(
        "INSERT INTO inbound_reports (received_at, peer, mail_from, rcpts, size,"
        " raw) VALUES (?, ?, ?, ?, ?, ?)",
        (
            to_db(now),
            report.peer,
            report.mail_from,
            "\n".join(report.rcpts),
            len(report.raw),
            report.raw,
        ),
    )
    if cursor.lastrowid is None:
        raise StorageError("the database did not report the new row's id")
    return cursor.lastrowid


def settle_inbound(
    conn: sqlite3.Connection,
    report_id: int,
    kind: str | None,
    outcome: str,
    recipient_id: int | None,
    detail: str,
) -> None:
    cursor = conn.execute(
        "UPDATE inbound_reports SET kind = ?, outcome = ?, detail = ?,"
        " recipient_id = (SELECT id FROM recipients WHERE id = ?) WHERE id = ?",
        (kind, outcome, detail, recipient_id, report_id),
    )
    if cursor.rowcount != 1:
        raise NotFound(f"inbound report {report_id}")


def mark_complaint(conn: sqlite3.Connection, recipient_id: int, now: datetime) -> bool:
    cursor = conn.execute(
        "UPDATE recipients SET complained_at = ?"
        " WHERE id = ? AND complained_at IS NULL",
        (to_db(now), recipient_id),
    )
    return cursor.rowcount == 1


def inbound_reports(
    conn: sqlite3.Connection,
    outcome: str | None,
    limit: int,
    report_id: int | None,
    newest_first: bool,
) -> list[InboundReport]:
    # A message sent to several of our addresses has their outcomes joined
    # by commas ("forwarded,bounced"): the filter matches any one of them.
    where, params = where_clause(
        ("instr(',' || outcome || ',', ',' || ? || ',') > 0", outcome),
        ("id = ?", report_id),
    )
    order = "id DESC" if newest_first else "id"
    rows = conn.execute(
        "SELECT id, received_at, peer, mail_from, rcpts, size, kind, outcome,"  # noqa: S608 -- only "?" placeholders and a fixed order are interpolated
        f" recipient_id, detail FROM inbound_reports {where} ORDER BY {order}"
        " LIMIT ?",
        (*params, limit),
    )
    return [
        InboundReport(
            id=row["id"],
            received_at=from_db(row["received_at"]),
            peer=row["peer"],
            mail_from=row["mail_from"],
            rcpts=tuple(row["rcpts"].split("\n")) if row["rcpts"] else (),
            size=row["size"],
            kind=row["kind"],
            outcome=row["outcome"],
            recipient_id=row["recipient_id"],
            detail=row["detail"],
        )
        for row in rows
    ]


def load_inbound_raw(conn: sqlite3.Connection, report_id: int) -> bytes:
    row = conn.execute(
        "SELECT raw FROM inbound_reports WHERE id = ?", (report_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"inbound report {report_id}")
    return bytes(row["raw"])


def find_by_message_id(conn: sqlite3.Connection, message_id: str) -> list[Recipient]:
    rows = conn.execute(
        "SELECT r.* FROM recipients r JOIN messages m ON m.queue_id = r.queue_id"
        " WHERE m.message_id = ? ORDER BY r.id",
        (message_id,),
    )
    return [recipient_from_row(row) for row in rows]
