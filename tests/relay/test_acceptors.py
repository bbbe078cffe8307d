"""Acceptor processes sharing the submission port (submission.processes)."""

from __future__ import annotations

import asyncio
import os
import smtplib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from postroom.app import Relay
from postroom.config import Config
from tests.peers.sink import Sink

MESSAGES = 30


@pytest.fixture
async def relay(tmp_path: Path, sink: Sink) -> AsyncIterator[Relay]:
    """Two accepting processes; the engine polls only every 30 s, so a
    message is delivered at once only when its acceptor wakes the engine."""
    sink_port = await sink.listen()
    config = Config.model_validate(
        {
            "hostname": "relay.test",
            "data_dir": str(tmp_path / "var"),
            "submission": {"listen": "127.0.0.1:0", "processes": 2},
            "web": {"listen": "127.0.0.1:0"},
            "delivery": {
                "routes": {"example.net": f"127.0.0.1:{sink_port}"},
                "poll_interval": "30s",
            },
            "logging": {"level": "warning"},
        }
    )
    running = Relay(config)
    await running.start()
    yield running
    await running.stop()


def submit(port: int, seq: int) -> None:
    message = EmailMessage()
    message["From"] = "surveys@example.org"
    message["To"] = f"user{seq}@example.net"
    message["Subject"] = f"Invitation {seq}"
    message.set_content("Please take our survey.")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.send_message(message)


async def arrived(sink: Sink, count: int) -> int:
    for _ in range(200):
        if len(sink.messages) >= count:
            break
        await asyncio.sleep(0.05)
    return len(sink.messages)


async def test_messages_over_many_connections_are_all_delivered(
    relay: Relay, sink: Sink
) -> None:
    port = relay.submission.port

    await asyncio.gather(
        *(asyncio.to_thread(submit, port, seq) for seq in range(MESSAGES))
    )

    assert await arrived(sink, MESSAGES) == MESSAGES


async def test_a_message_an_acceptor_stored_is_delivered_without_waiting_for_a_poll(
    relay: Relay, sink: Sink
) -> None:
    # With the main process's listener closed, only the acceptor answers.
    port = relay.submission.port
    await relay.submission.stop()

    await asyncio.to_thread(submit, port, 1)

    assert await arrived(sink, 1) == 1


async def test_stopping_the_relay_ends_its_acceptor_processes(
    tmp_path: Path, sink: Sink
) -> None:
    config = Config.model_validate(
        {
            "hostname": "relay.test",
            "data_dir": str(tmp_path / "var"),
            "submission": {"listen": "127.0.0.1:0", "processes": 3},
            "web": {"listen": "127.0.0.1:0"},
            "logging": {"level": "warning"},
        }
    )
    running = Relay(config)
    await running.start()
    assert running.acceptors is not None
    pids = running.acceptors.pids

    await running.stop()

    assert [_alive(pid) for pid in pids] == [False, False]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
