"""The mailto half of List-Unsubscribe, end to end.

The relay stamps both unsubscribe links; the mailto link points at the
inbound listener's unsubscribe address on the bounce domain. A recipient's
mail client that sends to the captured address unsubscribes that person
from that campaign, and only that campaign.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path

import pytest
import yaml

from postroom.app import Relay
from postroom.clock import ManualClock
from postroom.config import parse_config
from postroom.queue.models import State
from tests.peers.inprocess import loopback_settings, until
from tests.peers.sink import Sink
from tests.test_bounce_path import send_report
from tests.test_unsubscribe_path import deliver, invitation, submit_to

BOUNCE_DOMAIN = "bounces.example.org"


@pytest.fixture
async def relay(tmp_path: Path, sink: Sink, clock: ManualClock) -> AsyncIterator[Relay]:
    settings = loopback_settings(
        tmp_path,
        await sink.listen(),
        inbound={"listen": "127.0.0.1:0", "bounce_domain": BOUNCE_DOMAIN},
        unsubscribe={"base_url": "http://127.0.0.1/unsubscribe"},
    )
    running = Relay(parse_config(yaml.safe_dump(settings)), clock=clock)
    await running.start()
    yield running
    await running.stop()


def mailto(raw: bytes) -> str:
    header = BytesParser(policy=default_policy).parsebytes(raw)["List-Unsubscribe"]
    [address] = re.findall(r"<mailto:([^>]+)>", str(header))
    return address


async def test_mail_to_the_captured_mailto_link_unsubscribes_from_that_campaign(
    relay: Relay, sink: Sink
) -> None:
    copy = await deliver(relay, sink, invitation("spring-survey"))
    address = mailto(copy)
    assert relay.inbound is not None

    await asyncio.to_thread(
        send_report,
        relay.inbound.port,
        address,
        b"From: ok@example.net\r\nSubject: unsubscribe\r\n\r\n\r\n",
        "ok@example.net",
    )

    async def unsubscribed() -> bool:
        return (await relay.store.stats("spring-survey")).unsubscribed == 1

    await until(unsubscribed)
    other_campaign = await deliver(relay, sink, invitation("autumn-survey"))
    again = invitation("spring-survey")
    again.replace_header("Message-ID", "<inv-2@example.org>")
    await asyncio.to_thread(submit_to, relay.submission.port, again, "ok@example.net")
    rows = await relay.store.recipients(campaign="spring-survey")

    assert address.startswith("unsubscribe+")
    assert address.endswith(f"@{BOUNCE_DOMAIN}")
    assert [r.state for r in rows] == [State.DELIVERED, State.SUPPRESSED]
    assert b"autumn-survey" not in other_campaign  # the header is stripped
    assert (await relay.store.stats("autumn-survey")).sent_ok == 1
