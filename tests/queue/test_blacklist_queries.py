"""The store's part of the daily blacklist scan, checked against every
backend: the refusals of a day and the once-a-day claim on its report."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from postroom.clock import ManualClock
from postroom.queue.models import Attempt, AttemptResult, Outcome, State
from postroom.queue.store import Store
from tests.queue.conftest import Backend, bounce, deliver, message

HOLD = timedelta(minutes=30)


async def test_failures_are_the_deferred_and_bounced_attempts_and_dsns_of_the_window(
    store: Store, clock: ManualClock
) -> None:
    day = clock.now()
    accepted = await store.accept(
        message("a@x.example", "b@x.example", "c@x.example"), day
    )
    a, b, c = accepted.recipient_ids
    refused = Attempt(b, day, Outcome.BOUNCED, "mx.x.example", 554, "5.7.1", "blocked")
    await deliver(store, a, day)
    await store.record(
        AttemptResult(
            refused, State.BOUNCED, bounce=bounce(b, "b@x.example", day, None)
        )
    )
    await store.record(
        AttemptResult(
            Attempt(c, day, Outcome.DEFERRED, "mx.x.example", 421, "4.7.0", "later"),
            State.DEFERRED,
            next_attempt_at=day + timedelta(minutes=5),
        )
    )
    dsn = replace(
        bounce(a, "a@x.example", day + timedelta(hours=1), None), source="dsn"
    )
    await store.add_bounce(dsn)
    await store.add_bounce(replace(dsn, at=day + timedelta(days=1)))

    found = await store.failures(day, day + timedelta(days=1))

    assert [(f.source, f.address, f.code) for f in found] == [
        ("attempt", "b@x.example", 554),
        ("attempt", "c@x.example", 421),
        ("dsn", "a@x.example", 550),
    ]
    assert found[0].mx_host == "mx.x.example"
    assert found[0].queue_id == accepted.queue_id
    assert {f.campaign for f in found} == {"survey-1"}
    assert await store.failures(day - timedelta(days=1), day) == []


async def test_a_report_is_claimed_by_one_holder_and_sent_once_unless_forced(
    store: Store, clock: ManualClock
) -> None:
    now = clock.now()

    first = await store.claim_report("2026-01-04", "one", now, HOLD, force=False)
    rival = await store.claim_report("2026-01-04", "two", now, HOLD, force=False)
    await store.finish_report(
        "2026-01-04", "one", now, sent=True, queue_id="Q1", summary="3 blocked"
    )
    again = await store.claim_report("2026-01-04", "two", now, HOLD, force=False)
    forced = await store.claim_report("2026-01-04", "two", now, HOLD, force=True)
    record = await store.daily_report("2026-01-04")

    assert (first, rival, again, forced) == (True, False, False, True)
    assert record is not None
    assert (record.queue_id, record.summary, record.sent_at) == ("Q1", "3 blocked", now)
    assert await store.daily_report("2026-01-03") is None


async def test_a_claim_given_up_unsent_or_run_out_lets_the_next_runner_in(
    store: Store, clock: ManualClock
) -> None:
    now = clock.now()
    await store.claim_report("2026-01-04", "one", now, HOLD, force=False)
    await store.finish_report(
        "2026-01-04", "one", now, sent=False, queue_id=None, summary=""
    )
    released = await store.claim_report("2026-01-04", "two", now, HOLD, force=False)
    stale = await store.claim_report(
        "2026-01-04", "three", now + HOLD + timedelta(seconds=1), HOLD, force=False
    )

    assert released is True
    assert stale is True
    assert await store.daily_report("2026-01-04") is None


async def test_a_sent_report_is_remembered_across_reopen(
    backend: Backend, clock: ManualClock
) -> None:
    store = await backend.open()
    await store.claim_report("2026-01-04", "one", clock.now(), HOLD, force=False)
    await store.finish_report(
        "2026-01-04", "one", clock.now(), sent=True, queue_id=None, summary="clear"
    )
    await store.close()

    reopened = await backend.open()

    assert (await reopened.daily_report("2026-01-04")) is not None
    assert not await reopened.claim_report(
        "2026-01-04", "two", clock.now(), HOLD, force=False
    )
