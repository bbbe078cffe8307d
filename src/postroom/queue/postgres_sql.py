"""The PostgreSQL store's queue statements, as functions of a connection.

Each function runs inside a transaction that `postroom.queue.postgres`
opened and commits; none of them commits. Unlike SQLite, many nodes write
at once, so every read-then-write here either locks the rows it reads
(``FOR UPDATE``, ``SKIP LOCKED`` where another node may simply take other
rows) or is a single statement.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

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
from postroom.queue.postgres_results import add_events
from postroom.queue.sqlite_schema import address_key
from postroom.queue.sqlite_sql import new_queue_id
from postroom.queue.store import GLOBAL_SCOPE, PurgeCounts

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    # A connection of its own (the migrate command) or one borrowed from
    # the store's pool.
    Conn: TypeAlias = (
        asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
    )

# -- accepting ------------------------------------------------------------


async def accept(conn: Conn, message: NewMessage, now: datetime) -> Accepted:
    queue_id = await _insert_message(conn, message, now)

    # One statement for every recipient; ORDER BY n makes the ids follow
    # the order of the envelope, so sorting the ids restores it.
    rows = await conn.fetch(
        "INSERT INTO recipients (queue_id, address, address_key, display_name,"
        " campaign, state, accepted_at, next_attempt_at, updated_at)"
        " SELECT $1, a.address, a.key, a.name, $2,"
        "  CASE WHEN s.blocked THEN 'suppressed' ELSE 'queued' END, $3,"
        "  CASE WHEN s.blocked THEN NULL ELSE $3::timestamptz END, $3"
        " FROM unnest($4::text[], $5::text[], $6::text[]) WITH ORDINALITY"
        "  AS a(address, name, key, n)"
        " CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM suppressions"
        "  WHERE scope IN ($2, $7) AND address = a.key) AS blocked) s"
        " ORDER BY a.n RETURNING id, address, state",
        queue_id,
        message.campaign,
        now,
        [r.address for r in message.recipients],
        [r.display_name for r in message.recipients],
        [address_key(r.address) for r in message.recipients],
        GLOBAL_SCOPE,
    )
    rows = sorted(rows, key=lambda row: row["id"])
    suppressed = [row["address"] for row in rows if row["state"] == State.SUPPRESSED]

    if len(suppressed) == len(message.recipients):
        await conn.execute(
            "UPDATE messages SET final_at = $1 WHERE queue_id = $2", now, queue_id
        )
    return Accepted(queue_id, tuple(row["id"] for row in rows), tuple(suppressed))


async def _insert_message(conn: Conn, message: NewMessage, now: datetime) -> str:
    for _ in range(8):
        queue_id = new_queue_id(now)
        inserted = await conn.fetchval(
            "INSERT INTO messages (queue_id, mail_from, campaign, submitted_by,"
            " client_address, message_id, accepted_at, size, raw)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " ON CONFLICT (queue_id) DO NOTHING RETURNING queue_id",
            queue_id,
            message.mail_from,
            message.campaign,
            message.submitted_by,
            message.client_address,
            message.message_id,
            now,
            len(message.raw),
            message.raw,
        )
        if inserted is not None:
            return queue_id
    raise StorageError("could not draw an unused queue id")


# -- delivering -----------------------------------------------------------


async def lease_due(
    conn: Conn, now: datetime, limit: int, lease: timedelta, holder: str
) -> list[Delivery]:
    """Lease up to ``limit`` due recipients to ``holder``.

    SKIP LOCKED: rows another node is leasing at this moment are passed
    over rather than waited for, so nodes never queue behind each other
    and never take the same row.
    """
    lease_until = now + lease
    rows = await conn.fetch(
        "SELECT r.*, m.mail_from, EXISTS (SELECT 1 FROM suppressions s"
        "  WHERE s.scope IN (r.campaign, $1) AND s.address = r.address_key)"
        "  AS blocked"
        " FROM recipients r JOIN messages m ON m.queue_id = r.queue_id"
        " WHERE r.state IN ('queued', 'deferred') AND r.next_attempt_at <= $2"
        " AND (r.lease_until IS NULL OR r.lease_until <= $2)"
        " ORDER BY r.next_attempt_at, r.id LIMIT $3"
        " FOR UPDATE OF r SKIP LOCKED",
        GLOBAL_SCOPE,
        now,
        limit,
    )
    taken = [row for row in rows if not row["blocked"]]
    for row in rows:
        if row["blocked"]:
            await _suppress_recipient(conn, row["id"], row["queue_id"], now)
    if taken:
        await conn.execute(
            "UPDATE recipients SET lease_until = $1, lease_holder = $2"
            " WHERE id = ANY($3::bigint[])",
            lease_until,
            holder,
            [row["id"] for row in taken],
        )
    return [
        Delivery(recipient_from_row(row), row["mail_from"], lease_until)
        for row in taken
    ]


async def _suppress_recipient(
    conn: Conn, recipient_id: int, queue_id: str, at: datetime
) -> None:
    await conn.execute(
        "UPDATE recipients SET state = $1, next_attempt_at = NULL,"
        " lease_until = NULL, lease_holder = NULL, updated_at = $2 WHERE id = $3",
        State.SUPPRESSED.value,
        at,
        recipient_id,
    )
    await settle_message(conn, queue_id, at)


async def settle_message(conn: Conn, queue_id: str, at: datetime) -> None:
    """Mark a message final once none of its recipients waits any more."""
    await conn.execute(
        "UPDATE messages SET final_at = CASE WHEN EXISTS (SELECT 1 FROM"
        " recipients WHERE queue_id = $1 AND state IN ('queued', 'deferred'))"
        " THEN NULL ELSE COALESCE(final_at, $2) END WHERE queue_id = $1",
        queue_id,
        at,
    )


async def record(
    conn: Conn, result: AttemptResult, holder: str, lease_until: datetime | None
) -> bool:
    """Write ``result`` if ``holder`` still holds the recipient's lease.

    ``lease_until`` is the lease ``holder`` took; None when it took none,
    and then the attempt counts only while no other node's lease is
    running. False, with nothing written, when the lease was lost.
    """
    attempt = result.attempt
    row = await conn.fetchrow(
        "SELECT queue_id, lease_holder, lease_until FROM recipients"
        " WHERE id = $1 FOR UPDATE",
        attempt.recipient_id,
    )
    if row is None:
        raise NotFound(f"recipient {attempt.recipient_id}")
    next_attempt_at = None if result.state.is_final else result.next_attempt_at
    if not result.state.is_final and next_attempt_at is None:
        raise ValueError(f"a {result.state} recipient needs next_attempt_at")
    if not _holds(row, holder, lease_until, attempt.at):
        return False

    await conn.execute(
        "INSERT INTO attempts (recipient_id, at, outcome, mx_host, code, status,"
        " text) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        attempt.recipient_id,
        attempt.at,
        attempt.outcome.value,
        attempt.mx_host,
        attempt.code,
        attempt.status,
        attempt.text,
    )
    await conn.execute(
        "UPDATE recipients SET state = $1, attempts = attempts + 1,"
        " next_attempt_at = $2, last_code = $3, last_status = $4,"
        " last_reply = $5, updated_at = $6, lease_until = NULL,"
        " lease_holder = NULL WHERE id = $7",
        result.state.value,
        next_attempt_at,
        attempt.code,
        attempt.status,
        attempt.text,
        attempt.at,
        attempt.recipient_id,
    )
    if result.bounce is not None:
        await insert_bounce(conn, result.bounce)
    await add_events(conn, result.events)
    await settle_message(conn, row["queue_id"], attempt.at)
    return True


def _holds(
    row: asyncpg.Record, holder: str, lease_until: datetime | None, at: datetime
) -> bool:
    if lease_until is not None:
        # The very lease this node took: a later lease of its own (after
        # this one ran out) or another node's has replaced it otherwise.
        return bool(row["lease_holder"] == holder and row["lease_until"] == lease_until)
    return row["lease_until"] is None or row["lease_until"] <= at


async def insert_bounce(conn: Conn, bounce: BounceRecord) -> int | None:
    """Keep a bounce record; the recipient id it names, if that still exists."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "INSERT INTO bounce_records (recipient_id, address, campaign, at, action,"
        " code, status, category, hard, diagnostic, remote_mta, source)"
        " VALUES ((SELECT id FROM recipients WHERE id = $1), $2, $3, $4, $5, $6,"
        " $7, $8, $9, $10, $11, $12) RETURNING recipient_id",
        bounce.recipient_id,
        bounce.address,
        bounce.campaign,
        bounce.at,
        bounce.action,
        bounce.code,
        bounce.status,
        bounce.category,
        bounce.hard,
        bounce.diagnostic,
        bounce.remote_mta,
        bounce.source,
    )


