"""The delivery engine end to end: real SQLite store, DNS server and sink."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from postroom.clock import ManualClock
from postroom.config import Config
from postroom.config.schema import DeliveryConfig, DnsConfig
from postroom.errors import StorageError
from postroom.queue.models import (
    Accepted,
    Delivery,
    NewMessage,
    NewRecipient,
    Outcome,
    State,
)
from postroom.queue.open import open_store
from postroom.queue.sqlite import SqliteStore
from postroom.queue.store import Store
from postroom.relay.worker import DeliveryEngine
from tests.peers.dnsserver import DnsServer, free_port
from tests.peers.sink import Sink

RAW = b"From: survey@example.org\r\nSubject: Your opinion\r\n\r\nPlease answer.\r\n"


@pytest.fixture
async def store(config: Config) -> AsyncIterator[Store]:
    opened = open_store(config)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def mx_port(dns_server: DnsServer, sink: Sink) -> int:
    """A sink port that example.net's MX host answers on."""
    port = await sink.listen()
    dns_server.add("example.net", "MX", "10 mx1.example.net.")
    dns_server.add("mx1.example.net", "A", "127.0.0.1")
    return port


def _engine_config(
    config: Config, dns_server: DnsServer, smtp_port: int, **delivery: object
) -> Config:
    settings = DeliveryConfig(
        dns=DnsConfig(
            nameservers=("127.0.0.1",),
            port=dns_server.port,
            timeout=timedelta(seconds=1),
        ),
        smtp_port=smtp_port,
        connect_timeout=timedelta(seconds=2),
        command_timeout=timedelta(seconds=5),
        **delivery,  # type: ignore[arg-type]
    )
    return config.model_copy(update={"hostname": "relay.test", "delivery": settings})


@pytest.fixture
async def engine(
    config: Config,
    store: Store,
    clock: ManualClock,
    dns_server: DnsServer,
    mx_port: int,
) -> AsyncIterator[DeliveryEngine]:
    started = DeliveryEngine(_engine_config(config, dns_server, mx_port), store, clock)
    yield started
    await started.stop()


async def _accept(store: Store, clock: ManualClock, *addresses: str) -> Accepted:
    message = NewMessage(
        mail_from="bounces+t@example.org",
        recipients=tuple(NewRecipient(address) for address in addresses),
        raw=RAW,
        campaign="survey-7",
        submitted_by=None,
        client_address="127.0.0.1",
    )
    return await store.accept(message, clock.now())


async def _states(store: Store, accepted: Accepted) -> dict[str, State]:
    recipients = await store.recipients(queue_id=accepted.queue_id)
    return {recipient.address: recipient.state for recipient in recipients}


async def test_one_message_is_delivered_deferred_and_bounced_per_recipient(
    engine: DeliveryEngine, store: Store, clock: ManualClock, sink: Sink
) -> None:
    accepted = await _accept(
        store, clock, "ok@example.net", "later@example.net", "nouser@example.net"
    )

    made = await engine.run_once()

    assert made == 3
    assert await _states(store, accepted) == {
        "ok@example.net": State.DELIVERED,
        "later@example.net": State.DEFERRED,
        "nouser@example.net": State.BOUNCED,
    }
    assert [message.rcpt for message in sink.messages] == ["ok@example.net"]
    assert sink.messages[0].data == RAW
    _, later_id, nouser_id = accepted.recipient_ids

    [deferral] = await store.attempts(later_id)
    assert (deferral.outcome, deferral.code, deferral.status) == (
        Outcome.DEFERRED,
        451,
        "4.7.1",
    )
    assert deferral.mx_host == "mx1.example.net"
    [later] = await store.recipients(state=State.DEFERRED)
    assert later.next_attempt_at == clock.now() + timedelta(minutes=5)

    [refusal] = await store.attempts(nouser_id)
    assert (refusal.outcome, refusal.code, refusal.status) == (
        Outcome.BOUNCED,
        550,
        "5.1.1",
    )
    assert "does not exist" in refusal.text
    assert "double-check the recipient's address" in refusal.text
    [bounce] = await store.export_bounces("survey-7", None, None)
    assert bounce.address == "nouser@example.net"
    assert (bounce.code, bounce.status) == (550, "5.1.1")


async def test_deferred_recipient_is_retried_on_schedule_then_expires(
    engine: DeliveryEngine, store: Store, clock: ManualClock
) -> None:
    accepted = await _accept(store, clock, "later@example.net")
    start = clock.now()

    await engine.run_once()
    waits = []
    for _ in range(100):
        due = await store.next_due_at()
        if due is None:
            break
        waits.append(due - clock.now())
        clock.set(due)
        assert await engine.run_once() == 1

    assert waits[:7] == [
        timedelta(minutes=minutes) for minutes in (5, 10, 20, 40, 60, 120, 240)
    ]
    assert set(waits[7:-1]) == {timedelta(hours=4)}
    assert clock.now() == start + timedelta(days=4.5)
    assert await _states(store, accepted) == {"later@example.net": State.EXPIRED}
    attempts = await store.attempts(accepted.recipient_ids[0])
    assert len(attempts) == len(waits) + 1
    [bounce] = await store.export_bounces("survey-7", None, None)
    assert (bounce.code, bounce.status) == (451, "4.7.1")
    assert "Greylisted" in bounce.text


