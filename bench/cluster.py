"""End-to-end throughput of one, two and three nodes on one PostgreSQL
database, and of one node on SQLite.

Run with ``.venv/bin/python bench/cluster.py [--messages N] [--url URL]``
from the worktree. For each set-up it starts the daemons (real ``postroom
serve`` processes) and a receiving sink on loopback, submits N messages
round-robin over a few SMTP connections per node, and prints messages per
second from the first submission to the last delivery, with the share of
that time spent submitting. Each PostgreSQL run gets a fresh database on
the server at URL (default: the local one at 127.0.0.1:5432), dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.peers import postgres
from tests.peers.nodes import Node, Submitter, sequence
from tests.peers.sink import Sink

CLIENTS_PER_NODE = 4


async def run(nodes_wanted: int, url: str | None, total: int) -> tuple[float, float]:
    """Messages per second end to end, and the seconds spent submitting."""
    sink = Sink()
    sink_port = await sink.listen()
    with tempfile.TemporaryDirectory(prefix="postroom-bench-") as folder:
        nodes = [
            Node(Path(folder) / f"node{n}", url, sink_port, concurrency=50)
            for n in range(nodes_wanted)
        ]
        await asyncio.gather(*(node.start() for node in nodes))
        try:
            pending = collections.deque(range(total))
            started = time.monotonic()

            async def client(node: Node) -> None:
                submitter = Submitter(node.port)
                while pending:
                    seq = pending.popleft()
                    if await submitter.send(seq) != 250:
                        pending.append(seq)
                await submitter.close()

            await asyncio.gather(
                *(client(node) for node in nodes for _ in range(CLIENTS_PER_NODE))
            )
            submitted = time.monotonic() - started
            for _ in range(100_000):
                if len({sequence(m.data) for m in sink.messages}) >= total:
                    break
                await asyncio.sleep(0.02)
            elapsed = time.monotonic() - started
        finally:
            for node in nodes:
                await node.stop()
            await sink.close()
    return total / elapsed, submitted


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--url", default=postgres.SHARED_URL)
    args = parser.parse_args()

    rate, submitting = await run(1, None, args.messages)
    print(f"sqlite     1 node : {rate:7.1f} msg/s  (submitting {submitting:.1f}s)")
    for count in (1, 2, 3):
        url = await postgres.create_database(args.url)
        try:
            rate, submitting = await run(count, url, args.messages)
        finally:
            await postgres.drop_database(url)
        print(
            f"postgresql {count} node{'s' if count > 1 else ' '}: "
            f"{rate:7.1f} msg/s  (submitting {submitting:.1f}s)"
        )


if __name__ == "__main__":
    asyncio.run(main())