async def add_bounce(conn: Conn, bounce: BounceRecord) -> bool:
    if bounce.action == "failed" and bounce.recipient_id is not None:
        # One delivery fails once: a second failure report about the same
        # recipient row repeats the first (a server resending after a lost
        # reply, or a second hop reporting the same failure). The row lock
        # makes concurrent reports on any node take turns; under READ
        # COMMITTED (see PostgresStore) the check after it sees what the
        # turn before kept.
        await conn.execute(
            "SELECT 1 FROM recipients WHERE id = $1 FOR UPDATE", bounce.recipient_id
        )
        repeated = await conn.fetchval(
            "SELECT 1 FROM bounce_records WHERE recipient_id = $1"
            " AND action = 'failed' LIMIT 1",
            bounce.recipient_id,
        )
        if repeated is not None:
            return False
    recipient_id = await insert_bounce(conn, bounce)
    if recipient_id is None or bounce.action != "failed":
        return True
    # A server that accepted the message may report failure afterwards
    # (RFC 3464 section 2.3.3, Action: failed): the delivery did not happen.
    await conn.execute(
        "UPDATE recipients SET state = $1, last_code = $2, last_status = $3,"
        " last_reply = $4, updated_at = $5 WHERE id = $6 AND state = $7",
        State.BOUNCED.value,
        bounce.code,
        bounce.status,
        bounce.diagnostic,
        bounce.at,
        recipient_id,
        State.DELIVERED.value,
    )
    return True