async def test_recipients_at_one_destination_share_one_connection(
    config: Config,
    store: Store,
    clock: ManualClock,
    dns_server: DnsServer,
    sink: Sink,
    mx_port: int,
) -> None:
    settings = _engine_config(config, dns_server, mx_port, per_domain_concurrency=1)
    engine = DeliveryEngine(settings, store, clock)
    await _accept(store, clock, *(f"ok+{n}@example.net" for n in range(4)))

    await engine.run_once()
    await _accept(store, clock, "ok+later@example.net")
    await engine.run_once()
    await engine.stop()

    assert len(sink.messages) == 5
    assert len(sink.connections) == 1


async def test_per_domain_concurrency_is_respected(
    config: Config,
    store: Store,
    clock: ManualClock,
    dns_server: DnsServer,
    sink: Sink,
    mx_port: int,
) -> None:
    settings = _engine_config(config, dns_server, mx_port, per_domain_concurrency=2)
    engine = DeliveryEngine(settings, store, clock)
    await _accept(store, clock, *(f"slow+{n}@example.net" for n in range(6)))

    made = await engine.run_once()
    await engine.stop()

    assert made == 6
    assert len(sink.messages) == 6
    assert sink.most_open(mx_port) == 2


async def test_refused_connections_on_every_host_defer(
    config: Config, store: Store, clock: ManualClock, dns_server: DnsServer
) -> None:
    dns_server.add("down.example.net", "MX", "10 a.down.example.net.", "20 b.down.")
    dns_server.add("a.down.example.net", "A", "127.0.0.1")
    dns_server.add("b.down", "A", "127.0.0.2")
    engine = DeliveryEngine(
        _engine_config(config, dns_server, free_port()), store, clock
    )
    accepted = await _accept(store, clock, "ok@down.example.net")

    await engine.run_once()
    await engine.stop()

    [attempt] = await store.attempts(accepted.recipient_ids[0])
    assert attempt.outcome is Outcome.DEFERRED
    assert attempt.code is None
    assert await _states(store, accepted) == {"ok@down.example.net": State.DEFERRED}


async def test_domain_trouble_decides_invalid_or_deferred(
    engine: DeliveryEngine, store: Store, clock: ManualClock, dns_server: DnsServer
) -> None:
    dns_server.add("nomail.example.net", "MX", "0 .")
    dns_server.add("flaky.example.net", "MX", "10 mx1.example.net.")
    dns_server.servfail.add("flaky.example.net")
    accepted = await _accept(
        store,
        clock,
        "a@missing.example.net",
        "b@nomail.example.net",
        "c@flaky.example.net",
    )

    await engine.run_once()

    assert await _states(store, accepted) == {
        "a@missing.example.net": State.INVALID,
        "b@nomail.example.net": State.INVALID,
        "c@flaky.example.net": State.DEFERRED,
    }
    missing_id, nomail_id, _ = accepted.recipient_ids
    [missing] = await store.attempts(missing_id)
    [nomail] = await store.attempts(nomail_id)
    assert (missing.outcome, missing.code, missing.status) == (
        Outcome.INVALID,
        None,
        "5.1.2",
    )
    assert nomail.status == "5.1.10"
    bounces = await store.export_bounces("survey-7", None, None)
    assert sorted((row.address, row.status) for row in bounces) == [
        ("a@missing.example.net", "5.1.2"),
        ("b@nomail.example.net", "5.1.10"),
    ]


async def test_run_delivers_when_woken_and_stops_cleanly(
    engine: DeliveryEngine, store: Store, clock: ManualClock, sink: Sink
) -> None:
    runner = asyncio.create_task(engine.run())
    await asyncio.sleep(0.05)

    accepted = await _accept(store, clock, "ok@example.net")
    engine.wake()
    for _ in range(100):
        if sink.messages:
            break
        await asyncio.sleep(0.02)
    await engine.stop()
    await asyncio.wait_for(runner, timeout=2)

    assert await _states(store, accepted) == {"ok@example.net": State.DELIVERED}


async def test_stop_closes_idle_connections(
    engine: DeliveryEngine, store: Store, clock: ManualClock, sink: Sink
) -> None:
    await _accept(store, clock, "ok@example.net")
    await engine.run_once()
    assert sink.connections[0].open

    await engine.stop()
    await asyncio.sleep(0.05)

    assert not sink.connections[0].open


class _BrokenStore(SqliteStore):
    """A store whose disk has failed: every lease raises, as on a full disk."""

    lease_calls = 0

    async def lease_due(
        self, now: datetime, limit: int, lease: timedelta
    ) -> list[Delivery]:
        self.lease_calls += 1
        raise StorageError("disk I/O error")


async def test_an_unavailable_store_pauses_delivery_with_a_growing_wait(
    config: Config, clock: ManualClock
) -> None:
    store = _BrokenStore(config.sqlite_path)
    config.data_dir.mkdir(parents=True)
    await store.open()
    engine = DeliveryEngine(config, store, clock)

    running = asyncio.create_task(engine.run())
    await asyncio.sleep(3.5)
    await engine.stop()
    await running
    await store.close()

    # Tries at 0 s, 1 s and 3 s (waits of 1 s, 2 s, then 4 s): three in
    # 3.5 s, two on a machine slow enough to push the third past the end,
    # where a busy loop would have made thousands.
    assert 2 <= store.lease_calls <= 3
