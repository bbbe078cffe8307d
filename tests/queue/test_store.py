"""The store interface, checked against every backend through `store`."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from postroom.clock import ManualClock
from postroom.errors import NotFound
from postroom.queue.models import (
    Attempt,
    AttemptResult,
    Outcome,
    State,
)
from postroom.queue.store import GLOBAL_SCOPE, PurgeCounts, Store
from tests.queue.conftest import (
    Backend,
    attempt,
    bounce,
    defer,
    deliver,
    message,
    reject,
)

LEASE = timedelta(minutes=15)


# -- accept, lease, record -------------------------------------------------


async def test_accepted_message_is_leased_recorded_and_inspectable(
    store: Store, clock: ManualClock
) -> None:
    now = clock.now()
    raw = b"Subject: invitation\r\n\r\nPlease answer.\r\n"

    accepted = await store.accept(message("a@x.example", "b@y.example", raw=raw), now)
    leased = await store.lease_due(now, 10, LEASE)

    assert len(accepted.recipient_ids) == 2
    assert accepted.suppressed == ()
    assert [d.recipient.address for d in leased] == ["a@x.example", "b@y.example"]
    assert {d.mail_from for d in leased} == {"invite@panel.example"}
    assert all(d.lease_until == now + LEASE for d in leased)
    assert await store.load_raw(accepted.queue_id) == raw

    first, second = accepted.recipient_ids
    later = clock.advance(timedelta(seconds=3))
    await deliver(store, first, later)
    await defer(store, second, later, timedelta(minutes=5))

    delivered, deferred = await store.recipients(queue_id=accepted.queue_id)
    assert (delivered.state, delivered.attempts, delivered.last_code) == (
        State.DELIVERED,
        1,
        250,
    )
    assert delivered.updated_at == later
    assert delivered.next_attempt_at is None
    assert deferred.state == State.DEFERRED
    assert deferred.next_attempt_at == later + timedelta(minutes=5)
    assert (deferred.last_status, deferred.last_reply) == ("4.7.1", "451 later")
    assert [a.outcome for a in await store.attempts(second)] == [Outcome.DEFERRED]

    got = await store.get_message(accepted.queue_id)
    assert (got.mail_from, got.campaign, got.size) == (
        "invite@panel.example",
        "survey-1",
        len(raw),
    )
    assert got.submitted_by == "panel"
    assert got.accepted_at == now
    assert not got.body_purged


async def test_queue_ids_are_unique_and_start_with_the_acceptance_time(
    store: Store, clock: ManualClock
) -> None:
    ids = {
        (await store.accept(message("a@x.example"), clock.now())).queue_id
        for _ in range(20)
    }

    assert len(ids) == 20
    assert all(queue_id.startswith("20260105T090000-") for queue_id in ids)


async def test_a_lease_is_exclusive_until_it_runs_out(
    store: Store, clock: ManualClock
) -> None:
    now = clock.now()
    await store.accept(message("a@x.example"), now)

    first = await store.lease_due(now, 10, LEASE)
    during = await store.lease_due(now + LEASE - timedelta(seconds=1), 10, LEASE)
    after = await store.lease_due(now + LEASE, 10, LEASE)

    assert len(first) == 1
    assert during == []
    assert [d.recipient.id for d in after] == [first[0].recipient.id]


async def test_recording_an_attempt_frees_the_lease(
    store: Store, clock: ManualClock
) -> None:
    now = clock.now()
    accepted = await store.accept(message("a@x.example"), now)
    await store.lease_due(now, 10, timedelta(hours=1))

    await defer(store, accepted.recipient_ids[0], now, timedelta(minutes=5))

    assert await store.lease_due(now + timedelta(minutes=4), 10, LEASE) == []
    again = await store.lease_due(now + timedelta(minutes=5), 10, LEASE)
    assert [d.recipient.attempts for d in again] == [1]


async def test_lease_due_takes_the_oldest_due_first_up_to_the_limit(
    store: Store, clock: ManualClock
) -> None:
    start = clock.now()
    for address in ("first@x.example", "second@x.example", "third@x.example"):
        await store.accept(message(address), clock.now())
        clock.advance(timedelta(minutes=1))
    await store.accept(message("not-yet@x.example"), start + timedelta(hours=1))

    leased = await store.lease_due(clock.now(), 2, LEASE)
    rest = await store.lease_due(clock.now(), 10, LEASE)

    assert [d.recipient.address for d in leased] == [
        "first@x.example",
        "second@x.example",
    ]
    assert [d.recipient.address for d in rest] == ["third@x.example"]


async def test_record_for_an_unknown_recipient_raises_not_found(
    store: Store, clock: ManualClock
) -> None:
    with pytest.raises(NotFound):
        await deliver(store, 4242, clock.now())


async def test_release_leases_makes_leased_recipients_due_again(
    backend: Backend, store: Store, clock: ManualClock
) -> None:
    if backend.name == "postgresql":
        pytest.skip("single node only: PostgreSQL leases end by running out")
    now = clock.now()
    await store.accept(message("a@x.example", "b@x.example"), now)
    await store.lease_due(now, 10, LEASE)

    released = await store.release_leases()

    assert released == 2
    assert len(await store.lease_due(now, 10, LEASE)) == 2


async def test_next_due_at_is_the_earliest_time_a_recipient_can_be_leased(
    store: Store, clock: ManualClock
) -> None:
    now = clock.now()
    assert await store.next_due_at() is None

    early = await store.accept(message("a@x.example"), now)
    await store.accept(message("b@x.example"), now + timedelta(minutes=30))
    assert await store.next_due_at() == now

    await store.lease_due(now, 1, LEASE)
    assert await store.next_due_at() == now + LEASE

    await deliver(store, early.recipient_ids[0], now)
    assert await store.next_due_at() == now + timedelta(minutes=30)


# -- suppression -----------------------------------------------------------


async def test_suppressed_recipients_are_stored_as_such_at_acceptance(
    store: Store, clock: ManualClock
) -> None:
    now = clock.now()
    assert await store.suppress("survey-1", "Gone@X.example", "unsubscribe", now)
    assert await store.suppress(GLOBAL_SCOPE, "spam-trap@y.example", "complaint", now)

    accepted = await store.accept(
        message("gone@x.example", "SPAM-TRAP@y.example", "fine@z.example"), now
    )
    elsewhere = await store.accept(message("gone@x.example", campaign="survey-2"), now)

    assert accepted.suppressed == ("gone@x.example", "SPAM-TRAP@y.example")
    states = [r.state for r in await store.recipients(queue_id=accepted.queue_id)]
    assert states == [State.SUPPRESSED, State.SUPPRESSED, State.QUEUED]
    assert elsewhere.suppressed == ()
    leased = await store.lease_due(now, 10, LEASE)
    assert sorted(d.recipient.address for d in leased) == [
        "fine@z.example",
        "gone@x.example",
    ]


async def test_suppress_twice_reports_the_address_was_there_already(
    store: Store, clock: ManualClock
) -> None:
    assert await store.suppress("survey-1", "a@x.example", "unsubscribe", clock.now())
    assert not await store.suppress("survey-1", "A@x.EXAMPLE", "bounce", clock.now())
    assert await store.is_suppressed("survey-1", "a@X.example")
    assert not await store.is_suppressed("survey-2", "a@x.example")


async def test_global_suppression_covers_every_campaign(
    store: Store, clock: ManualClock
) -> None:
    await store.suppress(GLOBAL_SCOPE, "a@x.example", "complaint", clock.now())

    assert await store.is_suppressed("survey-1", "a@x.example")
    assert await store.is_suppressed("anything", "A@X.EXAMPLE")


async def test_a_recipient_suppressed_while_waiting_is_dropped_at_lease_time(
    store: Store, clock: ManualClock
) -> None:
    now = clock.now()
    accepted = await store.accept(message("a@x.example", "b@x.example"), now)
    await store.lease_due(now, 10, LEASE)
    first, second = accepted.recipient_ids
    await defer(store, first, now, timedelta(minutes=5))
    await defer(store, second, now, timedelta(minutes=5))

    await store.suppress("survey-1", "A@x.example", "unsubscribe", now)
    leased = await store.lease_due(now + timedelta(minutes=5), 10, LEASE)

    assert [d.recipient.id for d in leased] == [second]
    dropped = await store.recipients(state=State.SUPPRESSED)
    assert [r.id for r in dropped] == [first]


# -- inspecting and repairing ------------------------------------------------


async def test_unknown_message_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.get_message("20260105T090000-00000000")
    with pytest.raises(NotFound):
        await store.load_raw("20260105T090000-00000000")


async def test_recipients_filters_by_state_campaign_and_limit(
    store: Store, clock: ManualClock
) -> None:
    now = clock.now()
    one = await store.accept(message("a@x.example", "b@x.example"), now)
    await store.accept(message("c@x.example", campaign="survey-2"), now)
    await deliver(store, one.recipient_ids[0], now)

    assert [r.address for r in await store.recipients(state=State.QUEUED)] == [
        "b@x.example",
        "c@x.example",
    ]
    by_campaign = await store.recipients(campaign="survey-2")
    assert [r.address for r in by_campaign] == ["c@x.example"]
    assert len(await store.recipients(limit=2)) == 2
    assert await store.recipients(campaign="survey-2", state=State.DELIVERED) == []


async def test_retry_now_makes_deferred_recipients_due(
    store: Store, clock: ManualClock
) -> None:
    now = clock.now()
    one = await store.accept(message("a@x.example"), now)
    two = await store.accept(message("b@x.example"), now)
    await store.lease_due(now, 10, LEASE)
    await defer(store, one.recipient_ids[0], now, timedelta(hours=1))
    await defer(store, two.recipient_ids[0], now, timedelta(hours=1))

    later = clock.advance(timedelta(minutes=1))
    assert await store.retry_now(one.queue_id, later) == 1
    assert [d.recipient.id for d in await store.lease_due(later, 10, LEASE)] == [
        one.recipient_ids[0]
    ]
    assert await store.retry_now(None, later) == 2


async def test_retry_now_counts_only_recipients_that_will_be_attempted(
    store: Store, clock: ManualClock
) -> None:
    now = clock.now()
    accepted = await store.accept(
        message("a@x.example", "b@x.example", "c@x.example"), now
    )
    await store.lease_due(now, 10, LEASE)
    for recipient_id in accepted.recipient_ids:
        await defer(store, recipient_id, now, timedelta(hours=1))
    await store.suppress("survey-1", "B@x.example", "unsubscribe", now)
    await store.suppress(GLOBAL_SCOPE, "c@x.example", "complaint", now)

    later = clock.advance(timedelta(minutes=1))
    due = await store.retry_now(None, later)
    leased = await store.lease_due(later, 10, LEASE)

    assert due == 1
    assert [d.recipient.address for d in leased] == ["a@x.example"]
    states = {r.address: r.state for r in await store.recipients()}
    assert states["b@x.example"] is State.SUPPRESSED
    assert states["c@x.example"] is State.SUPPRESSED


async def test_delete_removes_the_message_and_its_recipients(
    store: Store, clock: ManualClock
) -> None:
    accepted = await store.accept(message("a@x.example", "b@x.example"), clock.now())

    removed = await store.delete(accepted.queue_id)

    assert removed == 2
    assert await store.recipients() == []
    with pytest.raises(NotFound):
        await store.get_message(accepted.queue_id)
    assert await store.delete(accepted.queue_id) == 0


async def test_delete_keeps_recipients_that_are_already_final(
    store: Store, clock: ManualClock
) -> None:
    accepted = await store.accept(message("a@x.example", "b@x.example"), clock.now())
    done, waiting = accepted.recipient_ids
    await store.lease_due(clock.now(), 10, LEASE)
    await store.record(
        AttemptResult(
            Attempt(done, clock.now(), Outcome.DELIVERED, "mx", 250, "2.0.0", "ok"),
            State.DELIVERED,
        )
    )

    removed = await store.delete(accepted.queue_id)

    assert removed == 1
    assert [r.id for r in await store.recipients()] == [done]
    assert (await store.stats()).sent_ok == 1
    assert (await store.get_message(accepted.queue_id)).queue_id == accepted.queue_id
    assert waiting not in [r.id for r in await store.recipients()]


async def test_campaigns_lists_each_campaign_once(
    store: Store, clock: ManualClock
) -> None:
    for campaign in ("survey-2", "survey-1", "survey-2"):
        await store.accept(message("a@x.example", campaign=campaign), clock.now())

    assert await store.campaigns() == ["survey-1", "survey-2"]


async def test_a_later_failure_report_turns_a_delivered_recipient_bounced(
    store: Store, clock: ManualClock
) -> None:
    now = clock.now()
    accepted = await store.accept(message("a@x.example"), now)
    recipient_id = accepted.recipient_ids[0]
    await deliver(store, recipient_id, now)

    report_at = now + timedelta(hours=2)
    await store.add_bounce(bounce(recipient_id, "a@x.example", report_at, None))
    await store.add_bounce(bounce(None, "stranger@x.example", report_at, "survey-1"))

    (recipient,) = await store.recipients(queue_id=accepted.queue_id)
    assert recipient.state == State.BOUNCED
    assert recipient.last_status == "5.1.1"
    rows = await store.export_bounces(None, None, None)
    assert [(r.address, r.campaign) for r in rows] == [
        ("a@x.example", "survey-1"),
        ("stranger@x.example", "survey-1"),
    ]


async def test_a_repeated_failure_report_about_one_recipient_is_kept_once(
    store: Store, clock: ManualClock
) -> None:
    now = clock.now()
    accepted = await store.accept(message("a@x.example"), now)
    recipient_id = accepted.recipient_ids[0]
    await deliver(store, recipient_id, now)
    report = replace(
        bounce(recipient_id, "a@x.example", now + timedelta(hours=2), None),
        source="dsn",
    )

    outcomes = await asyncio.gather(*(store.add_bounce(report) for _ in range(8)))

    assert sorted(outcomes) == [False] * 7 + [True]
    rows = await store.export_bounces(None, None, None)
    assert [r.address for r in rows] == ["a@x.example"]


# -- reporting ---------------------------------------------------------------


async def test_stats_count_results_in_the_words_survey_platforms_use(
    store: Store, clock: ManualClock
) -> None:
    now = clock.now()
    await store.suppress("survey-1", "gone@x.example", "unsubscribe", now)
    await store.suppress("survey-1", "angry@x.example", "complaint", now)
    await store.suppress("survey-1", "dead@x.example", "bounce", now)
    await store.suppress("survey-2", "other@x.example", "unsubscribe", now)
    accepted = await store.accept(
        message(
            "ok@x.example",
            "dead@y.example",
            "slow@x.example",
            "old@x.example",
            "new@x.example",
            "gone@x.example",
        ),
        now,
    )
    await store.accept(message("c@x.example", campaign="survey-2"), now)
    ok, dead, slow, old, *_ = accepted.recipient_ids
    await deliver(store, ok, now)
    await reject(store, dead, "dead@y.example", now)
    await defer(store, slow, now, timedelta(minutes=5))
    await store.record(
        AttemptResult(
            attempt(old, now, Outcome.DEFERRED, 421, "4.4.2", "timed out"),
            State.EXPIRED,
        )
    )

    stats = await store.stats("survey-1")
    everything = await store.stats()

    assert (stats.sent_ok, stats.bounced, stats.deferred, stats.queued) == (1, 2, 1, 1)
    assert (stats.suppressed, stats.invalid, stats.unsubscribed) == (1, 0, 2)
    assert stats.by_state == {
        "queued": 1,
        "deferred": 1,
        "delivered": 1,
        "bounced": 1,
        "expired": 1,
        "suppressed": 1,
        "invalid": 0,
    }
    assert everything.queued == 2
    assert everything.unsubscribed == 3


async def test_export_bounces_keeps_the_window_since_inclusive_until_exclusive(
    store: Store, clock: ManualClock
) -> None:
    start = clock.now()
    accepted = await store.accept(
        message(
            "a@x.example",
            "b@x.example",
            "c@x.example",
            names={"b@x.example": "Bea Example"},
        ),
        start,
    )
    addresses = ["a@x.example", "b@x.example", "c@x.example"]
    pairs = zip(accepted.recipient_ids, addresses, strict=True)
    for hours, (rid, address) in enumerate(pairs):
        await reject(store, rid, address, start + timedelta(hours=hours))
    await store.accept(message("d@x.example", campaign="survey-2"), start)

    rows = await store.export_bounces(
        "survey-1", start + timedelta(hours=1), start + timedelta(hours=2)
    )
    everything = await store.export_bounces(None, None, None)
    other = await store.export_bounces("survey-2", None, None)

    assert [(r.address, r.display_name) for r in rows] == [
        ("b@x.example", "Bea Example")
    ]
    (row,) = rows
    assert (row.code, row.status, row.campaign) == (550, "5.1.1", "survey-1")
    assert row.at == start + timedelta(hours=1)
    assert [r.address for r in everything] == [
        "a@x.example",
        "b@x.example",
        "c@x.example",
    ]
    assert other == []


async def test_export_deferrals_has_one_row_per_deferred_attempt_in_the_window(
    store: Store, clock: ManualClock
) -> None:
    start = clock.now()
    accepted = await store.accept(
        message("a@x.example", names={"a@x.example": "Ann Example"}), start
    )
    rid = accepted.recipient_ids[0]
    for minutes in (0, 5, 15):
        await defer(store, rid, start + timedelta(minutes=minutes), timedelta(1))
    await deliver(store, rid, start + timedelta(minutes=30))

    rows = await store.export_deferrals("survey-1", start + timedelta(minutes=5), None)
    before = await store.export_deferrals(None, None, start + timedelta(minutes=5))

    assert [r.at for r in rows] == [
        start + timedelta(minutes=5),
        start + timedelta(minutes=15),
    ]
    assert {(r.display_name, r.code, r.status, r.text) for r in rows} == {
        ("Ann Example", 451, "4.7.1", "451 later")
    }
    assert [r.at for r in before] == [start]
    assert await store.export_deferrals("survey-2", None, None) == []


# -- housekeeping --------------------------------------------------------------


async def test_purge_drops_bodies_then_records_by_age(
    store: Store, clock: ManualClock
) -> None:
    keep_bodies, keep_records = timedelta(days=7), timedelta(days=400)
    start = clock.now()
    done = await store.accept(message("a@x.example", "b@x.example"), start)
    waiting = await store.accept(message("c@x.example"), start)
    first, second = done.recipient_ids
    await deliver(store, first, start)
    await reject(store, second, "b@x.example", start)
    await defer(store, waiting.recipient_ids[0], start, timedelta(days=1))
    await store.add_bounce(bounce(None, "stray@x.example", start, None))

    early = await store.purge(start + timedelta(days=6), keep_bodies, keep_records)
    bodies = await store.purge(start + timedelta(days=7), keep_bodies, keep_records)

    assert early == PurgeCounts(0, 0, 0, 0)
    assert bodies == PurgeCounts(bodies=1, messages=0, attempts=0, bounces=0)
    assert (await store.get_message(done.queue_id)).body_purged
    with pytest.raises(NotFound):
        await store.load_raw(done.queue_id)
    assert await store.load_raw(waiting.queue_id)

    records = await store.purge(start + timedelta(days=400), keep_bodies, keep_records)

    # The finished message goes with its two attempts and its bounce record;
    # the waiting one stays, but its old attempt and the stray record go.
    assert records == PurgeCounts(bodies=0, messages=1, attempts=3, bounces=2)
    with pytest.raises(NotFound):
        await store.get_message(done.queue_id)
    assert [r.address for r in await store.recipients()] == ["c@x.example"]
    assert await store.attempts(waiting.recipient_ids[0]) == []


async def test_a_message_whose_recipients_are_all_suppressed_is_final_at_once(
    store: Store, clock: ManualClock
) -> None:
    now = clock.now()
    await store.suppress("survey-1", "a@x.example", "unsubscribe", now)
    accepted = await store.accept(message("a@x.example"), now)

    counts = await store.purge(now + timedelta(days=1), timedelta(days=1), LEASE * 0)

    assert counts.messages == 1
    with pytest.raises(NotFound):
        await store.get_message(accepted.queue_id)


async def test_a_secret_is_random_created_once_and_kept_across_reopen(
    backend: Backend,
) -> None:
    store = await backend.open()
    first = await store.secret("verp")
    again = await store.secret("verp")
    other = await store.secret("unsubscribe")
    await store.close()

    reopened = await backend.open()

    assert len(first) == 32
    assert first == again
    assert other != first
    assert await reopened.secret("verp") == first


async def test_everything_survives_close_and_reopen(
    backend: Backend, clock: ManualClock
) -> None:
    store = await backend.open()
    now = clock.now()
    accepted = await store.accept(message("a@x.example", "b@x.example"), now)
    await deliver(store, accepted.recipient_ids[0], now)
    await store.suppress("survey-1", "c@x.example", "unsubscribe", now)
    await store.close()

    reopened = await backend.open()

    assert await reopened.load_raw(accepted.queue_id) == message("a@x.example").raw
    states = [r.state for r in await reopened.recipients()]
    assert states == [State.DELIVERED, State.QUEUED]
    assert await reopened.is_suppressed("survey-1", "c@x.example")
    assert len(await reopened.attempts(accepted.recipient_ids[0])) == 1
