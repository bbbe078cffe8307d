"""The relay's main path end to end, in one process with a movable clock.

A real SMTP client (smtplib) submits to the running relay; a receiving
server on loopback answers per recipient; the command line reads the
results back from the same store.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from postroom.app import Relay
from postroom.clock import ManualClock
from postroom.config import parse_config
from postroom.errors import StorageError
from postroom.queue.models import State
from tests.peers.inprocess import (
    loopback_settings,
    recipient,
    start_with_file,
    submit,
    until,
)
from tests.peers.sink import Sink

SCHEDULE = [timedelta(minutes=m) for m in (5, 10, 20, 40, 60, 120, 240)]


@pytest.fixture
async def relay(
    tmp_path: Path, sink: Sink, clock: ManualClock
) -> AsyncIterator[tuple[Relay, Path]]:
    """The relay on its default settings but for loopback ports and a route
    to the sink; yields it with the config file the CLI should read."""
    settings = loopback_settings(tmp_path, await sink.listen())
    running, config_file = await start_with_file(tmp_path, settings, clock)
    yield running, config_file
    await running.stop()


def invitation() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Survey Team <surveys@example.org>"
    message["To"] = (
        "Ada Lovelace <ok@example.net>, Bob Later <later@example.net>, "
        "Nora User <nouser@example.net>"
    )
    message["Subject"] = "Your invitation"
    message["X-Campaign-ID"] = "spring-survey"
    message.set_content("Please take our survey.")
    return message


def postroom(config_file: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "postroom", *args, "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


async def test_one_invitation_is_delivered_deferred_and_bounced_with_its_codes(
    relay: tuple[Relay, Path], sink: Sink
) -> None:
    running, config_file = relay

    refused = await asyncio.to_thread(submit, running.submission.port, invitation())

    async def all_tried() -> bool:
        rows = await running.store.recipients()
        return len(rows) == 3 and all(r.attempts == 1 for r in rows)

    await until(all_tried)
    stats = json.loads(
        postroom(config_file, "stats", "--campaign", "spring-survey", "--json")
    )
    bounces = list(csv.reader(io.StringIO(postroom(config_file, "export", "bounces"))))
    deferrals = list(
        csv.reader(io.StringIO(postroom(config_file, "export", "deferrals")))
    )

    assert refused == {}
    assert [m.rcpt for m in sink.messages] == ["ok@example.net"]
    assert b"X-Campaign-ID" not in sink.messages[0].data
    assert sink.messages[0].data.startswith(b"Received: from ")
    assert stats == {
        "campaign": "spring-survey",
        "sent_ok": 1,
        "bounced": 1,
        "invalid": 0,
        "deferred": 1,
        "queued": 0,
        "suppressed": 0,
        "unsubscribed": 0,
        "complaints": 0,
    }
    assert bounces[0] == [
        "Email address", "Last Name", "First Name", "SMTP code",
        "Class code", "Subject code", "Detail code", "Timestamp",
    ]  # fmt: skip
    assert [row[:7] for row in bounces[1:]] == [
        ["nouser@example.net", "User", "Nora", "550", "5", "1", "1"]
    ]
    assert bounces[1][7].endswith("Z")
    assert [row[:7] for row in deferrals[1:]] == [
        ["later@example.net", "Later", "Bob", "451", "4", "7", "1"]
    ]
    nouser = await recipient(running, "nouser@example.net")
    [attempt] = await running.store.attempts(nouser.id)
    assert attempt.text.count("5.1.1") == 2  # both lines of the reply are kept


async def test_a_deferral_is_retried_on_schedule_and_given_up_after_4_5_days(
    relay: tuple[Relay, Path], clock: ManualClock
) -> None:
    running, config_file = relay
    message = invitation()
    del message["To"]
    message["To"] = "Bob Later <later@example.net>"
    accepted_at = clock.now()
    await asyncio.to_thread(submit, running.submission.port, message)

    async def tried_once() -> bool:
        return (await recipient(running, "later@example.net")).attempts == 1

    await until(tried_once)
    waits: list[timedelta] = []
    while True:
        row = await recipient(running, "later@example.net")
        if row.state is not State.DEFERRED or row.next_attempt_at is None:
            break
        tried = row.attempts
        waits.append(row.next_attempt_at - clock.now())
        clock.set(row.next_attempt_at)
        running.engine.wake()

        async def tried_again(before: int = tried) -> bool:
            current = await recipient(running, "later@example.net")
            return current.attempts > before

        await until(tried_again)

    final = await recipient(running, "later@example.net")
    stats = json.loads(postroom(config_file, "stats", "--json"))
    bounces = list(csv.reader(io.StringIO(postroom(config_file, "export", "bounces"))))

    assert waits[:7] == SCHEDULE
    assert all(wait == SCHEDULE[-1] for wait in waits[7:-1])
    assert accepted_at + timedelta(days=4.5) - clock.now() == timedelta(0)
    assert final.state is State.EXPIRED
    assert final.last_code == 451
    assert stats["bounced"] == 1
    assert stats["deferred"] == 0
    assert [row[:7] for row in bounces[1:]] == [
        ["later@example.net", "Later", "Bob", "451", "4", "7", "1"]
    ]
    assert bounces[1][7].startswith(
        (accepted_at + timedelta(days=4.5)).strftime("%Y-%m-%dT%H:%M")
    )


async def test_a_second_relay_on_the_same_data_directory_refuses_to_start(
    relay: tuple[Relay, Path], tmp_path: Path, clock: ManualClock
) -> None:
    running, config_file = relay
    second = Relay(parse_config(config_file.read_text()), clock=clock)

    with pytest.raises(StorageError, match=r"another postroom .* is running"):
        await second.start()

    # The first relay's store and listener are untouched.
    assert await running.store.recipients() == []
    assert running.submission.port > 0
