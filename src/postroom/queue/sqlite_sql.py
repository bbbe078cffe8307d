"""The SQLite store's statements, as plain functions of a connection.

Each function runs inside a transaction that `postroom.queue.sqlite` opened
and commits; none of them commits or sleeps. Writers take the connection of
the writer thread, readers the connection of the reader thread.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from postroom.errors import NotFound, StorageError
from postroom.queue.models import (
    Accepted,
    Attempt,
    AttemptResult,
    BounceRecord,
    Delivery,
    Message,
    NewMessage,
    Outcome,
    Recipient,
    State,
)
from postroom.queue.sqlite_results import add_events
from postroom.queue.sqlite_schema import (
    address_key,
    from_db,
    from_db_or_none,
    to_db,
)
from postroom.queue.store import GLOBAL_SCOPE, PurgeCounts


def new_queue_id(now: datetime) -> str:
    """A short, URL-safe id that sorts by acceptance time to the second."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"


# -- accepting ------------------------------------------------------------


def accept(conn: sqlite3.Connection, message: NewMessage, now: datetime) -> Accepted:
    at = to_db(now)
    queue_id = _insert_message(conn, message, now)

    ids: list[int] = []
    suppressed: list[str] = []
    for rcpt in message.recipients:
        blocked = is_suppressed(conn, message.campaign, rcpt.address)
        cursor = conn.execute(
            "INSERT INTO recipients (queue_id, address, display_name, campaign,"
            " state, accepted_at, next_attempt_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                queue_id,
                rcpt.address,
                rcpt.display_name,
                message.campaign,
                State.SUPPRESSED if blocked else State.QUEUED,
                at,
                None if blocked else at,
                at,
            ),
        )
        ids.append(_rowid(cursor))
        if blocked:
            suppressed.append(rcpt.address)

    if len(suppressed) == len(message.recipients):
        conn.execute(
            "UPDATE messages SET final_at = ? WHERE queue_id = ?", (at, queue_id)
        )
    return Accepted(queue_id, tuple(ids), tuple(suppressed))


def _insert_message(
    conn: sqlite3.Connection, message: NewMessage, now: datetime
) -> str:
    for _ in range(8):
        queue_id = new_queue_id(now)
        taken = conn.execute(
            "SELECT 1 FROM messages WHERE queue_id = ?", (queue_id,)
        ).fetchone()
        if taken is None:
            break
    else:
        raise StorageError("could not draw an unused queue id")
    conn.execute(
        "INSERT INTO messages (queue_id, mail_from, campaign, submitted_by,"
        " client_address, message_id, accepted_at, size, raw)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            queue_id,
            message.mail_from,
            message.campaign,
            message.submitted_by,
            message.client_address,
            message.message_id,
            to_db(now),
            len(message.raw),
            message.raw,
        ),
    )
    return queue_id


def _rowid(cursor: sqlite3.Cursor) -> int:
    rowid = cursor.lastrowid
    if rowid is None:
        raise StorageError("the database did not report the new row's id")
    return rowid


# -- delivering -----------------------------------------------------------


def lease_due(
    conn: sqlite3.Connection, now: datetime, limit: int, lease: timedelta
) -> list[Delivery]:
    at = to_db(now)
    lease_until = now + lease
    deliveries: list[Delivery] = []
    # INDEXED BY: without statistics SQLite prefers the plain state index
    # and sorts every waiting row; the due index is ordered already.
    while len(deliveries) < limit:
        rows = conn.execute(
            "SELECT r.*, m.mail_from, EXISTS (SELECT 1 FROM suppressions s"
            "  WHERE s.scope IN (r.campaign, ?)"
            "  AND s.address = address_key(r.address)) AS blocked"
            " FROM recipients r INDEXED BY recipients_due"
            " JOIN messages m ON m.queue_id = r.queue_id"
            " WHERE r.state IN ('queued', 'deferred') AND r.next_attempt_at <= ?"
            " AND (r.lease_until IS NULL OR r.lease_until <= ?)"
            " ORDER BY r.next_attempt_at LIMIT ?",
            (GLOBAL_SCOPE, at, at, limit - len(deliveries)),
        ).fetchall()
        if not rows:
            break
        for row in rows:
            if row["blocked"]:
                _suppress_recipient(conn, row["id"], row["queue_id"], at)
                continue
            conn.execute(
                "UPDATE recipients SET lease_until = ? WHERE id = ?",
                (to_db(lease_until), row["id"]),
            )
            deliveries.append(
                Delivery(recipient_from_row(row), row["mail_from"], lease_until)
            )
    return deliveries