async def next_due_at(conn: Conn) -> datetime | None:
    # A leased recipient is due again only when its lease runs out, so the
    # answer is the earliest of the free rows' due times and the leases.
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT least("
        " (SELECT next_attempt_at FROM recipients"
        "  WHERE state IN ('queued', 'deferred') AND next_attempt_at IS NOT NULL"
        "  AND (lease_until IS NULL OR lease_until <= next_attempt_at)"
        "  ORDER BY next_attempt_at LIMIT 1),"
        " (SELECT lease_until FROM recipients WHERE lease_until IS NOT NULL"
        "  AND state IN ('queued', 'deferred') ORDER BY lease_until LIMIT 1))"
    )


async def load_raw(conn: Conn, queue_id: str) -> bytes:
    row = await conn.fetchrow("SELECT raw FROM messages WHERE queue_id = $1", queue_id)
    if row is None:
        raise NotFound(f"message {queue_id}")
    if row["raw"] is None:
        raise NotFound(f"the body of message {queue_id} has been purged")
    return bytes(row["raw"])


# -- suppression ----------------------------------------------------------


async def is_suppressed(conn: Conn, campaign: str, address: str) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM suppressions WHERE scope IN ($1, $2) AND address = $3 LIMIT 1",
        campaign,
        GLOBAL_SCOPE,
        address_key(address),
    )
    return found is not None


