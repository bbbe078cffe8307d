"""The SQLite store's campaign summaries, metric gauges and webhook outbox.

Plain functions of a connection, like those of `postroom.queue.sqlite_sql`:
each runs inside a transaction that `postroom.queue.sqlite` opened.
Recipient counts come from ``campaign_counts``, which triggers keep in
step with every recipient row (see migration 4 in `sqlite_schema`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime, timedelta

from postroom.queue.models import CampaignSummary, OutboxEvent, StoreGauges
from postroom.queue.sqlite_schema import from_db, to_db

# -- campaigns and gauges -------------------------------------------------


def counts_by_state(conn: sqlite3.Connection, campaign: str | None) -> dict[str, int]:
    """Recipients by state, of one campaign or of all, from the counters."""
    if campaign is None:
        rows = conn.execute(
            "SELECT state, SUM(n) AS n FROM campaign_counts GROUP BY state"
        )
    else:
        rows = conn.execute(
            "SELECT state, n FROM campaign_counts WHERE campaign = ?", (campaign,)
        )
    return {row["state"]: row["n"] for row in rows}


def campaign_summaries(conn: sqlite3.Connection) -> list[CampaignSummary]:
    # The counters name every campaign with recipients in a few rows; the
    # messages table would have to be scanned for them.
    totals = conn.execute(
        "SELECT campaign, SUM(n) AS n FROM campaign_counts GROUP BY campaign"
        " HAVING SUM(n) > 0 ORDER BY campaign"
    ).fetchall()
    summaries = []
    for campaign, total in totals:
        # Two lookups at the ends of messages_campaign_accepted each; one
        # MIN and MAX together would scan the whole campaign.
        first = conn.execute(
            "SELECT MIN(accepted_at) FROM messages WHERE campaign = ?", (campaign,)
        ).fetchone()[0]
        last = conn.execute(
            "SELECT MAX(accepted_at) FROM messages WHERE campaign = ?", (campaign,)
        ).fetchone()[0]
        if first is None:
            continue  # recipients without their message: none in practice
        summaries.append(
            CampaignSummary(campaign, from_db(first), from_db(last), total)
        )
    return summaries


def gauges(conn: sqlite3.Connection) -> StoreGauges:
    reasons = {
        row["reason"]: row["n"]
        for row in conn.execute(
            "SELECT reason, COUNT(*) AS n FROM suppressions GROUP BY reason"
        )
    }
    outbox: int = conn.execute("SELECT COUNT(*) FROM webhook_outbox").fetchone()[0]
    return StoreGauges(counts_by_state(conn, None), reasons, outbox)


# -- the webhook outbox ---------------------------------------------------


def add_events(
    conn: sqlite3.Connection, events: Iterable[OutboxEvent], now: datetime | None = None
) -> None:
    """Store ``events``, due at ``now`` (default: when each was created)."""
    conn.executemany(
        "INSERT INTO webhook_outbox (endpoint, event_id, body, created_at,"
        " next_attempt_at) VALUES (?, ?, ?, ?, ?)",
        [
            (
                event.endpoint,
                event.event_id,
                event.body,
                to_db(event.created_at),
                to_db(now or event.created_at),
            )
            for event in events
        ],
    )


def due_events(
    conn: sqlite3.Connection, now: datetime, limit: int, lease: timedelta
) -> list[OutboxEvent]:
    at = to_db(now)
    rows = conn.execute(
        "SELECT * FROM webhook_outbox WHERE next_attempt_at <= ?"
        " ORDER BY next_attempt_at, id LIMIT ?",
        (at, limit),
    ).fetchall()
    # Leasing is pushing the due time past the lease: a sender that dies
    # mid-post leaves the event due again once the lease is over.
    conn.executemany(
        "UPDATE webhook_outbox SET next_attempt_at = ? WHERE id = ?",
        [(to_db(now + lease), row["id"]) for row in rows],
    )
    return [
        OutboxEvent(
            endpoint=row["endpoint"],
            event_id=row["event_id"],
            body=row["body"],
            created_at=from_db(row["created_at"]),
            attempts=row["attempts"],
            id=row["id"],
        )
        for row in rows
    ]


def event_posted(conn: sqlite3.Connection, outbox_id: int) -> None:
    conn.execute("DELETE FROM webhook_outbox WHERE id = ?", (outbox_id,))


def event_failed(
    conn: sqlite3.Connection, outbox_id: int, next_attempt_at: datetime, error: str
) -> None:
    conn.execute(
        "UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = ?,"
        " last_error = ? WHERE id = ?",
        (to_db(next_attempt_at), error, outbox_id),
    )