def _suppress_recipient(
    conn: sqlite3.Connection, recipient_id: int, queue_id: str, at: int
) -> None:
    conn.execute(
        "UPDATE recipients SET state = ?, next_attempt_at = NULL,"
        " lease_until = NULL, updated_at = ? WHERE id = ?",
        (State.SUPPRESSED, at, recipient_id),
    )
    _settle_message(conn, queue_id, at)


def _settle_message(conn: sqlite3.Connection, queue_id: str, at: int) -> None:
    """Mark a message final once none of its recipients waits any more."""
    conn.execute(
        "UPDATE messages SET final_at = CASE WHEN EXISTS (SELECT 1 FROM"
        " recipients WHERE queue_id = :q AND state IN ('queued', 'deferred'))"
        " THEN NULL ELSE COALESCE(final_at, :at) END WHERE queue_id = :q",
        {"q": queue_id, "at": at},
    )


def record(conn: sqlite3.Connection, result: AttemptResult) -> None:
    attempt = result.attempt
    row = conn.execute(
        "SELECT queue_id FROM recipients WHERE id = ?", (attempt.recipient_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"recipient {attempt.recipient_id}")
    next_attempt_at = None if result.state.is_final else result.next_attempt_at
    if not result.state.is_final and next_attempt_at is None:
        raise ValueError(f"a {result.state} recipient needs next_attempt_at")

    at = to_db(attempt.at)
    conn.execute(
        "INSERT INTO attempts (recipient_id, at, outcome, mx_host, code, status,"
        " text) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            attempt.recipient_id,
            at,
            attempt.outcome,
            attempt.mx_host,
            attempt.code,
            attempt.status,
            attempt.text,
        ),
    )
    conn.execute(
        "UPDATE recipients SET state = ?, attempts = attempts + 1,"
        " next_attempt_at = ?, last_code = ?, last_status = ?, last_reply = ?,"
        " updated_at = ?, lease_until = NULL WHERE id = ?",
        (
            result.state,
            None if next_attempt_at is None else to_db(next_attempt_at),
            attempt.code,
            attempt.status,
            attempt.text,
            at,
            attempt.recipient_id,
        ),
    )
    if result.bounce is not None:
        insert_bounce(conn, result.bounce)
    if result.events:
        add_events(conn, result.events)
    _settle_message(conn, row["queue_id"], at)


def insert_bounce(conn: sqlite3.Connection, bounce: BounceRecord) -> int | None:
    """Keep a bounce record; the recipient id it names, if that still exists."""
    recipient_id = bounce.recipient_id
    if recipient_id is not None:
        known = conn.execute(
            "SELECT 1 FROM recipients WHERE id = ?", (recipient_id,)
        ).fetchone()
        recipient_id = recipient_id if known else None
    conn.execute(
        "INSERT INTO bounce_records (recipient_id, address, campaign, at, action,"
        " code, status, category, hard, diagnostic, remote_mta, source)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            recipient_id,
            bounce.address,
            bounce.campaign,
            to_db(bounce.at),
            bounce.action,
            bounce.code,
            bounce.status,
            bounce.category,
            bounce.hard,
            bounce.diagnostic,
            bounce.remote_mta,
            bounce.source,
        ),
    )
    return recipient_id


