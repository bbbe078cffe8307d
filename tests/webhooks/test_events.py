"""Webhook event bodies, their signature, and the retry waits."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

from postroom.clock import ManualClock
from postroom.config.schema import WebhookConfig
from postroom.queue.models import Attempt, AttemptResult, Outcome, Recipient, State
from postroom.webhooks.events import EventOutbox, sign, verify
from postroom.webhooks.sender import LONGEST_WAIT, backoff

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SECRET = "sixteen-chars-or-more"


def recipient() -> Recipient:
    return Recipient(
        id=7,
        queue_id="q1",
        address="ada@example.net",
        display_name="Ada",
        campaign="spring",
        state=State.QUEUED,
        attempts=0,
        accepted_at=NOW,
        next_attempt_at=NOW,
        updated_at=NOW,
    )


def hooks() -> list[WebhookConfig]:
    return [
        WebhookConfig(url="http://a.test/hook", secret=SECRET),
        WebhookConfig(url="http://b.test/hook", secret=SECRET, events=("bounced",)),
    ]


def test_an_event_goes_to_each_endpoint_that_asked_for_it_under_one_id() -> None:
    outbox = EventOutbox(hooks(), ManualClock(NOW))
    attempt = Attempt(7, NOW, Outcome.DEFERRED, "mx", 451, "4.7.1", "451 later")
    result = AttemptResult(
        attempt, State.DEFERRED, next_attempt_at=NOW + timedelta(minutes=5)
    )

    stored = outbox.attach(recipient(), result)

    [event] = stored.events
    body = json.loads(event.body)
    assert event.endpoint == "http://a.test/hook"
    assert body["id"] == event.event_id
    assert body["type"] == "deferred"
    assert body["time"] == "2026-01-05T09:00:00.000000Z"
    assert (body["recipient"], body["campaign"], body["queue_id"]) == (
        "ada@example.net",
        "spring",
        "q1",
    )
    assert (body["code"], body["status"], body["text"]) == (451, "4.7.1", "451 later")
    assert body["next_attempt_at"] == "2026-01-05T09:05:00.000000Z"


def test_an_invalid_recipient_is_announced_as_bounced_to_both_endpoints() -> None:
    outbox = EventOutbox(hooks(), ManualClock(NOW))
    attempt = Attempt(7, NOW, Outcome.INVALID, None, None, "5.1.2", "no such domain")

    stored = outbox.attach(recipient(), AttemptResult(attempt, State.INVALID))

    assert [e.endpoint for e in stored.events] == [
        "http://a.test/hook",
        "http://b.test/hook",
    ]
    assert {json.loads(e.body)["type"] for e in stored.events} == {"bounced"}
    assert len({e.event_id for e in stored.events}) == 1


def test_without_endpoints_nothing_is_attached() -> None:
    outbox = EventOutbox([], ManualClock(NOW))
    attempt = Attempt(7, NOW, Outcome.DELIVERED, "mx", 250, "2.0.0", "250 ok")
    result = AttemptResult(attempt, State.DELIVERED)

    assert outbox.attach(recipient(), result) is result


def test_a_signature_checks_out_only_with_the_same_secret_time_and_body() -> None:
    header = sign(SECRET, 1767603600, b'{"a":1}')

    assert header.startswith("t=1767603600,v1=")
    assert verify(SECRET, header, b'{"a":1}') == 1767603600
    assert verify(SECRET, header, b'{"a":2}') is None
    assert verify("another-secret-here", header, b'{"a":1}') is None
    assert (
        verify(SECRET, header.replace("t=1767603600", "t=1767603601"), b'{"a":1}')
        is None
    )
    assert verify(SECRET, "garbage", b'{"a":1}') is None


def test_retry_waits_double_from_ten_seconds_up_to_an_hour() -> None:
    waits = [backoff(n) for n in range(1, 12)]

    assert waits[:3] == [timedelta(seconds=s) for s in (10, 20, 40)]
    assert waits[-1] == LONGEST_WAIT
    assert all(a <= b for a, b in itertools.pairwise(waits))
