"""Time the campaign page on a campaign of a million recipients.

Run with ``.venv/bin/python bench/campaign_page.py [--recipients N]
[--per-message K] [--keep PATH]``. Fills a SQLite store straight through
its schema (the store's own migrations and triggers, ``executemany`` in
large transactions, one message per recipient by default as personalised
invitations are sent), adds opt-outs to the campaign's suppression list,
starts the web listener on loopback and times ``GET /campaigns/<id>``
over HTTP: the median and 95th percentile of 20 requests after one
warm-up. The page must answer within 200 ms at a million rows.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from postroom.clock import SystemClock
from postroom.config import Config
from postroom.config.schema import WebConfig
from postroom.queue.sqlite import SqliteStore
from postroom.queue.sqlite_schema import connect, migrate
from postroom.web.server import WebServer

CAMPAIGN = "million"
ACCEPTED_AT = 1_767_603_600_000_000  # 2026-01-05T09:00:00Z in microseconds
ROWS_PER_TRANSACTION = 100_000
REQUESTS = 20
BUDGET_MS = 200.0

# Of every hundred recipients: how many end in each state.
STATES = (
    ["delivered"] * 90
    + ["bounced"] * 4
    + ["deferred"] * 2
    + ["invalid"] * 1
    + ["suppressed"] * 2
    + ["expired"] * 1
)


def fill(path: Path, recipients: int, per_message: int) -> float:
    """Write the campaign into a new store at ``path``; seconds taken."""
    started = time.perf_counter()
    conn = connect(path)
    migrate(conn, path)
    # A bench file: durability is not what is measured.
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    for first in range(0, recipients, ROWS_PER_TRANSACTION):
        ids = range(first, min(first + ROWS_PER_TRANSACTION, recipients))
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO messages (queue_id, mail_from, campaign, client_address,"
            " accepted_at, size)"
            " VALUES (?, 'panel@example.org', ?, '127.0.0.1', ?, 900)",
            (
                (f"q{i // per_message:09d}", CAMPAIGN, ACCEPTED_AT + i)
                for i in ids
                if i % per_message == 0
            ),
        )
        conn.executemany(
            "INSERT INTO recipients (queue_id, address, display_name, campaign,"
            " state, attempts, accepted_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
            (
                (
                    f"q{i // per_message:09d}",
                    f"person{i}@example.net",
                    f"Person {i}",
                    CAMPAIGN,
                    STATES[i % len(STATES)],
                    ACCEPTED_AT + i,
                    ACCEPTED_AT + i,
                )
                for i in ids
            ),
        )
        # One in fifty unsubscribed, one in a thousand complained.
        conn.executemany(
            "INSERT INTO suppressions (scope, address, reason, created_at)"
            " VALUES (?, ?, ?, ?)",
            (
                (
                    CAMPAIGN,
                    f"person{i}@example.net",
                    "complaint" if i % 1000 == 0 else "unsubscribe",
                    ACCEPTED_AT,
                )
                for i in ids
                if i % 50 == 0
            ),
        )
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - started


async def time_page(path: Path) -> list[float]:
    """Milliseconds per request of the campaign page, over HTTP."""
    config = Config(data_dir=path.parent, web=WebConfig(listen="127.0.0.1:0"))
    store = SqliteStore(path)
    await store.open()
    server = WebServer(config, store, SystemClock())
    await server.start()
    url = f"http://127.0.0.1:{server.port}/campaigns/{CAMPAIGN}"
    timings = []
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(REQUESTS + 1):
                started = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                    assert response.status == 200, response.status
                timings.append((time.perf_counter() - started) * 1000)
    finally:
        await server.stop()
        await store.close()
    return timings[1:]  # the first warms the page cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--per-message", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="fill this file and keep it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or Path(scratch) / "postroom.sqlite3"
        if not path.exists():
            seconds = fill(path, args.recipients, args.per_message)
            print(f"filled {args.recipients:,} recipients in {seconds:.1f} s")
        timings = asyncio.run(time_page(path))

    median = statistics.median(timings)
    p95 = statistics.quantiles(timings, n=20)[-1]
    print(f"GET /campaigns/{CAMPAIGN}: median {median:.1f} ms, p95 {p95:.1f} ms")
    print(
        "within budget" if p95 <= BUDGET_MS else f"OVER the {BUDGET_MS:.0f} ms budget"
    )


if __name__ == "__main__":
    main()
