"""Does the queue slow down as it grows? lease_due and record at 10k and 1M.

Run with ``.venv/bin/python bench/queue_scale.py`` (``--sizes`` to choose
other queue sizes). For each size a fresh SQLite store is filled directly
(executemany, big transactions, no fsync) with that many waiting
recipients, ten to a message, of which a fixed number are due now and the
rest spread over the next four days, next to 10,000 suppression entries.
Then, in a fresh process so that its memory says what the store costs and
not what the filling did, the store as the daemon opens it:

- takes the next due batch (``lease_due``, 100 recipients) twenty times,
- records a delivery for each recipient it was handed (``record``, one
  transaction and one fsync each, as the engine does),
- asks when the next recipient is due (``next_due_at``),

and prints the median time of each with the process's peak memory; the
measurement is made three times per size, sizes taking turns, and the
medians of the three are printed. With
indexes doing the work the times stay flat as the queue grows; a scan would
show as a time that grows a hundredfold between 10k and 1M.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from postroom import log as logsetup
from postroom.queue.models import Attempt, AttemptResult, Outcome, State
from postroom.queue.sqlite import SqliteStore
from postroom.queue.sqlite_schema import to_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PER_MESSAGE = 10
DUE = 5_000  # recipients due now, whatever the size of the queue
BATCH = 100
ROUNDS = 10
REPEATS = 3  # measurements per size, interleaved across sizes
SUPPRESSED = 10_000
CHUNK = 50_000


def fill(path: Path, recipients: int) -> None:
    """Create the schema through the store, then add rows directly."""

    async def create() -> None:
        store = SqliteStore(path)
        await store.open()
        await store.close()

    asyncio.run(create())
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    at = to_db(NOW - timedelta(hours=1))
    spread = to_db(NOW + timedelta(days=4)) - to_db(NOW)
    body = b"Subject: invitation\r\n\r\n" + b"x" * 200 + b"\r\n"

    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO suppressions (scope, address, reason, created_at)"
        " VALUES ('*', ?, 'unknown_user', ?)",
        ((f"gone{i}@example.com", at) for i in range(SUPPRESSED)),
    )
    for start in range(0, recipients, CHUNK):
        stop = min(start + CHUNK, recipients)
        conn.executemany(
            "INSERT INTO messages (queue_id, mail_from, campaign, client_address,"
            " accepted_at, size, raw) VALUES (?, 'from@example.org', 'bench',"
            " '127.0.0.1', ?, ?, ?)",
            (
                (f"q{m}", at, len(body), body)
                for m in range(start // PER_MESSAGE, -(-stop // PER_MESSAGE))
            ),
        )

        def due(i: int) -> int:
            if i < DUE:
                return to_db(NOW) - (DUE - i) * 1000
            return to_db(NOW) + 60_000_000 + (i * spread) // recipients

        conn.executemany(
            "INSERT INTO recipients (queue_id, address, campaign, state,"
            " accepted_at, next_attempt_at, updated_at)"
            " VALUES (?, ?, 'bench', ?, ?, ?, ?)",
            (
                (
                    f"q{i // PER_MESSAGE}",
                    f"user{i}@example.net",
                    "queued" if i % 3 else "deferred",
                    at,
                    due(i),
                    at,
                )
                for i in range(start, stop)
            ),
        )
        conn.execute("COMMIT")
        conn.execute("BEGIN")
    conn.execute("COMMIT")
    conn.close()


async def measure(path: Path) -> dict[str, float]:
    store = SqliteStore(path)
    await store.open()
    lease, record = [], []
    try:
        for _ in range(ROUNDS):
            started = time.perf_counter()
            deliveries = await store.lease_due(NOW, BATCH, timedelta(minutes=15))
            lease.append(time.perf_counter() - started)
            assert len(deliveries) == BATCH, "the due recipients ran out"
            for delivery in deliveries:
                attempt = Attempt(
                    delivery.recipient.id,
                    NOW,
                    Outcome.DELIVERED,
                    "sink.test",
                    250,
                    "2.0.0",
                    "2.0.0 Ok",
                )
                started = time.perf_counter()
                await store.record(AttemptResult(attempt, State.DELIVERED))
                record.append(time.perf_counter() - started)
        due = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            await store.next_due_at()
            due.append(time.perf_counter() - started)
    finally:
        await store.close()
    return {
        "lease_ms": statistics.median(lease) * 1000,
        "record_ms": statistics.median(record) * 1000,
        "next_due_ms": statistics.median(due) * 1000,
        "peak_mb": peak_mb(),
    }


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    logsetup.configure("warning", "console")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        logsetup.configure("warning", "console")
        print(json.dumps(asyncio.run(measure(args.measure))))
        return

    sizes = [int(text) for text in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="postroom-scale-", dir=".") as tmp:
        paths = {}
        for size in sizes:
            paths[size] = Path(tmp) / f"queue-{size}.sqlite"
            started = time.perf_counter()
            fill(paths[size], size)
            took = time.perf_counter() - started
            print(f"{size:>9,} recipients filled in {took:.0f} s", flush=True)
        runs: dict[int, list[dict[str, float]]] = {size: [] for size in sizes}
        for _ in range(REPEATS):
            for size in sizes:
                out = subprocess.run(
                    [sys.executable, __file__, "--measure", str(paths[size])],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                runs[size].append(json.loads(out.splitlines()[-1]))
    results = {
        size: {
            key: statistics.median(run[key] for run in runs[size])
            for key in runs[size][0]
        }
        for size in sizes
    }
    for size, figures in results.items():
        print(
            f"{size:>9,} recipients: lease_due({BATCH}) "
            f"{figures['lease_ms']:6.2f} ms  record {figures['record_ms']:6.2f} ms"
            f"  next_due_at {figures['next_due_ms']:6.2f} ms"
            f"  peak {figures['peak_mb']:5.0f} MB",
            flush=True,
        )
    sizes = sorted(results)
    if len(sizes) >= 2:
        small, large = results[sizes[0]], results[sizes[-1]]
        print(
            f"{sizes[-1]:,} / {sizes[0]:,}: "
            + ", ".join(
                f"{name} {large[key] / small[key]:.2f}x"
                for name, key in (
                    ("lease_due", "lease_ms"),
                    ("record", "record_ms"),
                    ("next_due_at", "next_due_ms"),
                    ("peak memory", "peak_mb"),
                )
            )
        )


if __name__ == "__main__":
    main()
