"""The PostgreSQL store's campaign summaries, metric gauges and webhook outbox.

Plain functions of a connection, like those of `postroom.queue.postgres_sql`:
each runs inside a transaction that `postroom.queue.postgres` opened.

Recipient counts come from ``campaign_counts``: signed deltas that triggers
insert with every change to ``recipients`` (see migration 2 in
`postroom.queue.postgres_schema`), summed when read. `fold_counts` keeps
them few by replacing the deltas of each (campaign, state) with their sum.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg

from postroom.queue.models import CampaignSummary, OutboxEvent, StoreGauges

if TYPE_CHECKING:
    from postroom.queue.postgres_sql import Conn

# The advisory lock that lets one folding of the counters run at a time;
# another node that wants to fold meanwhile skips its turn.
FOLD_LOCK = 0x706F7374666F6C64  # "postfold"

# -- campaigns, counters and gauges ---------------------------------------


async def counts_by_state(conn: Conn, campaign: str | None) -> dict[str, int]:
    """Recipients by state, of one campaign or of all, from the counters."""
    rows = await conn.fetch(
        "SELECT state, sum(n)::bigint AS n FROM campaign_counts"
        " WHERE $1::text IS NULL OR campaign = $1 GROUP BY state",
        campaign,
    )
    return {row["state"]: row["n"] for row in rows}


async def fold_counts(conn: Conn) -> int:
    """Replace the deltas of every (campaign, state) that has several with
    one row holding their sum; how many rows that removed.

    Safe beside writers: triggers only insert, and a delta committed after
    this statement's snapshot is neither removed nor summed here.
    """
    if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", FOLD_LOCK):
        return 0
    # A (campaign, state) whose deltas sum to zero disappears, as it would
    # read the same either way.
    removed: int = await conn.fetchval(
        "WITH folded AS (DELETE FROM campaign_counts c USING (SELECT campaign,"
        " state FROM campaign_counts GROUP BY campaign, state"
        " HAVING count(*) > 1) AS many"
        " WHERE c.campaign = many.campaign AND c.state = many.state"
        " RETURNING c.campaign, c.state, c.n),"
        " summed AS (INSERT INTO campaign_counts (campaign, state, n)"
        " SELECT campaign, state, sum(n) FROM folded GROUP BY campaign, state"
        " HAVING sum(n) <> 0)"
        " SELECT count(*) FROM folded"
    )
    return removed


async def campaign_summaries(conn: Conn) -> list[CampaignSummary]:
    # The counters name every campaign with recipients in a few rows; the
    # first and last acceptance are one probe each at the two ends of
    # messages_campaign_accepted.
    rows = await conn.fetch(
        "SELECT t.campaign, t.n,"
        " (SELECT min(accepted_at) FROM messages m WHERE m.campaign = t.campaign)"
        "  AS first_at,"
        " (SELECT max(accepted_at) FROM messages m WHERE m.campaign = t.campaign)"
        "  AS last_at"
        " FROM (SELECT campaign, sum(n)::bigint AS n FROM campaign_counts"
        "  GROUP BY campaign HAVING sum(n) > 0) AS t"
        " ORDER BY t.campaign"
    )
    return [
        CampaignSummary(row["campaign"], row["first_at"], row["last_at"], row["n"])
        for row in rows
        if row["first_at"] is not None  # recipients without their message
    ]


async def gauges(conn: Conn) -> StoreGauges:
    # One statement, so one snapshot: the numbers agree with each other.
    rows = await conn.fetch(
        "SELECT 'state' AS kind, state AS key, sum(n)::bigint AS n"
        " FROM campaign_counts GROUP BY state"
        " UNION ALL SELECT 'reason', reason, count(*) FROM suppressions"
        " GROUP BY reason"
        " UNION ALL SELECT 'outbox', '', count(*) FROM webhook_outbox"
    )
    by_kind: dict[str, dict[str, int]] = {"state": {}, "reason": {}, "outbox": {}}
    for row in rows:
        by_kind[row["kind"]][row["key"]] = row["n"]
    return StoreGauges(by_kind["state"], by_kind["reason"], by_kind["outbox"][""])


# -- the webhook outbox ---------------------------------------------------


async def add_events(conn: Conn, events: Iterable[OutboxEvent]) -> None:
    """Store ``events``, each due when it was created."""
    events = list(events)
    if not events:
        return
    await conn.execute(
        "INSERT INTO webhook_outbox (endpoint, event_id, body, created_at,"
        " next_attempt_at) SELECT e, i, b, c, c FROM unnest($1::text[],"
        " $2::text[], $3::text[], $4::timestamptz[]) AS u(e, i, b, c)",
        [event.endpoint for event in events],
        [event.event_id for event in events],
        [event.body for event in events],
        [event.created_at for event in events],
    )


async def due_events(
    conn: Conn, now: datetime, limit: int, lease: timedelta
) -> list[OutboxEvent]:
    """Lease up to ``limit`` due events, oldest first.

    Leasing is pushing the due time past the lease, so a sender that dies
    mid-post leaves the event due again once the lease is over. SKIP
    LOCKED: an event another node is leasing right now is passed over, so
    two nodes never post the same event at once.
    """
    rows = await conn.fetch(
        "WITH due AS (SELECT id, next_attempt_at AS due_at FROM webhook_outbox"
        " WHERE next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2"
        " FOR UPDATE SKIP LOCKED),"
        " leased AS (UPDATE webhook_outbox o SET next_attempt_at = $3"
        " FROM due WHERE o.id = due.id"
        " RETURNING o.id, o.endpoint, o.event_id, o.body, o.created_at,"
        " o.attempts, due.due_at)"
        " SELECT * FROM leased ORDER BY due_at, id",
        now,
        limit,
        now + lease,
    )
    return [_event_from_row(row) for row in rows]


def _event_from_row(row: asyncpg.Record) -> OutboxEvent:
    return OutboxEvent(
        endpoint=row["endpoint"],
        event_id=row["event_id"],
        body=row["body"],
        created_at=row["created_at"],
        attempts=row["attempts"],
        id=row["id"],
    )


async def event_posted(conn: Conn, outbox_id: int) -> None:
    await conn.execute("DELETE FROM webhook_outbox WHERE id = $1", outbox_id)


async def event_failed(
    conn: Conn, outbox_id: int, next_attempt_at: datetime, error: str
) -> None:
    await conn.execute(
        "UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = $1,"
        " last_error = $2 WHERE id = $3",
        next_attempt_at,
        error,
        outbox_id,
    )
