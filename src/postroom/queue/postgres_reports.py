"""The PostgreSQL store's reports, suppression-list upkeep, inbound reports
and the daily blacklist scan's queries.

Plain functions of a connection, like `postroom.queue.postgres_sql`: each
runs inside a transaction that `postroom.queue.postgres` opened.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg

from postroom.errors import NotFound
from postroom.queue.models import (
    DailyReport,
    ExportRow,
    Failure,
    InboundReport,
    NewInboundReport,
    Outcome,
    Recipient,
    State,
    Stats,
    Suppression,
)
from postroom.queue.postgres_results import counts_by_state
from postroom.queue.postgres_sql import recipient_from_row
from postroom.queue.sqlite_schema import address_key

if TYPE_CHECKING:
    from postroom.queue.postgres_sql import Conn

# Reasons that mean the recipient asked not to be mailed (RFC 8058 one-click,
# a mailto unsubscribe, or an RFC 5965 abuse report).
_OPT_OUT_REASONS = ("unsubscribe", "complaint")

# Bounce records that an attempt row already stands for.
_FROM_ATTEMPTS = ["smtp", "expiry"]

# The advisory lock that makes claiming a day's report one node at a time.
REPORT_LOCK = 0x706F7374726570  # "postrep"

# -- statistics and exports -----------------------------------------------


async def stats(conn: Conn, campaign: str | None) -> Stats:
    by_state = dict.fromkeys((str(state) for state in State), 0)
    # Kept by triggers: a million-recipient campaign is a few rows to sum.
    by_state.update(await counts_by_state(conn, campaign))

    by_reason = {
        row["reason"]: row["n"]
        for row in await conn.fetch(
            "SELECT reason, count(*) AS n FROM suppressions"
            " WHERE $1::text IS NULL OR scope = $1 GROUP BY reason",
            campaign,
        )
    }
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


async def campaigns(conn: Conn) -> list[str]:
    rows = await conn.fetch("SELECT DISTINCT campaign FROM messages ORDER BY campaign")
    return [row[0] for row in rows]


async def export_bounces(
    conn: Conn, campaign: str | None, since: datetime | None, until: datetime | None
) -> list[ExportRow]:
    rows = await conn.fetch(
        "SELECT b.address, COALESCE(r.display_name, '') AS display_name,"
        " COALESCE(b.campaign, r.campaign, '') AS campaign, b.code, b.status,"
        " b.at, b.diagnostic AS text"
        " FROM bounce_records b LEFT JOIN recipients r ON r.id = b.recipient_id"
        " WHERE ($1::text IS NULL OR COALESCE(b.campaign, r.campaign) = $1)"
        " AND ($2::timestamptz IS NULL OR b.at >= $2)"
        " AND ($3::timestamptz IS NULL OR b.at < $3)"
        " ORDER BY b.at, b.id",
        campaign,
        since,
        until,
    )
    return [_export_row(row) for row in rows]


async def export_deferrals(
    conn: Conn, campaign: str | None, since: datetime | None, until: datetime | None
) -> list[ExportRow]:
    rows = await conn.fetch(
        "SELECT r.address, r.display_name, r.campaign, a.code, a.status, a.at,"
        " a.text FROM attempts a JOIN recipients r ON r.id = a.recipient_id"
        " WHERE a.outcome = $1 AND ($2::text IS NULL OR r.campaign = $2)"
        " AND ($3::timestamptz IS NULL OR a.at >= $3)"
        " AND ($4::timestamptz IS NULL OR a.at < $4)"
        " ORDER BY a.at, a.id",
        Outcome.DEFERRED.value,
        campaign,
        since,
        until,
    )
    return [_export_row(row) for row in rows]


def _export_row(row: asyncpg.Record) -> ExportRow:
    return ExportRow(
        address=row["address"],
        display_name=row["display_name"],
        campaign=row["campaign"],
        code=row["code"],
        status=row["status"],
        at=row["at"],
        text=row["text"],
    )


# -- suppression lists ----------------------------------------------------


async def suppressions(
    conn: Conn, scope: str | None, limit: int | None
) -> list[Suppression]:
    rows = await conn.fetch(
        "SELECT scope, address, reason, created_at FROM suppressions"
        " WHERE $1::text IS NULL OR scope = $1 ORDER BY scope, address LIMIT $2",
        scope,
        limit,
    )
    return [
        Suppression(row["scope"], row["address"], row["reason"], row["created_at"])
        for row in rows
    ]


async def unsuppress(conn: Conn, scope: str, address: str) -> bool:
    status = await conn.execute(
        "DELETE FROM suppressions WHERE scope = $1 AND address = $2",
        scope,
        address_key(address),
    )
    return bool(status == "DELETE 1")


async def suppress_many(conn: Conn, entries: list[Suppression]) -> int:
    # An insert that meets a key another transaction has just inserted waits
    # for that transaction to end. Two imports that took keys in different
    # orders would each wait for the other: every batch is therefore
    # inserted in one order, by scope and address key, and ORDER BY n holds
    # the insert to that order (the sort is stable, so of a repeat within
    # ``entries`` the first one comes first). ON CONFLICT keeps the first
    # reason of an address that is on the list already, and of a repeat.
    rows = sorted(
        ((entry.scope, address_key(entry.address), entry) for entry in entries),
        key=lambda row: (row[0], row[1]),
    )
    added: int = await conn.fetchval(
        "WITH new AS (INSERT INTO suppressions (scope, address, reason, created_at)"
        " SELECT scope, address, reason, created_at FROM unnest($1::text[],"
        " $2::text[], $3::text[], $4::timestamptz[]) WITH ORDINALITY"
        " AS given (scope, address, reason, created_at, n) ORDER BY n"
        " ON CONFLICT DO NOTHING RETURNING 1)"
        " SELECT count(*) FROM new",
        [scope for scope, _, _ in rows],
        [key for _, key, _ in rows],
        [entry.reason for _, _, entry in rows],
        [entry.created_at for _, _, entry in rows],
    )
    return added


# -- inbound reports ------------------------------------------------------


async def add_inbound(conn: Conn, report: NewInboundReport, now: datetime) -> int:
    report_id: int = await conn.fetchval(
        "INSERT INTO inbound_reports (received_at, peer, mail_from, rcpts, size,"
        " raw) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        now,
        report.peer,
        report.mail_from,
        "\n".join(report.rcpts),
        len(report.raw),
        report.raw,
    )
    return report_id


async def settle_inbound(
    conn: Conn,
    report_id: int,
    kind: str | None,
    outcome: str,
    recipient_id: int | None,
    detail: str,
) -> None:
    status = await conn.execute(
        "UPDATE inbound_reports SET kind = $1, outcome = $2, detail = $3,"
        " recipient_id = (SELECT id FROM recipients WHERE id = $4) WHERE id = $5",
        kind,
        outcome,
        detail,
        recipient_id,
        report_id,
    )
    if status != "UPDATE 1":
        raise NotFound(f"inbound report {report_id}")


async def mark_complaint(conn: Conn, recipient_id: int, now: datetime) -> bool:
    status = await conn.execute(
        "UPDATE recipients SET complained_at = $1"
        " WHERE id = $2 AND complained_at IS NULL",
        now,
        recipient_id,
    )
    return bool(status == "UPDATE 1")


async def inbound_reports(
    conn: Conn,
    outcome: str | None,
    limit: int,
    report_id: int | None,
    newest_first: bool,
) -> list[InboundReport]:
    order = "id DESC" if newest_first else "id"
    rows = await conn.fetch(
        "SELECT id, received_at, peer, mail_from, rcpts, size, kind, outcome,"  # noqa: S608 -- only a fixed order is interpolated
        " recipient_id, detail FROM inbound_reports"
        # Outcomes joined by commas: the filter matches any one of them.
        " WHERE ($1::text IS NULL OR $1 = ANY(string_to_array(outcome, ',')))"
        f" AND ($3::bigint IS NULL OR id = $3) ORDER BY {order} LIMIT $2",
        outcome,
        limit,
        report_id,
    )
    return [
        InboundReport(
            id=row["id"],
            received_at=row["received_at"],
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


async def load_inbound_raw(conn: Conn, report_id: int) -> bytes:
    raw = await conn.fetchval(
        "SELECT raw FROM inbound_reports WHERE id = $1", report_id
    )
    if raw is None:
        raise NotFound(f"inbound report {report_id}")
    return bytes(raw)


async def find_by_message_id(conn: Conn, message_id: str) -> list[Recipient]:
    rows = await conn.fetch(
        "SELECT r.* FROM recipients r JOIN messages m ON m.queue_id = r.queue_id"
        " WHERE m.message_id = $1 ORDER BY r.id",
        message_id,
    )
    return [recipient_from_row(row) for row in rows]


# -- the daily blacklist scan ---------------------------------------------


async def failures(conn: Conn, since: datetime, until: datetime) -> list[Failure]:
    rows = await conn.fetch(
        "SELECT 'attempt' AS source, a.at, r.address, r.campaign, r.queue_id,"
        " a.mx_host, a.code, a.status, a.text, a.id AS seq, 0 AS part"
        " FROM attempts a JOIN recipients r ON r.id = a.recipient_id"
        " WHERE a.at >= $1 AND a.at < $2 AND a.outcome = ANY($3::text[])"
        " UNION ALL"
        " SELECT b.source, b.at, b.address,"
        " COALESCE(b.campaign, r.campaign, '') AS campaign, r.queue_id,"
        " b.remote_mta AS mx_host, b.code, b.status, b.diagnostic AS text,"
        " b.id AS seq, 1 AS part"
        " FROM bounce_records b LEFT JOIN recipients r ON r.id = b.recipient_id"
        " WHERE b.at >= $1 AND b.at < $2 AND b.source <> ALL($4::text[])"
        " ORDER BY at, part, seq",
        since,
        until,
        [Outcome.DEFERRED.value, Outcome.BOUNCED.value],
        _FROM_ATTEMPTS,
    )
    return [
        Failure(
            source=row["source"],
            at=row["at"],
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


async def claim_report(
    conn: Conn, day: str, holder: str, now: datetime, hold: timedelta, force: bool
) -> bool:
    # Every node's claim passes through this lock, held until the claim
    # commits: the read and the write below cannot interleave with another
    # node's, so three nodes running the scan send one report.
    await conn.execute("SELECT pg_advisory_xact_lock($1)", REPORT_LOCK)
    row = await conn.fetchrow(
        "SELECT holder, claimed_until, sent_at FROM daily_reports WHERE day = $1",
        day,
    )
    if row is not None:
        held = row["holder"] is not None and row["claimed_until"] > now
        if held and row["holder"] != holder:
            return False
        if row["sent_at"] is not None and not force:
            return False
    await conn.execute(
        "INSERT INTO daily_reports (day, holder, claimed_until) VALUES ($1, $2, $3)"
        " ON CONFLICT (day) DO UPDATE SET holder = excluded.holder,"
        " claimed_until = excluded.claimed_until",
        day,
        holder,
        now + hold,
    )
    return True


async def finish_report(
    conn: Conn,
    day: str,
    holder: str,
    now: datetime,
    sent: bool,
    queue_id: str | None,
    summary: str,
) -> None:
    if sent:
        await conn.execute(
            "UPDATE daily_reports SET holder = NULL, claimed_until = NULL,"
            " sent_at = $1, queue_id = $2, summary = $3"
            " WHERE day = $4 AND holder = $5",
            now,
            queue_id,
            summary,
            day,
            holder,
        )
    else:
        await conn.execute(
            "UPDATE daily_reports SET holder = NULL, claimed_until = NULL"
            " WHERE day = $1 AND holder = $2",
            day,
            holder,
        )


async def daily_report(conn: Conn, day: str) -> DailyReport | None:
    row = await conn.fetchrow(
        "SELECT day, sent_at, queue_id, summary FROM daily_reports"
        " WHERE day = $1 AND sent_at IS NOT NULL",
        day,
    )
    if row is None:
        return None
    return DailyReport(
        day=row["day"],
        sent_at=row["sent_at"],
        queue_id=row["queue_id"],
        summary=row["summary"],
    )
