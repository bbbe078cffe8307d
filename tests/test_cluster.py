"""Several real nodes on one PostgreSQL database deliver every accepted
message, once; a node killed with -9 costs at most its in-flight
deliveries in repeats; a database outage costs 451s, never a lost message.

Every node is a `postroom serve` process with a submission port of its own;
the receiving server is a sink on loopback in this process. Message
numbers travel in an ``X-Seq`` header so the sink can tell repeats.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.peers import postgres
from tests.peers.dnsserver import free_port
from tests.peers.nodes import Node, Submitter, sequence
from tests.peers.sink import Sink

# A few thousand messages: on two cores SMTP round trips on loopback, not
# the database, bound the rate, and each test still ends within a minute
# or so (the three together took about 90 s on a busy machine).
TOTAL = 2000
CLIENTS_PER_NODE = 4
CONCURRENCY = 20


async def submit_round_robin(
    nodes: list[Node], seqs: Iterator[int], local: str = "ok"
) -> set[int]:
    """Submit ``seqs`` over CLIENTS_PER_NODE connections to each node in
    turn; a message a node fails to take goes to the next client. The
    message numbers answered 250."""
    pending: collections.deque[int] = collections.deque(seqs)
    accepted: set[int] = set()

    async def client(node: Node) -> None:
        submitter = Submitter(node.port)
        while pending:
            seq = pending.popleft()
            code = await submitter.send(seq, local)
            if code == 250:
                accepted.add(seq)
                continue
            pending.append(seq)  # no 250: the client sends it again elsewhere
            if code == 0 and node.process is not None and node.process.poll():
                break  # this node is gone
        await submitter.close()

    clients = [client(node) for node in nodes for _ in range(CLIENTS_PER_NODE)]
    await asyncio.gather(*clients)
    return accepted


async def wait_for_delivery(sink: Sink, wanted: set[int], seconds: float) -> None:
    for _ in range(int(seconds / 0.1)):
        if wanted <= {sequence(m.data) for m in sink.messages}:
            return
        await asyncio.sleep(0.1)


def arrivals(sink: Sink) -> collections.Counter[int]:
    return collections.Counter(sequence(m.data) for m in sink.messages)


@pytest.fixture
async def cluster(tmp_path: Path, pg_url: str, sink: Sink) -> AsyncIterator[list[Node]]:
    """Three nodes, not yet started, on one fresh database."""
    sink_port = await sink.listen()
    nodes = [
        Node(tmp_path / f"node{n}", pg_url, sink_port, concurrency=CONCURRENCY)
        for n in range(3)
    ]
    yield nodes
    for node in nodes:
        await node.stop()


@pytest.mark.timeout(90)
async def test_three_nodes_deliver_every_message_exactly_once(
    cluster: list[Node], sink: Sink
) -> None:
    await asyncio.gather(*(node.start() for node in cluster))

    accepted = await submit_round_robin(cluster, iter(range(TOTAL)))
    await wait_for_delivery(sink, accepted, 30)
    codes = [await node.stop() for node in cluster]

    seen = arrivals(sink)
    assert len(accepted) == TOTAL
    assert set(seen) == accepted
    assert max(seen.values()) == 1  # nobody delivered another node's recipient
    assert codes == [0, 0, 0]


@pytest.mark.timeout(90)
async def test_a_node_killed_mid_run_loses_nothing_and_repeats_only_in_flight(
    cluster: list[Node], sink: Sink
) -> None:
    await asyncio.gather(*(node.start() for node in cluster))
    victim = cluster[0]
    seqs = iter(range(TOTAL))

    first = await submit_round_robin(cluster, itertools.islice(seqs, TOTAL // 2))
    # Let deliveries get going on every node, then kill one mid-flight.
    for _ in range(3000):
        if len(sink.messages) >= TOTAL // 4:
            break
        await asyncio.sleep(0.01)
    victim.kill()
    rest = await submit_round_robin(cluster[1:], seqs)
    accepted = first | rest
    await wait_for_delivery(sink, accepted, 30)

    seen = arrivals(sink)
    repeats = sum(count - 1 for count in seen.values())
    # A repeat is a delivery the victim had leased when it died (at most one
    # batch, its delivery.concurrency), or a message it had committed but not
    # yet answered 250 to, which the client then sent elsewhere (at most one
    # per client connection).
    bound = CONCURRENCY + CLIENTS_PER_NODE
    assert len(accepted) == TOTAL
    assert accepted <= set(seen)
    assert repeats <= bound, f"{repeats} repeats, more than {bound}"


@pytest.fixture
async def private_server() -> AsyncIterator[postgres.PrivateCluster]:
    """A PostgreSQL server of this test's own, which it may stop."""
    problem = postgres.cluster_problem()
    if problem is not None:
        pytest.skip(problem)
    server = postgres.PrivateCluster(free_port())
    try:
        await asyncio.to_thread(server.init)
        await asyncio.to_thread(server.start)
        yield server
    finally:
        await asyncio.to_thread(server.remove)


@pytest.mark.timeout(90)
async def test_a_database_outage_answers_451_and_delivery_resumes_after(
    private_server: postgres.PrivateCluster, tmp_path: Path, sink: Sink
) -> None:
    sink_port = await sink.listen()
    url = await postgres.create_database(private_server.url)
    nodes = [
        Node(tmp_path / f"node{n}", url, sink_port, concurrency=CONCURRENCY)
        for n in range(2)
    ]
    await asyncio.gather(*(node.start() for node in nodes))
    try:
        # Slow recipients, so deliveries are in flight when the server stops.
        before = await submit_round_robin(nodes, iter(range(150)), "slow")
        await asyncio.to_thread(private_server.stop)

        during = [Submitter(node.port) for node in nodes]
        codes = [await during[seq % 2].send(seq, "slow") for seq in range(1000, 1020)]
        for submitter in during:
            await submitter.close()

        await asyncio.to_thread(private_server.start)
        after = await submit_round_robin(nodes, iter(range(2000, 2150)), "slow")
        wanted = before | after
        await wait_for_delivery(sink, wanted, 40)
        exits = [await node.stop() for node in nodes]
    finally:
        for node in nodes:
            node.kill()

    seen = arrivals(sink)
    assert len(before) == 150
    assert set(codes) == {451}  # no 250 while nothing can be stored
    assert not set(seen) & set(range(1000, 1020))
    assert len(after) == 150  # submission came back by itself
    assert wanted <= set(seen)  # everything accepted was delivered
    assert exits == [0, 0]
