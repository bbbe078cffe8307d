"""What only the SQLite backend promises: group commit, failure handling,
schema versions, index use, and choosing it from the configuration."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from postroom.clock import ManualClock
from postroom.config import Config
from postroom.config.schema import QueueConfig
from postroom.errors import StorageError
from postroom.queue import sqlite_blacklist, sqlite_sql
from postroom.queue.open import open_store
from postroom.queue.postgres import PostgresStore
from postroom.queue.sqlite import SqliteStore
from postroom.queue.sqlite_schema import MIGRATIONS, connect
from tests.queue.conftest import message


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "queue.sqlite3")
    await store.open()
    yield store
    await store.close()


async def test_concurrent_accepts_share_commits_and_all_persist(
    sqlite_store: SqliteStore, tmp_path: Path, clock: ManualClock
) -> None:
    before = sqlite_store.commits

    results = await asyncio.gather(
        *(
            sqlite_store.accept(message(f"r{i}@x.example"), clock.now())
            for i in range(200)
        )
    )
    commits = sqlite_store.commits - before
    await sqlite_store.close()

    reopened = SqliteStore(tmp_path / "queue.sqlite3")
    await reopened.open()
    try:
        stored = await reopened.recipients(limit=1000)
    finally:
        await reopened.close()
    assert len({r.queue_id for r in results}) == 200
    assert commits <= 20
    assert len(stored) == 200


async def test_a_full_disk_fails_the_accept_and_leaves_nothing_behind(
    tmp_path: Path, clock: ManualClock
) -> None:
    # max_page_count makes SQLite answer SQLITE_FULL exactly as a full disk.
    store = SqliteStore(tmp_path / "queue.sqlite3", max_pages=64)
    await store.open()
    try:
        with pytest.raises(StorageError) as raised:
            await store.accept(
                message("a@x.example", raw=b"x" * 1_000_000), clock.now()
            )
        survivor = await store.accept(message("b@x.example"), clock.now())
        stored = await store.recipients()
    finally:
        await store.close()

    assert isinstance(raised.value.__cause__, sqlite3.Error)
    assert [r.queue_id for r in stored] == [survivor.queue_id]
    assert count_messages(tmp_path) == 1


def count_messages(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "queue.sqlite3") as conn:
        count: int = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    return count


async def test_a_message_that_fills_the_disk_fails_alone_and_its_batch_commits(
    tmp_path: Path, clock: ManualClock
) -> None:
    store = SqliteStore(tmp_path / "queue.sqlite3", max_pages=64)
    await store.open()
    try:
        outcomes = await asyncio.gather(
            *(
                store.accept(
                    message(
                        f"r{i}@x.example",
                        raw=b"x" * (1_000_000 if i == 5 else 100),
                    ),
                    clock.now(),
                )
                for i in range(20)
            ),
            return_exceptions=True,
        )
        stored = {r.queue_id for r in await store.recipients()}
    finally:
        await store.close()

    answered = {o.queue_id for o in outcomes if not isinstance(o, BaseException)}
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert isinstance(outcomes[5], StorageError)
    assert failed == [outcomes[5]]
    assert len(answered) == 19
    assert answered == stored


async def test_opening_a_directory_raises_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        await SqliteStore(tmp_path).open()


async def test_a_writer_after_close_raises_storage_error(
    tmp_path: Path, clock: ManualClock
) -> None:
    store = SqliteStore(tmp_path / "queue.sqlite3")
    await store.open()
    await store.close()

    with pytest.raises(StorageError):
        await store.accept(message("a@x.example"), clock.now())


async def test_a_database_from_a_newer_build_is_refused_untouched(
    tmp_path: Path,
) -> None:
    path = tmp_path / "queue.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE future (x)")
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")

    with pytest.raises(StorageError, match="newer"):
        await SqliteStore(path).open()

    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"future"}


async def test_the_schema_is_at_the_newest_version_in_wal_mode(
    sqlite_store: SqliteStore,
) -> None:
    with sqlite3.connect(sqlite_store.path) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]

    assert version == len(MIGRATIONS)
    assert mode == "wal"


async def test_leasing_and_next_due_use_indexes_not_table_scans(
    sqlite_store: SqliteStore, clock: ManualClock
) -> None:
    for i in range(50):
        await sqlite_store.accept(message(f"r{i}@x.example"), clock.now())
    conn = connect(sqlite_store.path)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        conn.execute("BEGIN")
        sqlite_sql.lease_due(conn, clock.now(), 5, timedelta(minutes=15))
        sqlite_sql.next_due_at(conn)
        conn.execute("ROLLBACK")
        conn.set_trace_callback(None)
        plans = {
            sql: [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
            for sql in statements
            if sql.lstrip().upper().startswith("SELECT")
        }
    finally:
        conn.close()

    assert plans
    for sql, plan in plans.items():
        scans = [
            step for step in plan if step.startswith("SCAN") and "INDEX" not in step
        ]
        assert scans == [], (sql, plan)
        assert not any("TEMP B-TREE" in step for step in plan), (sql, plan)


def test_open_store_makes_a_private_data_dir_for_the_sqlite_file(
    config: Config,
) -> None:
    store = open_store(config)

    assert isinstance(store, SqliteStore)
    assert store.path == config.sqlite_path
    assert stat.S_IMODE(config.data_dir.stat().st_mode) == 0o700


def test_open_store_chooses_postgresql_for_a_postgresql_url(config: Config) -> None:
    configured = config.model_copy(
        update={"queue": QueueConfig(url="postgresql://db.example/postroom")}
    )

    store = open_store(configured)

    assert isinstance(store, PostgresStore)
    assert store.url == "postgresql://db.example/postroom"


async def test_close_finishes_the_writes_already_queued(
    tmp_path: Path, clock: ManualClock
) -> None:
    store = SqliteStore(tmp_path / "queue.sqlite3")
    await store.open()
    pending = [
        asyncio.create_task(store.accept(message(f"r{i}@x.example"), clock.now()))
        for i in range(10)
    ]
    await asyncio.sleep(0)  # every task queues its write and waits

    await store.close()
    accepted = await asyncio.gather(*pending)

    reopened = SqliteStore(tmp_path / "queue.sqlite3")
    await reopened.open()
    try:
        stored = {r.queue_id for r in await reopened.recipients()}
    finally:
        await reopened.close()
    assert stored == {a.queue_id for a in accepted}
    assert len(stored) == 10


async def test_the_days_failures_are_read_through_time_indexes(
    sqlite_store: SqliteStore, clock: ManualClock
) -> None:
    for i in range(20):
        await sqlite_store.accept(message(f"r{i}@x.example"), clock.now())
    conn = connect(sqlite_store.path)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        sqlite_blacklist.failures(conn, clock.now(), clock.now() + timedelta(days=1))
        conn.set_trace_callback(None)
        plans = {
            sql: [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
            for sql in statements
        }
    finally:
        conn.close()

    assert len(plans) == 2
    for sql, plan in plans.items():
        scans = [
            step for step in plan if step.startswith("SCAN") and "INDEX" not in step
        ]
        assert scans == [], (sql, plan)
        assert any("_at" in step for step in plan), (sql, plan)