async def suppress(
    conn: Conn, scope: str, address: str, reason: str, now: datetime
) -> bool:
    added = await conn.fetchval(
        "INSERT INTO suppressions (scope, address, reason, created_at)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
        scope,
        address_key(address),
        reason,
        now,
    )
    return added is not None


# -- inspecting and repairing ---------------------------------------------


def recipient_from_row(row: asyncpg.Record) -> Recipient:
    return Recipient(
        id=row["id"],
        queue_id=row["queue_id"],
        address=row["address"],
        display_name=row["display_name"],
        campaign=row["campaign"],
        state=State(row["state"]),
        attempts=row["attempts"],
        accepted_at=row["accepted_at"],
        next_attempt_at=row["next_attempt_at"],
        updated_at=row["updated_at"],
        last_code=row["last_code"],
        last_status=row["last_status"],
        last_reply=row["last_reply"],
    )


async def get_message(conn: Conn, queue_id: str) -> Message:
    row = await conn.fetchrow(
        "SELECT queue_id, mail_from, campaign, submitted_by, client_address,"
        " message_id, accepted_at, size, raw IS NULL AS purged"
        " FROM messages WHERE queue_id = $1",
        queue_id,
    )
    if row is None:
        raise NotFound(f"message {queue_id}")
    return Message(
        queue_id=row["queue_id"],
        mail_from=row["mail_from"],
        campaign=row["campaign"],
        submitted_by=row["submitted_by"],
        client_address=row["client_address"],
        message_id=row["message_id"],
        accepted_at=row["accepted_at"],
        size=row["size"],
        body_purged=row["purged"],
    )


async def get_recipient(conn: Conn, recipient_id: int) -> Recipient:
    row = await conn.fetchrow("SELECT * FROM recipients WHERE id = $1", recipient_id)
    if row is None:
        raise NotFound(f"recipient {recipient_id}")
    return recipient_from_row(row)


async def recipients(
    conn: Conn,
    queue_id: str | None,
    state: State | None,
    campaign: str | None,
    limit: int,
) -> list[Recipient]:
    where, params = where_clause(
        ("queue_id", queue_id),
        ("state", None if state is None else state.value),
        ("campaign", campaign),
    )
    rows = await conn.fetch(
        f"SELECT * FROM recipients {where} ORDER BY id LIMIT ${len(params) + 1}",  # noqa: S608 -- only column names and placeholders are interpolated
        *params,
        limit,
    )
    return [recipient_from_row(row) for row in rows]


async def attempts(conn: Conn, recipient_id: int) -> list[Attempt]:
    rows = await conn.fetch(
        "SELECT * FROM attempts WHERE recipient_id = $1 ORDER BY at, id",
        recipient_id,
    )
    return [
        Attempt(
            recipient_id=row["recipient_id"],
            at=row["at"],
            outcome=Outcome(row["outcome"]),
            mx_host=row["mx_host"],
            code=row["code"],
            status=row["status"],
            text=row["text"],
        )
        for row in rows
    ]


async def retry_now(conn: Conn, queue_id: str | None, now: datetime) -> int:
    # A suppressed recipient is made due as well, so that it leaves the
    # queue at once; it is dropped, not attempted, and so not counted.
    attempted: int = await conn.fetchval(
        "WITH due AS (UPDATE recipients SET next_attempt_at = $1, updated_at = $1"
        " WHERE state = 'deferred' AND ($2::text IS NULL OR queue_id = $2)"
        " RETURNING campaign, address_key)"
        " SELECT count(*) FROM due WHERE NOT EXISTS (SELECT 1 FROM suppressions s"
        "  WHERE s.scope IN (due.campaign, $3) AND s.address = due.address_key)",
        now,
        queue_id,
        GLOBAL_SCOPE,
    )
    return attempted


