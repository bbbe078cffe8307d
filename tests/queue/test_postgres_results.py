"""What only the PostgreSQL store promises about campaign counters and the
webhook outbox: several nodes writing at once, migrating a database that
holds recipients already, folding the counter deltas.

Each test has a fresh database of its own on the shared server.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import asyncpg
import pytest

from postroom.queue import postgres
from postroom.queue.models import (
    Attempt,
    AttemptResult,
    OutboxEvent,
    Outcome,
    State,
)
from postroom.queue.postgres import PostgresStore
from postroom.queue.postgres_schema import MIGRATIONS
from tests.queue.conftest import message
from tests.queue.test_store_results import LEASE, NOW, event


def delivered(recipient_id: int, at: datetime, *events: OutboxEvent) -> AttemptResult:
    attempt = Attempt(recipient_id, at, Outcome.DELIVERED, "mx", 250, "2.0.0", "ok")
    return AttemptResult(attempt, State.DELIVERED, events=events)


async def counter_rows(url: str) -> list[tuple[str, str, int]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT campaign, state, n FROM campaign_counts ORDER BY campaign, state"
        )
    finally:
        await conn.close()
    return [(row["campaign"], row["state"], row["n"]) for row in rows]


async def test_nodes_leasing_events_at_once_never_take_the_same_event(
    nodes: list[PostgresStore],
) -> None:
    await nodes[0].add_events([event(n) for n in range(200)])

    async def drain(store: PostgresStore) -> list[int]:
        taken: list[int] = []
        while batch := await store.due_events(NOW, 7, LEASE):
            taken += [e.id for e in batch if e.id is not None]
        return taken

    results = await asyncio.gather(*(drain(store) for store in nodes * 2))
    everything = [outbox_id for taken in results for outbox_id in taken]

    assert len(everything) == len(set(everything)) == 200


async def test_a_record_after_the_lease_was_lost_stores_none_of_its_events(
    nodes: list[PostgresStore],
) -> None:
    slow, other = nodes[0], nodes[1]
    [rid] = (await slow.accept(message("a@x.test"), NOW)).recipient_ids
    await slow.lease_due(NOW, 10, LEASE)
    later = NOW + LEASE + timedelta(seconds=1)
    await other.lease_due(later, 10, LEASE)

    await slow.record(delivered(rid, later, event(1)))

    assert await other.due_events(later, 10, LEASE) == []
    assert (await other.gauges()).webhook_outbox == 0


async def test_counters_stay_exact_when_nodes_accept_and_deliver_at_once(
    nodes: list[PostgresStore],
) -> None:
    async def work(store: PostgresStore, n: int) -> None:
        for k in range(10):
            await store.accept(message(f"r{n}-{k}@x.test", f"s{n}-{k}@x.test"), NOW)
        while batch := await store.lease_due(NOW, 3, LEASE):
            for delivery in batch:
                await store.record(delivered(delivery.recipient.id, NOW))

    await asyncio.gather(*(work(store, n) for n, store in enumerate(nodes)))
    stats = await nodes[0].stats("survey-1")
    [summary] = await nodes[1].campaign_summaries()

    assert (stats.sent_ok, stats.queued) == (60, 0)
    assert summary.recipients == 60


async def test_counters_are_folded_every_so_many_writes_and_read_the_same(
    nodes: list[PostgresStore], pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "FOLD_EVERY", 4)
    store = nodes[0]
    accepted = [await store.accept(message(f"r{n}@x.test"), NOW) for n in range(6)]
    await store.record(delivered(accepted[0].recipient_ids[0], NOW))

    rows = await counter_rows(pg_url)
    stats = await store.stats("survey-1")

    # The fourth write folded four deltas into one; three writes followed,
    # two accepts (a delta each) and one attempt (two).
    assert len(rows) == 5
    assert (stats.queued, stats.sent_ok) == (5, 1)


async def test_purge_folds_the_counters_to_one_row_per_campaign_and_state(
    nodes: list[PostgresStore], pg_url: str
) -> None:
    store = nodes[0]
    old = await store.accept(message("a@x.test", "b@x.test", campaign="old"), NOW)
    for rid in old.recipient_ids:
        await store.record(delivered(rid, NOW))
    later = NOW + timedelta(days=30)
    await store.accept(message("c@x.test", "d@x.test"), later)
    await store.accept(message("e@x.test"), later)

    await store.purge(later, timedelta(days=7), timedelta(days=20))

    assert await counter_rows(pg_url) == [("survey-1", "queued", 3)]
    assert sum((await store.stats("old")).by_state.values()) == 0
    assert [s.campaign for s in await store.campaign_summaries()] == ["survey-1"]


async def test_migrating_a_database_with_recipients_counts_them(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    await conn.execute(
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    await conn.execute(MIGRATIONS[0])
    await conn.execute("INSERT INTO schema_migrations (version) VALUES (1)")
    await conn.execute(
        "INSERT INTO messages (queue_id, mail_from, campaign, client_address,"
        " accepted_at, size) VALUES ('q1', 'f@x.test', 'spring', '::1', $1, 1)",
        NOW,
    )
    await conn.execute(
        "INSERT INTO recipients (queue_id, address, address_key, campaign, state,"
        " accepted_at, updated_at) SELECT 'q1', a, a, 'spring', s, $1, $1"
        " FROM unnest($2::text[], $3::text[]) AS u(a, s)",
        NOW,
        ["a@x.test", "b@x.test", "c@x.test"],
        ["delivered", "delivered", "bounced"],
    )
    await conn.close()
    store = PostgresStore(pg_url)

    await store.open()
    stats = await store.stats("spring")
    summaries = await store.campaign_summaries()
    await store.close()

    assert (stats.sent_ok, stats.bounced) == (2, 1)
    assert [(s.campaign, s.recipients, s.first_at) for s in summaries] == [
        ("spring", 3, NOW)
    ]