def add_bounce(conn: sqlite3.Connection, bounce: BounceRecord) -> bool:
    if bounce.action == "failed" and bounce.recipient_id is not None:
        # One delivery fails once: a second failure report about the same
        # recipient row repeats the first (a server resending after a lost
        # reply, or a second hop reporting the same failure). The one writer
        # thread runs each job after the last, so the check sees every
        # record kept before it.
        repeated = conn.execute(
            "SELECT 1 FROM bounce_records WHERE recipient_id = ?"
            " AND action = 'failed' LIMIT 1",
            (bounce.recipient_id,),
        ).fetchone()
        if repeated is not None:
            return False
    recipient_id = insert_bounce(conn, bounce)
    if recipient_id is None or bounce.action != "failed":
        return True
    # A server that accepted the message may report failure afterwards
    # (RFC 3464 section 2.3.3, Action: failed): the delivery did not happen.
    conn.execute(
        "UPDATE recipients SET state = ?, last_code = ?, last_status = ?,"
        " last_reply = ?, updated_at = ? WHERE id = ? AND state = ?",
        (
            State.BOUNCED,
            bounce.code,
            bounce.status,
            bounce.diagnostic,
            to_db(bounce.at),
            recipient_id,
            State.DELIVERED,
        ),
    )
    return True


def next_due_at(conn: sqlite3.Connection) -> datetime | None:
    # A leased recipient is due again only when its lease runs out, so the
    # answer is the earliest of the free rows' due times and the leases.
    # ORDER BY ... LIMIT 1 lets SQLite stop at the first index entry.
    free = conn.execute(
        "SELECT next_attempt_at FROM recipients INDEXED BY recipients_due"
        " WHERE state IN ('queued', 'deferred') AND next_attempt_at IS NOT NULL"
        " AND (lease_until IS NULL OR lease_until <= next_attempt_at)"
        " ORDER BY next_attempt_at LIMIT 1"
    ).fetchone()
    leased = conn.execute(
        "SELECT lease_until FROM recipients INDEXED BY recipients_leased"
        " WHERE lease_until IS NOT NULL"
        " AND state IN ('queued', 'deferred') ORDER BY lease_until LIMIT 1"
    ).fetchone()
    times = [row[0] for row in (free, leased) if row is not None]
    return from_db(min(times)) if times else None


def release_leases(conn: sqlite3.Connection) -> int:
    return conn.execute(
        "UPDATE recipients SET lease_until = NULL WHERE lease_until IS NOT NULL"
    ).rowcount