async def delete(conn: Conn, queue_id: str) -> int:
    # Attempts go with their recipients (ON DELETE CASCADE). Recipients that
    # already reached a final state stay, with their attempts and bounce
    # records, so statistics and exports still count them.
    async with conn.transaction():
        removed = _count(
            await conn.execute(
                "DELETE FROM recipients WHERE queue_id = $1"
                " AND state IN ('queued', 'deferred')",
                queue_id,
            )
        )
        left = await conn.fetchrow(
            "SELECT count(*) AS n, max(updated_at) AS last FROM recipients"
            " WHERE queue_id = $1",
            queue_id,
        )
        assert left is not None  # an aggregate always returns one row
        if left["n"] == 0:
            await conn.execute("DELETE FROM messages WHERE queue_id = $1", queue_id)
        elif removed:
            await conn.execute(
                "UPDATE messages SET final_at = COALESCE(final_at, $2)"
                " WHERE queue_id = $1",
                queue_id,
                left["last"],
            )
    return removed


# -- housekeeping ---------------------------------------------------------


async def purge_step(
    conn: Conn,
    now: datetime,
    keep_bodies: timedelta,
    keep_records: timedelta,
    batch: int,
) -> PurgeCounts:
    """Purge at most ``batch`` rows of each kind; all zero once done."""
    bodies_cut, records_cut = now - keep_bodies, now - keep_records
    bodies = _count(
        await conn.execute(
            "UPDATE messages SET raw = NULL WHERE queue_id IN (SELECT queue_id"
            " FROM messages WHERE final_at <= $1 AND raw IS NOT NULL LIMIT $2)",
            bodies_cut,
            batch,
        )
    )
    doomed: list[str] = [
        row["queue_id"]
        for row in await conn.fetch(
            "SELECT queue_id FROM messages WHERE final_at <= $1 LIMIT $2",
            records_cut,
            batch,
        )
    ]
    doomed_recipients = "SELECT id FROM recipients WHERE queue_id = ANY($1::text[])"
    attempts = _count(
        await conn.execute(
            f"DELETE FROM attempts WHERE recipient_id IN ({doomed_recipients})",  # noqa: S608 -- a constant subquery
            doomed,
        )
    )
    bounces = _count(
        await conn.execute(
            f"DELETE FROM bounce_records WHERE recipient_id IN ({doomed_recipients})",  # noqa: S608 -- a constant subquery
            doomed,
        )
    )
    messages = _count(
        await conn.execute(
            "DELETE FROM messages WHERE queue_id = ANY($1::text[])", doomed
        )
    )

    for table, column in (
        ("attempts", "at"),
        ("bounce_records", "at"),
        # Kept inbound reports count with the bounce records they produced.
        ("inbound_reports", "received_at"),
    ):
        removed = _count(
            await conn.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table}"  # noqa: S608 -- table and column names are constants
                f" WHERE {column} <= $1 LIMIT $2)",
                records_cut,
                batch,
            )
        )
        if table == "attempts":
            attempts += removed
        else:
            bounces += removed
    return PurgeCounts(bodies, messages, attempts, bounces)


async def get_secret(conn: Conn, name: str) -> bytes | None:
    value = await conn.fetchval("SELECT value FROM secrets WHERE name = $1", name)
    return None if value is None else bytes(value)


async def create_secret(conn: Conn, name: str) -> bytes:
    """The named secret, drawn now (32 random bytes) unless it exists."""
    await conn.execute(
        "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        name,
        secrets.token_bytes(32),
    )
    value = await get_secret(conn, name)
    if value is None:
        raise StorageError(f"secret {name!r} vanished while being created")
    return value


# -- helpers --------------------------------------------------------------


def where_clause(*terms: tuple[str, Any]) -> tuple[str, Sequence[Any]]:
    """A WHERE clause of ``column = $n`` terms for the values given."""
    given = [(column, value) for column, value in terms if value is not None]
    if not given:
        return "", ()
    parts = [f"{column} = ${n}" for n, (column, _) in enumerate(given, 1)]
    return "WHERE " + " AND ".join(parts), [value for _, value in given]


def _count(status: str) -> int:
    """The row count of a command status such as ``UPDATE 3``."""
    return int(status.rsplit(" ", 1)[-1])
