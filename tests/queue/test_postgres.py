"""What only the PostgreSQL store promises: several nodes on one database.

Each test has a fresh database of its own on the shared server and opens
one `PostgresStore` per simulated node.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import asyncpg
import pytest

from postroom.clock import ManualClock
from postroom.errors import StorageError
from postroom.queue.models import (
    Attempt,
    AttemptResult,
    Outcome,
    State,
    Suppression,
)
from postroom.queue.postgres import PostgresStore
from postroom.queue.postgres_schema import MIGRATIONS
from tests.peers.dnsserver import free_port
from tests.queue.conftest import bounce, message

LEASE = timedelta(minutes=15)


def delivered(recipient_id: int, clock: ManualClock) -> AttemptResult:
    attempt = Attempt(
        recipient_id, clock.now(), Outcome.DELIVERED, "mx", 250, "2.0.0", "250 ok"
    )
    return AttemptResult(attempt, State.DELIVERED)


async def test_nodes_leasing_at_once_never_take_the_same_recipient(
    nodes: list[PostgresStore], clock: ManualClock
) -> None:
    addresses = [f"r{n}@x.example" for n in range(300)]
    for start in range(0, len(addresses), 50):
        await nodes[0].accept(message(*addresses[start : start + 50]), clock.now())

    async def drain(store: PostgresStore) -> list[int]:
        taken: list[int] = []
        while batch := await store.lease_due(clock.now(), 7, LEASE):
            taken += [d.recipient.id for d in batch]
        return taken

    results = await asyncio.gather(*(drain(store) for store in nodes * 2))
    everything = [rid for taken in results for rid in taken]

    assert len(everything) == len(set(everything)) == 300


async def test_release_leases_frees_nothing_so_a_live_nodes_lease_holds(
    nodes: list[PostgresStore], clock: ManualClock
) -> None:
    busy, starting = nodes[0], nodes[1]
    await busy.accept(message("a@x.example"), clock.now())
    await busy.lease_due(clock.now(), 10, LEASE)

    released = await starting.release_leases()

    assert released == 0
    assert await starting.lease_due(clock.now(), 10, LEASE) == []


async def test_a_dead_nodes_lease_runs_out_and_another_node_takes_over(
    nodes: list[PostgresStore], clock: ManualClock
) -> None:
    dead, alive = nodes[0], nodes[1]
    accepted = await dead.accept(message("a@x.example"), clock.now())
    await dead.lease_due(clock.now(), 10, LEASE)

    clock.advance(LEASE)
    taken = await alive.lease_due(clock.now(), 10, LEASE)
    await alive.record(delivered(accepted.recipient_ids[0], clock))

    assert [d.recipient.id for d in taken] == list(accepted.recipient_ids)
    recipient = await alive.get_recipient(accepted.recipient_ids[0])
    assert (recipient.state, recipient.attempts) == (State.DELIVERED, 1)


async def test_a_record_after_the_lease_was_lost_is_dropped(
    nodes: list[PostgresStore], clock: ManualClock
) -> None:
    slow, other = nodes[0], nodes[1]
    accepted = await slow.accept(message("a@x.example"), clock.now())
    rid = accepted.recipient_ids[0]
    await slow.lease_due(clock.now(), 10, LEASE)
    clock.advance(LEASE + timedelta(seconds=1))
    await other.lease_due(clock.now(), 10, LEASE)

    await slow.record(delivered(rid, clock))  # the lease ran out meanwhile

    recipient = await other.get_recipient(rid)
    assert (recipient.state, recipient.attempts) == (State.QUEUED, 0)
    assert await other.attempts(rid) == []
    await other.record(delivered(rid, clock))
    assert (await other.get_recipient(rid)).state == State.DELIVERED


async def test_three_nodes_claiming_a_days_report_at_once_get_one_claim(
    nodes: list[PostgresStore], clock: ManualClock
) -> None:
    claims = await asyncio.gather(
        *(
            store.claim_report(
                "2026-01-05", store.holder, clock.now(), timedelta(hours=1), force=False
            )
            for store in nodes
        )
    )

    assert sorted(claims) == [False, False, True]


async def test_imports_at_once_of_one_list_in_opposite_orders_both_succeed(
    nodes: list[PostgresStore], clock: ManualClock
) -> None:
    # Each insert waits for the other transaction that holds the same key;
    # taken in opposite orders, the two met in the middle and deadlocked.
    entries = [
        Suppression("spring", f"r{n:05}@x.example", "import", clock.now())
        for n in range(20_000)
    ]

    added = await asyncio.gather(
        nodes[0].suppress_many(entries), nodes[1].suppress_many(entries[::-1])
    )

    assert sum(added) == len(entries)
    listed = await nodes[2].suppressions("spring")
    assert sorted(entry.address for entry in listed) == sorted(
        entry.address for entry in entries
    )


async def test_nodes_starting_at_once_migrate_once(pg_url: str) -> None:
    stores = [PostgresStore(pg_url) for _ in range(4)]

    await asyncio.gather(*(store.open() for store in stores))
    for store in stores:
        await store.close()

    conn = await asyncpg.connect(pg_url)
    try:
        versions = await conn.fetch("SELECT version FROM schema_migrations")
    finally:
        await conn.close()
    assert [row["version"] for row in versions] == list(range(1, len(MIGRATIONS) + 1))


async def test_a_database_newer_than_the_build_is_refused_untouched(
    pg_url: str,
) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    await store.close()
    newer = len(MIGRATIONS) + 1
    conn = await asyncpg.connect(pg_url)
    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", newer)

    with pytest.raises(StorageError, match="newer"):
        await PostgresStore(pg_url).open()

    top = await conn.fetchval("SELECT max(version) FROM schema_migrations")
    await conn.close()
    assert top == newer


async def test_an_unreachable_server_is_a_storage_error() -> None:
    store = PostgresStore(f"postgresql://postgres@127.0.0.1:{free_port()}/none")

    with pytest.raises(StorageError, match="cannot open"):
        await store.open()


async def test_reports_on_one_recipient_take_turns_whatever_the_servers_isolation(
    pg_url: str, clock: ManualClock
) -> None:
    # A server whose default isolation is REPEATABLE READ: the store still
    # runs its transactions at READ COMMITTED, so the turn after the first
    # sees its record instead of failing to serialise or keeping another.
    store = PostgresStore(f"{pg_url}?default_transaction_isolation=repeatable%20read")
    await store.open()
    try:
        accepted = await store.accept(message("a@x.example"), clock.now())
        recipient_id = accepted.recipient_ids[0]
        await store.record(delivered(recipient_id, clock))
        report = replace(
            bounce(recipient_id, "a@x.example", clock.now(), None), source="dsn"
        )

        kept = await asyncio.gather(*(store.add_bounce(report) for _ in range(8)))

        assert sorted(kept) == [False] * 7 + [True]
        assert len(await store.export_bounces(None, None, None)) == 1
    finally:
        await store.close()