def load_raw(conn: sqlite3.Connection, queue_id: str) -> bytes:
    row = conn.execute(
        "SELECT raw FROM messages WHERE queue_id = ?", (queue_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"message {queue_id}")
    if row["raw"] is None:
        raise NotFound(f"the body of message {queue_id} has been purged")
    return bytes(row["raw"])


# -- suppression ----------------------------------------------------------


def is_suppressed(conn: sqlite3.Connection, campaign: str, address: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM suppressions WHERE scope IN (?, ?) AND address = ? LIMIT 1",
        (campaign, GLOBAL_SCOPE, address_key(address)),
    ).fetchone()
    return row is not None


def suppress(
    conn: sqlite3.Connection, scope: str, address: str, reason: str, now: datetime
) -> bool:
    cursor = conn.execute(
        "INSERT OR IGNORE INTO suppressions (scope, address, reason, created_at)"
        " VALUES (?, ?, ?, ?)",
        (scope, address_key(address), reason, to_db(now)),
    )
    return cursor.rowcount == 1


# -- inspecting and repairing ---------------------------------------------


def recipient_from_row(row: sqlite3.Row) -> Recipient:
    return Recipient(
        id=row["id"],
        queue_id=row["queue_id"],
        address=row["address"],
        display_name=row["display_name"],
        campaign=row["campaign"],
        state=State(row["state"]),
        attempts=row["attempts"],
        accepted_at=from_db(row["accepted_at"]),
        next_attempt_at=from_db_or_none(row["next_attempt_at"]),
        updated_at=from_db(row["updated_at"]),
        last_code=row["last_code"],
        last_status=row["last_status"],
        last_reply=row["last_reply"],
    )


def get_message(conn: sqlite3.Connection, queue_id: str) -> Message:
    row = conn.execute(
        "SELECT queue_id, mail_from, campaign, submitted_by, client_address,"
        " message_id, accepted_at, size, raw IS NULL AS purged"
        " FROM messages WHERE queue_id = ?",
        (queue_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"message {queue_id}")
    return Message(
        queue_id=row["queue_id"],
        mail_from=row["mail_from"],
        campaign=row["campaign"],
        submitted_by=row["submitted_by"],
        client_address=row["client_address"],
        message_id=row["message_id"],
        accepted_at=from_db(row["accepted_at"]),
        size=row["size"],
        body_purged=bool(row["purged"]),
    )


def get_recipient(conn: sqlite3.Connection, recipient_id: int) -> Recipient:
    row = conn.execute(
        "SELECT * FROM recipients WHERE id = ?", (recipient_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"recipient {recipient_id}")
    return recipient_from_row(row)


def recipients(
    conn: sqlite3.Connection,
    queue_id: str | None,
    state: State | None,
    campaign: str | None,
    limit: int,
) -> list[Recipient]:
    where, params = where_clause(
        ("queue_id = ?", queue_id), ("state = ?", state), ("campaign = ?", campaign)
    )
    query = f"SELECT * FROM recipients {where} ORDER BY id LIMIT ?"  # noqa: S608 -- only "?" placeholders are interpolated
    rows = conn.execute(query, (*params, limit)).fetchall()
    return [recipient_from_row(row) for row in rows]


def attempts(conn: sqlite3.Connection, recipient_id: int) -> list[Attempt]:
    rows = conn.execute(
        "SELECT * FROM attempts WHERE recipient_id = ? ORDER BY at, id",
        (recipient_id,),
    ).fetchall()
    return [
        Attempt(
            recipient_id=row["recipient_id"],
            at=from_db(row["at"]),
            outcome=Outcome(row["outcome"]),
            mx_host=row["mx_host"],
            code=row["code"],
            status=row["status"],
            text=row["text"],
        )
        for row in rows
    ]


def retry_now(conn: sqlite3.Connection, queue_id: str | None, now: datetime) -> int:
    where, params = where_clause(
        ("state = ?", State.DEFERRED), ("queue_id = ?", queue_id)
    )
    at = to_db(now)
    # A suppressed recipient is made due as well, so that it leaves the
    # queue at once; it is dropped, not attempted, and so not counted. The
    # count and the update are one writer job, so nothing comes between.
    (attempted,) = conn.execute(
        f"SELECT COUNT(*) FROM recipients {where}"  # noqa: S608 -- only "?" placeholders are interpolated
        " AND NOT EXISTS (SELECT 1 FROM suppressions s"
        "  WHERE s.scope IN (recipients.campaign, ?)"
        "  AND s.address = address_key(recipients.address))",
        (*params, GLOBAL_SCOPE),
    ).fetchone()
    conn.execute(
        f"UPDATE recipients SET next_attempt_at = ?, updated_at = ? {where}",  # noqa: S608 -- only "?" placeholders are interpolated
        (at, at, *params),
    )
    return int(attempted)


def delete(conn: sqlite3.Connection, queue_id: str) -> int:
    waiting = (State.QUEUED, State.DEFERRED)
    # Attempts go with their recipients (ON DELETE CASCADE). Recipients that
    # already reached a final state stay, with their attempts and bounce
    # records, so statistics and exports still count them.
    removed: int = conn.execute(
        "DELETE FROM recipients WHERE queue_id = ? AND state IN (?, ?)",
        (queue_id, *waiting),
    ).rowcount
    left = conn.execute(
        "SELECT COUNT(*), MAX(updated_at) FROM recipients WHERE queue_id = ?",
        (queue_id,),
    ).fetchone()
    if left[0] == 0:
        conn.execute("DELETE FROM messages WHERE queue_id = ?", (queue_id,))
    elif removed:
        conn.execute(
            "UPDATE messages SET final_at = COALESCE(final_at, ?) WHERE queue_id = ?",
            (left[1], queue_id),
        )
    return removed


# -- housekeeping ---------------------------------------------------------


def purge_step(
    conn: sqlite3.Connection,
    now: datetime,
    keep_bodies: timedelta,
    keep_records: timedelta,
    batch: int,
) -> PurgeCounts:
    """Purge at most ``batch`` rows of each kind; all zero once done."""
    bodies_cut = to_db(now - keep_bodies)
    records_cut = to_db(now - keep_records)
    bodies = conn.execute(
        "UPDATE messages SET raw = NULL WHERE queue_id IN (SELECT queue_id"
        " FROM messages WHERE final_at <= ? AND raw IS NOT NULL LIMIT ?)",
        (bodies_cut, batch),
    ).rowcount

    # The messages to delete go through a temporary table so that every
    # statement below names the same ones.
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS doomed (queue_id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM temp.doomed")
    conn.execute(
        "INSERT INTO temp.doomed SELECT queue_id FROM messages"
        " WHERE final_at <= ? LIMIT ?",
        (records_cut, batch),
    )
    attempts = conn.execute(
        "DELETE FROM attempts WHERE recipient_id IN (SELECT id FROM recipients"
        " WHERE queue_id IN (SELECT queue_id FROM temp.doomed))"
    ).rowcount
    bounces = conn.execute(
        "DELETE FROM bounce_records WHERE recipient_id IN (SELECT id FROM"
        " recipients WHERE queue_id IN (SELECT queue_id FROM temp.doomed))"
    ).rowcount
    conn.execute(
        "DELETE FROM recipients WHERE queue_id IN (SELECT queue_id FROM temp.doomed)"
    )
    messages = conn.execute(
        "DELETE FROM messages WHERE queue_id IN (SELECT queue_id FROM temp.doomed)"
    ).rowcount

    attempts += conn.execute(
        "DELETE FROM attempts WHERE id IN (SELECT id FROM attempts"
        " WHERE at <= ? LIMIT ?)",
        (records_cut, batch),
    ).rowcount
    bounces += conn.execute(
        "DELETE FROM bounce_records WHERE id IN (SELECT id FROM bounce_records"
        " WHERE at <= ? LIMIT ?)",
        (records_cut, batch),
    ).rowcount
    # Kept inbound reports count with the bounce records they produced.
    bounces += conn.execute(
        "DELETE FROM inbound_reports WHERE id IN (SELECT id FROM inbound_reports"
        " WHERE received_at <= ? LIMIT ?)",
        (records_cut, batch),
    ).rowcount
    return PurgeCounts(bodies, messages, attempts, bounces)


def get_secret(conn: sqlite3.Connection, name: str) -> bytes | None:
    row = conn.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
    return None if row is None else bytes(row[0])


def create_secret(conn: sqlite3.Connection, name: str) -> bytes:
    """The named secret, drawn now (32 random bytes) unless it exists."""
    conn.execute(
        "INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)",
        (name, secrets.token_bytes(32)),
    )
    value = get_secret(conn, name)
    if value is None:
        raise StorageError(f"secret {name!r} vanished while being created")
    return value


# -- helpers --------------------------------------------------------------


def where_clause(*terms: tuple[str, Any]) -> tuple[str, Sequence[Any]]:
    """A WHERE clause joining the terms whose value is given."""
    given = [(sql, value) for sql, value in terms if value is not None]
    if not given:
        return "", ()
    return "WHERE " + " AND ".join(sql for sql, _ in given), [v for _, v in given]


def db_or_none(moment: datetime | None) -> int | None:
    return None if moment is None else to_db(moment)
