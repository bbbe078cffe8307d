"""A whole relay in the test's own process, for the end-to-end tests.

Its listeners take loopback ports the system picks, mail for ``example.net``
goes to the scripted sink, and the workers poll every 50 ms, so a delivery
follows a submission within a moment of real time while the movable clock
decides everything that waits (retries, expiry, the daily scan).
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import yaml

from postroom.app import Relay
from postroom.clock import ManualClock
from postroom.config import parse_config
from postroom.queue.models import Recipient


def loopback_settings(folder: Path, sink_port: int, **extra: Any) -> dict[str, Any]:
    """Settings with the data directory in ``folder``, submission and web on
    loopback, ``example.net`` routed to the sink on ``sink_port``; each of
    ``extra`` adds a section or replaces one whole."""
    return {
        "hostname": "relay.test",
        "data_dir": str(folder / "var"),
        "submission": {"listen": "127.0.0.1:0"},
        "web": {"listen": "127.0.0.1:0"},
        "delivery": {
            "routes": {"example.net": f"127.0.0.1:{sink_port}"},
            "poll_interval": "50ms",
        },
        **extra,
    }


async def start_with_file(
    folder: Path, settings: dict[str, Any], clock: ManualClock
) -> tuple[Relay, Path]:
    """Write ``settings`` to ``postroom.yaml`` in ``folder``, for the command
    line to read, and start a relay on that file; the relay and the file."""
    config_file = folder / "postroom.yaml"
    config_file.write_text(yaml.safe_dump(settings))
    relay = Relay(parse_config(config_file.read_text()), clock=clock)
    await relay.start()
    return relay, config_file


async def recipient(relay: Relay, address: str) -> Recipient:
    """The one recipient row of ``address`` in the relay's store."""
    [row] = [r for r in await relay.store.recipients() if r.address == address]
    return row


def submit(port: int, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
    """Submit ``message`` over SMTP; the recipients refused, as smtplib says."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        return client.send_message(message)


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 10) -> None:
    """Wait in real time for background work (delivery) to make ``check`` true."""
    for _ in range(int(seconds / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the relay did not get there in time")
